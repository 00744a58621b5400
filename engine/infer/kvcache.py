"""Typed KV caches for inference: per-tensor storage kinds, exact byte accounting.

The layers' cache protocol (:mod:`caramba.engine.layers.cache`) is ``length`` plus
``append(k, v) -> (k_all, v_all)``. The caches here implement it with storage chosen per
tensor:

* :class:`LayerKVCache` — ``{k, v}`` for standard/GQA attention;
* :class:`DecoupledLayerKVCache` — ``{k_sem, k_geo, v}`` for DBA, which hands the cache
  ``k = [k_sem | k_geo]``; the two key parts are stored separately (e.g. the semantic
  keys in ``q4_0`` and the RoPE'd geometric keys in ``fp16``) and concatenated again on
  the way out.

Each tensor is a :class:`KVTensor` of one ``kind`` (``fp32 | fp16 | q8_0 | q4_0``,
see :mod:`caramba.engine.infer.quant`). With ``residual_len > 0`` the most recent
``residual_len`` positions of a quantised tensor stay in fp16 and are quantised only
when they age out (KIVI-style: recent tokens get the most attention). ``nbytes`` is the
exact storage of the positions held (data + scales + residual), not the buffer capacity.

Attention reads a dequantised copy (fp32, cast to the keys' dtype) each call, except for
*fused decode*: when a :class:`LayerKVCache` stores keys and values in the same
``q8_0``/``q4_0`` kind with ``qblock = 32``, no fp16 residual window and a head dim that
is a multiple of 32, a decode step of at most 16 new tokens asks
:meth:`LayerKVCache.fused_decode_format` (a capability check, not a fallback), stores the
new keys/values with :meth:`LayerKVCache.store` and attends with
``caramba.kernels.ops.decode_attention_quantized`` over :meth:`LayerKVCache.quantized_blocks`
(in-place views of the blocks: the Triton split-K kernel on CUDA, the block-wise PyTorch
reference on CPU). ``fused_decode=False`` keeps the dequantise + SDPA path (what the fused
path is tested against). DBA's :class:`DecoupledLayerKVCache` always dequantises: its
scores sum two separately stored key parts whose widths (``ds``, ``dg``) differ from the
values', which the kernel's single ``(D, D)`` K/V layout cannot read. ``truncate(n)`` drops positions ``>= n`` (speculative
decoding rolls rejected draft tokens back with it).
"""

from __future__ import annotations

import torch

from caramba.engine.errors import CarambaError
from caramba.engine.infer.quant import bytes_per_vector, check_kind, dequantize, quantize, storage_shape


class KVTensor:
    """One cached tensor ``(B, H, S, D)`` stored as ``kind``; grows by doubling."""

    def __init__(self, kind: str = "fp32", *, qblock: int = 32, residual_len: int = 0) -> None:
        check_kind(kind, qblock)
        if residual_len < 0:
            raise CarambaError(f"residual_len must be >= 0, got {residual_len}", fix="use 0 (no fp16 window) or e.g. 64")
        self.kind, self.qblock = kind, qblock
        self.residual_len = residual_len if kind in ("q8_0", "q4_0") else 0
        self._data: torch.Tensor | None = None     # (B, H, cap, Dd)
        self._scales: torch.Tensor | None = None   # (B, H, cap, nblocks) fp16
        self._stored = 0                           # positions in _data
        self._tail: torch.Tensor | None = None     # (B, H, r, D) fp16, the unquantised recent positions
        self.shape: tuple[int, int, int] | None = None  # (B, H, D)

    @property
    def length(self) -> int:
        return self._stored + (self._tail.shape[2] if self._tail is not None else 0)

    def _store(self, x: torch.Tensor) -> None:
        B, H, T, D = x.shape
        if T == 0:
            return
        data, scales = quantize(x, self.kind, self.qblock)
        if self._data is None:
            (dd, dt), sc = storage_shape(self.kind, D, self.qblock)
            cap = max(T, 16)
            self._data = x.new_empty((B, H, cap, dd), dtype=dt)
            self._scales = x.new_empty((B, H, cap, sc[0]), dtype=sc[1]) if sc else None
        need = self._stored + T
        if need > self._data.shape[2]:
            cap = max(need, 2 * self._data.shape[2])
            grown = self._data.new_empty((*self._data.shape[:2], cap, self._data.shape[3]))
            grown[:, :, : self._stored] = self._data[:, :, : self._stored]
            self._data = grown
            if self._scales is not None:
                gs = self._scales.new_empty((*self._scales.shape[:2], cap, self._scales.shape[3]))
                gs[:, :, : self._stored] = self._scales[:, :, : self._stored]
                self._scales = gs
        self._data[:, :, self._stored:need] = data
        if self._scales is not None and scales is not None:
            self._scales[:, :, self._stored:need] = scales
        self._stored = need

    def append(self, x: torch.Tensor) -> None:
        """Add ``x (B, H, T, D)`` at the end."""
        B, H, _, D = x.shape
        if self.shape is None:
            self.shape = (B, H, D)
        elif self.shape != (B, H, D):
            raise CarambaError(f"cache holds (B, H, D) = {self.shape}, got {(B, H, D)}",
                               fix="use a fresh cache for a new batch or model")
        if not self.residual_len:
            self._store(x)
            return
        tail = x.to(torch.float16) if self._tail is None else torch.cat([self._tail, x.to(torch.float16)], dim=2)
        spill = tail.shape[2] - self.residual_len
        if spill > 0:
            self._store(tail[:, :, :spill].float())
            tail = tail[:, :, spill:]
        self._tail = tail.contiguous()

    def read(self) -> torch.Tensor:
        """All positions, fp32 ``(B, H, length, D)``."""
        if self.shape is None:
            raise CarambaError("read from an empty cache")
        parts = []
        if self._data is not None and self._stored:
            scales = self._scales[:, :, : self._stored] if self._scales is not None else None
            parts.append(dequantize(self._data[:, :, : self._stored], scales, self.kind, self.shape[2], self.qblock))
        if self._tail is not None and self._tail.shape[2]:
            parts.append(self._tail.float())
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)

    def truncate(self, n: int) -> None:
        """Keep positions ``[0, n)``."""
        if n < 0 or n > self.length:
            raise CarambaError(f"cannot truncate a cache of {self.length} positions to {n}")
        if n <= self._stored:
            self._stored = n
            self._tail = None if self._tail is None else self._tail[:, :, :0]
        else:
            assert self._tail is not None
            self._tail = self._tail[:, :, : n - self._stored]

    def blocks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(data, scales)`` views of the quantised positions (no tail), in place: no copy."""
        if self._data is None or self._scales is None or self._tail is not None:
            raise CarambaError(f"a {self.kind} cache with an fp16 tail or no quantised positions has no block view")
        return self._data[:, :, : self._stored], self._scales[:, :, : self._stored]

    @property
    def nbytes(self) -> int:
        """Exact bytes of the positions held: quantised part (data + scales) + fp16 tail."""
        if self.shape is None:
            return 0
        B, H, D = self.shape
        tail = self._tail.shape[2] if self._tail is not None else 0
        return B * H * (self._stored * bytes_per_vector(self.kind, D, self.qblock) + tail * 2 * D)


class LayerKVCache:
    """``{k, v}`` of one attention layer; the layers' cache protocol (``length``, ``append``)."""

    def __init__(self, k_kind: str = "fp32", v_kind: str = "fp32", *, qblock: int = 32, residual_len: int = 0,
                 fused_decode: bool = True) -> None:
        self.k = KVTensor(k_kind, qblock=qblock, residual_len=residual_len)
        self.v = KVTensor(v_kind, qblock=qblock, residual_len=residual_len)
        self.fused_decode = fused_decode

    @property
    def length(self) -> int:
        return self.v.length

    def _check(self, k: torch.Tensor, v: torch.Tensor) -> None:
        if k.shape[:3] != v.shape[:3]:
            raise CarambaError(f"keys {tuple(k.shape)} and values {tuple(v.shape)} must agree on (B, Hkv, T)")

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(k, v)
        self.k.append(k)
        self.v.append(v)
        return self.k.read().to(k.dtype), self.v.read().to(v.dtype)

    def fused_decode_format(self, q: torch.Tensor, k: torch.Tensor) -> str | None:
        """``'q8_0'``/``'q4_0'`` when attention of ``q (B, H, T, D)`` (new keys ``k (B, Hkv, T, D)``)
        can read this cache's quantised blocks directly (see the module docstring), else None."""
        kind, (B, H, T, D), Hkv = self.k.kind, q.shape, k.shape[1]
        same = self.v.kind == kind and kind in ("q8_0", "q4_0") and self.k.qblock == 32 and not self.k.residual_len
        return kind if (self.fused_decode and same and D % 32 == 0 and k.shape[3] == D and 1 <= T <= 16
                        and (H // Hkv) * T <= 64) else None

    def store(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Append without reading anything back (the fused decode path reads the blocks)."""
        self._check(k, v)
        self.k.append(k)
        self.v.append(v)

    def quantized_blocks(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(k_data, k_scales, v_data, v_scales)`` in the layout of ``kernels.reference.quantize_kv``."""
        return (*self.k.blocks(), *self.v.blocks())

    def truncate(self, n: int) -> None:
        for t in self.tensors().values():
            t.truncate(n)

    def tensors(self) -> dict[str, KVTensor]:
        return {"k": self.k, "v": self.v}

    @property
    def nbytes(self) -> int:
        return sum(t.nbytes for t in self.tensors().values())


class DecoupledLayerKVCache(LayerKVCache):
    """``{k_sem, k_geo, v}`` of one DBA layer; ``append`` receives ``k = [k_sem | k_geo]``."""

    def __init__(self, sem_width: int, *, k_sem_kind: str = "fp32", k_geo_kind: str = "fp32", v_kind: str = "fp32",
                 qblock: int = 32, residual_len: int = 0) -> None:
        self.sem_width = sem_width  # per-head semantic key width: k[..., :sem_width] is k_sem
        self.k_sem = KVTensor(k_sem_kind, qblock=qblock, residual_len=residual_len)
        self.k_geo = KVTensor(k_geo_kind, qblock=qblock, residual_len=residual_len)
        self.v = KVTensor(v_kind, qblock=qblock, residual_len=residual_len)

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(k, v)
        if k.shape[3] <= self.sem_width:
            raise CarambaError(f"DBA keys of width {k.shape[3]} cannot hold a semantic part of {self.sem_width}")
        self.k_sem.append(k[..., : self.sem_width])
        self.k_geo.append(k[..., self.sem_width:])
        self.v.append(v)
        k_all = torch.cat([self.k_sem.read(), self.k_geo.read()], dim=-1)
        return k_all.to(k.dtype), self.v.read().to(v.dtype)

    def fused_decode_format(self, q: torch.Tensor, k: torch.Tensor) -> str | None:
        """Never: the kernel reads one ``(D, D)`` K/V layout, DBA stores two key parts (module docstring)."""
        return None

    def store(self, k: torch.Tensor, v: torch.Tensor) -> None:
        self.append(k, v)

    def tensors(self) -> dict[str, KVTensor]:
        return {"k_sem": self.k_sem, "k_geo": self.k_geo, "v": self.v}
