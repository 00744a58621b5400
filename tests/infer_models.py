"""Tiny language models for the inference/verify/bench/upcycle tests (built from specs,
random weights, a few thousand parameters: every test stays fast on CPU)."""

from __future__ import annotations

from typing import Any

import torch

from caramba.engine.systems.build import build_system


def llama_spec(*, vocab: int = 64, d_model: int = 64, n_heads: int = 2, n_layers: int = 2, d_ff: int = 96,
               attention: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Llama-shaped ``system.language_model`` spec; ``attention`` overrides the attention layer."""
    attn = {"type": "AttentionLayer", "d_model": d_model, "n_heads": n_heads, **(attention or {})}
    return {"ref": "system.language_model", "config": {"model": {
        "type": "TransformerModel",
        "embedder": {"type": "token", "vocab_size": vocab, "d_model": d_model},
        "topology": {"type": "StackedTopology", "layers": [
            {"type": "NestedTopology", "repeat": n_layers, "layers": [
                {"type": "ResidualTopology", "layers": [{"type": "RMSNormLayer", "d_model": d_model}, attn]},
                {"type": "ResidualTopology", "layers": [{"type": "RMSNormLayer", "d_model": d_model},
                                                        {"type": "SwiGLULayer", "d_model": d_model, "d_ff": d_ff}]},
            ]},
            {"type": "RMSNormLayer", "d_model": d_model},
            {"type": "LinearLayer", "d_in": d_model, "d_out": vocab, "bias": False},
        ]}}}}


def dba_attention(d_model: int = 64, n_heads: int = 2) -> dict[str, Any]:
    return {"mode": "decoupled", "sem_dim": 32, "geo_dim": 32, "attn_dim": d_model, "n_heads": n_heads}


def tiny_lm(seed: int = 0, **kw: Any) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_system(llama_spec(**kw)).eval()


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matmuls on a loaded 2-core machine run ~50x faster on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
