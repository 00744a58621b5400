"""The dba_upcycle preset end to end (smoke override): teacher → blockwise → global, verify
gates between phases, benchmarks, every artifact and its index; a deliberately failing
fail_fast gate stops with a report; same seed ⇒ identical teacher curve; apples_to_apples
refuses non-repeatable settings by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caramba.engine.errors import CarambaError, ManifestError
from caramba.engine.manifest import load_manifest
from caramba.engine.runner import run_target
from caramba.engine.train.recorder import read_jsonl
from caramba.tests.infer_models import one_thread  # noqa: F401 (autouse)
from caramba.workspace import Workspace

PRESET = Path(__file__).resolve().parents[1] / "manifests" / "dba_upcycle.yml"
SMOKE = ["vars.teacher_steps=30", "vars.block_steps=8", "vars.global_steps=8", "vars.ppl_batches=2",
         "vars.timed_runs=1", "vars.max_seq=256"]
ARTIFACTS = {"summary.csv", "summary.tex", "loss_curve.png", "perplexity.csv", "latency.csv", "memory.csv",
             "ppl.tex", "latency.tex", "memory.tex", "latency_vs_context.png", "memory_scaling.png", "summary.png",
             "artifacts_index.json"}


def _run(ws: Workspace, target: str, extra: list[str] = ()) -> object:
    return run_target(load_manifest(PRESET, overrides=SMOKE + list(extra)), target=target, workspace=ws,
                      console=False, argv=["test"])


def test_preset_end_to_end(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    first = _run(ws, "teacher")
    again = _run(ws, "teacher")                   # reproducible run to run on CPU with the same seed
    losses = [[(r["step"], r["loss"]) for r in read_jsonl(res.run_dir / "metrics.jsonl")] for res in (first, again)]
    assert losses[0] == losses[1] and len(losses[0]) > 2

    res = _run(ws, "upcycle")
    art = res.run_dir / "artifacts"
    assert ARTIFACTS <= {p.name for p in art.iterdir()}
    index = json.loads((art / "artifacts_index.json").read_text())
    listed = {Path(a["path"]).name: a for a in index["artifacts"]}
    assert ARTIFACTS <= set(listed) and "results.json" in listed
    assert listed["latency.csv"]["benchmark"] == ["latency"] and listed["loss_curve.png"]["kind"] == "plot"
    results = json.loads((res.run_dir / "results.json").read_text())
    assert results["verdicts"]["blockwise"]["passed"] and results["verdicts"]["global"]["passed"]
    assert results["verdicts"]["global"]["metrics"]["reduction_ratio"] == pytest.approx(64 / 48)
    mem = results["benchmarks"]["memory"]["rows"]
    assert all(r["kv_bytes"] == r["kv_bytes_predicted"] for r in mem)
    by = {(r["model"], r["cache_kind"], r["seq_len"]): r["kv_bytes"] for r in mem}
    assert by[("teacher", "fp16", 256)] / by[("student", "fp16", 256)] == pytest.approx(64 / 48)
    assert by[("student", "q4_0", 256)] < by[("student", "q8_0", 256)] < by[("student", "fp16", 256)]
    ppl = [r for r in results["benchmarks"]["ppl"]["rows"]]
    assert {(r["model"], r["repeat"]) for r in ppl} == {(m, i) for m in ("teacher", "student") for i in range(3)}
    tex = (art / "ppl.tex").read_text()
    assert r"\toprule" in tex and r"\textbf{" in tex and r"$\pm$" in tex
    events = [e["event"] for e in read_jsonl(res.run_dir / "events.jsonl")]
    assert events.count("verify") == 2 and events.count("benchmark") == 3 and "upcycle_surgery" in events

    # a deliberately failing fail_fast gate stops the manifest with a report
    bad = ["targets[upcycle].runs[0].verify.attention.max_mean_l1=1e-12", "targets[upcycle].runs[0].verify.fail_fast=true"]
    with pytest.raises(CarambaError, match=r"(?s)verify \(compare\) failed with fail_fast.*attention_mean_l1 = .* > the bound 1e-12"):
        _run(ws, "upcycle", bad)
    # the same failure without fail_fast is recorded and the target completes
    soft = _run(ws, "upcycle", bad[:1] + ["targets[upcycle].benchmarks=[]"])
    verdict = json.loads((soft.run_dir / "results.json").read_text())["verdicts"]["blockwise"]
    assert verdict["passed"] is False and "attention_mean_l1" in verdict["failures"][0]

    # trainer.upcycle reads batches in-process: data-loading workers are refused, not ignored
    with pytest.raises(CarambaError, match=r"trainer.upcycle reads its batches in the training process.*num_workers=2"):
        _run(ws, "upcycle", ["targets[upcycle].runs[0].train.num_workers=2"])


def test_apples_to_apples_refuses_compile(tmp_path: Path) -> None:
    m = load_manifest(PRESET, overrides=SMOKE + ["targets[teacher].runs[0].train.compile_model=true"])
    with pytest.raises(ManifestError, match=r"targets\[0\].runs\[0\].train.compile_model.*autotunes"):
        run_target(m, target="teacher", workspace=Workspace(tmp_path), console=False, argv=["test"])
