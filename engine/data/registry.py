"""The ``DATASETS`` registry: every ``data.ref`` a manifest may name.

A dataset component is a class registered here with::

    @DATASETS.register("dataset.tokens")
    class TokenFileDataset(DatasetComponent):
        Config = TokenFileConfig            # pydantic, extra="forbid"
        def build(self, ctx: DataContext) -> DataSplits: ...

The manifest pipeline calls ``DATASETS.get(ref).check_config(config)`` while validating,
and the runner calls ``DATASETS.get(ref)(config).build(ctx)`` when a run needs data.
"""

from __future__ import annotations

from caramba.engine.registry import Registry

DATASETS: Registry = Registry(
    "dataset",
    modules=(
        "caramba.engine.data.tokens",
        "caramba.engine.data.supervised",
        "caramba.engine.data.text",
        "caramba.engine.data.graph",
        "caramba.engine.data.graph_generators",
        "caramba.engine.data.diffusion",
    ),
)
