"""Data-parallel training on CPU with the gloo backend, launched the way a user does it
(``caramba run FILE --nproc-per-node 2``, i.e. torchrun):

* DDP on 2 ranks gives the single-process loss curve (train and validation) for the same
  global batch, and only rank 0 writes the run directory;
* FSDP2 on 2 ranks, with one rank SIGKILLed mid-run: the launcher names the rank and the
  signal, and ``--resume`` on ONE process (a different world size: the sharded DCP
  checkpoint is resharded) finishes the exact single-process curve.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from caramba.cli import main
from caramba.engine.manifest import load_manifest
from caramba.engine.runner import run_target
from caramba.workspace import Workspace
from caramba.tests.support.training import read_jsonl, train_losses, wait_for_event, write_tiny_lm

TOL = 2e-5  # the 2-rank mean of half-batch losses/gradients differs from one full batch in rounding only


@pytest.fixture(autouse=True)
def one_thread():
    """In-process runs on one intra-op thread, like the ranks (OMP_NUM_THREADS=1): the CI
    box has two cores and two test workers."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _strategy(name: str) -> str:
    return f"targets[0].runs[0].train.distributed={name}"


def _reference(ws: Path, steps: int, save_every: int, eval_every: int) -> Path:
    manifest = load_manifest(write_tiny_lm(ws, steps=steps, save_every=save_every, eval_every=eval_every))
    return run_target(manifest, workspace=Workspace(ws), console=False, run_id="ref").run_dir


def _val(run_dir: Path) -> list[float]:
    return [r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "val"]


def _assert_same_curve(got: Path, want: Path) -> None:
    a, b = train_losses(got), train_losses(want)
    assert [s for s, _ in a] == [s for s, _ in b]  # one continuous curve, no duplicate steps
    for (step, x), (_, y) in zip(a, b):
        assert x == pytest.approx(y, abs=TOL), f"step {step}: {x} vs single-process {y}"
    assert _val(got) == pytest.approx(_val(want), abs=TOL)


def test_ddp_two_ranks_matches_single_process(tmp_path, monkeypatch, capfd):
    ref = _reference(tmp_path, steps=12, save_every=6, eval_every=6)
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    code = main(["run", str(tmp_path / "tiny.yml"), "--nproc-per-node", "2", "--run-id", "ddp2",
                 "--set", _strategy("ddp"), "--set", "targets[0].runs[0].train.distributed_backend=gloo"])
    out = capfd.readouterr()
    assert code == 0, out.err[-3000:]
    run_dir = tmp_path / "runs" / "tiny_train" / "lm" / "ddp2"
    _assert_same_curve(run_dir, ref)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["state"] == "completed"
    assert info["distributed"]["strategy"] == "ddp" and info["distributed"]["world_size"] == 2
    assert sorted(r["rank"] for r in info["distributed"]["ranks"]) == [0, 1]
    events = read_jsonl(run_dir / "events.jsonl")
    starts = [e for e in events if e["event"] == "run_started"]
    assert len(starts) == 1 and starts[0]["world_size"] == 2 and starts[0]["global_batch_size"] == 4
    assert len([e for e in events if e["event"] == "progress"]) == 12  # rank 0 alone logs
    assert out.out.count("run directory:") == 1  # and alone prints the summary
    assert (run_dir / "checkpoints" / "train" / "step_12" / "model.safetensors").exists()


def test_fsdp_rank_killed_then_resumed_on_one_process(tmp_path, monkeypatch):
    steps = 80
    (tmp_path / "ref").mkdir()
    ref = _reference(tmp_path / "ref", steps, 10, 40)
    ws = tmp_path / "ws"
    ws.mkdir()
    manifest = write_tiny_lm(ws, steps=steps, save_every=10, eval_every=40)
    env = {**os.environ, "CARAMBA_WORKSPACE": str(ws), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "caramba", "run", str(manifest), "--nproc-per-node", "2",
                             "--run-id", "victim", "--set", _strategy("fsdp"),
                             "--set", "targets[0].runs[0].train.activation_checkpointing=true"],
                            env=env, cwd=ws, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_dir = ws / "runs" / "tiny_train" / "lm" / "victim"
    wait_for_event(proc, run_dir / "events.jsonl", lambda r: r["event"] == "checkpoint" and r["step"] >= 20)
    ranks = json.loads((run_dir / "run.json").read_text())["distributed"]["ranks"]
    os.kill(next(r["pid"] for r in ranks if r["rank"] == 1), signal.SIGKILL)
    _, err = proc.communicate(timeout=180)
    err = err.decode()
    assert proc.returncode == 1, err[-3000:]
    assert "rank 1" in err and "SIGKILL" in err and "--resume" in err, err[-3000:]
    assert "Traceback" not in err.split("distributed run failed")[-1]  # the launcher's own report is clean
    assert json.loads((run_dir / "run.json").read_text())["state"] == "failed"
    killed_at = int((run_dir / "checkpoints" / "train" / "latest").read_text().removeprefix("step_"))
    assert 20 <= killed_at < steps
    assert len(list((run_dir / "checkpoints" / "train" / f"step_{killed_at}" / "sharded").glob("*.distcp"))) == 2

    monkeypatch.setenv("CARAMBA_WORKSPACE", str(ws))
    assert main(["run", str(manifest), "--run-id", "victim", "--resume", "--set", _strategy("fsdp"),
                 "--set", "targets[0].runs[0].train.activation_checkpointing=true"]) == 0
    _assert_same_curve(run_dir, ref)
    starts = [e for e in read_jsonl(run_dir / "events.jsonl") if e["event"] == "run_started"]
    assert starts[-1]["resumed"] and starts[-1]["start_step"] == killed_at and starts[-1]["world_size"] == 1
    final = run_dir / "checkpoints" / "train" / f"step_{steps}"
    assert (final / "model.safetensors").exists() and (final / "sharded" / ".metadata").exists()
