"""Speculative decoding (Leviathan et al., 2023; Chen et al., 2023) with a draft model.

Each round the cheap ``draft`` proposes ``k`` tokens ``x_1..x_k`` (sampled from its
filtered distributions ``q_i``); the ``target`` scores all of them in one forward, giving
``p_1..p_{k+1}``. Token ``x_i`` is accepted with probability ``min(1, p_i(x_i) / q_i(x_i))``;
at the first rejection a replacement is drawn from ``norm(max(0, p_i - q_i))`` and the
round ends; if all ``k`` are accepted, a bonus token is drawn from ``p_{k+1}``. The tokens
produced this way are distributed **exactly** as sampling from the target alone.

With ``temperature == 0`` both distributions are one-hot (see
:mod:`caramba.engine.infer.sampling`), so a draft token is accepted iff it is the target's
argmax and the replacement is the target's argmax: the output equals greedy decoding of
the target, token for token.

Both models keep a KV cache (:class:`~caramba.engine.infer.cache_set.InferenceCache`);
rejected positions are rolled back with ``truncate``. Each model feeds the tokens its
cache has not seen yet, so no position is computed twice. One sequence at a time
(``B == 1``); ``repetition_penalty`` is refused (it makes each position's distribution
depend on the draft's own unverified history).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from caramba.engine.errors import CarambaError
from caramba.engine.infer.cache_set import InferenceCache
from caramba.engine.infer.generate import GenerationConfig, GenerationResult, _trim, check_prompt, lm_logits
from caramba.engine.infer.sampling import next_token_distribution, sample


class SpeculativeConfig(GenerationConfig):
    draft_tokens: int = Field(4, gt=0, description="tokens the draft proposes per round (k)")


def _feed(model: nn.Module, cache: InferenceCache, seq: torch.Tensor, extra: list[int]) -> torch.Tensor:
    """Logits ``(n, V)`` for the positions of ``seq + extra`` the cache has not seen."""
    full = torch.cat([seq, torch.tensor([extra], dtype=seq.dtype, device=seq.device)], dim=1) if extra else seq
    return lm_logits(model, full[:, cache.length:], cache)[0]


@torch.no_grad()
def speculative_generate(target: nn.Module, draft: nn.Module, input_ids: torch.Tensor,
                         config: SpeculativeConfig | None = None) -> GenerationResult:
    """Generate from ``target`` with ``draft`` proposals; ``extra`` reports the acceptance rate."""
    cfg = config or SpeculativeConfig()
    if cfg.repetition_penalty != 1.0:
        raise CarambaError("speculative decoding does not support repetition_penalty",
                           fix="set repetition_penalty: 1.0, or decode without a draft model")
    if not cfg.use_cache:
        raise CarambaError("speculative decoding needs use_cache: true (rejected tokens are rolled back in the cache)")
    seq = check_prompt(input_ids, target)
    if seq.shape[0] != 1:
        raise CarambaError(f"speculative decoding runs one sequence at a time, got a batch of {seq.shape[0]}",
                           fix="call it once per prompt")
    modes = (target.training, draft.training)
    target.eval(), draft.eval()
    try:
        gen = torch.Generator(device=seq.device).manual_seed(cfg.seed or 0)
        tc, dc = InferenceCache(cfg.cache), InferenceCache(cfg.cache)
        prompt_len = seq.shape[1]
        proposed = accepted = rounds = 0
        stopped = False
        while seq.shape[1] - prompt_len < cfg.max_new_tokens and not stopped:
            budget = cfg.max_new_tokens - (seq.shape[1] - prompt_len)
            k = min(cfg.draft_tokens, budget)
            xs: list[int] = []
            qs: list[torch.Tensor] = []
            for _ in range(k):                                   # draft proposes x_1..x_k
                q = next_token_distribution(_feed(draft, dc, seq, xs)[-1:], cfg)
                xs.append(int(sample(q, gen)))
                qs.append(q[0])
            p_all = next_token_distribution(_feed(target, tc, seq, xs)[-(k + 1):], cfg)  # (k+1, V)
            base = seq.shape[1]
            out: list[int] = []
            for i, x in enumerate(xs):
                p, q = p_all[i], qs[i]
                ratio = float(p[x]) / float(q[x]) if float(q[x]) > 0 else 0.0
                u = float(torch.rand((), generator=gen, device=seq.device)) if ratio < 1.0 else 0.0
                if u < min(1.0, ratio) or ratio >= 1.0:
                    out.append(x)
                    continue
                residual = torch.clamp(p - q, min=0)
                mass = float(residual.sum())
                out.append(int(sample((residual / mass if mass > 0 else p)[None], gen)))
                break
            else:
                out.append(int(sample(p_all[k][None], gen)))    # all accepted: bonus token from p_{k+1}
            n_acc = len(out) - 1                                  # draft tokens kept
            proposed, accepted, rounds = proposed + k, accepted + n_acc, rounds + 1
            out = out[:budget]
            for j, t in enumerate(out):
                if t in cfg.stop_tokens:
                    out, stopped = out[: j + 1], True
                    break
            seq = torch.cat([seq, torch.tensor([out], device=seq.device)], dim=1)
            keep = min(base + n_acc, seq.shape[1] - 1)           # the newest token is fed next round
            tc.truncate(min(tc.length, keep))
            dc.truncate(min(dc.length, keep))
        new = seq[:, prompt_len:]
        return GenerationResult(seq, _trim(new, cfg.stop_tokens), [stopped], cache_bytes=tc.nbytes, steps=rounds,
                                extra={"proposed": proposed, "accepted": accepted,
                                       "acceptance_rate": accepted / proposed if proposed else 0.0})
    finally:
        target.train(modes[0]), draft.train(modes[1])
