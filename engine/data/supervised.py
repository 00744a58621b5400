"""Supervised (x, y) datasets: ``dataset.npy_supervised`` and ``dataset.sklearn``.

Items are ``{"x": features (D,) float32, "y": label () int64 or target float32}``. The
validation split is a seeded random subset (``val_frac``): the same seed always gives the
same split. Features are standardised with the *training* split's mean and standard
deviation (``standardize: true``), so no validation statistics leak into training.

``dataset.sklearn`` loads scikit-learn's bundled toy sets (digits, iris, wine,
breast_cancer), which ship inside the package: nothing is downloaded.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.data.base import DataContext, DataError, DataSplits, DatasetComponent, split_indices
from caramba.engine.data.registry import DATASETS


class TensorPairs(torch.utils.data.Dataset):
    """Rows of ``x`` with their ``y``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


def supervised_splits(x: np.ndarray, y: np.ndarray, *, val_frac: float, seed: int, standardize: bool,
                      info: dict[str, Any]) -> DataSplits:
    """Seeded split, optional standardisation (train statistics), tensors out."""
    if x.shape[0] != y.shape[0]:
        raise DataError(f"x has {x.shape[0]} rows but y has {y.shape[0]}",
                        fix="x and y must have one row per example")
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32)).reshape(x.shape[0], -1)  # (N, D)
    is_class = np.issubdtype(y.dtype, np.integer)
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64 if is_class else np.float32))
    tr, va = split_indices(xt.shape[0], val_frac, seed)
    if standardize:
        mean = xt[tr].mean(0)
        std = xt[tr].std(0).clamp_min(1e-6)
        xt = (xt - mean) / std
    info = {**info, "n_features": int(xt.shape[1]), "n_train": int(tr.numel()), "n_val": int(va.numel())}
    if is_class:
        info["n_classes"] = int(yt.max().item()) + 1
    val = TensorPairs(xt[va], yt[va]) if va.numel() else None
    return DataSplits(TensorPairs(xt[tr], yt[tr]), val, info)


class NpySupervisedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x_path: str = Field(description=".npy of features, one row per example")
    y_path: str = Field(description=".npy of labels (integers: classification) or targets (floats: regression)")
    val_frac: float | None = Field(None, ge=0, lt=1, description="random validation fraction; default defaults.data.val_frac")
    standardize: bool = Field(False, description="scale features to zero mean / unit variance (train statistics)")


@DATASETS.register("dataset.npy_supervised")
class NpySupervisedDataset(DatasetComponent):
    """Features and labels from two ``.npy`` files."""

    Config = NpySupervisedConfig

    def build(self, ctx: DataContext) -> DataSplits:
        cfg: NpySupervisedConfig = self.config  # type: ignore[assignment]
        x = np.load(ctx.resolve_path(cfg.x_path, what="x_path"))
        y = np.load(ctx.resolve_path(cfg.y_path, what="y_path"))
        frac = cfg.val_frac if cfg.val_frac is not None else (ctx.val_frac or 0.0)
        return supervised_splits(x, y, val_frac=frac, seed=ctx.seed, standardize=cfg.standardize,
                                 info={"source": cfg.x_path})


class SklearnConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["digits", "iris", "wine", "breast_cancer"] = Field(description="a scikit-learn bundled dataset")
    val_frac: float | None = Field(None, ge=0, lt=1, description="random validation fraction; default defaults.data.val_frac, else 0.2")
    standardize: bool = Field(True, description="scale features to zero mean / unit variance (train statistics)")


@DATASETS.register("dataset.sklearn")
class SklearnDataset(DatasetComponent):
    """scikit-learn's bundled classification sets (no download)."""

    Config = SklearnConfig

    def build(self, ctx: DataContext) -> DataSplits:
        cfg: SklearnConfig = self.config  # type: ignore[assignment]
        from sklearn import datasets as skd

        loader = {"digits": skd.load_digits, "iris": skd.load_iris, "wine": skd.load_wine,
                  "breast_cancer": skd.load_breast_cancer}[cfg.name]
        bunch = loader()
        frac = cfg.val_frac if cfg.val_frac is not None else (ctx.val_frac if ctx.val_frac is not None else 0.2)
        return supervised_splits(bunch.data, bunch.target.astype(np.int64), val_frac=frac, seed=ctx.seed,
                                 standardize=cfg.standardize, info={"source": f"sklearn:{cfg.name}"})
