"""Fused multi-tensor AdamW: one Triton launch updates every parameter of a dtype.

Per element (fp32 math, decoupled weight decay, exactly ``torch.optim.AdamW``'s update):

    p <- p * (1 - lr * wd)
    m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g^2
    p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)

The state ``exp_avg``/``exp_avg_sq`` is fp32 whatever the parameter dtype (bf16 params
keep full-precision moments). Multi-tensor: the launch gets a table of raw addresses
(params, grads, moments) and a program -> (tensor, block) map, so a 300-tensor model is
one kernel, not 300. The bytes it must move are 28 per fp32 parameter (read p, g, m, v;
write p, m, v) and 22 per bf16 parameter.

The state dict has torch's AdamW layout (``step``, ``exp_avg``, ``exp_avg_sq`` per
parameter), so checkpoints move between this and ``torch.optim.AdamW``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import triton
import triton.language as tl

from caramba.kernels.checks import fail, interpreting
from caramba.kernels.launch import tl_dtype

_BLOCK = 2048  # elements per inner step: 8 per thread per stream at 8 warps
_CHUNK = 32 * _BLOCK  # elements per program: amortises the table look-ups over ~1.8 MB of traffic


@triton.jit
def _adamw_update(p_ptr, g_ptr, m_ptr, v_ptr, offs, mask, lr_terms, PDTYPE: tl.constexpr, MASKED: tl.constexpr):
    """One BLOCK of the update; ``MASKED=False`` (a block wholly inside its tensor) lets the
    compiler emit 16-byte vector loads: no per-element mask to respect."""
    beta1, beta2, eps, decay, step_size, bc2_sqrt = lr_terms
    if MASKED:
        p = tl.load(p_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        m = tl.load(m_ptr + offs, mask=mask, other=0.0)
        v = tl.load(v_ptr + offs, mask=mask, other=0.0)
    else:
        p = tl.load(p_ptr + offs).to(tl.float32)
        g = tl.load(g_ptr + offs).to(tl.float32)
        m = tl.load(m_ptr + offs)
        v = tl.load(v_ptr + offs)
    p = p * decay
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    p = p - step_size * m / (tl.sqrt(v) / bc2_sqrt + eps)
    if MASKED:
        tl.store(p_ptr + offs, p.to(PDTYPE), mask=mask)
        tl.store(m_ptr + offs, m, mask=mask)
        tl.store(v_ptr + offs, v, mask=mask)
    else:
        tl.store(p_ptr + offs, p.to(PDTYPE))
        tl.store(m_ptr + offs, m)
        tl.store(v_ptr + offs, v)


@triton.jit
def _adamw_kernel(
    Addr,  # (4, n_tensors) int64 addresses in units of ALIGN bytes: params, grads, exp_avg, exp_avg_sq
    Numel,  # (n_tensors,) int64 elements per tensor
    ProgTensor,  # (n_programs,) int32 which tensor each program updates
    ProgBlock,  # (n_programs,) int32 which CHUNK-sized piece of that tensor
    n_tensors, lr, beta1, beta2, eps, decay, step_size, bc2_sqrt,
    PDTYPE: tl.constexpr, GDTYPE: tl.constexpr, BLOCK: tl.constexpr, CHUNK: tl.constexpr, ALIGN: tl.constexpr,
):
    pid = tl.program_id(0)
    t = tl.load(ProgTensor + pid)
    blk = tl.load(ProgBlock + pid).to(tl.int64)
    n = tl.load(Numel + t)
    # Addresses arrive divided by ALIGN: multiplying back tells the compiler each base is
    # ALIGN-byte aligned, which (with unmasked blocks) allows vectorised loads and stores.
    p_ptr = (tl.load(Addr + t) * ALIGN).to(tl.pointer_type(PDTYPE))
    g_ptr = (tl.load(Addr + n_tensors + t) * ALIGN).to(tl.pointer_type(GDTYPE))
    m_ptr = (tl.load(Addr + 2 * n_tensors + t) * ALIGN).to(tl.pointer_type(tl.float32))
    v_ptr = (tl.load(Addr + 3 * n_tensors + t) * ALIGN).to(tl.pointer_type(tl.float32))
    terms = (beta1, beta2, eps, decay, step_size, bc2_sqrt)
    start = blk * CHUNK
    if start + CHUNK <= n:  # the whole chunk is inside the tensor: no masks
        for sub in range(0, CHUNK, BLOCK):
            offs = start + sub + tl.arange(0, BLOCK)
            _adamw_update(p_ptr, g_ptr, m_ptr, v_ptr, offs, None, terms, PDTYPE, False)
    else:  # the tensor's last chunk
        for sub in range(0, CHUNK, BLOCK):
            offs = start + sub + tl.arange(0, BLOCK)
            _adamw_update(p_ptr, g_ptr, m_ptr, v_ptr, offs, offs < n, terms, PDTYPE, True)


class FusedAdamW(torch.optim.Optimizer):
    """AdamW whose step is one Triton launch per (param dtype, grad dtype) bucket of a group."""

    def __init__(self, params: Iterable[torch.nn.Parameter] | Iterable[dict], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        if lr < 0 or eps < 0 or weight_decay < 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise fail("adamw", f"invalid hyper-parameters lr={lr} betas={betas} eps={eps} weight_decay={weight_decay}",
                       "use lr >= 0, 0 <= beta < 1, eps >= 0, weight_decay >= 0")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self._tables: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self._addrs: dict[tuple, tuple[list[int], tuple[torch.Tensor, int]]] = {}  # grad ptrs, ((4, n) table, align)

    def _block_table(self, numels: tuple[int, ...], device: torch.device):
        """(numel, prog->tensor, prog->block), cached by the tensors' sizes (they never change)."""
        key = (numels, device)
        if key not in self._tables:
            tens, blks = [], []
            for i, n in enumerate(numels):
                nb = triton.cdiv(n, _CHUNK)
                tens += [i] * nb
                blks += range(nb)
            self._tables[key] = (torch.tensor(numels, dtype=torch.int64, device=device),
                                 torch.tensor(tens, dtype=torch.int32, device=device),
                                 torch.tensor(blks, dtype=torch.int32, device=device))
        return self._tables[key]

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            buckets: dict[tuple, list[torch.Tensor]] = {}
            steps: list[torch.Tensor] = []
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise fail("adamw", "sparse gradients are not supported", "use dense embeddings")
                on_device = p.device.type == "cuda" or (p.device.type == "cpu" and interpreting())
                if not on_device or not p.is_contiguous() or not p.grad.is_contiguous():
                    raise fail("adamw", f"parameter {tuple(p.shape)} on {p.device} (contiguous={p.is_contiguous()})",
                               "the fused step needs contiguous CUDA parameters and grads; use torch.optim.AdamW")
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32, memory_format=torch.contiguous_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32,
                                                           memory_format=torch.contiguous_format)
                steps.append(state["step"])
                buckets.setdefault((p.dtype, p.grad.dtype, p.device), []).append(p)
            if steps:  # one host call, not one tensor op per parameter (~10 µs each)
                torch._foreach_add_(steps, 1.0)
            for (pdt, gdt, device), ps in buckets.items():
                self._launch(group, ps, pdt, gdt, device)
        return loss

    def _launch(self, group: dict, ps: list[torch.Tensor], pdt: torch.dtype, gdt: torch.dtype,
                device: torch.device) -> None:
        beta1, beta2 = group["betas"]
        lr, eps, wd = float(group["lr"]), group["eps"], group["weight_decay"]
        step = float(self.state[ps[0]]["step"])
        numel, prog_t, prog_b = self._block_table(tuple(p.numel() for p in ps), device)
        addr, align = self._address_table(ps, device)
        _adamw_kernel[(prog_t.numel(),)](
            addr, numel, prog_t, prog_b, len(ps), lr, beta1, beta2, eps, 1.0 - lr * wd,
            lr / (1.0 - beta1 ** step), math.sqrt(1.0 - beta2 ** step),
            PDTYPE=tl_dtype(pdt), GDTYPE=tl_dtype(gdt), BLOCK=_BLOCK, CHUNK=_CHUNK, ALIGN=align, num_warps=8)

    def _address_table(self, ps: list[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, int]:
        """The (4, n) address table in units of ``align`` bytes (16 when every tensor is
        16-byte aligned, as fresh CUDA allocations are; else 1, and the kernel is compiled
        for unaligned bases); rebuilt (one small copy) only when a pointer moved."""
        fixed = tuple(p.data_ptr() for p in ps) + tuple(self.state[p]["exp_avg"].data_ptr() for p in ps)
        grads = [p.grad.data_ptr() for p in ps]
        cached = self._addrs.get(fixed)
        if cached is not None and cached[0] == grads:
            return cached[1]
        rows = [[p.data_ptr() for p in ps], grads, [self.state[p]["exp_avg"].data_ptr() for p in ps],
                [self.state[p]["exp_avg_sq"].data_ptr() for p in ps]]
        align = 16 if all(a % 16 == 0 for row in rows for a in row) else 1
        table = torch.tensor([[a // align for a in row] for row in rows], dtype=torch.int64).to(device)
        self._addrs[fixed] = (grads, (table, align))
        return table, align
