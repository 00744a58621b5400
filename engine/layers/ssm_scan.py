"""Selective-scan math for :mod:`caramba.engine.layers.ssm`, written twice on purpose.

The selective state-space recurrence (Mamba, Gu & Dao 2023) over a sequence is::

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t       # state (B, Di, N)
    y_t = <C_t, h_t> + D * u_t                                    # output (B, Di)

Shapes: u, delta (B, T, Di); A (Di, N) (negative reals); B, C (B, T, N); D (Di,).

* :func:`selective_scan_sequential` is the obviously-correct reference: a Python loop
  over time. It is the definition the parallel version is tested against.
* :func:`selective_scan_chunked` is the fast form: the sequence is cut into chunks of
  ``chunk`` steps; inside a chunk the linear recurrence ``h_t = a_t h_{t-1} + b_t`` is
  solved with a log-depth associative (Hillis-Steele) scan over the pairs ``(a, b)``
  whose combine is ``(a1, b1) . (a2, b2) = (a1 a2, a2 b1 + b2)``; the state is carried
  from chunk to chunk. Memory is O(B * chunk * Di * N) instead of O(B * T * Di * N).

Both return ``(y, h_last)`` so prefill can hand the final state to decoding, and both
accept an initial ``state`` so decoding can resume. All math is in float32.
"""

from __future__ import annotations

import torch


def _check(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> None:
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(f"selective scan: u and delta must both be (B, T, Di); got {tuple(u.shape)} and {tuple(delta.shape)}")
    if A.dim() != 2 or A.shape[0] != u.shape[-1]:
        raise ValueError(f"selective scan: A must be (Di, N) with Di={u.shape[-1]}; got {tuple(A.shape)}")
    want = (u.shape[0], u.shape[1], A.shape[1])
    if tuple(B.shape) != want or tuple(C.shape) != want:
        raise ValueError(f"selective scan: B and C must be {want}; got {tuple(B.shape)} and {tuple(C.shape)}")


def selective_scan_sequential(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference scan: one step at a time. Returns y (B, T, Di) and the last state (B, Di, N)."""
    _check(u, delta, A, B, C)
    Bsz, T, Di = u.shape
    N = A.shape[1]
    uf, df, Af, Bf, Cf = u.float(), delta.float(), A.float(), B.float(), C.float()
    h = state.float() if state is not None else u.new_zeros(Bsz, Di, N, dtype=torch.float32)
    ys = []
    for t in range(T):
        dA = torch.exp(df[:, t, :, None] * Af)                          # (B, Di, N)
        dBu = df[:, t, :, None] * Bf[:, t, None, :] * uf[:, t, :, None]  # (B, Di, N)
        h = dA * h + dBu
        ys.append((h * Cf[:, t, None, :]).sum(-1))                      # (B, Di)
    y = torch.stack(ys, dim=1) if ys else uf.new_zeros(Bsz, 0, Di)
    if D is not None:
        y = y + uf * D.float()
    return y.to(u.dtype), h


def _associative_scan(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inclusive scan of h_t = a_t h_{t-1} + b_t along dim 1 with h_{-1} = 0.

    Returns (prod a_{0..t}, h_t) for every t. Hillis-Steele: log2(L) rounds, each
    combining every element with the one ``offset`` steps earlier.
    """
    L = a.shape[1]
    offset = 1
    while offset < L:
        a_prev = torch.ones_like(a)
        b_prev = torch.zeros_like(b)
        a_prev[:, offset:] = a[:, :-offset]
        b_prev[:, offset:] = b[:, :-offset]
        b = a * b_prev + b   # combine (a_prev, b_prev) . (a, b)
        a = a * a_prev
        offset *= 2
    return a, b


def selective_scan_chunked(
    u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
    D: torch.Tensor | None = None, state: torch.Tensor | None = None, chunk: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Parallel scan (associative inside chunks, carried state across chunks).

    Same contract as :func:`selective_scan_sequential`; agrees with it to float32
    round-off.
    """
    _check(u, delta, A, B, C)
    if chunk < 1:
        raise ValueError(f"selective scan: chunk must be >= 1, got {chunk}")
    Bsz, T, Di = u.shape
    N = A.shape[1]
    uf, df, Af, Bf, Cf = u.float(), delta.float(), A.float(), B.float(), C.float()
    h = state.float() if state is not None else u.new_zeros(Bsz, Di, N, dtype=torch.float32)
    ys = []
    for start in range(0, T, chunk):
        sl = slice(start, min(T, start + chunk))
        d = df[:, sl, :, None]                                   # (B, L, Di, 1)
        a = torch.exp(d * Af)                                    # (B, L, Di, N)
        b = d * Bf[:, sl, None, :] * uf[:, sl, :, None]          # (B, L, Di, N)
        a_cum, h_loc = _associative_scan(a, b)                   # states from a zero start
        hs = h_loc + a_cum * h[:, None]                          # add the carried state
        ys.append((hs * Cf[:, sl, None, :]).sum(-1))             # (B, L, Di)
        h = hs[:, -1]
    y = torch.cat(ys, dim=1) if ys else uf.new_zeros(Bsz, 0, Di)
    if D is not None:
        y = y + uf * D.float()
    return y.to(u.dtype), h
