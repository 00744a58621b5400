"""Small model configs shared by the model-building tests (tiny so CPU tests are fast)."""

from __future__ import annotations

from typing import Any


def tiny_lm_config(*, vocab: int = 64, d_model: int = 32, n_heads: int = 4, n_layers: int = 2,
                   n_kv_heads: int | None = None, tied: bool = False, aliases: bool = True) -> dict[str, Any]:
    """A Llama-shaped ``system.language_model`` config written with lower-case aliases."""
    attn: dict[str, Any] = {"type": "attention" if aliases else "AttentionLayer", "d_model": d_model, "n_heads": n_heads}
    if n_kv_heads is not None and n_kv_heads != n_heads:
        attn.update(n_kv_heads=n_kv_heads, mode="gqa")
    norm = "rms_norm" if aliases else "RMSNormLayer"
    return {
        "model": {
            "type": "transformer" if aliases else "TransformerModel",
            "tied_embeddings": tied,
            "embedder": {"type": "token", "vocab_size": vocab, "d_model": d_model},
            "topology": {
                "type": "stacked" if aliases else "StackedTopology",
                "layers": [
                    {"type": "nested" if aliases else "NestedTopology", "repeat": n_layers, "layers": [
                        {"type": "residual", "layers": [{"type": norm, "d_model": d_model}, attn]},
                        {"type": "residual", "layers": [{"type": norm, "d_model": d_model},
                                                        {"type": "swiglu", "d_model": d_model, "d_ff": 2 * d_model}]},
                    ]},
                    {"type": norm, "d_model": d_model},
                    {"type": "linear", "d_in": d_model, "d_out": vocab, "bias": False},
                ],
            },
        },
    }
