"""Every shipped preset of the training area runs end to end through ``caramba run`` with
few steps (``--set`` overrides), and the MLP preset reaches its accuracy target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caramba.cli import main

MANIFESTS = Path(__file__).resolve().parents[1] / "manifests"


def _results(ws: Path, name: str) -> dict:
    (run_dir,) = [p for p in (ws / "runs" / name).glob("*/*") if (p / "results.json").exists()]
    return json.loads((run_dir / "results.json").read_text())


@pytest.mark.parametrize("preset,overrides", [
    ("standard_transformer", ["vars.steps=4", "vars.batch_size=4", "vars.block_size=32",
                              "targets[0].data.config.max_bytes=200000", "defaults.logging.eval_iters=2"]),
    ("llama_block", ["vars.steps=4", "vars.block_size=32", "defaults.logging.eval_iters=2"]),
])
def test_language_model_presets_run_a_few_steps(preset, overrides, tmp_path, monkeypatch):
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(tmp_path))
    args = ["run", str(MANIFESTS / f"{preset}.yml"), "--device", "cpu"]
    for o in overrides:
        args += ["--set", o]
    assert main(args) == 0
    res = _results(tmp_path, preset)
    metrics = res["runs"]["train"]
    assert metrics["steps"] == 4 and 0 < metrics["val_loss"] < 6.0 and res["primary"] == "val_loss"


def test_mlp_classifier_preset_reaches_95_percent(tmp_path, monkeypatch):
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(tmp_path))
    assert main(["run", str(MANIFESTS / "mlp_classifier.yml"), "--device", "cpu",
                 "--set", "vars.steps=200", "--set", "defaults.runtime.save_every=0"]) == 0
    res = _results(tmp_path, "mlp_classifier")
    assert res["primary"] == "val_accuracy" and res["runs"]["train"]["val_accuracy"] >= 0.95
