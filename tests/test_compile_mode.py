"""``train.compile_mode``: the torch.compile mode of ``compile_model: true``.

``reduce-overhead`` replays each training step as a CUDA graph (Inductor's cudagraph trees),
which is what a small model whose step is host-bound needs; the trainer marks a new replay
per micro-batch. On CPU the mode is validated like every field; the graph replay itself is
checked on the GPU machine (same losses as eager, no step skipped out of the graph).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from caramba.engine.errors import ManifestError
from caramba.engine.manifest import load_manifest
from caramba.tests.support.training import write_tiny_lm


def _tiny(folder: Path, train_extra: str, device: str = "cpu", steps: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = write_tiny_lm(folder, steps=steps, save_every=0, eval_every=0)
    path.write_text(path.read_text().replace("device: cpu", f"device: {device}\n          {train_extra}"))
    return path


def test_compile_mode_without_compile_model_is_a_located_error(tmp_path: Path) -> None:
    path = _tiny(tmp_path, "compile_mode: reduce-overhead")
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    text = str(err.value)
    assert "train.compile_mode" in text and "compile_model is false" in text
    assert "set compile_model: true" in text


def test_unknown_compile_mode_lists_the_modes(tmp_path: Path) -> None:
    path = _tiny(tmp_path, "compile_model: true\n          compile_mode: fastest")
    with pytest.raises(ManifestError) as err:
        load_manifest(path)
    assert "compile_mode" in str(err.value) and "reduce-overhead" in str(err.value)


def _losses(folder: Path, extra: str) -> list[float]:
    from caramba.engine.runner import run_target
    from caramba.workspace import Workspace

    events: list[dict] = []
    run_target(load_manifest(_tiny(folder, extra, device="cuda", steps=8)), workspace=Workspace(folder),
               console=False, on_event=events.append, argv=[])
    return [e["loss"] for e in events if e["event"] == "progress"]


@pytest.mark.gpu
def test_reduce_overhead_trains_like_eager_on_cuda_graphs(tmp_path: Path) -> None:
    from torch._dynamo.utils import counters

    eager = _losses(tmp_path / "eager", "compile_model: false")
    torch._dynamo.reset()
    counters.clear()
    graphed = _losses(tmp_path / "graphed", "compile_model: true\n          compile_mode: reduce-overhead")
    assert len(graphed) == len(eager) >= 2
    assert graphed == pytest.approx(eager, rel=2e-3)
    assert counters["inductor"].get("cudagraph_skips", 0) == 0, dict(counters["inductor"])
    assert counters["stats"]["unique_graphs"] >= 1
