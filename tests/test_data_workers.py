"""``train.num_workers``: batches read by worker processes are exactly the in-process
batches (same seed → same sequence, across epochs and after a resume), dataset errors
come back as clean CarambaErrors, and workers never outlive the run (normal end, errors,
SIGTERM). The SIGKILL + ``--resume`` variant lives in ``test_resume_kill.py``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from caramba.engine.data.base import DataError
from caramba.engine.data.diffusion import NoisedVectors
from caramba.engine.data.loader import BatchStream
from caramba.engine.data.tokens import window_splits
from caramba.engine.data.workers import WorkerStream
from caramba.engine.errors import ManifestError
from caramba.engine.manifest import load_manifest
from caramba.engine.manifest.schema_train import MAX_WORKERS
from caramba.engine.runner import run_target
from caramba.tests.support.children import child_pids, wait_gone
from caramba.tests.support.training import read_jsonl, train_losses, wait_for_event, write_tiny_lm
from caramba.workspace import Workspace


def _tokens_train() -> torch.utils.data.Dataset:
    tokens = np.random.default_rng(0).integers(0, 50, size=400).astype(np.uint16)
    return window_splits(tokens, 8, 0.0, {}).train  # 392 windows


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_workers_read_the_same_batches_across_epochs_and_after_a_resume():
    data = _tokens_train()
    ref = BatchStream(data, 32, seed=5)
    want = [ref.next_batch() for _ in range(30)]  # 12 batches per epoch: crosses two epoch boundaries
    with WorkerStream(BatchStream(data, 32, seed=5), num_workers=2, prefetch_factor=3) as ws:
        got = [ws.next_batch() for _ in range(17)]
        state = ws.state_dict()
        pids = set(ws.worker_pids())
        assert len(pids) == 2 and pids <= child_pids(os.getpid())
    assert not wait_gone(pids, 10), "close() must join every worker"
    assert all(_same(g, w) for g, w in zip(got, want))
    assert state == {"seed": 5, "epoch": 1, "pos": 5 * 32, "n": 392}  # consumed, not read-ahead, position
    resumed = WorkerStream(BatchStream(data, 32, seed=5), num_workers=2)
    resumed.load_state_dict(state)
    try:
        rest = [resumed.next_batch() for _ in range(13)]
    finally:
        resumed.close()
    assert all(_same(g, w) for g, w in zip(rest, want[17:]))


def test_random_reads_are_seeded_per_item_and_leave_the_global_rng_alone():
    x = torch.randn(64, 3)
    data = NoisedVectors(x, None, timesteps=1000, fixed_seed=None)
    torch.manual_seed(11)
    ref = BatchStream(data, 16, seed=2)
    want = [ref.next_batch() for _ in range(6)]
    after_ref = torch.rand(3)
    torch.manual_seed(11)
    with WorkerStream(BatchStream(data, 16, seed=2), num_workers=2) as ws:
        got = [ws.next_batch() for _ in range(6)]
    assert torch.equal(torch.rand(3), after_ref)  # starting workers drew nothing from the global RNG
    assert all(_same(g, w) for g, w in zip(got, want))
    assert len({int(t) for b in want for t in b["t"]}) > 20  # timesteps really are random draws


def test_token_windows_gather_a_batch_exactly_like_stacking_its_items(tmp_path):
    from caramba.engine.data.loader import BatchPlan, collate, fetch
    from caramba.engine.data.tokens import TokenWindows

    ids = np.random.default_rng(1).integers(0, 60000, size=500).astype(np.uint16)
    np.save(tmp_path / "t.npy", ids)
    for tokens in (ids, np.load(tmp_path / "t.npy", mmap_mode="r"), torch.from_numpy(ids.astype(np.int64))):
        windows = TokenWindows(tokens, 16, torch.arange(3, 400, 7))
        idx = (5, 0, 40, 5, 56)
        want = collate([windows[i] for i in idx])
        got = fetch(windows, BatchPlan(idx, seed=0))
        assert _same(got, want) and all(v.is_contiguous() and v.dtype == torch.int64 for v in got.values())


class _Broken(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 40

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if i == 13:
            raise DataError(f"item {i} is unreadable", fix="repair the data file")
        return {"x": torch.tensor([float(i)])}


def test_a_dataset_error_in_a_worker_is_raised_in_the_trainer_process_with_its_fix():
    ws = WorkerStream(BatchStream(_Broken(), 4, seed=0, shuffle=False), num_workers=2)
    try:
        with pytest.raises(DataError) as err:
            for _ in range(10):
                ws.next_batch()
        pids = set(ws.worker_pids())
    finally:
        ws.close()
    assert err.value.message == "item 13 is unreadable" and err.value.fix == "repair the data file"
    assert not wait_gone(pids, 10)


def _with_train(path: Path, extra: str) -> Path:
    path.write_text(path.read_text().replace("          device: cpu\n", f"          device: cpu\n{extra}"))
    return path


def test_an_error_during_training_shuts_the_workers_down(tmp_path):
    manifest = _with_train(write_tiny_lm(tmp_path, steps=50, save_every=0, eval_every=0), "          num_workers: 2\n")
    before = child_pids(os.getpid())
    seen: dict[str, set[int]] = {}

    def explode(event: dict) -> None:
        if event["event"] == "progress" and event["step"] == 3:
            seen["workers"] = child_pids(os.getpid()) - before
            raise RuntimeError("a tracker failed")

    with pytest.raises(RuntimeError, match="a tracker failed"):
        run_target(load_manifest(manifest), workspace=Workspace(tmp_path), console=False, on_event=explode)
    assert len(seen["workers"]) == 2
    assert not wait_gone(seen["workers"], 10)
    run_dir = next((tmp_path / "runs" / "tiny_train" / "lm").iterdir())
    assert json.loads((run_dir / "run.json").read_text())["state"] == "failed"


class _Enough(Exception):
    pass


def test_workers_match_in_process_training_and_stop_with_the_run_on_sigterm(tmp_path):
    ref_ws, ws = tmp_path / "ref", tmp_path / "workers"
    ref_ws.mkdir(), ws.mkdir()

    def enough(event: dict) -> None:  # the same 100k-step schedule, stopped after step 12's eval
        if event["event"] == "progress" and event["step"] == 13:
            raise _Enough

    with pytest.raises(_Enough):
        run_target(load_manifest(write_tiny_lm(ref_ws, steps=100_000, save_every=0, eval_every=6)),
                   workspace=Workspace(ref_ws), console=False, on_event=enough, run_id="ref")
    ref_dir = ref_ws / "runs" / "tiny_train" / "lm" / "ref"
    manifest = _with_train(write_tiny_lm(ws, steps=100_000, save_every=0, eval_every=6),
                           "          num_workers: 2\n          pin_memory: true\n")
    env = {**os.environ, "CARAMBA_WORKSPACE": str(ws), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "caramba", "run", str(manifest), "--run-id", "w"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ws)
    run_dir = ws / "runs" / "tiny_train" / "lm" / "w"
    try:
        wait_for_event(proc, run_dir / "events.jsonl", lambda r: r["event"] == "progress" and r["step"] >= 12)
        workers = child_pids(proc.pid)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(workers) == 2
    assert not wait_gone(workers, 2), "workers must be joined before the run exits"
    started = next(e for e in read_jsonl(run_dir / "events.jsonl") if e["event"] == "run_started")
    assert started["data_loading"] == {"num_workers": 2, "pin_memory": False, "start_method": "fork"}  # CPU: no pinning
    got, want = dict(train_losses(run_dir)), dict(train_losses(ref_dir))
    assert all(got[s] == want[s] for s in range(1, 13))  # bit-identical to num_workers: 0
    val = [r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "val" and r["step"] <= 12]
    assert val == [r["loss"] for r in read_jsonl(ref_dir / "metrics.jsonl") if r["split"] == "val"]
    assert json.loads((run_dir / "run.json").read_text())["state"] == "cancelled"


@pytest.mark.parametrize("extra, path, message", [
    ("num_workers: -1", "num_workers", "value out of range"),
    (f"num_workers: {MAX_WORKERS + 1}", "num_workers", f"more than {MAX_WORKERS}"),
    ("prefetch_factor: 4", "", "prefetch_factor applies to data-loading workers, but num_workers is 0"),
])
def test_bad_worker_settings_are_located_in_the_manifest(tmp_path, extra, path, message):
    manifest = _with_train(write_tiny_lm(tmp_path), f"          {extra}\n")
    line = manifest.read_text().splitlines().index(f"          {extra}") + 1
    with pytest.raises(ManifestError) as err:
        load_manifest(manifest)
    issue = err.value.issues[0]
    assert issue.file and Path(issue.file).name == "tiny.yml"
    assert issue.path == "targets[0].runs[0].train" + (f".{path}" if path else "")
    assert message in issue.message and issue.fix
    if path:
        assert issue.line == line
