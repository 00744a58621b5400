"""Token-stream datasets for language modelling: ``dataset.tokens`` and
``dataset.random_tokens``.

A token stream is one long 1-D array of token ids. Items are windows of ``block_size``
tokens: ``input_ids = tokens[s : s+T]`` and ``target_ids = tokens[s+1 : s+T+1]`` (next-token
targets). The split is contiguous — the last ``val_frac`` of the stream is validation — so
no validation token is ever seen in training. Training windows start at every offset;
validation windows are non-overlapping, so an evaluation covers distinct text.

``.npy`` files are memory-mapped (``np.load(mmap_mode="r")``); ``.bin`` files are raw
arrays read with ``np.memmap`` and ``dtype`` (nanoGPT writes ``uint16``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.data.base import DataContext, DataError, DataSplits, DatasetComponent
from caramba.engine.data.registry import DATASETS
from caramba.engine.errors import ConfigProblem


class TokenWindows(torch.utils.data.Dataset):
    """Windows of ``block_size`` tokens starting at ``starts`` in ``tokens``."""

    def __init__(self, tokens: np.ndarray | torch.Tensor, block_size: int, starts: torch.Tensor) -> None:
        self.tokens, self.block_size, self.starts = tokens, block_size, starts
        self._array = tokens.numpy() if isinstance(tokens, torch.Tensor) else tokens  # numpy view, no copy
        self._starts = starts.numpy()
        self._offsets = np.arange(block_size + 1)

    def __len__(self) -> int:
        return int(self.starts.numel())

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = int(self._starts[i])
        chunk = torch.as_tensor(np.asarray(self._array[s: s + self.block_size + 1], dtype=np.int64))
        return {"input_ids": chunk[:-1], "target_ids": chunk[1:]}  # (T,), (T,)

    def get_batch(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The stacked items ``indices`` in one gather (what :func:`~caramba.engine.data.loader.fetch` uses)."""
        rows = self._starts[np.asarray(indices, dtype=np.int64)][:, None] + self._offsets  # (B, T+1)
        chunk = torch.from_numpy(np.asarray(self._array[rows], dtype=np.int64))
        return {"input_ids": chunk[:, :-1].contiguous(), "target_ids": chunk[:, 1:].contiguous()}  # (B, T) each


def window_splits(tokens: np.ndarray | torch.Tensor, block_size: int, val_frac: float,
                  info: dict[str, Any]) -> DataSplits:
    """Split a token stream contiguously and cut both parts into windows."""
    n = len(tokens)
    n_val = int(n * val_frac)
    n_train = n - n_val
    if n_train < block_size + 1:
        raise DataError(f"the token stream has {n} tokens; training needs at least block_size+1 = "
                        f"{block_size + 1} outside the validation part ({n_val} tokens)",
                        fix="use more data, a smaller block_size, or a smaller val_frac")
    train = TokenWindows(tokens, block_size, torch.arange(0, n_train - block_size))
    val = None
    if n_val >= block_size + 1:
        starts = torch.arange(n_train, n - block_size, block_size)
        val = TokenWindows(tokens, block_size, starts)
    elif val_frac > 0:
        raise DataError(f"val_frac={val_frac} leaves {n_val} validation tokens, fewer than block_size+1 = "
                        f"{block_size + 1}", fix="raise val_frac, lower block_size, or set val_frac: 0")
    return DataSplits(train, val, {**info, "n_tokens": n, "n_train_tokens": n_train, "block_size": block_size})


def block_size_of(cfg_block: int | None, ctx: DataContext) -> int:
    block = cfg_block or ctx.block_size
    if not block:
        raise DataError("no block_size for a token dataset",
                        fix="set data.config.block_size or runs[].train.block_size")
    return int(block)


def val_frac_of(cfg_frac: float | None, ctx: DataContext) -> float:
    if cfg_frac is not None:
        return cfg_frac
    return ctx.val_frac if ctx.val_frac is not None else 0.0


class TokensConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="a 1-D .npy or .bin file of token ids (relative: to the manifest, then the workspace)")
    block_size: int | None = Field(None, gt=0, description="window length; default runs[].train.block_size")
    val_frac: float | None = Field(None, ge=0, lt=1, description="last fraction of the stream kept for validation; default defaults.data.val_frac")
    dtype: Literal["uint16", "uint32", "int32", "int64"] = Field("uint16", description="element type of a raw .bin file")
    vocab_size: int | None = Field(None, gt=0, description="vocabulary size, if known (checked against the model)")


@DATASETS.register("dataset.tokens")
class TokenFileDataset(DatasetComponent):
    """A memory-mapped 1-D token file (``.npy`` or raw ``.bin``)."""

    Config = TokensConfig

    @classmethod
    def semantic_problems(cls, cfg: TokensConfig) -> list[ConfigProblem]:
        if Path(cfg.path).suffix not in (".npy", ".bin"):
            return [ConfigProblem(("path",), f"unsupported token file '{cfg.path}'", expected="a .npy or .bin file",
                                  fix="save the token ids with numpy.save(...) as .npy, or as a raw .bin array")]
        return []

    def build(self, ctx: DataContext) -> DataSplits:
        cfg: TokensConfig = self.config  # type: ignore[assignment]
        path = ctx.resolve_path(cfg.path, what="token file")
        if path.suffix == ".npy":
            try:
                tokens = np.load(path, mmap_mode="r")
            except ValueError as e:
                raise DataError(f"cannot read token file {path}: {e}",
                                fix="write it with numpy.save(path, array_of_token_ids)") from None
        else:
            tokens = np.memmap(path, dtype=np.dtype(cfg.dtype), mode="r")
        if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
            raise DataError(f"token file {path} holds a {tokens.dtype} array of shape {tokens.shape}",
                            fix="token files must be 1-D integer arrays (flatten and cast before saving)")
        info: dict[str, Any] = {"source": str(path)}
        if cfg.vocab_size:
            info["vocab_size"] = cfg.vocab_size
        return window_splits(tokens, block_size_of(cfg.block_size, ctx), val_frac_of(cfg.val_frac, ctx), info)


class RandomTokensConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vocab_size: int = Field(gt=1, description="token ids are drawn uniformly from [0, vocab_size)")
    n_tokens: int = Field(65536, gt=1, description="length of the generated stream")
    block_size: int | None = Field(None, gt=0, description="window length; default runs[].train.block_size")
    val_frac: float | None = Field(None, ge=0, lt=1, description="last fraction kept for validation")
    seed: int | None = Field(None, description="generator seed; default the run's seed")


@DATASETS.register("dataset.random_tokens")
class RandomTokensDataset(DatasetComponent):
    """Uniform random tokens: for smoke tests and throughput benchmarks (nothing to learn)."""

    Config = RandomTokensConfig

    def build(self, ctx: DataContext) -> DataSplits:
        cfg: RandomTokensConfig = self.config  # type: ignore[assignment]
        g = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else ctx.seed)
        tokens = torch.randint(0, cfg.vocab_size, (cfg.n_tokens,), generator=g, dtype=torch.int64).numpy()
        return window_splits(tokens, block_size_of(cfg.block_size, ctx), val_frac_of(cfg.val_frac, ctx),
                             {"vocab_size": cfg.vocab_size, "source": "random"})
