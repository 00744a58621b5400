"""A model's cache set for inference: :class:`CacheSpec` → :class:`InferenceCache`.

::

    spec = CacheSpec(kind="q8_0", residual_len=16)          # every tensor q8_0
    spec = CacheSpec(kind="fp16", k_sem_kind="q4_0")        # DBA: only semantic keys in 4 bits
    cache = make_cache(model, spec)
    logits = lm(model, prompt, cache)                        # prefill
    cache.nbytes, cache.layer_bytes()                        # exact storage, per layer

``make_cache`` gives every :class:`~caramba.engine.layers.attention.AttentionLayer` a
:class:`~caramba.engine.infer.kvcache.LayerKVCache` and every DBA layer a
:class:`~caramba.engine.infer.kvcache.DecoupledLayerKVCache`; layers with their own decode
state (SSM, RNN) keep making their own (``make_layer_cache``), as the layers' ``KVCache``
does. :func:`predict_cache_bytes` computes the same byte count from the layer shapes
alone, without running the model (the ``kvcache`` verify gate uses it).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from caramba.engine.errors import CarambaError
from caramba.engine.infer.kvcache import DecoupledLayerKVCache, LayerKVCache
from caramba.engine.infer.quant import CacheKind, bytes_per_vector, check_kind
from caramba.engine.layers.attention import AttentionLayer
from caramba.engine.layers.attention_dba import DecoupledAttentionLayer
from caramba.engine.layers.cache import KVCache


class CacheSpec(BaseModel):
    """Storage of each cached tensor; per-tensor kinds default to ``kind``."""

    model_config = ConfigDict(extra="forbid")
    kind: CacheKind = Field("fp32", description="default storage of every cached tensor")
    k_kind: CacheKind | None = Field(None, description="keys of standard/GQA layers")
    v_kind: CacheKind | None = Field(None, description="values (all layers)")
    k_sem_kind: CacheKind | None = Field(None, description="DBA semantic keys")
    k_geo_kind: CacheKind | None = Field(None, description="DBA geometric (RoPE) keys")
    qblock: int = Field(32, ge=2, description="values per quantisation block (32: llama.cpp, the kernel's layout)")
    residual_len: int = Field(0, ge=0, description="recent positions kept unquantised (fp16)")
    fused_decode: bool = Field(True, description="decode steps over q8_0/q4_0 K+V caches read the quantised blocks "
                               "(kernels.ops.decode_attention_quantized); false = dequantise + SDPA")

    def of(self, name: str) -> str:
        kind = getattr(self, f"{name}_kind") or self.kind
        check_kind(kind, self.qblock)
        return kind


def _layer_cache(layer: nn.Module, spec: CacheSpec) -> Any:
    if isinstance(layer, DecoupledAttentionLayer):
        return DecoupledLayerKVCache(layer.ds, k_sem_kind=spec.of("k_sem"), k_geo_kind=spec.of("k_geo"),
                                     v_kind=spec.of("v"), qblock=spec.qblock, residual_len=spec.residual_len)
    return LayerKVCache(spec.of("k"), spec.of("v"), qblock=spec.qblock, residual_len=spec.residual_len,
                        fused_decode=spec.fused_decode)


class InferenceCache(KVCache):
    """A :class:`KVCache` of typed layer caches, with ``truncate`` and byte accounting."""

    def __init__(self, spec: CacheSpec | None = None) -> None:
        self.spec = spec or CacheSpec()
        super().__init__(factory=lambda layer: _layer_cache(layer, self.spec))

    def layer_caches(self) -> list[tuple[nn.Module, Any]]:
        return list(self._layers.values())

    def truncate(self, n: int) -> None:
        """Drop positions ``>= n`` in every layer (needs caches that support it)."""
        for layer, c in self.layer_caches():
            if not hasattr(c, "truncate"):
                raise CarambaError(f"{type(layer).__name__}'s decode state cannot be rolled back",
                                   fix="speculative decoding needs a model whose layers cache keys/values only")
            c.truncate(n)

    @property
    def nbytes(self) -> int:
        """Exact bytes held by the key/value caches (layers with other decode state count 0)."""
        return sum(int(getattr(c, "nbytes", 0)) for _, c in self.layer_caches())

    def layer_bytes(self) -> list[dict[str, Any]]:
        """One row per layer: ``{layer, type, tensors: {name: bytes}, bytes}``."""
        rows = []
        for i, (layer, c) in enumerate(self.layer_caches()):
            tensors = {n: t.nbytes for n, t in c.tensors().items()} if hasattr(c, "tensors") else {}
            rows.append({"layer": i, "type": type(layer).__name__, "tensors": tensors, "bytes": sum(tensors.values())})
        return rows


def make_cache(model: nn.Module, spec: CacheSpec | None = None) -> InferenceCache:
    """A fresh cache set for ``model`` (the model argument documents intent; layers register on use)."""
    del model
    return InferenceCache(spec)


def attention_layers(model: nn.Module) -> list[nn.Module]:
    """Attention layers (standard/GQA/DBA) of ``model`` in forward (module) order."""
    return [m for m in model.modules() if isinstance(m, (AttentionLayer, DecoupledAttentionLayer))]


def layer_vector_widths(layer: nn.Module) -> dict[str, tuple[int, int]]:
    """Cached tensor name → (KV heads, per-head width)."""
    if isinstance(layer, DecoupledAttentionLayer):
        h = layer.config.kv_heads
        return {"k_sem": (h, layer.ds), "k_geo": (h, layer.dg), "v": (h, layer.dv)}
    if isinstance(layer, AttentionLayer):
        return {"k": (layer.n_kv, layer.head_dim), "v": (layer.n_kv, layer.head_dim)}
    raise CarambaError(f"{type(layer).__name__} has no key/value cache")


def predict_cache_bytes(model: nn.Module, spec: CacheSpec, seq_len: int, batch: int) -> int:
    """Bytes an :class:`InferenceCache` with ``spec`` holds after ``seq_len`` positions."""
    total = 0
    for layer in attention_layers(model):
        for name, (heads, dim) in layer_vector_widths(layer).items():
            kind = spec.of(name)
            tail = min(spec.residual_len, seq_len) if kind in ("q8_0", "q4_0") else 0
            per = (seq_len - tail) * bytes_per_vector(kind, dim, spec.qblock) + tail * 2 * dim
            total += batch * heads * per
    return total
