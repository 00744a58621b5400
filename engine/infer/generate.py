"""Text generation: prefill the prompt through the KV cache, then decode token by token.

::

    from caramba.engine.infer import GenerationConfig, generate
    out = generate(system, prompt_ids, GenerationConfig(max_new_tokens=32, temperature=0.8,
                                                          top_p=0.95, stop_tokens=[10]))
    out.tokens          # (B, T + n) prompt + continuation (rows that stopped are padded)
    out.new_tokens      # per row: the continuation up to and including its stop token
    out.cache_bytes     # exact KV storage at the end

``model`` is a ``system.language_model`` (``{"input_ids"} -> {"logits"}``) or a bare
``TransformerModel``; :func:`lm_logits` hides the difference. A batch is a ``(B, T)``
tensor of equal-length prompts (no padding masks: prompts of different lengths are
generated in separate calls). With ``use_cache=False`` every step re-runs the whole
sequence (the reference the cached path is tested against).

Sampling is reproducible: ``seed`` seeds a private ``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import Field
from torch import nn

from caramba.engine.errors import CarambaError
from caramba.engine.infer.cache_set import CacheSpec, InferenceCache
from caramba.engine.infer.sampling import SamplingConfig, next_token_distribution, sample


class GenerationConfig(SamplingConfig):
    """Sampling plus length, stopping and cache settings."""

    max_new_tokens: int = Field(32, gt=0, description="tokens generated per row at most")
    stop_tokens: list[int] = Field(default_factory=list, description="a row stops after emitting one of these")
    pad_token: int | None = Field(None, description="filler after a row stopped; None = its stop token")
    seed: int | None = Field(None, description="seed of the sampling generator; None = 0")
    use_cache: bool = Field(True, description="incremental decode through the KV cache")
    cache: CacheSpec = Field(default_factory=CacheSpec, description="KV-cache storage")


@dataclass
class GenerationResult:
    tokens: torch.Tensor                       # (B, T + steps)
    new_tokens: list[list[int]]                # per row, trimmed after its stop token
    finished: list[bool]                       # row hit a stop token
    cache_bytes: int = 0
    steps: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def lm_logits(model: nn.Module, ids: torch.Tensor, cache: Any = None) -> torch.Tensor:
    """``(B, T, V)`` logits of a language-model system or a bare token model."""
    from caramba.engine.systems.base import System

    if isinstance(model, System):
        out = model({"input_ids": ids}, cache=cache)
        if "logits" not in out:
            raise CarambaError(f"{type(model).__name__} returned {sorted(out)}, not logits",
                               fix="generate with a language model (system.language_model)")
        return out["logits"]
    return model(ids, cache=cache)


def check_prompt(input_ids: Any, model: nn.Module) -> torch.Tensor:
    if isinstance(input_ids, list):
        lengths = {len(row) for row in input_ids}
        if len(lengths) > 1:
            raise CarambaError(f"prompts of different lengths {sorted(lengths)} in one batch",
                               fix="generate prompts of different lengths in separate calls (no padding masks)")
        input_ids = torch.tensor(input_ids, dtype=torch.long)
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.shape[1] == 0:
        raise CarambaError("the prompt must be a (B, T) tensor of token ids with T >= 1",
                           fix="wrap a single prompt as ids[None, :]")
    param = next(model.parameters(), None)
    return input_ids.to(param.device if param is not None else "cpu", dtype=torch.long)


@torch.no_grad()
def generate(model: nn.Module, input_ids: Any, config: GenerationConfig | None = None) -> GenerationResult:
    """Generate up to ``max_new_tokens`` per row; see the module docstring."""
    cfg = config or GenerationConfig()
    was_training = model.training
    model.eval()
    try:
        ids = check_prompt(input_ids, model)
        B = ids.shape[0]
        gen = torch.Generator(device=ids.device).manual_seed(cfg.seed or 0)
        cache = InferenceCache(cfg.cache) if cfg.use_cache else None
        stops = torch.tensor(cfg.stop_tokens or [-1], device=ids.device)
        done = torch.zeros(B, dtype=torch.bool, device=ids.device)
        seq = ids
        logits = lm_logits(model, ids, cache)[:, -1]                 # prefill → (B, V)
        steps = 0
        for steps in range(1, cfg.max_new_tokens + 1):
            probs = next_token_distribution(logits, cfg, seq if cfg.repetition_penalty != 1.0 else None)
            tok = sample(probs, gen)                                  # (B,)
            if cfg.stop_tokens:
                pad = cfg.pad_token if cfg.pad_token is not None else cfg.stop_tokens[0]
                tok = torch.where(done, torch.full_like(tok, pad), tok)
                done = done | torch.isin(tok, stops)
            seq = torch.cat([seq, tok[:, None]], dim=1)
            if bool(done.all()) or steps == cfg.max_new_tokens:
                break
            if cache is not None:
                logits = lm_logits(model, tok[:, None], cache)[:, -1]  # one position
            else:
                logits = lm_logits(model, seq)[:, -1]
        return GenerationResult(seq, _trim(seq[:, ids.shape[1]:], cfg.stop_tokens), done.tolist(),
                                cache_bytes=cache.nbytes if cache is not None else 0, steps=steps)
    finally:
        model.train(was_training)


def _trim(new: torch.Tensor, stops: list[int]) -> list[list[int]]:
    rows = []
    for row in new.tolist():
        for i, t in enumerate(row):
            if t in stops:
                row = row[: i + 1]
                break
        rows.append(row)
    return rows
