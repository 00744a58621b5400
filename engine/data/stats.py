"""Corpus statistics used as baselines for language-model losses.

The **unigram entropy** ``H = -Σ p(t) ln p(t)`` (nats per token, from token frequencies)
is the loss of the best model that ignores context: a language model whose validation
cross-entropy does not fall clearly below it has learned nothing about context.
"""

from __future__ import annotations

import math

import numpy as np


def unigram_entropy(tokens: np.ndarray, vocab_size: int | None = None) -> float:
    """Entropy in nats/token of the token frequency distribution of ``tokens`` (1-D)."""
    counts = np.bincount(np.asarray(tokens, dtype=np.int64), minlength=vocab_size or 0).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def nats_to_bits(nats: float) -> float:
    return nats / math.log(2)
