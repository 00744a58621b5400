"""Node-classification graphs: ``dataset.graph_npy`` and the split every graph dataset uses.

A graph dataset is one whole graph. Both splits hold the *same* graph (message passing
needs every node) and differ only in ``mask``, the nodes whose labels count::

    {"x": (N, F) float32, "adj": (N, N) float32, "y": (N,) int64, "mask": (N,) bool}

so each split has one item and ``train.batch_size`` must be 1 (batches are (1, N, …)).
The validation nodes are a seeded random ``val_frac`` of the nodes.

``dataset.graph_npy`` reads three ``.npy`` files (features, dense adjacency, labels);
``add_self_loops`` puts ones on the adjacency diagonal. Generators (stochastic block
model, Zachary's karate club) live in :mod:`caramba.engine.data.graph_generators`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.data.base import DataContext, DataError, DataSplits, DatasetComponent, split_indices
from caramba.engine.data.registry import DATASETS


class GraphItem(torch.utils.data.Dataset):
    """A one-item dataset: the whole graph with a node mask."""

    def __init__(self, item: dict[str, torch.Tensor]) -> None:
        self.item = item

    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if i != 0:
            raise IndexError(i)
        return self.item


def graph_splits(x: np.ndarray, adj: np.ndarray, y: np.ndarray, *, val_frac: float, seed: int,
                 add_self_loops: bool, info: dict[str, Any]) -> DataSplits:
    """Check shapes and build the train/val node masks over one graph."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    if adj.shape != (n, n):
        raise DataError(f"adjacency has shape {adj.shape}, expected ({n}, {n}) for {n} nodes",
                        fix="adj must be a dense square matrix with one row per node of x")
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"labels have shape {y.shape} and dtype {y.dtype}, expected ({n},) integers",
                        fix="labels must be one integer class per node")
    a = torch.as_tensor(np.asarray(adj, dtype=np.float32))
    if add_self_loops:
        a = a.clone()
        a.fill_diagonal_(1.0)
    tr, va = split_indices(n, val_frac, seed)
    base = {"x": torch.as_tensor(x), "adj": a, "y": torch.as_tensor(y.astype(np.int64))}

    def masked(idx: torch.Tensor) -> GraphItem:
        mask = torch.zeros(n, dtype=torch.bool)
        mask[idx] = True
        return GraphItem({**base, "mask": mask})

    info = {**info, "n_nodes": n, "n_features": int(x.shape[1]), "n_classes": int(y.max()) + 1,
            "n_edges": int((a > 0).sum().item()), "n_train": int(tr.numel()), "n_val": int(va.numel())}
    return DataSplits(masked(tr), masked(va) if va.numel() else None, info)


class GraphNpyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x_path: str = Field(description=".npy node features (N, F)")
    adj_path: str = Field(description=".npy dense adjacency (N, N); nonzero = edge")
    labels_path: str = Field(description=".npy integer labels (N,)")
    add_self_loops: bool = Field(False, description="set the adjacency diagonal to 1")
    val_frac: float = Field(0.3, gt=0, lt=1, description="fraction of nodes whose labels are held out")


@DATASETS.register("dataset.graph_npy")
class GraphNpyDataset(DatasetComponent):
    """One graph from three ``.npy`` files."""

    Config = GraphNpyConfig

    def build(self, ctx: DataContext) -> DataSplits:
        cfg: GraphNpyConfig = self.config  # type: ignore[assignment]
        x = np.load(ctx.resolve_path(cfg.x_path, what="x_path"))
        adj = np.load(ctx.resolve_path(cfg.adj_path, what="adj_path"))
        y = np.load(ctx.resolve_path(cfg.labels_path, what="labels_path"))
        return graph_splits(x, adj, y, val_frac=cfg.val_frac, seed=ctx.seed, add_self_loops=cfg.add_self_loops,
                            info={"source": cfg.x_path})
