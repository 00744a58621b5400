"""Vector data for diffusion: ``dataset.diffusion_vector`` and 2-D generators.

Items are ``{"x": (D,) float32, "t": () int64}`` (plus ``"y"`` class labels when the
source has them). ``t`` is the diffusion timestep the denoiser trains on: drawn fresh
on every training read from an RNG the batch reader seeds per read from (seed, epoch,
position) — so runs are reproducible and resumable, with or without data-loading worker
processes (:mod:`caramba.engine.data.loader`) — and fixed per item in the validation split
so validation losses are comparable between evaluations.

* ``dataset.diffusion_vector`` — rows of an ``.npy`` file (``x_path``, (N, D)).
* ``dataset.gaussian_mixture_2d`` — ``n_components`` isotropic Gaussians (std ``std``)
  evenly spaced on a circle of ``radius``; ``y`` = component.
* ``dataset.swiss_roll_2d`` — scikit-learn's swiss roll projected to 2-D, scaled to
  unit-ish range.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.data.base import DataContext, DataError, DataSplits, DatasetComponent, split_indices
from caramba.engine.data.registry import DATASETS


class NoisedVectors(torch.utils.data.Dataset):
    """Vectors with a diffusion timestep per read (random) or per item (fixed)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None, timesteps: int, fixed_seed: int | None) -> None:
        self.x, self.y, self.timesteps = x, y, timesteps
        self.draws_random = fixed_seed is None  # the batch reader seeds each read (engine/data/loader.py)
        self.fixed = None
        if fixed_seed is not None:
            g = torch.Generator().manual_seed(fixed_seed)
            self.fixed = torch.randint(0, timesteps, (len(x),), generator=g)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        t = self.fixed[i] if self.fixed is not None else torch.randint(0, self.timesteps, ())
        item = {"x": self.x[i], "t": t}
        if self.y is not None:
            item["y"] = self.y[i]
        return item


def vector_splits(x: np.ndarray, y: np.ndarray | None, *, timesteps: int, val_frac: float, seed: int,
                  info: dict) -> DataSplits:
    if x.ndim != 2:
        raise DataError(f"diffusion data must be (N, D) vectors, got shape {x.shape}",
                        fix="save one vector per row (reshape images to (N, D) first)")
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    yt = torch.as_tensor(np.asarray(y, dtype=np.int64)) if y is not None else None
    tr, va = split_indices(len(xt), val_frac, seed)
    pick = (lambda idx: yt[idx]) if yt is not None else (lambda idx: None)
    train = NoisedVectors(xt[tr], pick(tr), timesteps, None)
    val = NoisedVectors(xt[va], pick(va), timesteps, seed) if va.numel() else None
    return DataSplits(train, val, {**info, "n_features": int(xt.shape[1]), "n_train": int(tr.numel()),
                                   "n_val": int(va.numel()), "timesteps": timesteps})


class VectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x_path: str = Field(description=".npy of vectors (N, D)")
    timesteps: int = Field(1000, ge=2, description="diffusion steps T; must equal the system's schedule.timesteps")
    val_frac: float = Field(0.1, ge=0, lt=1, description="held-out fraction")


@DATASETS.register("dataset.diffusion_vector")
class DiffusionVectorDataset(DatasetComponent):
    """Vectors from an ``.npy`` file, with diffusion timesteps."""

    Config = VectorConfig

    def build(self, ctx: DataContext) -> DataSplits:
        cfg: VectorConfig = self.config  # type: ignore[assignment]
        x = np.load(ctx.resolve_path(cfg.x_path, what="x_path"))
        return vector_splits(x, None, timesteps=cfg.timesteps, val_frac=cfg.val_frac, seed=ctx.seed,
                             info={"source": cfg.x_path})


class MixtureConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_samples: int = Field(4000, ge=10, description="points drawn")
    n_components: int = Field(8, ge=1, description="Gaussians on the circle")
    radius: float = Field(2.0, gt=0, description="circle radius")
    std: float = Field(0.1, gt=0, description="component standard deviation")
    timesteps: int = Field(1000, ge=2, description="diffusion steps T (= the system's schedule.timesteps)")
    val_frac: float = Field(0.1, ge=0, lt=1, description="held-out fraction")


@DATASETS.register("dataset.gaussian_mixture_2d")
class GaussianMixture2D(DatasetComponent):
    """Points from a ring of 2-D Gaussians; labels are the components."""

    Config = MixtureConfig

    def build(self, ctx: DataContext) -> DataSplits:
        cfg: MixtureConfig = self.config  # type: ignore[assignment]
        rng = np.random.default_rng(ctx.seed)
        y = rng.integers(0, cfg.n_components, cfg.n_samples)
        angle = 2 * math.pi * y / cfg.n_components
        centers = np.stack([np.cos(angle), np.sin(angle)], 1) * cfg.radius
        x = centers + rng.standard_normal((cfg.n_samples, 2)) * cfg.std
        return vector_splits(x, y, timesteps=cfg.timesteps, val_frac=cfg.val_frac, seed=ctx.seed,
                             info={"source": "gaussian_mixture_2d", "n_classes": cfg.n_components})


class SwissRollConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_samples: int = Field(4000, ge=10, description="points drawn")
    noise: float = Field(0.3, ge=0, description="scikit-learn swiss-roll noise")
    timesteps: int = Field(1000, ge=2, description="diffusion steps T (= the system's schedule.timesteps)")
    val_frac: float = Field(0.1, ge=0, lt=1, description="held-out fraction")


@DATASETS.register("dataset.swiss_roll_2d")
class SwissRoll2D(DatasetComponent):
    """The 2-D swiss roll (x, z of scikit-learn's 3-D roll, divided by 5)."""

    Config = SwissRollConfig

    def build(self, ctx: DataContext) -> DataSplits:
        from sklearn.datasets import make_swiss_roll

        cfg: SwissRollConfig = self.config  # type: ignore[assignment]
        pts, _ = make_swiss_roll(cfg.n_samples, noise=cfg.noise, random_state=ctx.seed)
        x = pts[:, [0, 2]] / 5.0
        return vector_splits(x, None, timesteps=cfg.timesteps, val_frac=cfg.val_frac, seed=ctx.seed,
                             info={"source": "swiss_roll_2d"})
