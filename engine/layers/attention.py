"""``AttentionLayer``: multi-head self-attention with GQA, RoPE and a KV cache.

``mode`` picks the implementation from :data:`ATTENTION_MODES` (a small registry):
``standard`` (one K/V head per query head) and ``gqa`` (``n_kv_heads`` < ``n_heads``,
each K/V head shared by ``n_heads / n_kv_heads`` query heads) are implemented here;
``rope_scaling`` (llama3 | linear, :mod:`caramba.engine.layers.rope_tables`) only changes
the cached cos/sin tables handed to the rotation kernel. A
new mode (e.g. decoupled attention) is a subclass in its own file whose ``Config``
subclasses :class:`AttentionLayer.Config` with ``mode: Literal["its-name"]``, registered
with ``@ATTENTION_MODES.register("its-name")`` and its module added to the tuple below;
manifests keep writing ``type: AttentionLayer, mode: its-name``.

Shapes: ``x (B, T, C)`` → q ``(B, H, T, D)``, k/v ``(B, Hkv, T, D)`` with ``D = C / H``.
The score math is :func:`caramba.kernels.ops.attention` (Triton on CUDA, SDPA on CPU),
the rotation :func:`caramba.kernels.ops.apply_rope`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from caramba.engine.layers.base import FieldError, Layer, LayerConfig
from caramba.engine.layers.cache import layer_cache_for
from caramba.engine.layers.registry import LAYERS
from caramba.engine.layers.rope import RopeCache
from caramba.engine.layers.rope_tables import RopeScaling
from caramba.engine.registry import Registry
from caramba.kernels import ops

#: attention implementations by ``mode``; lazily imports the modules that register more.
ATTENTION_MODES: Registry[Any] = Registry("attention mode", modules=("caramba.engine.layers.attention",
                                                                   "caramba.engine.layers.attention_dba"))


class AttentionConfig(LayerConfig):
    """Fields every attention mode shares."""

    d_model: int = Field(gt=0, description="model width; must equal the width flowing in")
    n_heads: int = Field(gt=0, description="query heads; must divide d_model (head dim = d_model / n_heads)")
    n_kv_heads: int | None = Field(None, gt=0, description="key/value heads (gqa); None = n_heads; must divide n_heads")
    mode: str = Field("standard", description="implementation: standard | gqa (see ATTENTION_MODES)")
    causal: bool = Field(True, description="mask future positions (language modelling)")
    rope: bool = Field(True, description="rotary position embedding on q and k")
    rope_base: float = Field(10000.0, gt=1.0, description="RoPE frequency base (10000: the RoFormer/Llama value)")
    rope_scaling: RopeScaling | None = Field(None, description="RoPE frequency scaling {type: llama3 | linear, "
                                             "factor, …} (Llama 3.1); None = unscaled")
    window: int | None = Field(None, gt=0, description="sliding-window size in positions; None = full context")
    dropout_p: float = Field(0.0, ge=0.0, lt=1.0, description="attention-probability dropout in training (0: modern LMs)")
    bias: bool = Field(False, description="bias on the q/k/v/out projections (False: Llama; GPT-2 uses True)")

    width_field: ClassVar[str | None] = "d_model"

    @property
    def kv_heads(self) -> int:
        return self.n_kv_heads if self.n_kv_heads is not None else self.n_heads

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @model_validator(mode="after")
    def _check_heads(self) -> AttentionConfig:
        if self.d_model % self.n_heads:
            raise FieldError("n_heads", f"n_heads {self.n_heads} does not divide d_model {self.d_model}",
                             expected=f"a divisor of {self.d_model}", found=str(self.n_heads),
                             fix=f"use n_heads in {_divisors(self.d_model)}")
        if self.n_heads % self.kv_heads:
            raise FieldError("n_kv_heads", f"n_kv_heads {self.kv_heads} does not divide n_heads {self.n_heads}",
                             expected=f"a divisor of {self.n_heads}", found=str(self.kv_heads),
                             fix=f"use n_kv_heads in {_divisors(self.n_heads)}")
        if self.rope and self.head_dim % 2:
            raise FieldError("rope", f"RoPE needs an even head dim, d_model/n_heads = {self.head_dim}",
                             expected="even head dim", found=str(self.head_dim),
                             fix="change n_heads so d_model / n_heads is even, or set rope: false")
        return self


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0][:12]


@ATTENTION_MODES.register("standard")
@ATTENTION_MODES.register("gqa")
@LAYERS.register("AttentionLayer", aliases=("attention",))
class AttentionLayer(Layer):
    """Self-attention ``(B, T, C) -> (B, T, C)``; ``cache`` enables incremental decode."""

    class Config(AttentionConfig):
        mode: Literal["standard", "gqa"] = Field("standard", description="standard: n_kv_heads = n_heads; "
                                                 "gqa: fewer K/V heads shared by groups of query heads")

        @model_validator(mode="after")
        def _check_mode(self) -> AttentionLayer.Config:
            if self.mode == "standard" and self.kv_heads != self.n_heads:
                raise FieldError("n_kv_heads", f"mode standard uses n_kv_heads = n_heads ({self.n_heads}), "
                                 f"found {self.kv_heads}", expected=str(self.n_heads), found=str(self.kv_heads),
                                 fix="set mode: gqa for grouped K/V heads, or drop n_kv_heads")
            if self.mode == "gqa" and self.n_kv_heads is None:
                raise FieldError("n_kv_heads", "mode gqa needs n_kv_heads", expected=f"a divisor of {self.n_heads}",
                                 fix=f"add n_kv_heads (e.g. {max(1, self.n_heads // 4)})")
            if self.rope_scaling is not None and not self.rope:
                raise FieldError("rope_scaling", "rope_scaling is set but rope is false", expected="rope: true",
                                 found="rope: false", fix="drop rope_scaling, or set rope: true")
            return self

    #: residual-branch output projection, scaled down by GPT-2-style initialisers.
    residual_projections: ClassVar[tuple[str, ...]] = ("o_proj",)
    #: the field that selects an implementation, and the registry of implementations
    #: (``caramba layers AttentionLayer`` lists each mode's extra fields).
    variants: ClassVar[tuple[str, Registry[Any]]] = ("mode", ATTENTION_MODES)

    def __init__(self, config: AttentionConfig) -> None:
        super().__init__(config)
        c = config
        self.n_heads, self.n_kv, self.head_dim = c.n_heads, c.kv_heads, c.head_dim
        self.q_proj = nn.Linear(c.d_model, c.n_heads * c.head_dim, bias=c.bias)
        self.k_proj = nn.Linear(c.d_model, self.n_kv * c.head_dim, bias=c.bias)
        self.v_proj = nn.Linear(c.d_model, self.n_kv * c.head_dim, bias=c.bias)
        self.o_proj = nn.Linear(c.n_heads * c.head_dim, c.d_model, bias=c.bias)
        self.rope = RopeCache(c.head_dim, c.rope_base, c.rope_scaling) if c.rope else None

    @classmethod
    def resolve(cls, raw: Mapping[str, Any]) -> type[Layer]:
        mode = raw.get("mode", "standard")
        if not isinstance(mode, str):
            raise FieldError("mode", "mode must be a string", expected="standard | gqa", found=repr(mode))
        if mode not in ATTENTION_MODES:
            from caramba.engine.registry import UnknownComponent
            err = UnknownComponent("attention mode", mode, ATTENTION_MODES.names())
            raise FieldError("mode", err.message, expected=" | ".join(ATTENTION_MODES.names()), found=mode, fix=err.fix)
        return ATTENTION_MODES.get(mode)

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q ``(B, H, T, D)``, k and v ``(B, Hkv, T, D)`` before RoPE."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv, self.head_dim).transpose(1, 2)
        return q, k, v

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        c = self.config
        B, T, C = x.shape
        layer_cache = layer_cache_for(cache, self)
        start = layer_cache.length if layer_cache is not None else 0
        q, k, v = self.project(x)
        if self.rope is not None:
            cos, sin = self.rope.tables(start, T, x.device)
            q, k = ops.apply_rope(q, cos, sin), ops.apply_rope(k, cos, sin)
        fmt = _fused_decode_format(layer_cache, q, k, c) if not self.training else None
        if fmt is not None:  # decode over a q8_0/q4_0 cache: attend over its quantised blocks in place
            layer_cache.store(k, v)
            y = ops.decode_attention_quantized(q, *layer_cache.quantized_blocks(), fmt)
        else:
            if layer_cache is not None:
                k, v = layer_cache.append(k, v)  # (B, Hkv, start + T, D)
            y = ops.attention(q, k, v, causal=c.causal, window=c.window,
                              dropout_p=c.dropout_p if self.training else 0.0)  # (B, H, T, D)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, C))


def _fused_decode_format(cache: Any, q: torch.Tensor, k: torch.Tensor, c: AttentionConfig) -> str | None:
    """The cache's quantised format when this step can use the fused quantised decode op
    (a cache that offers it — :class:`caramba.engine.infer.kvcache.LayerKVCache` — and plain
    causal attention without a window), else None (the dequantise + attention path)."""
    probe = getattr(cache, "fused_decode_format", None)
    return probe(q, k) if probe is not None and c.causal and c.window is None else None
