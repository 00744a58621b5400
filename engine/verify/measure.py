"""Shared measurements for gates and benchmarks: token NLL over batches, captured
attention outputs, batches of a split.

Everything runs under ``torch.no_grad()`` with the model in eval mode (restored after).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from caramba.engine.data.base import DataSplits
from caramba.engine.data.loader import eval_batches
from caramba.engine.errors import CarambaError
from caramba.engine.infer.cache_set import attention_layers
from caramba.engine.infer.generate import lm_logits


@contextmanager
def evaluating(*models: nn.Module) -> Iterator[None]:
    modes = [m.training for m in models]
    for m in models:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(models, modes):
            m.train(mode)


def split_dataset(data: DataSplits, split: str) -> tuple[Any, str]:
    """The dataset of ``split`` (``auto``: val when present, else train) and its name."""
    if split in ("auto", "val") and data.val is not None:
        return data.val, "val"
    if split == "val":
        raise CarambaError("the verification asks for split: val but the data has no validation split",
                           fix="set defaults.data.val_frac > 0, or use split: auto | train")
    return data.train, "train"


def batches(dataset: Any, batch_size: int, n: int, device: torch.device | str) -> list[dict[str, torch.Tensor]]:
    out = [{k: v.to(device) for k, v in b.items()} for b in eval_batches(dataset, batch_size, n)]
    if not out:
        raise CarambaError("no batches to evaluate: the dataset is empty", fix="use more data or a smaller block_size")
    if "input_ids" not in out[0] or "target_ids" not in out[0]:
        raise CarambaError(f"token batches need input_ids and target_ids, got {sorted(out[0])}",
                           fix="verify/benchmark language models on a token dataset")
    return out


def mean_nll(model: nn.Module, data: list[dict[str, torch.Tensor]]) -> dict[str, float]:
    """Token-weighted mean next-token NLL (nats) and perplexity over ``data``."""
    total, count = 0.0, 0
    with evaluating(model):
        for b in data:
            logits = lm_logits(model, b["input_ids"]).float()
            t = b["target_ids"]
            mask = t != -100
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1),
                                                    ignore_index=-100, reduction="sum")
            total += float(nll)
            count += int(mask.sum())
    mean = total / max(count, 1)
    return {"nll": mean, "ppl": math.exp(min(mean, 50.0)), "tokens": float(count)}


@contextmanager
def capture_attention(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect each attention layer's output (forward order) while the block runs."""
    outs: list[torch.Tensor] = []
    hooks = [layer.register_forward_hook(lambda _m, _i, o: outs.append(o.detach()))
             for layer in attention_layers(model)]
    try:
        yield outs
    finally:
        for h in hooks:
            h.remove()
