"""A dataset input file that does not exist stops ``caramba run`` before any run directory
is made, with the manifest location of the field (engine/data/preflight.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from caramba.engine.data.preflight import input_path_fields

MANIFEST = """version: 2
name: pre
targets:
  - type: experiment
    name: t
    task: task.classification
    data:
      ref: dataset.npy_supervised
      config: {{x_path: {x}, y_path: {y}}}
    system:
      ref: system.mlp_classifier
      config: {{d_in: 4, hidden: [8], n_classes: 2}}
    objective: objective.classification_ce
    trainer: trainer.standard
    runs:
      - id: train
        steps: 2
        train: {{batch_size: 4, device: cpu}}
"""


def _run(folder: Path, x: str, y: str) -> subprocess.CompletedProcess:
    (folder / "m.yml").write_text(MANIFEST.format(x=x, y=y))
    exe = Path(sys.executable).parent / "caramba"
    return subprocess.run([str(exe), "run", "m.yml"], cwd=folder, capture_output=True, text=True, timeout=120)


def test_missing_input_files_are_located_errors_and_leave_no_run(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32))
    res = _run(tmp_path, "x.npy", "labels/y.npy")
    assert res.returncode == 2, res.stderr
    assert "m.yml:9:" in res.stderr and "targets[0].data.config.y_path" in res.stderr
    assert "'labels/y.npy' not found" in res.stderr and "x_path" not in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "runs").exists()
    np.save(tmp_path / "y.npy", (np.arange(32) % 2).astype(np.int64))
    ok = _run(tmp_path, "x.npy", "y.npy")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert (tmp_path / "runs").is_dir()


def test_only_path_fields_with_a_value_are_input_files() -> None:
    config = {"path": "a.npy", "x_path": "x.npy", "y_path": "", "tokenizer": {"path": "t.json"}, "root": "stdlib",
              "labels_path": None, "block_size": 16}
    assert input_path_fields(config) == ["path", "x_path"]
