"""The closed registries of model-building blocks.

One module defines all five families so that a manifest name resolves in exactly one
place::

    LAYERS        RMSNormLayer, AttentionLayer, SwiGLULayer, …   (engine/layers/*.py)
    TOPOLOGIES    StackedTopology, ResidualTopology, …          (engine/topology/*.py)
    MODELS        TransformerModel                              (engine/model/*.py)
    EMBEDDERS     TokenEmbedder (``type: token``)               (engine/model/embedders.py)
    INITIALIZERS  GPT2Initializer                               (engine/model/init.py)

Each registry lists the modules whose import registers its members; they load lazily on
first lookup, so importing this module is cheap. Adding a layer is one file with one
decorated class, plus its module name in the tuple below.

Aliases (``attention`` → ``AttentionLayer``) must be unique across LAYERS, TOPOLOGIES,
MODELS and EMBEDDERS because the manifest lowering canonicalises ``type:`` values without
knowing which family a node belongs to; :func:`check_unique_aliases` enforces it.
"""

from __future__ import annotations

from typing import Any

from caramba.engine.registry import Registry, UnknownComponent

LAYERS: Registry[Any] = Registry(
    "layer type",
    modules=(
        "caramba.engine.layers.linear",
        "caramba.engine.layers.dropout",
        "caramba.engine.layers.norms",
        "caramba.engine.layers.attention",
        "caramba.engine.layers.swiglu",
        "caramba.engine.layers.glu",
        "caramba.engine.layers.dense",
        # issue 3's library (one file per block)
        "caramba.engine.layers.attention_dba",
        "caramba.engine.layers.moe",
        "caramba.engine.layers.ssm",
        "caramba.engine.layers.lora",
        "caramba.engine.layers.torch_op",
        "caramba.engine.layers.graph_conv",
        "caramba.engine.layers.diffusion",
        "caramba.engine.layers.patch_embed",
        "caramba.engine.layers.conv2d",
        "caramba.engine.layers.rnn",
        "caramba.engine.layers.op_graph",
    ),
)
TOPOLOGIES: Registry[Any] = Registry(
    "topology type",
    modules=(
        "caramba.engine.topology.stacked",
        "caramba.engine.topology.residual",
        "caramba.engine.topology.nested",
        "caramba.engine.topology.parallel",
        "caramba.engine.topology.branching",
        "caramba.engine.topology.graph",
        "caramba.engine.topology.cyclic",
        "caramba.engine.topology.recurrent",
    ),
)
MODELS: Registry[Any] = Registry("model type", modules=("caramba.engine.model.transformer", "caramba.engine.model.gpt",
                                                        "caramba.engine.model.vit", "caramba.engine.model.mlp"))
EMBEDDERS: Registry[Any] = Registry("embedder type", modules=("caramba.engine.model.embedders",))
INITIALIZERS: Registry[Any] = Registry("initializer", modules=("caramba.engine.model.init",))

#: the families whose ``type:`` aliases share one namespace in manifests.
NODE_FAMILIES: tuple[Registry[Any], ...] = (LAYERS, TOPOLOGIES, MODELS, EMBEDDERS)


def check_unique_aliases() -> None:
    """Raise ``RuntimeError`` if two families claim the same name or alias."""
    seen: dict[str, str] = {}
    for reg in NODE_FAMILIES:
        for name in [*reg.names(), *reg.aliases()]:
            if name in seen and seen[name] != reg.family:
                raise RuntimeError(f"'{name}' is registered as both a {seen[name]} and a {reg.family}")
            seen[name] = reg.family


def node_class(name: str) -> tuple[str, Any]:
    """Resolve a ``type:`` inside a topology: a layer or a topology.

    Returns ``(canonical name, class)``; raises :class:`UnknownComponent` listing every
    layer and topology (with a did-you-mean) when neither family knows ``name``.
    """
    for reg in (LAYERS, TOPOLOGIES):
        if name in reg:
            canonical = reg.canonical(name)
            return canonical, reg.get(canonical)
    known = [*LAYERS.names(), *TOPOLOGIES.names(), *LAYERS.aliases(), *TOPOLOGIES.aliases()]
    raise UnknownComponent("layer type", name, known)
