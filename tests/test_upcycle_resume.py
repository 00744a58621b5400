"""Upcycle blockwise phase: SIGTERM mid-block checkpoints atomically (student weights,
block index, step in block, optimizer, RNG, data position) and exits cleanly (130,
``cancelled``); ``caramba run … --resume`` continues from that block and step, and the
finished target (blockwise, then global) equals an uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from caramba.cli import main
from caramba.engine.manifest import load_manifest
from caramba.engine.runner import run_target
from caramba.tests.infer_models import one_thread  # noqa: F401 (autouse: one thread here, OMP_NUM_THREADS=1 there)
from caramba.tests.support.training import read_jsonl, wait_for_event, write_tiny_lm
from caramba.workspace import Workspace

BLOCK_STEPS = 300

MANIFEST = """\
version: 2
name: tiny_upcycle
defaults:
  data: {val_frac: 0.1}
  logging: {instrument: plain, eval_iters: 2}
vars: {d: 32}
targets:
  - type: experiment
    name: teacher
    task: task.language_modeling
    data: &data {ref: dataset.tokens, config: {path: tokens.npy, block_size: 16}}
    system:
      ref: system.language_model
      config:
        model:
          type: TransformerModel
          embedder: {type: token, vocab_size: 32, d_model: '${d}'}
          topology:
            type: StackedTopology
            layers:
              - type: NestedTopology
                repeat: 2
                layers:
                  - type: ResidualTopology
                    layers: [{type: RMSNormLayer, d_model: '${d}'}, {type: AttentionLayer, d_model: '${d}', n_heads: 2}]
                  - type: ResidualTopology
                    layers: [{type: RMSNormLayer, d_model: '${d}'}, {type: SwiGLULayer, d_model: '${d}', d_ff: 64}]
              - {type: RMSNormLayer, d_model: '${d}'}
              - {type: LinearLayer, d_in: '${d}', d_out: 32, bias: false}
    objective: objective.next_token_ce
    trainer: trainer.standard
    runs:
      - {id: train, seed: 3, steps: 20, train: {batch_size: 4, lr: 0.01, log_every: 5, device: cpu}}
  - type: experiment
    name: upcycle
    task: task.language_modeling
    data: *data
    system:
      ref: system.language_model
      config:
        model:
          type: TransformerModel
          embedder: {type: token, vocab_size: 32, d_model: '${d}'}
          topology:
            type: StackedTopology
            layers:
              - type: NestedTopology
                repeat: 2
                layers:
                  - type: ResidualTopology
                    layers:
                      - {type: RMSNormLayer, d_model: '${d}'}
                      - {type: AttentionLayer, mode: decoupled, d_model: '${d}', n_heads: 2, sem_dim: 8, geo_dim: 8,
                         attn_dim: '${d}'}
                  - type: ResidualTopology
                    layers: [{type: RMSNormLayer, d_model: '${d}'}, {type: SwiGLULayer, d_model: '${d}', d_ff: 64}]
              - {type: RMSNormLayer, d_model: '${d}'}
              - {type: LinearLayer, d_in: '${d}', d_out: 32, bias: false}
    objective: objective.next_token_ce
    trainer: {ref: trainer.upcycle, config: {reset_lr_per_block: true, distill_weight: 0.5, teacher_pool: 4}}
    runs:
      - id: blockwise
        seed: 5
        steps: BLOCK_STEPS
        train: {phase: blockwise, teacher_ckpt: teacher/train, dba_init: svd, cache_teacher_outputs: true,
                batch_size: 4, lr: 0.003, convergence_patience: 100000, log_every: 1, device: cpu}
      - id: global
        seed: 5
        steps: 6
        train: {phase: global, teacher_ckpt: teacher/train, batch_size: 4, lr: 0.001, log_every: 1, device: cpu}
""".replace("BLOCK_STEPS", str(BLOCK_STEPS))


def _final_weights(run_dir: Path, run: str) -> dict[str, torch.Tensor]:
    folder = run_dir / "checkpoints" / run
    return load_file(folder / (folder / "latest").read_text().strip() / "model.safetensors")


def test_sigterm_mid_block_then_resume_equals_uninterrupted(tmp_path: Path) -> None:
    write_tiny_lm(tmp_path)                                   # tokens.npy (a learnable pattern)
    manifest = tmp_path / "up.yml"
    manifest.write_text(MANIFEST)
    ws = Workspace(tmp_path)
    run_target(load_manifest(manifest), target="teacher", workspace=ws, console=False, argv=["test"])
    reference = run_target(load_manifest(manifest), target="upcycle", workspace=ws, console=False, argv=["test"])
    assert reference.state == "completed"

    env = {**os.environ, "CARAMBA_WORKSPACE": str(tmp_path), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "caramba", "run", str(manifest), "--target", "upcycle",
                             "--run-id", "victim"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    run_dir = tmp_path / "runs" / "tiny_upcycle" / "upcycle" / "victim"
    wait_for_event(proc, run_dir / "events.jsonl",
                   lambda r: r["event"] == "progress" and r.get("block") == 1 and r["block_step"] >= 3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 130, proc.stderr.read().decode()[-2000:]
    events = read_jsonl(run_dir / "events.jsonl")
    ck = [e for e in events if e["event"] == "checkpoint"]
    assert len(ck) == 1 and ck[0]["block"] == 1 and 3 <= ck[0]["block_step"] < BLOCK_STEPS
    assert ck[0]["step"] == BLOCK_STEPS + ck[0]["block_step"]          # numbered by the global blockwise step
    state = torch.load(Path(ck[0]["path"]) / "state.pt", weights_only=False)
    saved = state["blockwise"]
    assert saved["block"] == 1 and saved["block_step"] == ck[0]["block_step"] and "block0_mse" in saved["finals"]
    assert saved["optimizer"]["state"] and "rng" in state and state["final_metrics"] is None
    assert not list((run_dir / "checkpoints" / "blockwise").glob(".step_*"))   # no temp folder left behind
    assert json.loads((run_dir / "run.json").read_text())["state"] == "cancelled"
    assert events[-1]["event"] == "target_finished" and events[-1]["state"] == "cancelled"

    old = os.environ.get("CARAMBA_WORKSPACE")
    os.environ["CARAMBA_WORKSPACE"] = str(tmp_path)
    try:
        assert main(["run", str(manifest), "--target", "upcycle", "--run-id", "victim", "--resume"]) == 0
    finally:
        os.environ.pop("CARAMBA_WORKSPACE") if old is None else os.environ.__setitem__("CARAMBA_WORKSPACE", old)
    starts = [e for e in read_jsonl(run_dir / "events.jsonl") if e["event"] == "run_started"]
    resumed_start = [e for e in starts if e.get("resumed")]
    assert resumed_start[0]["start_block"] == 1 and resumed_start[0]["start_block_step"] == saved["block_step"]

    want = json.loads((reference.run_dir / "results.json").read_text())
    got = json.loads((run_dir / "results.json").read_text())
    for run in ("blockwise", "global"):
        assert set(got["runs"][run]) == set(want["runs"][run])
        for key, value in want["runs"][run].items():
            assert got["runs"][run][key] == pytest.approx(value, abs=1e-6), f"{run}.{key}"
        ref_w, got_w = _final_weights(reference.run_dir, run), _final_weights(run_dir, run)
        assert set(ref_w) == set(got_w)
        for name, tensor in ref_w.items():
            assert torch.allclose(got_w[name], tensor, atol=1e-6, rtol=0), f"{run}: {name}"
    # one continuous blockwise curve: every global step once, equal to the uninterrupted one
    curve = lambda d: [(r["step"], r["loss"]) for r in read_jsonl(d / "metrics.jsonl")  # noqa: E731
                       if r["run"] == "blockwise" and r["split"] == "train"]
    got_curve, want_curve = curve(run_dir), curve(reference.run_dir)
    assert [s for s, _ in got_curve] == [s for s, _ in want_curve] == list(range(1, 2 * BLOCK_STEPS + 1))
    assert [v for _, v in got_curve] == pytest.approx([v for _, v in want_curve], abs=1e-6)
