"""``bench/engine_e2e.py`` turns the CPU preset into GPT-2-small only through ``--set``
overrides. Its GPU run cannot happen in CI, so this checks on CPU that every flag
combination still yields a valid manifest, that the model has the size the script's MFU
formula assumes, and that ``--compile MODE`` reaches ``train.compile_mode``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from caramba.engine.manifest import load_manifest
from caramba.engine.plan import make_plan

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("engine_e2e", ROOT / "bench" / "engine_e2e.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("flags", [[], ["--compile"], ["--compile", "reduce-overhead", "--batch", "16"],
                                   ["--profile", "--steps", "60", "--warmup", "20"]])
def test_bench_overrides_give_the_gpt2_small_it_reports(flags: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench()
    captured = {}
    monkeypatch.setattr(bench, "child", lambda a: captured.setdefault("args", a))
    monkeypatch.setattr("sys.argv", ["engine_e2e.py", "--child", *flags])
    bench.main()
    a = captured["args"]
    manifest = load_manifest(ROOT / "manifests" / "standard_transformer.yml", overrides=bench.sets(a))
    run = manifest.targets[0].runs[0]
    assert (run.train.device, run.train.use_amp, run.train.amp_dtype) == ("cuda", True, "bfloat16")
    assert run.train.compile_model == bool(a.compile)
    assert run.train.compile_mode == (a.compile or "default")
    assert run.train.batch_size == a.batch and run.steps == a.steps
    gpt2_small = 12 * (4 * 768**2 + 3 * 768 * 2048 + 2 * 768) + 2 * 32768 * 768 + 768  # blocks, embed + head, final norm
    assert make_plan(manifest).targets[0].params == bench.n_params(a) == gpt2_small
