"""Decoupled Bottleneck Attention (DBA): ``AttentionLayer`` with ``mode: decoupled``.

Standard attention uses one query/key space for both *what* a token is about and
*where* it is. DBA splits them into two narrow paths and adds their scores::

    s_sem[h,i,j] = <q_sem[h,i], k_sem[h,j]> / sqrt(d_sem)        # content, no RoPE
    s_geo[h,i,j] = <R_i q_geo[h,i], R_j k_geo[h,j]> / sqrt(d_geo) # position, RoPE'd
    scores = s_sem + s_geo                (or 2 g_h s_sem + 2 (1 - g_h) s_geo)
    out    = W_o concat_h softmax(scores) v[h]                    # v in attn_dim

``sem_dim``/``geo_dim``/``attn_dim`` are totals over heads, so the key/query bottleneck
(``sem_dim + geo_dim``) can be far narrower than ``d_model`` and so can the KV cache.
Because both score terms are dot products, the layer concatenates ``[q_sem | q_geo]``
(pre-scaled) and ``[k_sem | k_geo]`` and makes a single ``caramba.kernels.ops.attention``
call — exactly the sum above, with one softmax.

Options: ``rope_semantic`` (RoPE on the semantic path too), ``tie_qk`` (keys reuse the
query projections), ``null_attn`` (a learned key/value slot every query can attend to,
so a head may "attend to nothing"), ``decoupled_gate`` (learned per-head mix g_h =
sigmoid(.), initialised to 1/2, i.e. the plain sum), ``learned_temp`` (learned per-head
score temperature), ``rope_scaling`` (llama3/linear frequency scaling, the field and
tables shared with the standard modes), ``local_window``
(sliding-window causal), ``q_chunk`` (process queries in chunks to bound the score
matrix), ``n_kv_heads`` (GQA/MQA on keys and values), ``bias``.

Prefill/decode: pass a KV cache (``append(k, v) -> (k_all, v_all)``, ``length``); the
layer caches the rotated ``[k_sem | k_geo]`` keys and the values, and positions continue
from ``cache.length``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from caramba.engine.layers.attention import ATTENTION_MODES, AttentionConfig
from caramba.engine.layers.base import FieldError, Layer
from caramba.engine.layers.cache import layer_cache_for
from caramba.engine.layers.registry import LAYERS
from caramba.engine.layers.rope import RopeCache
from caramba.kernels import ops


class DecoupledAttentionConfig(AttentionConfig):
    """Configuration of :class:`DecoupledAttentionLayer` (the shared attention fields plus DBA's)."""

    mode: Literal["decoupled"] = Field("decoupled", description="selects DBA inside AttentionLayer")
    sem_dim: int = Field(gt=0, description="semantic q/k width summed over heads")
    geo_dim: int = Field(gt=0, description="geometric (RoPE) q/k width summed over heads")
    attn_dim: int | None = Field(None, gt=0, description="value width summed over heads; default d_model")
    rope_semantic: bool = Field(False, description="also rotate the semantic path")
    tie_qk: bool = Field(False, description="keys share the query projections (needs n_kv_heads == n_heads)")
    null_attn: bool = Field(False, description="add a learned null key/value slot")
    decoupled_gate: bool = Field(False, description="learned per-head mix of the two score paths")
    learned_temp: bool = Field(False, description="learned per-head score temperature")
    local_window: int | None = Field(None, gt=0, description="sliding-window size (keys within the last N "
                                     "positions); same as the shared field window")
    q_chunk: int | None = Field(None, gt=0, description="queries per chunk (bounds the score matrix)")

    @property
    def effective_window(self) -> int | None:
        return self.local_window or self.window

    @property
    def v_dim(self) -> int:
        return self.attn_dim or self.d_model

    @model_validator(mode="after")
    def _check_heads(self) -> DecoupledAttentionConfig:  # replaces the standard head-dim checks
        h = self.n_heads
        if self.local_window and self.window and self.local_window != self.window:
            raise FieldError("local_window", f"local_window ({self.local_window}) and window ({self.window}) disagree",
                             expected="one of them", found="both", fix="keep only local_window")
        for name in ("sem_dim", "geo_dim"):
            if getattr(self, name) % h:
                raise FieldError(name, f"{name} ({getattr(self, name)}) must be divisible by n_heads ({h})",
                                 expected=f"a multiple of {h}", found=str(getattr(self, name)),
                                 fix=f"use {name}: {h * max(1, getattr(self, name) // h)}")
        if self.v_dim % h:
            raise FieldError("attn_dim", f"attn_dim ({self.v_dim}) must be divisible by n_heads ({h})",
                             expected=f"a multiple of {h}", found=str(self.v_dim), fix="set attn_dim to a multiple of n_heads")
        if h % self.kv_heads:
            raise FieldError("n_kv_heads", f"n_kv_heads ({self.kv_heads}) must divide n_heads ({h})",
                             expected=f"a divisor of {h}", found=str(self.kv_heads), fix="use 1 (MQA) or a divisor of n_heads")
        if self.rope and (self.geo_dim // h) % 2:
            raise FieldError("geo_dim", f"RoPE needs an even geometric head dim; geo_dim/n_heads = {self.geo_dim // h}",
                             expected="even per-head width", found=str(self.geo_dim // h), fix="use geo_dim = n_heads * an even number")
        if self.rope_semantic and (self.sem_dim // h) % 2:
            raise FieldError("sem_dim", "rope_semantic needs an even semantic head dim",
                             expected="even per-head width", found=str(self.sem_dim // h), fix="use sem_dim = n_heads * an even number")
        if self.tie_qk and self.kv_heads != h:
            raise FieldError("tie_qk", "tie_qk needs n_kv_heads == n_heads", expected="false, or no GQA",
                             found="true", fix="drop tie_qk or n_kv_heads")
        if self.null_attn and self.effective_window is not None:
            raise FieldError("null_attn", "null_attn with local_window is not supported (the null slot would fall "
                             "outside the window)", expected="one of null_attn / local_window", found="both",
                             fix="remove local_window or null_attn")
        return self


@ATTENTION_MODES.register("decoupled")
@LAYERS.register("DecoupledAttentionLayer", aliases=("dba",))
class DecoupledAttentionLayer(Layer):
    """DBA self-attention ``(B, T, d_model) -> (B, T, d_model)``; see the module docstring."""

    Config = DecoupledAttentionConfig
    #: residual-branch output projection, scaled down by GPT-2-style initialisers.
    residual_projections: ClassVar[tuple[str, ...]] = ("o_proj",)

    def __init__(self, config: DecoupledAttentionConfig) -> None:
        super().__init__(config)
        c = config
        H, Hk = c.n_heads, c.kv_heads
        self.ds, self.dg, self.dv = c.sem_dim // H, c.geo_dim // H, c.v_dim // H
        self.q_sem = nn.Linear(c.d_model, H * self.ds, bias=c.bias)
        self.q_geo = nn.Linear(c.d_model, H * self.dg, bias=c.bias)
        self.k_sem = None if c.tie_qk else nn.Linear(c.d_model, Hk * self.ds, bias=c.bias)
        self.k_geo = None if c.tie_qk else nn.Linear(c.d_model, Hk * self.dg, bias=c.bias)
        self.v_proj = nn.Linear(c.d_model, Hk * self.dv, bias=c.bias)
        self.o_proj = nn.Linear(H * self.dv, c.d_model, bias=c.bias)
        self.gate = nn.Parameter(torch.zeros(H)) if c.decoupled_gate else None
        self.log_temp = nn.Parameter(torch.zeros(H)) if c.learned_temp else None
        if c.null_attn:
            self.k_null = nn.Parameter(torch.randn(Hk, self.ds + self.dg) * 0.02)
            self.v_null = nn.Parameter(torch.zeros(Hk, self.dv))
        else:
            self.k_null = self.v_null = None
        # cos/sin tables (scaled per the shared ``rope_scaling``), cached and sliced per call
        self.rope_geo = RopeCache(self.dg, c.rope_base, c.rope_scaling) if c.rope else None
        self.rope_sem = RopeCache(self.ds, c.rope_base, c.rope_scaling) if c.rope_semantic else None

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, n, -1).transpose(1, 2)  # (B, n, T, d)

    def forward(self, x: torch.Tensor, cache: Any = None) -> torch.Tensor:
        c = self.config
        B, T, _ = x.shape
        H, Hk = c.n_heads, c.kv_heads
        cache = layer_cache_for(cache, self)
        start = int(cache.length) if cache is not None else 0
        qs, qg = self._heads(self.q_sem(x), H), self._heads(self.q_geo(x), H)
        if c.tie_qk:
            ks, kg = qs, qg
        else:
            ks, kg = self._heads(self.k_sem(x), Hk), self._heads(self.k_geo(x), Hk)
        v = self._heads(self.v_proj(x), Hk)                              # (B, Hk, T, dv)
        if self.rope_geo is not None:
            cos, sin = self.rope_geo.tables(start, T, x.device)
            qg, kg = ops.apply_rope(qg, cos, sin), ops.apply_rope(kg, cos, sin)
        if self.rope_sem is not None:
            cos, sin = self.rope_sem.tables(start, T, x.device)
            qs, ks = ops.apply_rope(qs, cos, sin), ops.apply_rope(ks, cos, sin)
        w_sem = torch.full((H,), 1.0 / math.sqrt(self.ds), device=x.device, dtype=x.dtype)
        w_geo = torch.full((H,), 1.0 / math.sqrt(self.dg), device=x.device, dtype=x.dtype)
        if self.gate is not None:
            g = torch.sigmoid(self.gate).to(x.dtype)
            w_sem, w_geo = w_sem * 2 * g, w_geo * 2 * (1 - g)
        if self.log_temp is not None:
            t = torch.exp(self.log_temp).to(x.dtype)
            w_sem, w_geo = w_sem * t, w_geo * t
        q = torch.cat([qs * w_sem.view(1, H, 1, 1), qg * w_geo.view(1, H, 1, 1)], dim=-1)  # (B, H, T, ds+dg)
        k = torch.cat([ks, kg], dim=-1)                                                     # (B, Hk, T, ds+dg)
        if cache is not None:
            k, v = cache.append(k, v)                                    # (B, Hk, S, .)
        if self.k_null is not None:
            k = torch.cat([self.k_null.to(k.dtype).view(1, Hk, 1, -1).expand(B, -1, -1, -1), k], dim=2)
            v = torch.cat([self.v_null.to(v.dtype).view(1, Hk, 1, -1).expand(B, -1, -1, -1), v], dim=2)
        y = self._attend(q, k, v)                                        # (B, H, T, dv)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, H * self.dv))

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention of q (B,H,T,.) over k, v (B,Hk,S,.); the last T keys align with q."""
        c = self.config
        p = c.dropout_p if self.training else 0.0
        T, S = q.shape[2], k.shape[2]
        chunk = c.q_chunk or T
        outs = []
        for a in range(0, T, chunk):
            b = min(T, a + chunk)
            end = S - T + b if c.causal else S   # causal: keys beyond this chunk's last query never matter
            outs.append(ops.attention(q[:, :, a:b], k[:, :, :end], v[:, :, :end], causal=c.causal,
                                      scale=1.0, window=c.effective_window, dropout_p=p))
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
