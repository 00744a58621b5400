"""Selective scan as a *parallel* (associative) scan in PyTorch — the third form of the S6
recurrence, selected by ``SSMLayer(scan: parallel)``.

The recurrence ``h_t = a_t h_{t-1} + b_t`` with ``a_t = exp(delta_t A)`` and
``b_t = delta_t u_t B_t`` is a composition of affine maps, and composing affine maps is
associative::

    (a1, b1) ∘ (a2, b2) = (a1 a2,  a2 b1 + b2)

so all prefix states can be computed in log2(L) rounds instead of L steps (Hillis–Steele:
in round k every position combines with the one 2^k steps earlier). Doing that over the
whole sequence would hold O(L · Dm · N) pairs per round; instead the sequence is cut into
chunks of ``chunk`` tokens, the scan runs inside each chunk from a zero state, and the state
entering the chunk is added back as ``h_t = h_t^local + (prod_{s<=t} a_s) h_in``, then
carried to the next chunk. Every step is an ordinary autograd op, so gradients come from
autograd.

It computes the same function as :func:`~caramba.kernels.scan_ref.selective_scan_sequential`
(tests check values, final state and gradients agree to float32 round-off). On a CPU it is
*not* the fastest path — the fused loop in :mod:`caramba.kernels.scan_ref` is — it is the
form whose depth is logarithmic in the chunk length, the textbook parallel scan, useful for
checking the others and for devices with much more parallelism than a CPU.
"""

from __future__ import annotations

import torch

from caramba.kernels.scan_ref import _finish, prepare


def _associative_scan(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive scan of ``h_t = a_t h_{t-1} + b_t`` along dim 1 from ``h_{-1} = 0``.

    Returns ``(prod_{s<=t} a_s, h_t)`` for every t, in ceil(log2 L) combine rounds.
    """
    L = a.shape[1]
    offset = 1
    while offset < L:
        a_prev = torch.ones_like(a)
        b_prev = torch.zeros_like(b)
        a_prev[:, offset:] = a[:, :-offset]
        b_prev[:, offset:] = b[:, :-offset]
        b = a * b_prev + b  # (a_prev, b_prev) ∘ (a, b)
        a = a * a_prev
        offset *= 2
    return a, b


def selective_scan_parallel(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, *, z: torch.Tensor | None = None, delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False, state: torch.Tensor | None = None, return_state: bool = False,
    chunk: int = 64,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Chunked associative scan; same contract (layout, options, dtypes) as
    :func:`caramba.kernels.scan_ref.selective_scan`. u, delta, z (Bt, L, Dm); A (Dm, N);
    B, C (Bt, L, N); state (Bt, Dm, N)."""
    if chunk < 1:
        raise ValueError(f"selective_scan_parallel: chunk must be >= 1, got {chunk}")
    cdt, dt, h = prepare(u, delta, A, delta_bias, delta_softplus, state)
    Bt, L, Dm = u.shape
    uf, Af, Bf, Cf = u.to(cdt), A.to(cdt), B.to(cdt), C.to(cdt)
    ys = []
    for start in range(0, L, chunk):
        sl = slice(start, min(L, start + chunk))
        d = dt[:, sl, :, None]                                # (Bt, l, Dm, 1)
        a = torch.exp(d * Af)                                 # (Bt, l, Dm, N)
        b = (d * uf[:, sl, :, None]) * Bf[:, sl, None, :]     # (Bt, l, Dm, N)
        a_cum, h_loc = _associative_scan(a, b)
        hs = h_loc + a_cum * h[:, None]                       # the carried state enters here
        ys.append((hs * Cf[:, sl, None, :]).sum(-1))          # (Bt, l, Dm)
        h = hs[:, -1]
    y = torch.cat(ys, dim=1) if ys else uf.new_zeros(Bt, 0, Dm)
    out = _finish(y, u, D, z)
    return (out, h) if return_state else out
