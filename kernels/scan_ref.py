"""Selective scan (Mamba S6) in PyTorch: the definition and the fast CPU path.

The recurrence, per batch row b, channel d and state index n::

    delta_t = softplus(delta_t + bias)  if delta_softplus  else  delta_t + bias
    h_t     = exp(delta_t * A) * h_{t-1} + delta_t * u_t * B_t         # h: (Bt, Dm, N)
    y_t     = <C_t, h_t> + D * u_t
    out_t   = y_t * silu(z_t)                                           # when z is given

Layout (the one :class:`~caramba.engine.layers.ssm.SSMLayer` produces, no transposes):
u, delta, z ``(Bt, L, Dm)``; A ``(Dm, N)``; B, C ``(Bt, L, N)`` (input-dependent);
D, bias ``(Dm,)``; ``state`` (the h before the first token) ``(Bt, Dm, N)``.

Two implementations with the same contract:

* :func:`selective_scan_sequential` — the obviously-correct definition, a Python loop
  whose every step autograd records. Tests compare everything against it.
* :func:`selective_scan` — what the dispatch table runs on CPU/MPS. The same
  arithmetic in the same order, but the loop over time is one fused ``addcmul`` per step
  into a preallocated time-major buffer (no autograd graph), and the backward is written
  out: a reverse loop for the state adjoint ``dh_t = C_t dy_t + exp(delta_{t+1} A) dh_{t+1}``
  and then every parameter gradient as a handful of whole-sequence tensor ops
  (see :class:`_ScanCore`). Exact, not an approximation; O(L) tiny Python steps plus
  O(1) large ops, versus O(L) autograd nodes for the definition.

Everything is computed in float32 (float64 for float64 inputs); the result has u's dtype
and the final state is float32 (float64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _prep_delta(delta: torch.Tensor, bias: torch.Tensor | None, softplus: bool, cdt: torch.dtype) -> torch.Tensor:
    dt = delta.to(cdt)
    if bias is not None:
        dt = dt + bias.to(cdt)
    return F.softplus(dt) if softplus else dt


def _finish(y: torch.Tensor, u: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None) -> torch.Tensor:
    if D is not None:
        y = y + u.to(y.dtype) * D.to(y.dtype)
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(u.dtype)


def _compute_dtype(u: torch.Tensor) -> torch.dtype:
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def prepare(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, delta_bias: torch.Tensor | None,
            delta_softplus: bool, state: torch.Tensor | None) -> tuple[torch.dtype, torch.Tensor, torch.Tensor]:
    """What every PyTorch form starts with: ``(compute dtype, delta after bias/softplus, h0)``."""
    cdt = _compute_dtype(u)
    dt = _prep_delta(delta, delta_bias, delta_softplus, cdt)
    Bt, _, Dm = u.shape
    h0 = state.to(cdt) if state is not None else u.new_zeros(Bt, Dm, A.shape[1], dtype=cdt)
    return cdt, dt, h0


def selective_scan_sequential(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, *, z: torch.Tensor | None = None, delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False, state: torch.Tensor | None = None, return_state: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The definition: one autograd-recorded step per token. Same contract as :func:`selective_scan`."""
    cdt, dt, h = prepare(u, delta, A, delta_bias, delta_softplus, state)
    Bt, L, Dm = u.shape
    uf, Af, Bf, Cf = u.to(cdt), A.to(cdt), B.to(cdt), C.to(cdt)
    ys = []
    for t in range(L):
        dA = torch.exp(dt[:, t, :, None] * Af)                           # (Bt, Dm, N)
        h = dA * h + (dt[:, t] * uf[:, t])[:, :, None] * Bf[:, t, None, :]
        ys.append((h * Cf[:, t, None, :]).sum(-1))                       # (Bt, Dm)
    y = torch.stack(ys, dim=1) if ys else uf.new_zeros(Bt, 0, Dm)
    out = _finish(y, u, D, z)
    return (out, h) if return_state else out


class _ScanCore(torch.autograd.Function):
    """y_t = <C_t, h_t>, h_t = exp(dt_t A) h_{t-1} + dt_t u_t B_t over the whole sequence.

    Time-major, contiguous inputs in the compute dtype: u, dt (L, Bt, Dm); A (Dm, N);
    B, C (L, Bt, N); h0 (Bt, Dm, N). Outputs y (L, Bt, Dm) and h_last (Bt, Dm, N).
    H[t] (Bt, Dm, N) is a contiguous slab, so each step is one in-place addcmul.
    """

    @staticmethod
    def forward(ctx, u, dt, A, B, C, h0):  # type: ignore[override]
        L, Bt, Dm = u.shape
        dA = torch.exp(dt[..., None] * A)                                    # (L, Bt, Dm, N)
        H = (dt * u)[..., None] * B[:, :, None, :]                           # dt u B, becomes h
        if L:
            H[0].addcmul_(dA[0], h0)
        for t in range(1, L):
            H[t].addcmul_(dA[t], H[t - 1])                                   # h_t = dA_t h_{t-1} + dt u B
        y = torch.einsum("lbdn,lbn->lbd", H, C)                              # (L, Bt, Dm)
        h_last = H[-1].clone() if L else h0.clone()
        ctx.save_for_backward(u, dt, A, B, C, h0, H, dA)  # dA kept: CPU memory is cheaper than exp
        return y, h_last

    @staticmethod
    def backward(ctx, gy, gh):  # type: ignore[override]
        u, dt, A, B, C, h0, H, dA = ctx.saved_tensors
        L, Bt, Dm = u.shape
        if L == 0:
            return None, None, torch.zeros_like(A), None, None, gh
        gy = torch.zeros_like(u) if gy is None else gy.contiguous()
        G = gy[..., None] * C[:, :, None, :]                                 # local adjoint C_t dy_t
        if gh is not None:
            G[-1].add_(gh)
        for t in range(L - 2, -1, -1):
            G[t].addcmul_(dA[t + 1], G[t + 1])                               # dh_t += dA_{t+1} dh_{t+1}
        dh0 = dA[0] * G[0]
        GB = torch.einsum("lbdn,lbn->lbd", G, B)                             # sum_n dh B
        d_B = ((dt * u)[:, :, None, :] @ G).squeeze(-2)                      # (L, Bt, N)
        d_C = (gy[:, :, None, :] @ H).squeeze(-2)                            # (L, Bt, N)
        W = dA * G                                                           # dh_t * exp(dt_t A) ...
        W[1:].mul_(H[:-1])                                                   # ... * h_{t-1}
        W[0].mul_(h0)
        d_A = (W * dt[..., None]).sum((0, 1))                                # (Dm, N)
        d_dt = (W * A).sum(-1) + u * GB
        return dt * GB, d_dt, d_A, d_B, d_C, dh0


def selective_scan(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, *, z: torch.Tensor | None = None, delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False, state: torch.Tensor | None = None, return_state: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Fast exact PyTorch selective scan (same contract as :func:`caramba.kernels.ops.selective_scan`)."""
    cdt, dt, h0 = prepare(u, delta, A, delta_bias, delta_softplus, state)
    tm = [t.to(cdt).transpose(0, 1).contiguous() for t in (u, dt, B, C)]  # time-major (L, Bt, ...)
    y, h = _ScanCore.apply(tm[0], tm[1], A.to(cdt).contiguous(), tm[2], tm[3], h0.contiguous())
    out = _finish(y.transpose(0, 1), u, D, z)
    return (out, h) if return_state else out
