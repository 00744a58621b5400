"""Generation: cached decode equals the no-cache reference, sampling filters, stop
tokens, batches, reproducibility; speculative decoding equals greedy target decoding and
preserves the target distribution."""

from __future__ import annotations

import pytest
import torch

from caramba.engine.errors import CarambaError
from caramba.engine.infer import GenerationConfig, SpeculativeConfig, generate, speculative_generate
from caramba.engine.infer.sampling import SamplingConfig, next_token_distribution
from caramba.tests.infer_models import dba_attention, one_thread, tiny_lm  # noqa: F401 (autouse)


def test_greedy_cached_equals_uncached_batch() -> None:
    model = tiny_lm(attention=dba_attention())
    ids = torch.randint(0, 64, (3, 5))
    a = generate(model, ids, GenerationConfig(max_new_tokens=12))
    b = generate(model, ids, GenerationConfig(max_new_tokens=12, use_cache=False))
    assert a.tokens.shape == (3, 17) and torch.equal(a.tokens, b.tokens)
    # greedy = argmax of the full forward at every step
    from caramba.engine.infer import lm_logits
    with torch.no_grad():
        logits = lm_logits(model, a.tokens[:, :-1])
    assert torch.equal(logits[:, 4:].argmax(-1), a.tokens[:, 5:])


def test_sampling_is_seeded_and_filters_hold() -> None:
    model = tiny_lm()
    ids = torch.randint(0, 64, (2, 4))
    cfg = GenerationConfig(max_new_tokens=20, temperature=1.0, top_k=5, seed=3)
    assert torch.equal(generate(model, ids, cfg).tokens, generate(model, ids, cfg).tokens)
    other = generate(model, ids, cfg.model_copy(update={"seed": 4})).tokens
    assert not torch.equal(generate(model, ids, cfg).tokens, other)
    logits = torch.randn(4, 50)
    p = next_token_distribution(logits, SamplingConfig(temperature=1.0, top_k=5))
    assert ((p > 0).sum(-1) == 5).all() and torch.allclose(p.sum(-1), torch.ones(4))
    p = next_token_distribution(logits, SamplingConfig(temperature=0.7, top_p=0.5))
    full = torch.softmax(logits / 0.7, -1)
    for row in range(4):
        kept = p[row] > 0
        mass = full[row][kept].sum()
        assert mass >= 0.5 and (mass - full[row][kept].min()) < 0.5      # smallest set reaching 0.5
    hist = torch.tensor([[1, 2]])
    lg = torch.tensor([[2.0, 2.0, -1.0, 0.5]])
    rp = next_token_distribution(lg, SamplingConfig(temperature=1.0, repetition_penalty=2.0), hist)
    torch.testing.assert_close(rp, torch.softmax(torch.tensor([[2.0, 1.0, -2.0, 0.5]]), -1))


def test_stop_tokens_trim_and_pad() -> None:
    model = tiny_lm()
    ids = torch.randint(0, 64, (2, 4))
    free = generate(model, ids, GenerationConfig(max_new_tokens=10))
    stop = free.new_tokens[0][3]
    out = generate(model, ids, GenerationConfig(max_new_tokens=10, stop_tokens=[stop], pad_token=0))
    first = free.new_tokens[0].index(stop)
    assert out.new_tokens[0] == free.new_tokens[0][: first + 1] and out.finished[0]
    assert out.tokens[0, 4 + first + 1:].eq(0).all() or out.tokens.shape[1] == 4 + first + 1


def test_prompt_errors() -> None:
    model = tiny_lm()
    with pytest.raises(CarambaError, match="different lengths"):
        generate(model, [[1, 2], [3]])
    with pytest.raises(CarambaError, match="one sequence"):
        speculative_generate(model, model, torch.zeros(2, 3, dtype=torch.long))


@pytest.mark.parametrize("kind", ["fp32", "q8_0"])
def test_speculative_greedy_equals_target_greedy(kind: str) -> None:
    target = tiny_lm(seed=1, n_layers=3)
    draft = tiny_lm(seed=2, n_layers=1, attention=dba_attention())
    ids = torch.randint(0, 64, (1, 6))
    cache = {"kind": kind}
    ref = generate(target, ids, GenerationConfig(max_new_tokens=25, cache=cache))
    for k in (1, 3, 5):
        spec = speculative_generate(target, draft, ids, SpeculativeConfig(max_new_tokens=25, draft_tokens=k,
                                                                         cache=cache))
        assert torch.equal(spec.tokens, ref.tokens), k
    # a draft equal to the target accepts everything
    same = speculative_generate(target, target, ids, SpeculativeConfig(max_new_tokens=25, cache=cache))
    assert torch.equal(same.tokens, ref.tokens) and same.extra["acceptance_rate"] == 1.0


def test_speculative_sampling_matches_target_distribution() -> None:
    """First-token frequencies over many seeds match the target's own distribution."""
    target = tiny_lm(seed=1, vocab=8, d_model=32, n_layers=1)
    draft = tiny_lm(seed=5, vocab=8, d_model=32, n_layers=1)
    ids = torch.tensor([[1, 2, 3]])
    from caramba.engine.infer import lm_logits
    with torch.no_grad():
        p = torch.softmax(lm_logits(target, ids)[0, -1] / 0.05, -1)  # temperature 0.05: distinct shapes
        q = torch.softmax(lm_logits(draft, ids)[0, -1] / 0.05, -1)
    assert (p - q).abs().max() > 0.2                                  # the draft alone would fail the check
    counts = torch.zeros(8)
    n = 500
    for seed in range(n):
        out = speculative_generate(target, draft, ids, SpeculativeConfig(max_new_tokens=1, temperature=0.05,
                                                                         draft_tokens=2, seed=seed))
        counts[out.new_tokens[0][0]] += 1
    assert (counts / n - p).abs().max() < 0.07
