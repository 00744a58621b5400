"""``StackedTopology`` and ``SequentialTopology``: children applied in order.

``StackedTopology`` is the conventional outer container of a model (blocks, final norm,
head); ``SequentialTopology`` the same composition used inside blocks. They behave
identically and exist as two names because manifests use both.
"""

from __future__ import annotations

from caramba.engine.layers.registry import TOPOLOGIES
from caramba.engine.topology.base import Topology, TopologyConfig


@TOPOLOGIES.register("StackedTopology", aliases=("stacked",))
class StackedTopology(Topology):
    """``x → layers[0] → layers[1] → …``."""

    class Config(TopologyConfig):
        pass


@TOPOLOGIES.register("SequentialTopology", aliases=("sequential",))
class SequentialTopology(Topology):
    """``x → layers[0] → layers[1] → …`` (same as StackedTopology)."""

    class Config(TopologyConfig):
        pass
