"""``RecurrentTopology``: sequential children fed segment by segment through their state.

    - type: RecurrentTopology
      segment: 64           # process long inputs 64 positions at a time
      layers: [...]         # causal layers: attention, SSM, RNN, norms, MLPs

The children run in sequence like ``StackedTopology`` and the decode state (``cache``:
KV caches, SSM states, RNN states) is passed through to every child. With ``segment``
set and no cache from the caller, the input is cut along time into segments and a fresh
``KVCache`` carries the state from one segment to the next (Transformer-XL / recurrent
memory style): for causal children the output equals the full-sequence output while
peak activation memory is bounded by the segment length. Non-causal children see only
their own segment plus the cached past, so use it with causal blocks.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from caramba.engine.layers.cache import KVCache
from caramba.engine.layers.registry import TOPOLOGIES
from caramba.engine.topology.base import Topology, TopologyConfig


@TOPOLOGIES.register("RecurrentTopology", aliases=("recurrent",))
class RecurrentTopology(Topology):
    """Children in sequence with state pass-through; optional segment-wise processing."""

    class Config(TopologyConfig):
        segment: int | None = Field(None, gt=0, description="positions per segment (None: whole input at once)")

    def _run(self, x: torch.Tensor, cache: Any) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, cache=cache)
        return x

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        seg = self.config.segment
        if cache is not None or seg is None or x.dim() < 3 or x.shape[1] <= seg:
            return self._run(x, cache)
        state = KVCache()
        outs = [self._run(x[:, s:s + seg], state) for s in range(0, x.shape[1], seg)]
        return torch.cat(outs, dim=1)
