"""Fused gated activations: SwiGLU ``silu(gate) * up`` and GEGLU ``gelu_tanh(gate) * up``.

One elementwise kernel each way. Forward reads gate and up once and writes the output;
backward reads dy, gate and up once, recomputes the activation in registers (cheaper
than saving it) and writes both gradients:

    d_up   = dy * act(gate)
    d_gate = dy * up * act'(gate)

silu'(g) = s + g s (1 - s) with s = sigmoid(g); gelu_tanh'(g) = 0.5 (1 + t)
+ 0.5 g (1 - t^2) k (1 + 3 c g^2) with t = tanh(k (g + c g^3)), k = sqrt(2/pi),
c = 0.044715. Compute is fp32 (fp64 for fp64 inputs).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from caramba.kernels.checks import SignatureCache, check_dtype, check_same_device, fail
from caramba.kernels.launch import compute_dtype

_BLOCK = 2048  # elements per program: 4 KiB of bf16 per operand, enough in flight per SM


@triton.jit
def _act(g, GELU: tl.constexpr):
    """Returns (act(g), act'(g))."""
    if GELU:
        k = 0.7978845608028654  # sqrt(2 / pi)
        inner = k * (g + 0.044715 * g * g * g)
        t = 2.0 * tl.sigmoid(2.0 * inner) - 1.0  # tanh(inner)
        a = 0.5 * g * (1.0 + t)
        da = 0.5 * (1.0 + t) + 0.5 * g * (1.0 - t * t) * k * (1.0 + 3.0 * 0.044715 * g * g)
    else:
        s = tl.sigmoid(g)
        a = g * s
        da = s + g * s * (1.0 - s)
    return a, da


@triton.jit
def _glu_fwd_kernel(
    G,  # (n,) gate, contiguous
    U,  # (n,) up, contiguous
    Y,  # (n,) output act(gate) * up
    n, GELU: tl.constexpr, BLOCK: tl.constexpr, COMPUTE: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(G + offs, mask=mask, other=0.0).to(COMPUTE)
    u = tl.load(U + offs, mask=mask, other=0.0).to(COMPUTE)
    a, _ = _act(g, GELU)
    tl.store(Y + offs, (a * u).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _glu_bwd_kernel(
    DY,  # (n,) upstream gradient
    G,  # (n,) gate
    U,  # (n,) up
    DG,  # (n,) gate gradient (output)
    DU,  # (n,) up gradient (output)
    n, GELU: tl.constexpr, BLOCK: tl.constexpr, COMPUTE: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    dy = tl.load(DY + offs, mask=mask, other=0.0).to(COMPUTE)
    g = tl.load(G + offs, mask=mask, other=0.0).to(COMPUTE)
    u = tl.load(U + offs, mask=mask, other=0.0).to(COMPUTE)
    a, da = _act(g, GELU)
    tl.store(DG + offs, (dy * u * da).to(DG.dtype.element_ty), mask=mask)
    tl.store(DU + offs, (dy * a).to(DU.dtype.element_ty), mask=mask)


def check_inputs(op: str, gate: torch.Tensor, up: torch.Tensor) -> None:
    check_same_device(op, gate=gate, up=up)
    check_dtype(op, "gate", gate)
    check_dtype(op, "up", up)
    if gate.shape != up.shape or gate.dtype != up.dtype:
        raise fail(op, f"gate {tuple(gate.shape)} {gate.dtype} and up {tuple(up.shape)} {up.dtype} differ",
                   "split one projection into two equal halves of the same dtype")


_checked = SignatureCache()


def glu_forward(gate: torch.Tensor, up: torch.Tensor, gelu: bool) -> torch.Tensor:
    _checked.get((gate.shape, gate.dtype, gate.device, up.shape, up.dtype, up.device),
                 lambda: check_inputs("geglu" if gelu else "swiglu", gate, up))
    g, u = gate.contiguous(), up.contiguous()
    y = torch.empty(g.shape, dtype=g.dtype, device=g.device)
    n = g.numel()
    if n:
        _glu_fwd_kernel[((n + _BLOCK - 1) // _BLOCK,)](g, u, y, n, GELU=gelu, BLOCK=_BLOCK,
                                                      COMPUTE=compute_dtype(g.dtype), num_warps=8)
    return y


def glu_backward(dy: torch.Tensor, g: torch.Tensor, u: torch.Tensor, gelu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients for contiguous ``g`` and ``u`` (the forward's saved inputs)."""
    dy = dy.contiguous()
    dg = torch.empty(g.shape, dtype=g.dtype, device=g.device)
    du = torch.empty(u.shape, dtype=u.dtype, device=u.device)
    n = g.numel()
    if n:
        _glu_bwd_kernel[((n + _BLOCK - 1) // _BLOCK,)](dy, g, u, dg, du, n, GELU=gelu, BLOCK=_BLOCK,
                                                      COMPUTE=compute_dtype(g.dtype), num_warps=8)
    return dg, du


class GLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gate, up, gelu: bool):  # type: ignore[override]
        g, u = gate.contiguous(), up.contiguous()  # one copy of a strided half, shared with the backward
        ctx.save_for_backward(g, u)
        y = glu_forward(g, u, gelu)
        ctx.gelu = gelu
        return y

    @staticmethod
    def backward(ctx, dy):  # type: ignore[override]
        g, u = ctx.saved_tensors
        dg, du = glu_backward(dy, g, u, ctx.gelu)
        return dg, du, None


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up through the fused Triton kernels."""
    return GLUFunction.apply(gate, up, False)


def geglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """gelu_tanh(gate) * up through the fused Triton kernels."""
    return GLUFunction.apply(gate, up, True)
