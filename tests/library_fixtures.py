"""Model configs shared by the issue-3 library tests (plain dicts, as a manifest writes them)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch


def llama_system(vocab: int = 61, d_model: int = 32, n_heads: int = 4, n_kv_heads: int | None = None,
                 n_layers: int = 2, d_ff: int = 48, eps: float = 1e-6, rope_base: float = 10000.0,
                 tied: bool = False, attention: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Llama-shaped ``system.language_model`` spec: pre-norm attention + SwiGLU blocks."""
    attn: dict[str, Any] = {"type": "AttentionLayer", "d_model": d_model, "n_heads": n_heads, "rope_base": rope_base}
    if n_kv_heads is not None and n_kv_heads != n_heads:
        attn.update(mode="gqa", n_kv_heads=n_kv_heads)
    attn.update(attention or {})
    block = [
        {"type": "ResidualTopology", "layers": [{"type": "RMSNormLayer", "d_model": d_model, "eps": eps}, attn]},
        {"type": "ResidualTopology", "layers": [{"type": "RMSNormLayer", "d_model": d_model, "eps": eps},
                                                {"type": "SwiGLULayer", "d_model": d_model, "d_ff": d_ff}]},
    ]
    return {
        "ref": "system.language_model",
        "config": {
            "model": {
                "type": "TransformerModel",
                "embedder": {"type": "token", "vocab_size": vocab, "d_model": d_model},
                "tied_embeddings": tied,
                "topology": {"type": "StackedTopology", "layers": [
                    {"type": "NestedTopology", "repeat": n_layers, "layers": block},
                    {"type": "RMSNormLayer", "d_model": d_model, "eps": eps},
                    {"type": "LinearLayer", "d_in": d_model, "d_out": vocab, "bias": False},
                ]},
            },
        },
    }


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run a test's torch ops on one thread: small models on a shared, loaded CPU are
    many times faster without intra-op thread contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
