"""Synthetic node-classification graphs (no downloads): SBM and Zachary's karate club.

* ``dataset.graph_sbm`` — a stochastic block model: ``n_nodes`` split evenly into
  ``n_blocks`` communities; an edge joins two nodes with probability ``p_in`` inside a
  community and ``p_out`` across. Features are a noisy one-hot of the community scaled by
  ``feature_signal`` plus N(0, 1) noise in ``n_features`` dims, so a node's own features
  are weak evidence and its neighbours' are what a GCN can add.
* ``dataset.karate_club`` — networkx's bundled 34-member karate club; the label is the
  club each member joined after the split (``Mr. Hi`` = 0, ``Officer`` = 1), features
  are one-hot node ids (``d_in: 34``).

Both yield the items described in :mod:`caramba.engine.data.graph`.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.data.base import DataContext, DataSplits, DatasetComponent
from caramba.engine.data.graph import graph_splits
from caramba.engine.data.registry import DATASETS


class SBMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_nodes: int = Field(120, ge=4, description="nodes in the graph")
    n_blocks: int = Field(3, ge=2, description="communities (= classes)")
    p_in: float = Field(0.15, gt=0, le=1, description="edge probability inside a community")
    p_out: float = Field(0.01, ge=0, le=1, description="edge probability across communities")
    n_features: int = Field(16, ge=1, description="feature dims (>= n_blocks to hold the signal)")
    feature_signal: float = Field(0.6, ge=0, description="scale of the community signal in the features")
    val_frac: float = Field(0.5, gt=0, lt=1, description="fraction of nodes held out for validation")
    seed: int | None = Field(None, description="graph seed; default the run seed")


@DATASETS.register("dataset.graph_sbm")
class SBMDataset(DatasetComponent):
    """A stochastic-block-model graph with weakly informative features."""

    Config = SBMConfig

    @classmethod
    def semantic_problems(cls, cfg: SBMConfig) -> list:
        from caramba.engine.errors import ConfigProblem

        if cfg.n_features < cfg.n_blocks:
            return [ConfigProblem(("n_features",), f"n_features ({cfg.n_features}) < n_blocks ({cfg.n_blocks})",
                                  expected=f">= {cfg.n_blocks}", found=str(cfg.n_features),
                                  fix="give at least one feature per community")]
        return []

    def build(self, ctx: DataContext) -> DataSplits:
        cfg: SBMConfig = self.config  # type: ignore[assignment]
        rng = np.random.default_rng(cfg.seed if cfg.seed is not None else ctx.seed)
        y = np.arange(cfg.n_nodes) % cfg.n_blocks
        rng.shuffle(y)
        same = y[:, None] == y[None, :]
        prob = np.where(same, cfg.p_in, cfg.p_out)
        upper = np.triu(rng.random((cfg.n_nodes, cfg.n_nodes)) < prob, k=1)
        adj = (upper | upper.T).astype(np.float32)
        x = rng.standard_normal((cfg.n_nodes, cfg.n_features)).astype(np.float32)
        x[np.arange(cfg.n_nodes), y] += cfg.feature_signal
        return graph_splits(x, adj, y.astype(np.int64), val_frac=cfg.val_frac, seed=ctx.seed, add_self_loops=False,
                            info={"source": "sbm"})


class KarateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    val_frac: float = Field(0.5, gt=0, lt=1, description="fraction of members held out for validation")


@DATASETS.register("dataset.karate_club")
class KarateClubDataset(DatasetComponent):
    """Zachary's karate club from networkx (bundled, no download)."""

    Config = KarateConfig

    def build(self, ctx: DataContext) -> DataSplits:
        import networkx as nx

        cfg: KarateConfig = self.config  # type: ignore[assignment]
        g = nx.karate_club_graph()
        n = g.number_of_nodes()
        adj = nx.to_numpy_array(g, nodelist=range(n), weight=None).astype(np.float32)
        y = np.array([0 if g.nodes[i]["club"] == "Mr. Hi" else 1 for i in range(n)], dtype=np.int64)
        x = np.eye(n, dtype=np.float32)
        return graph_splits(x, adj, y, val_frac=cfg.val_frac, seed=ctx.seed, add_self_loops=False,
                            info={"source": "networkx:karate_club"})
