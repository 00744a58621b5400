"""Kill-and-resume: a CPU run SIGKILLed after a checkpoint and resumed with ``--resume``
continues the exact loss curve of an uninterrupted run with the same seed — also when the
killed and the resumed run read their batches with two worker processes (whose workers
must exit once their parent is gone); SIGTERM stops a run cleanly after the current step
with a checkpoint and state ``cancelled``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from caramba.cli import main
from caramba.engine.manifest import load_manifest
from caramba.engine.runner import run_target
from caramba.workspace import Workspace
from caramba.tests.support.children import child_pids, wait_gone
from caramba.tests.support.training import read_jsonl, train_losses, wait_for_event, write_tiny_lm

STEPS = 60


def _start(manifest: Path, workspace: Path, run_id: str) -> subprocess.Popen:
    env = {**os.environ, "CARAMBA_WORKSPACE": str(workspace), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "caramba", "run", str(manifest), "--run-id", run_id],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=workspace)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run (num_workers: 0): train losses and val losses."""
    ws = tmp_path_factory.mktemp("ref")
    run = run_target(load_manifest(write_tiny_lm(ws, steps=STEPS, save_every=10, eval_every=20)),
                     workspace=Workspace(ws), console=False)
    val = [r["loss"] for r in read_jsonl(run.run_dir / "metrics.jsonl") if r["split"] == "val"]
    return train_losses(run.run_dir), val


@pytest.mark.parametrize("workers", [0, 2])
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, reference, workers):
    expected, ref_val = reference
    assert len(expected) == STEPS
    kill_ws = tmp_path / "kill"
    kill_ws.mkdir()
    manifest = write_tiny_lm(kill_ws, steps=STEPS, save_every=10, eval_every=20)
    if workers:
        manifest.write_text(manifest.read_text().replace("device: cpu\n", f"device: cpu\n          num_workers: {workers}\n"))
    run_dir = kill_ws / "runs" / "tiny_train" / "lm" / "victim"
    proc = _start(manifest, kill_ws, "victim")
    wait_for_event(proc, run_dir / "events.jsonl", lambda r: r["event"] == "checkpoint" and r["step"] >= 20)
    children = child_pids(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(children) == workers
    assert not wait_gone(children, 20), "data-loading workers outlived their SIGKILLed parent"
    assert json.loads((run_dir / "run.json").read_text())["state"] == "running"  # died without cleanup
    killed_at = int((run_dir / "checkpoints" / "train" / "latest").read_text().removeprefix("step_"))
    assert 20 <= killed_at < STEPS

    old = os.environ.get("CARAMBA_WORKSPACE")
    os.environ["CARAMBA_WORKSPACE"] = str(kill_ws)
    before = child_pids(os.getpid())
    try:
        assert main(["run", str(manifest), "--resume"]) == 0  # newest run of the target = victim
        assert not child_pids(os.getpid()) - before  # a run that ends normally joins its workers
    finally:
        os.environ.pop("CARAMBA_WORKSPACE") if old is None else os.environ.__setitem__("CARAMBA_WORKSPACE", old)
    resumed = train_losses(run_dir)
    assert [s for s, _ in resumed] == list(range(1, STEPS + 1))  # one continuous curve, no duplicates
    for (s, got), (_, want) in zip(resumed, expected):
        assert got == pytest.approx(want, abs=1e-6), f"step {s}: resumed {got} vs uninterrupted {want}"
    got_val = [r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "val"]
    assert got_val == pytest.approx(ref_val, abs=1e-6)
    info = json.loads((run_dir / "run.json").read_text())
    assert info["state"] == "completed" and "resumed" in info
    starts = [e for e in read_jsonl(run_dir / "events.jsonl") if e["event"] == "run_started"]
    assert starts[-1]["resumed"] and starts[-1]["start_step"] == killed_at


def test_sigterm_stops_cleanly_with_checkpoint_and_cancelled_state(tmp_path):
    manifest = write_tiny_lm(tmp_path, steps=100_000, save_every=0, eval_every=0)
    run_dir = tmp_path / "runs" / "tiny_train" / "lm" / "term"
    proc = _start(manifest, tmp_path, "term")
    wait_for_event(proc, run_dir / "events.jsonl", lambda r: r["event"] == "progress" and r["step"] >= 3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130
    events = read_jsonl(run_dir / "events.jsonl")
    ck = [e for e in events if e["event"] == "checkpoint"]
    assert len(ck) == 1 and (Path(ck[0]["path"]) / "model.safetensors").exists()
    assert events[-1]["event"] == "target_finished" and events[-1]["state"] == "cancelled"
    assert json.loads((run_dir / "run.json").read_text())["state"] == "cancelled"
    last_step = max(e["step"] for e in events if e["event"] == "progress")
    assert ck[0]["step"] == last_step  # stopped right after the step it was in
