"""The Triton kernels as ``torch.library`` custom ops, and the entry points the dispatch table names.

This module: norms, RoPE and the gated activations; :mod:`caramba.kernels.library_attn`
(attention, quantised-KV decode) and :mod:`caramba.kernels.library_loss` (cross-entropy)
follow the same pattern.

Two ways to run one kernel, chosen per call by whether ``torch.compile`` is tracing:

* **eager** (``torch.compiler.is_compiling()`` is False): the kernel module's own
  ``torch.autograd.Function`` (e.g. :class:`caramba.kernels.norms.NormFunction`). It is the
  cheapest path on the CPU side: one Python autograd node, no dispatcher round trip.
* **compiled** (Dynamo is tracing): ``torch.ops.caramba.*``, registered here with
  :func:`torch.library.custom_op`. To Dynamo, AOTAutograd and Inductor each op is one
  opaque node: its output shapes come from a ``register_fake`` function (which also runs
  the kernel's input checks, so a bad call fails at trace time with the same
  :class:`~caramba.kernels.checks.KernelInputError`), its gradient from
  ``register_autograd``, whose backward calls the ``*_bwd`` op. Inductor never sees —
  and so never re-compiles — the Triton source; the model compiles with no graph break.

Both paths launch the same launcher functions, so they compute identical values. The ops
have no device restriction: on CUDA they launch compiled kernels; under
``TRITON_INTERPRET=1`` the same code runs on CPU tensors (how the CPU tests compile them).

    y = torch.ops.caramba.norm_fwd(x, w, None, 1e-6, True)[0]   # what a compiled graph calls
    y = library.rms_norm(x, w, 1e-6)                              # what caramba.kernels.ops calls
"""

from __future__ import annotations

from typing import Any

import torch
from torch.library import custom_op

from caramba.kernels import glu, norms, rope
from caramba.kernels.checks import fail

_compiling = torch.compiler.is_compiling


def _stat(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _none_if(absent: bool, t: torch.Tensor) -> torch.Tensor | None:
    return None if absent else t


def _nothing(like: torch.Tensor) -> torch.Tensor:
    """The placeholder output where an op has nothing to return (custom ops return tensors)."""
    return like.new_empty(0)


# --- RMSNorm / LayerNorm ---------------------------------------------------------------

@custom_op("caramba::norm_fwd", mutates_args=())
def norm_fwd(x: torch.Tensor, w: torch.Tensor | None, b: torch.Tensor | None, eps: float,
             is_rms: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(y, mean, rstd)``; mean is empty for RMSNorm."""
    y, _, mean, rstd = norms.norm_forward(x, w, b, eps, is_rms)
    return y, (_nothing(rstd) if is_rms else mean), rstd


@norm_fwd.register_fake
def _(x, w, b, eps, is_rms):
    norms.check_inputs("rms_norm" if is_rms else "layer_norm", x, w, b)
    out = x.dtype if w is None else torch.promote_types(x.dtype, w.dtype)
    stat = _stat(x.dtype)
    mean = x.new_empty(0 if is_rms else x.shape[:-1].numel(), dtype=stat)
    return x.new_empty(x.shape, dtype=out), mean, x.new_empty(x.shape[:-1].numel(), dtype=stat)


@custom_op("caramba::norm_bwd", mutates_args=())
def norm_bwd(dy: torch.Tensor, x: torch.Tensor, w: torch.Tensor | None, mean: torch.Tensor, rstd: torch.Tensor,
             has_b: bool, is_rms: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(dx, dw, db)`` with empty placeholders for an absent weight / bias."""
    x2 = x.reshape(-1, x.shape[-1])
    x2 = x2 if x2.stride(-1) == 1 else x2.contiguous()
    dx, dw, db = norms.norm_backward(dy, x2, w, has_b, rstd if is_rms else mean.reshape(-1), rstd.reshape(-1),
                                     is_rms)
    return dx.reshape(x.shape), (dw if dw is not None else _nothing(x)), (db if db is not None else _nothing(x))


@norm_bwd.register_fake
def _(dy, x, w, mean, rstd, has_b, is_rms):
    C = x.shape[-1]
    pdt = w.dtype if w is not None else x.dtype
    return (x.new_empty(x.shape), x.new_empty(C, dtype=pdt) if w is not None else x.new_empty(0),
            x.new_empty(C, dtype=pdt) if has_b else x.new_empty(0))


def _norm_setup(ctx: Any, inputs: tuple, output: tuple) -> None:
    x, w, b, _, is_rms = inputs
    ctx.mark_non_differentiable(output[1], output[2])
    ctx.save_for_backward(x, w, output[1], output[2])
    ctx.is_rms, ctx.b_dtype = is_rms, None if b is None else b.dtype


def _norm_backward(ctx: Any, dy: torch.Tensor, _dmean: Any, _drstd: Any) -> tuple:
    x, w, mean, rstd = ctx.saved_tensors
    has_b = ctx.b_dtype is not None
    dx, dw, db = torch.ops.caramba.norm_bwd(dy, x, w, mean, rstd, has_b, ctx.is_rms)
    return dx, _none_if(w is None, dw), (db.to(ctx.b_dtype) if has_b else None), None, None


norm_fwd.register_autograd(_norm_backward, setup_context=_norm_setup)


def rms_norm(x: torch.Tensor, weight: torch.Tensor | None, eps: float) -> torch.Tensor:
    """RMSNorm (Triton); contract of :func:`caramba.kernels.ops.rms_norm`."""
    if _compiling():
        return torch.ops.caramba.norm_fwd(x, weight, None, eps, True)[0]
    return norms.NormFunction.apply(x, weight, None, eps, True)


def layer_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float) -> torch.Tensor:
    """LayerNorm (Triton); contract of :func:`caramba.kernels.ops.layer_norm`."""
    if _compiling():
        return torch.ops.caramba.norm_fwd(x, weight, bias, eps, False)[0]
    return norms.NormFunction.apply(x, weight, bias, eps, False)


# --- RoPE ----------------------------------------------------------------------------

@custom_op("caramba::rope", mutates_args=())
def rope_op(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, sign: float) -> torch.Tensor:
    """Rotate by +angle (sign 1, forward) or -angle (sign -1, the backward)."""
    rope.check_inputs(x, cos, sin)
    return rope.rope_launch(x, cos.contiguous(), sin.contiguous(), sign)


@rope_op.register_fake
def _(x, cos, sin, sign):
    rope.check_inputs(x, cos, sin)
    return x.new_empty(x.shape)


def _rope_setup(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
    ctx.save_for_backward(inputs[1], inputs[2])


def _rope_backward(ctx: Any, dy: torch.Tensor) -> tuple:
    cos, sin = ctx.saved_tensors
    dy = dy if dy.stride(-1) == 1 else dy.contiguous()
    return torch.ops.caramba.rope(dy, cos, sin, -1.0), None, None, None


rope_op.register_autograd(_rope_backward, setup_context=_rope_setup)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE (Triton); contract of :func:`caramba.kernels.ops.apply_rope`."""
    if _compiling():
        if cos.requires_grad or sin.requires_grad:
            raise fail("apply_rope", "cos/sin require grad; the kernel gives the tables no gradient",
                       "build the tables under torch.no_grad() (they are fixed buffers)")
        return torch.ops.caramba.rope(x, cos, sin, 1.0)
    return rope.RoPEFunction.apply(x, cos, sin)


# --- SwiGLU / GEGLU ------------------------------------------------------------------

@custom_op("caramba::glu_fwd", mutates_args=())
def glu_fwd(gate: torch.Tensor, up: torch.Tensor, gelu: bool) -> torch.Tensor:
    return glu.glu_forward(gate, up, gelu)


@glu_fwd.register_fake
def _(gate, up, gelu):
    glu.check_inputs("geglu" if gelu else "swiglu", gate, up)
    return gate.new_empty(gate.shape)


@custom_op("caramba::glu_bwd", mutates_args=())
def glu_bwd(dy: torch.Tensor, gate: torch.Tensor, up: torch.Tensor, gelu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    return glu.glu_backward(dy, gate.contiguous(), up.contiguous(), gelu)


@glu_bwd.register_fake
def _(dy, gate, up, gelu):
    return gate.new_empty(gate.shape), up.new_empty(up.shape)


def _glu_setup(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
    ctx.save_for_backward(inputs[0], inputs[1])
    ctx.gelu = inputs[2]


def _glu_backward(ctx: Any, dy: torch.Tensor) -> tuple:
    gate, up = ctx.saved_tensors
    dg, du = torch.ops.caramba.glu_bwd(dy, gate, up, ctx.gelu)
    return dg, du, None


glu_fwd.register_autograd(_glu_backward, setup_context=_glu_setup)


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up (Triton)."""
    return torch.ops.caramba.glu_fwd(gate, up, False) if _compiling() else glu.GLUFunction.apply(gate, up, False)


def geglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """gelu_tanh(gate) * up (Triton)."""
    return torch.ops.caramba.glu_fwd(gate, up, True) if _compiling() else glu.GLUFunction.apply(gate, up, True)
