"""Key/value caches for incremental decoding.

Two levels, both duck-typed so that other cache kinds (quantised, paged, …) drop in:

* a **layer cache** holds one attention layer's keys and values. Protocol
  (:class:`LayerCache`): ``length`` (positions stored so far) and
  ``append(k, v) -> (k_all, v_all)`` with ``k: (B, Hkv, T, D)``, ``v: (B, Hkv, T, Dv)``
  (``Dv`` may differ from ``D``, as in decoupled attention) and the returned tensors
  ``(B, Hkv, length, D|Dv)`` in the dtype of ``k``. A layer whose decode state is not
  keys/values (``SSMLayer``) defines ``make_layer_cache()`` and the cache set uses it. :class:`LayerKVCache` is the
  simple one: fp32 buffers that grow by doubling.
* a **cache set** (:class:`KVCache`) is what a model is called with: topologies pass it
  unchanged to every child and each attention layer asks it for its own layer cache with
  ``cache.for_layer(self)``.

Usage (prefill, then one token at a time)::

    cache = KVCache()
    logits = model(prompt_ids, cache=cache)          # (B, T0, V), fills the caches
    logits = model(next_ids[:, None], cache=cache)   # (B, 1, V), position T0

An attention layer called directly may also be given a single layer cache;
:func:`layer_cache_for` accepts both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class LayerCache(Protocol):
    """One attention layer's stored keys and values."""

    @property
    def length(self) -> int: ...

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


class LayerKVCache:
    """fp32 key/value buffers for one layer; capacity doubles when full.

    Storing fp32 keeps decoding numerically identical to the full-sequence forward of
    an fp32 model, and within rounding of a bf16/fp16 one.
    """

    def __init__(self) -> None:
        self._k: torch.Tensor | None = None  # (B, Hkv, capacity, D) fp32
        self._v: torch.Tensor | None = None
        self._len = 0

    @property
    def length(self) -> int:
        return self._len

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if k.shape[:3] != v.shape[:3]:
            raise ValueError(f"keys {tuple(k.shape)} and values {tuple(v.shape)} must agree on (B, Hkv, T)")
        B, H, T, D = k.shape
        Dv = v.shape[3]  # may differ from D (decoupled attention caches narrow keys)
        if self._k is None:
            self._k = k.new_empty((B, H, max(T, 16), D), dtype=torch.float32)
            self._v = v.new_empty((B, H, max(T, 16), Dv), dtype=torch.float32)
        elif self._k.shape[0] != B or self._k.shape[1] != H or self._k.shape[3] != D:
            raise ValueError(f"cache holds (B, Hkv, D) = {(self._k.shape[0], self._k.shape[1], self._k.shape[3])}, "
                             f"got {(B, H, D)}; use a fresh cache for a new batch")
        assert self._v is not None
        need = self._len + T
        if need > self._k.shape[2]:
            cap = max(need, 2 * self._k.shape[2])
            grow_k = self._k.new_empty((B, H, cap, D))
            grow_v = self._v.new_empty((B, H, cap, Dv))
            grow_k[:, :, : self._len] = self._k[:, :, : self._len]
            grow_v[:, :, : self._len] = self._v[:, :, : self._len]
            self._k, self._v = grow_k, grow_v
        self._k[:, :, self._len : need] = k.float()
        self._v[:, :, self._len : need] = v.float()
        self._len = need
        return self._k[:, :, :need].to(k.dtype), self._v[:, :, :need].to(v.dtype)


class KVCache:
    """A cache set: one layer cache per attention layer, created on first use.

    ``factory`` makes the layer cache for a layer (default: :class:`LayerKVCache`), so a
    quantised or paged cache needs no change to layers or topologies.
    """

    def __init__(self, factory: Callable[[nn.Module], LayerCache] | None = None) -> None:
        self._factory = factory or (lambda layer: LayerKVCache())
        self._layers: dict[int, tuple[nn.Module, LayerCache]] = {}

    def for_layer(self, layer: nn.Module) -> LayerCache:
        entry = self._layers.get(id(layer))
        if entry is None:
            # layers whose decode state is not keys/values (SSMLayer) make their own
            make = getattr(layer, "make_layer_cache", None)
            entry = (layer, make() if callable(make) else self._factory(layer))  # keep the layer alive
            self._layers[id(layer)] = entry
        return entry[1]

    @property
    def length(self) -> int:
        """Positions stored (the same in every layer after a full forward; 0 when empty)."""
        return max((c.length for _, c in self._layers.values()), default=0)

    def __len__(self) -> int:
        return len(self._layers)


def layer_cache_for(cache: Any, layer: nn.Module) -> LayerCache | None:
    """The layer cache that ``layer`` should use, from a cache set, a layer cache or None."""
    if cache is None:
        return None
    if hasattr(cache, "for_layer"):
        return cache.for_layer(layer)
    if isinstance(cache, LayerCache):
        return cache
    raise TypeError(f"cache must be a KVCache-like set (for_layer) or a layer cache (append, length), "
                    f"got {type(cache).__name__}")
