"""The manifest's own sections, as catalog entries: where ``train.compile_mode`` or
``defaults.runtime.save_every`` is documented.

Components (layers, datasets, trainers, …) come from their registries
(:mod:`caramba.engine.catalog`); the blocks around them — a run, its ``train`` settings, the
manifest-wide ``defaults``, benchmark and verify entries — are pydantic models of
:mod:`caramba.engine.manifest`. Each is listed here under the dotted path a manifest writes
it at (``runs[].train`` is ``train``; a benchmark entry's ``config`` for ``type: latency`` is
``benchmarks.latency``), so ``caramba layers train`` and the ``layer_catalog`` tool show its
fields, defaults and descriptions straight from the schema.
"""

from __future__ import annotations

from pydantic import BaseModel

FAMILY = "manifest section"


def sections() -> dict[str, type[BaseModel]]:
    """Dotted section name → the pydantic model that validates it."""
    from caramba.engine.manifest import schema, schema_bench, schema_train, schema_verify

    out: dict[str, type[BaseModel]] = {
        "manifest": schema.Manifest,
        "defaults": schema.Defaults,
        "defaults.data": schema.DataDefaults,
        "defaults.logging": schema.LoggingDefaults,
        "defaults.runtime": schema.RuntimeDefaults,
        "target": schema.ExperimentTarget,
        "process_target": schema.ProcessTarget,
        "run": schema.RunSpec,
        "train": schema_train.TrainConfig,
        "train.peft": schema_train.PeftConfig,
        "benchmarks": schema_bench.BenchmarkSpec,
    }
    for model in (schema_bench.PerplexityBench, schema_bench.LatencyBench, schema_bench.MemoryBench,
                  schema_bench.BehaviorBench, schema_bench.ContextBench):
        out[f"benchmarks.{model.model_fields['type'].annotation.__args__[0]}"] = model
    for model in (schema_verify.CompareVerify, schema_verify.FidelityVerify, schema_verify.EvalVerify,
                  schema_verify.KVCacheVerify):
        out[f"verify.{model.model_fields['type'].annotation.__args__[0]}"] = model
    return out
