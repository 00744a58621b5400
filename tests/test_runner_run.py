"""The runner and ``caramba run``: run directory layout, run.json, events and metrics
schema, checkpoints, artifacts, errors and dry-run — through the real manifest path."""

from __future__ import annotations

import csv
import json

import pytest

from caramba.cli import main
from caramba.engine.errors import CarambaError, NotImplementedYet
from caramba.engine.manifest import load_manifest
from caramba.engine.runner import run_target
from caramba.workspace import Workspace
from caramba.tests.support.training import read_jsonl, train_losses, write_tiny_lm


def test_run_target_writes_the_documented_run_directory(tmp_path):
    manifest = load_manifest(write_tiny_lm(tmp_path, steps=12, save_every=4, eval_every=6))
    seen: list[dict] = []
    result = run_target(manifest, workspace=Workspace(tmp_path), on_event=seen.append, console=False, argv=["t"])
    rd = result.run_dir
    assert result.state == "completed" and rd == tmp_path / "runs" / "tiny_train" / "lm" / result.run_id
    info = json.loads((rd / "run.json").read_text())
    assert {k: info[k] for k in ("manifest", "target", "run_id", "argv", "state")} == {
        "manifest": "tiny_train", "target": "lm", "run_id": result.run_id, "argv": ["t"], "state": "completed"}
    assert isinstance(info["created"], float) and isinstance(info["pid"], int)
    assert load_manifest(rd / "manifest.yml", overrides=[]).name == "tiny_train"  # resolved manifest re-loads
    events = read_jsonl(rd / "events.jsonl")
    assert events == seen and all({"ts", "event", "run"} <= set(e) for e in events)
    names = [e["event"] for e in events]
    assert names[0] == "target_started" and names[-1] == "target_finished" and events[-1]["state"] == "completed"
    assert names.index("run_started") < names.index("progress") < names.index("run_finished")
    prog = [e for e in events if e["event"] == "progress"]
    assert [p["step"] for p in prog] == list(range(1, 13))
    assert all({"step", "total", "loss", "lr", "tokens_per_s", "eta_s"} <= set(p) and p["run"] == "train" for p in prog)
    assert [e["step"] for e in events if e["event"] == "eval"] == [6, 12]
    assert [e["step"] for e in events if e["event"] == "checkpoint"] == [4, 8, 12]
    assert {e["kind"] for e in events if e["event"] == "artifact"} == {"table", "latex", "plot", "results", "index"}
    rows = read_jsonl(rd / "metrics.jsonl")
    assert {r["split"] for r in rows} == {"train", "val"}
    assert all({"run", "step", "split", "loss"} <= set(r) for r in rows)
    assert all({"lr", "tokens_per_s", "ppl"} <= set(r) for r in rows if r["split"] == "train")
    losses = [l for _, l in train_losses(rd)]
    assert losses[-1] < losses[0]  # it learns the pattern
    ck = rd / "checkpoints" / "train"
    assert (ck / "latest").read_text() == "step_12" and (ck / "step_12" / "model.safetensors").exists()
    results = json.loads((rd / "results.json").read_text())
    assert results["primary"] == "val_loss" and results["runs"]["train"]["steps"] == 12
    assert results["runs"]["train"]["val_loss"] == pytest.approx(rows[-1]["loss"])
    with open(rd / "artifacts" / "summary.csv") as f:
        table = list(csv.DictReader(f))
    assert table[0]["run"] == "train" and float(table[0]["val_loss"]) == pytest.approx(rows[-1]["loss"], rel=1e-5)
    tex = (rd / "artifacts" / "summary.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"val\_loss" in tex
    assert (rd / "artifacts" / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert list((rd / "tensorboard").glob("events.out.tfevents.*"))


def test_cli_run_plain_output_errors_and_dry_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(tmp_path))
    path = write_tiny_lm(tmp_path, steps=3, save_every=0, eval_every=0)
    assert main(["run", str(path), "--run-id", "r1", "--set", "targets[0].runs[0].train.log_every=3"]) == 0
    out = capsys.readouterr().out
    assert "[train] step      3/3 | loss" in out and "tok/s" in out and "val_loss=" in out
    assert main(["run", str(path), "--run-id", "r1"]) == 2  # exists: must say --resume
    assert "already exists" in capsys.readouterr().err
    assert main(["run", str(path), "--dry-run"]) == 0
    assert "TransformerModel" in capsys.readouterr().out
    bad = tmp_path / "bad.yml"
    bad.write_text(path.read_text().replace("lr: 0.01", "lr: fast"))
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.yml" in err and "lr" in err and "Traceback" not in err
    assert main(["run", str(path), "--device", "cuda:7"]) == 2 or __import__("torch").cuda.device_count() > 7
    assert "cuda" in capsys.readouterr().err.lower()
    other = tmp_path / "other"
    other.mkdir()
    assert main(["run", str(path), "--resume", "--target", "lm", "--run-id", "nope"]) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_wandb_enabled_without_package_is_a_clear_error(tmp_path):
    manifest = load_manifest(write_tiny_lm(tmp_path), overrides=["defaults.logging.wandb=true"])
    with pytest.raises(CarambaError, match="'wandb' package is not installed") as e:
        run_target(manifest, workspace=Workspace(tmp_path), console=False)
    assert "wandb: false" in e.value.fix
    assert not (tmp_path / "runs").exists()  # refused before creating a run directory


def test_later_features_raise_not_implemented_when_needed(tmp_path):
    manifest = load_manifest(write_tiny_lm(tmp_path), overrides=["targets[0].runs[0].train.convergence_target=0.5"])
    # upcycle-only fields on a standard run are refused (they apply to trainer.upcycle phases)
    with pytest.raises(CarambaError, match="convergence_target applies only to upcycling"):
        run_target(manifest, workspace=Workspace(tmp_path), console=False)
    rd = next((tmp_path / "runs" / "tiny_train" / "lm").iterdir())
    assert json.loads((rd / "run.json").read_text())["state"] == "failed"
    last = read_jsonl(rd / "events.jsonl")[-2:]
    assert last[0]["event"] == "error" and "convergence" in last[0]["message"]
    assert last[1] == {**last[1], "event": "target_finished", "state": "failed"}
