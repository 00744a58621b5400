"""Tiny training manifests for runner, resume and CLI tests (seconds on a CPU).

:func:`write_tiny_lm` writes a one-block GPT on a ``dataset.tokens`` file holding a noisy
repeating token pattern, which the model learns within a few dozen steps (the loss
visibly falls) — unlike random tokens, which carry no signal.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

TINY_LM = """\
version: 2
name: tiny_train
defaults:
  data: {{val_frac: 0.1}}
  logging: {{instrument: plain, eval_iters: 2}}
  runtime: {{save_every: {save_every}}}
targets:
  - type: experiment
    name: lm
    backend: torch
    task: task.language_modeling
    data:
      ref: dataset.tokens
      config: {{path: tokens.npy, block_size: 16}}
    system:
      ref: system.language_model
      config:
        model:
          type: TransformerModel
          embedder: {{type: token, vocab_size: 32, d_model: 16}}
          topology:
            type: StackedTopology
            layers:
              - type: ResidualTopology
                layers:
                  - {{type: RMSNormLayer, d_model: 16}}
                  - {{type: AttentionLayer, d_model: 16, n_heads: 2, mode: standard}}
              - type: ResidualTopology
                layers:
                  - {{type: RMSNormLayer, d_model: 16}}
                  - {{type: SwiGLULayer, d_model: 16, d_ff: 32}}
              - {{type: RMSNormLayer, d_model: 16}}
              - {{type: LinearLayer, d_in: 16, d_out: 32}}
    objective: objective.next_token_ce
    trainer: trainer.standard
    runs:
      - id: train
        seed: 7
        steps: {steps}
        train:
          batch_size: 4
          lr: 0.01
          scheduler: cosine
          warmup_steps: 3
          grad_clip_norm: 1.0
          eval_every: {eval_every}
          log_every: 1
          device: cpu
"""


def write_tiny_lm(folder: Path, *, steps: int = 12, save_every: int = 4, eval_every: int = 4) -> Path:
    """Write ``tiny.yml`` and its ``tokens.npy`` (a noisy repeating pattern) into ``folder``."""
    rng = np.random.default_rng(0)
    pattern = np.tile(np.arange(32, dtype=np.uint16), 200)
    noise = rng.integers(0, 32, size=pattern.size).astype(np.uint16)
    tokens = np.where(rng.random(pattern.size) < 0.1, noise, pattern)
    np.save(folder / "tokens.npy", tokens)
    path = folder / "tiny.yml"
    path.write_text(TINY_LM.format(steps=steps, save_every=save_every, eval_every=eval_every))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_losses(run_dir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_jsonl(run_dir / "metrics.jsonl") if r["split"] == "train"]


def wait_for_event(proc: subprocess.Popen, events: Path, predicate: Callable[[dict], bool],
                   timeout: float = 240) -> dict:
    """Poll a run's ``events.jsonl`` until a row satisfies ``predicate``; fail (with the
    process's stderr tail) if the process exits first, and kill it on timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for row in read_jsonl(events) if events.exists() else []:
            if predicate(row):
                return row
        if proc.poll() is not None:
            raise AssertionError(f"process exited early ({proc.returncode}): {proc.stderr.read().decode()[-3000:]}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("timed out waiting for the run")
