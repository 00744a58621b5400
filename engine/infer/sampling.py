"""From next-token logits to a token: repetition penalty, temperature, top-k, top-p.

The order is the usual one (Hugging Face's): repetition penalty on the raw logits, then
temperature, then top-k, then top-p (nucleus), then sampling. ``temperature == 0`` means
greedy: :func:`next_token_distribution` returns the one-hot of the argmax, so greedy
decoding and speculative decoding share one code path with no special case.

All functions work on a batch ``(B, V)``.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field


class SamplingConfig(BaseModel):
    """How the next token is chosen."""

    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(0.0, ge=0, description="0 = greedy (argmax); 1 = the model's distribution")
    top_k: int | None = Field(None, gt=0, description="keep the k most likely tokens; None = all")
    top_p: float | None = Field(None, gt=0, le=1, description="keep the smallest set with this much mass; None = all")
    repetition_penalty: float = Field(1.0, gt=0, description="> 1 discourages tokens already present (CTRL-style)")


def apply_repetition_penalty(logits: torch.Tensor, history: torch.Tensor, penalty: float) -> torch.Tensor:
    """Divide positive / multiply negative logits of tokens in ``history (B, T)`` by ``penalty``."""
    if penalty == 1.0 or history.numel() == 0:
        return logits
    seen = torch.gather(logits, 1, history)
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(1, history, seen)


def next_token_distribution(logits: torch.Tensor, cfg: SamplingConfig,
                            history: torch.Tensor | None = None) -> torch.Tensor:
    """Probabilities ``(B, V)`` fp32 of the next token after every filter."""
    logits = logits.float()
    if history is not None:
        logits = apply_repetition_penalty(logits, history, cfg.repetition_penalty)
    if cfg.temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    logits = logits / cfg.temperature
    if cfg.top_k is not None and cfg.top_k < logits.shape[-1]:
        kth = torch.topk(logits, cfg.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if cfg.top_p is not None and cfg.top_p < 1.0:
        sorted_p, order = torch.sort(probs, dim=-1, descending=True)
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p   # mass strictly before each token
        keep_sorted = before < cfg.top_p                     # the first token is always kept
        keep = torch.zeros_like(keep_sorted).scatter(1, order, keep_sorted)
        probs = torch.where(keep, probs, torch.zeros_like(probs))
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row ``(B,)`` from ``probs (B, V)`` (argmax when a row is one-hot)."""
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)
