"""The manifest pipeline: YAML → validated :class:`Manifest` (parse, vars, includes,
overrides, lowering, schema, component validation), with every problem located.

Public API (docs/internals.md, "Manifest")::

    from caramba.engine.manifest import load_manifest, Manifest, ExperimentTarget, \
        ProcessTarget, ComponentSpec, RunSpec, TrainConfig

See :mod:`caramba.engine.manifest.load` for the stages.
"""

from caramba.engine.manifest.load import load_manifest
from caramba.engine.manifest.schema import (
    ComponentSpec, Defaults, ExperimentTarget, Manifest, ProcessTarget, RunSpec,
)
from caramba.engine.manifest.schema_bench import BenchmarkSpec
from caramba.engine.manifest.schema_train import PeftConfig, TrainConfig
from caramba.engine.manifest.schema_verify import VerifySpec

__all__ = [
    "BenchmarkSpec", "ComponentSpec", "Defaults", "ExperimentTarget", "Manifest", "PeftConfig",
    "ProcessTarget", "RunSpec", "TrainConfig", "VerifySpec", "load_manifest",
]
