"""One function per benchmark type; each returns rows (flat dicts) for one model and
one repeat. The runner (:mod:`caramba.engine.bench.run`) loops over models and repeats.

* perplexity — token-weighted NLL/PPL over ``num_batches`` windows drawn with the
  repeat's seed (a fresh sample of the held-out data per repeat);
* latency — per (prompt length, generation length, batch): ``warmup_runs`` untimed,
  then ``timed_runs`` timed prefill + decode; median and spread of tokens/s;
* memory — per (cache format, sequence length, batch): the exact KV bytes of a filled
  :class:`~caramba.engine.infer.cache_set.InferenceCache` (and the prediction from the
  layer shapes), plus the allocator's peak on CUDA (CPU has no allocator peak: empty);
* context — chunked prefill of ``context_length`` tokens, then ``decode_tokens`` decode
  (optionally checked against a one-shot prefill: ``chunked_vs_full_max_abs``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from caramba.engine.bench.timing import Stopwatch, summarize
from caramba.engine.infer.cache_set import CacheSpec, InferenceCache, predict_cache_bytes
from caramba.engine.infer.generate import lm_logits
from caramba.engine.verify.measure import evaluating, mean_nll


def _vocab(model: nn.Module) -> int:
    from caramba.engine.layers.registry import EMBEDDERS  # noqa: F401  (registry import side effects)
    for m in model.modules():
        cfg = getattr(m, "config", None)
        if cfg is not None and hasattr(cfg, "vocab_size"):
            return int(cfg.vocab_size)
    raise ValueError("model has no embedder with vocab_size")


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _tokens(model: nn.Module, batch: int, length: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, _vocab(model), (batch, length), generator=gen).to(_device(model))


def perplexity(model: nn.Module, cfg: Any, dataset: Any, seed: int) -> list[dict[str, Any]]:
    n = len(dataset)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=g)[: cfg.batch_size * cfg.num_batches].tolist()
    dev = _device(model)
    batches = []
    for i in range(0, len(order), cfg.batch_size):
        items = [dataset[j] for j in order[i:i + cfg.batch_size]]
        b = {k: torch.stack([it[k] for it in items]).to(dev) for k in ("input_ids", "target_ids")}
        if cfg.block_size is not None:
            b = {k: v[:, : cfg.block_size] for k, v in b.items()}
        batches.append(b)
    r = mean_nll(model, batches)
    return [{"nll": r["nll"], "ppl": r["ppl"], "tokens": int(r["tokens"])}]


def _run_generation(model: nn.Module, prompt: torch.Tensor, gen_len: int, spec: CacheSpec,
                    use_cache: bool) -> tuple[float, float]:
    """(prefill seconds, decode seconds) of greedy generation."""
    dev = _device(model)
    cache = InferenceCache(spec) if use_cache else None
    with Stopwatch(dev) as pre:
        logits = lm_logits(model, prompt, cache)[:, -1]
    seq = prompt
    with Stopwatch(dev) as dec:
        for _ in range(gen_len):
            tok = logits.argmax(-1, keepdim=True)
            seq = torch.cat([seq, tok], 1)
            logits = lm_logits(model, tok if use_cache else seq, cache)[:, -1]
    return pre.seconds, dec.seconds


def latency(model: nn.Module, cfg: Any, seed: int) -> list[dict[str, Any]]:
    spec = CacheSpec(kind=cfg.cache_kind)
    if cfg.cache_policy == "sliding":
        from caramba.engine.errors import NotImplementedYet
        raise NotImplementedYet("latency.cache_policy: sliding is not implemented yet", fix="use cache_policy: full")
    g = torch.Generator().manual_seed(seed)
    rows = []
    with evaluating(model):
        for P in cfg.prompt_lengths:
            for G in cfg.generation_lengths:
                for B in cfg.batch_sizes:
                    prompt = _tokens(model, B, P, g)
                    for _ in range(cfg.warmup_runs):
                        _run_generation(model, prompt, G, spec, cfg.use_cache)
                    pre, dec = [], []
                    for _ in range(cfg.timed_runs):
                        a, b = _run_generation(model, prompt, G, spec, cfg.use_cache)
                        pre.append(B * P / a)
                        dec.append(B * G / b)
                    rows.append({"prompt_len": P, "gen_len": G, "batch": B, "cache_kind": cfg.cache_kind,
                                 **summarize("prefill_tok_s", pre), **summarize("decode_tok_s", dec)})
    return rows


def memory(model: nn.Module, cfg: Any, seed: int) -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(seed)
    dev = _device(model)
    rows = []
    with evaluating(model):
        for kind in cfg.quantization_modes:
            spec = CacheSpec(kind=kind)
            for S in cfg.sequence_lengths:
                for B in cfg.batch_sizes:
                    row: dict[str, Any] = {"cache_kind": kind, "seq_len": S, "batch": B}
                    if dev.type == "cuda":
                        torch.cuda.synchronize(dev)
                        torch.cuda.reset_peak_memory_stats(dev)
                    cache = InferenceCache(spec)
                    lm_logits(model, _tokens(model, B, S, g), cache)
                    if cfg.measure_kvcache:
                        row["kv_bytes"] = cache.nbytes
                        row["kv_bytes_predicted"] = predict_cache_bytes(model, spec, S, B)
                    if cfg.measure_peak:
                        row["peak_bytes"] = torch.cuda.max_memory_allocated(dev) if dev.type == "cuda" else None
                    rows.append(row)
                    del cache
    return rows


def context(model: nn.Module, cfg: Any, seed: int) -> list[dict[str, Any]]:
    """Per context length: timed chunked prefill, then timed decode. With
    ``check_full_prefill`` an untimed one-shot prefill of the same tokens through a fresh
    cache of the same kind gives ``chunked_vs_full_max_abs`` (last-position logits): chunking
    must not change the numbers beyond floating-point reassociation."""
    g = torch.Generator().manual_seed(seed)
    dev = _device(model)
    spec = CacheSpec(kind=cfg.cache_kind)
    rows = []
    with evaluating(model):
        for L in cfg.context_lengths:
            ids = _tokens(model, cfg.batch_size, L, g)
            cache = InferenceCache(spec)
            with Stopwatch(dev) as pre:
                for a in range(0, L, cfg.chunk_size):
                    logits = lm_logits(model, ids[:, a:a + cfg.chunk_size], cache)[:, -1]
            row: dict[str, Any] = {"context_len": L, "chunk": cfg.chunk_size, "batch": cfg.batch_size,
                                   "cache_kind": cfg.cache_kind, "prefill_s": pre.seconds,
                                   "prefill_tok_s": cfg.batch_size * L / pre.seconds}
            if cfg.check_full_prefill:
                full = lm_logits(model, ids, InferenceCache(spec))[:, -1]
                row["chunked_vs_full_max_abs"] = float((full.float() - logits.float()).abs().max())
            with Stopwatch(dev) as dec:
                for _ in range(cfg.decode_tokens):
                    logits = lm_logits(model, logits.argmax(-1, keepdim=True), cache)[:, -1]
            rows.append({**row, "decode_s": dec.seconds,
                         "decode_tok_s": cfg.batch_size * cfg.decode_tokens / dec.seconds,
                         "kv_bytes": cache.nbytes, "cached_tokens": cache_length(cache)})
    return rows


def cache_length(cache: InferenceCache) -> int:
    """Positions held by the first layer cache (every layer holds the same number)."""
    layers = cache.layer_caches()
    return int(layers[0][1].length) if layers else 0
