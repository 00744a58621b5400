"""Backward of the Triton selective scan (:mod:`caramba.kernels.scan`).

One program per (batch row, block of channels), the forward's grid. It walks the chunks
from last to first. Per chunk:

1. recompute the states from the chunk's checkpoint, writing ``h_{t-1}`` for each token
   into the program's own scratch slab (CHUNK x BLOCK_D x BLOCK_N, small enough to stay
   in cache);
2. walk the chunk backwards with the adjoint state ``dh`` in registers::

       dh_t  = C_t dy_t + carry               carry = exp(dt_{t+1} A) dh_{t+1}
       w_t   = dh_t * exp(dt_t A) * h_{t-1}   (the gradient through the decay)
       ddt_t = sum_n (w_t A) + u_t sum_n dh_t B_t      (* sigmoid(delta + bias) for softplus)
       du_t  = dt_t sum_n dh_t B_t + D dy_t
       dB_t  = sum_d dh_t dt_t u_t            dC_t = sum_d dy_t h_t
       dA   += w_t dt_t                       dD += dy_t u_t

   where with a gate ``dy`` is first split into ``dz = dout y sigmoid(z)(1 + z(1 - sigmoid(z)))``
   and ``dy = dout silu(z)`` (y recomputed from h).

Reductions across programs (dB, dC over channel blocks; dA, dD, dbias over the batch)
go to per-program partial buffers that the launcher sums: deterministic, no atomics.
``tl.debug_barrier()`` orders the scratch writes of step 1 before the reads of step 2
(and the reads before the next chunk overwrites them) across the program's threads.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from caramba.kernels.launch import compute_dtype
from caramba.kernels.scan import CHUNK, tiles


@triton.jit
def _scan_bwd_kernel(
    U, DT, Z,  # (Bt, L, Dm) forward inputs, last dim contiguous (Z unused without HAS_Z)
    A,  # (Dm, N) contiguous
    Bm, Cm,  # (Bt, L, N), last dim contiguous
    Dv, Bias,  # (Dm,) skip weight and delta bias (unused without HAS_D / HAS_BIAS)
    Ckpt,  # (Bt, n_chunks, Dm, N) states entering each chunk (from the forward)
    DY,  # (Bt, L, Dm) upstream gradient, last dim contiguous
    DHL,  # (Bt, Dm, N) contiguous gradient of the final state (unused without HAS_DHL)
    Scratch,  # (Bt, n_dblk, CHUNK, BLOCK_D, BLOCK_N) per-program state slab
    DU, DDT, DZ,  # (Bt, L, Dm) contiguous input gradients (DZ unused without HAS_Z)
    DAp,  # (Bt, Dm, N) per-batch-row partial dA
    DBp, DCp,  # (Bt, n_dblk, L, N) per-channel-block partial dB, dC
    DDp, DBiasp,  # (Bt, Dm) per-batch-row partial dD, dbias
    DH0,  # (Bt, Dm, N) gradient of the initial state
    L, Dm, N, n_chunks, n_dblk,
    s_ub, s_ul, s_db, s_dl, s_zb, s_zl, s_bb, s_bl, s_cb, s_cl, s_yb, s_yl,
    HAS_D: tl.constexpr, HAS_Z: tl.constexpr, HAS_BIAS: tl.constexpr, SOFTPLUS: tl.constexpr,
    HAS_DHL: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_N: tl.constexpr, CHUNK: tl.constexpr,
    COMPUTE: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    dl = tl.arange(0, BLOCK_D)
    d = pid_d * BLOCK_D + dl
    n = tl.arange(0, BLOCK_N)
    dmask = d < Dm
    nmask = n < N
    m2 = dmask[:, None] & nmask[None, :]
    a = tl.load(A + d[:, None] * N + n[None, :], mask=m2, other=0.0).to(COMPUTE)
    dskip = tl.zeros((BLOCK_D,), dtype=COMPUTE)
    if HAS_D:
        dskip = tl.load(Dv + d, mask=dmask, other=0.0).to(COMPUTE)
    bias = tl.zeros((BLOCK_D,), dtype=COMPUTE)
    if HAS_BIAS:
        bias = tl.load(Bias + d, mask=dmask, other=0.0).to(COMPUTE)
    state_off = b * Dm * N + d[:, None] * N + n[None, :]
    scratch = Scratch + (b * n_dblk + pid_d) * CHUNK * BLOCK_D * BLOCK_N + dl[:, None] * BLOCK_N + n[None, :]
    part = (b * n_dblk + pid_d) * L * N  # row of this program in DBp / DCp
    if HAS_DHL:
        carry = tl.load(DHL + state_off, mask=m2, other=0.0).to(COMPUTE)
    else:
        carry = tl.zeros((BLOCK_D, BLOCK_N), dtype=COMPUTE)
    dA_acc = tl.zeros((BLOCK_D, BLOCK_N), dtype=COMPUTE)
    dD_acc = tl.zeros((BLOCK_D,), dtype=COMPUTE)
    dbias_acc = tl.zeros((BLOCK_D,), dtype=COMPUTE)
    for ci in range(0, n_chunks):
        c = n_chunks - 1 - ci
        t0 = c * CHUNK
        t1 = tl.minimum(L, t0 + CHUNK)
        h = tl.load(Ckpt + (b * n_chunks + c) * Dm * N + d[:, None] * N + n[None, :], mask=m2, other=0.0)
        tl.debug_barrier()  # the previous chunk's reads of the slab are done
        for t in range(t0, t1):  # 1. recompute: slot t - t0 holds h_{t-1}
            tl.store(scratch + (t - t0) * BLOCK_D * BLOCK_N, h)
            u = tl.load(U + b * s_ub + t * s_ul + d, mask=dmask, other=0.0).to(COMPUTE)
            dt = tl.load(DT + b * s_db + t * s_dl + d, mask=dmask, other=0.0).to(COMPUTE) + bias
            if SOFTPLUS:
                dt = tl.where(dt > 20.0, dt, tl.log(1.0 + tl.exp(tl.minimum(dt, 20.0))))
            bt = tl.load(Bm + b * s_bb + t * s_bl + n, mask=nmask, other=0.0).to(COMPUTE)
            h = tl.exp(dt[:, None] * a) * h + (dt * u)[:, None] * bt[None, :]
        tl.debug_barrier()  # the slab is written before any thread reads it
        for k in range(0, t1 - t0):  # 2. reverse walk
            t = t1 - 1 - k
            u = tl.load(U + b * s_ub + t * s_ul + d, mask=dmask, other=0.0).to(COMPUTE)
            dtb = tl.load(DT + b * s_db + t * s_dl + d, mask=dmask, other=0.0).to(COMPUTE) + bias
            dt = dtb
            if SOFTPLUS:
                dt = tl.where(dtb > 20.0, dtb, tl.log(1.0 + tl.exp(tl.minimum(dtb, 20.0))))
            bt = tl.load(Bm + b * s_bb + t * s_bl + n, mask=nmask, other=0.0).to(COMPUTE)
            ct = tl.load(Cm + b * s_cb + t * s_cl + n, mask=nmask, other=0.0).to(COMPUTE)
            dy = tl.load(DY + b * s_yb + t * s_yl + d, mask=dmask, other=0.0).to(COMPUTE)
            hprev = tl.load(scratch + (t - t0) * BLOCK_D * BLOCK_N)
            da = tl.exp(dt[:, None] * a)
            h = da * hprev + (dt * u)[:, None] * bt[None, :]
            if HAS_Z:
                z = tl.load(Z + b * s_zb + t * s_zl + d, mask=dmask, other=0.0).to(COMPUTE)
                sg = (1.0 / (1.0 + tl.exp(-z)))
                y = tl.sum(h * ct[None, :], axis=1) + dskip * u
                tl.store(DZ + (b * L + t) * Dm + d, (dy * y * sg * (1.0 + z * (1.0 - sg))).to(DZ.dtype.element_ty),
                         mask=dmask)
                dy = dy * z * sg
            dh = carry + dy[:, None] * ct[None, :]
            tl.store(DCp + part + t * N + n, tl.sum(dy[:, None] * h, axis=0), mask=nmask)
            tl.store(DBp + part + t * N + n, tl.sum(dh * (dt * u)[:, None], axis=0), mask=nmask)
            hb = tl.sum(dh * bt[None, :], axis=1)
            w = dh * da * hprev
            ddt = tl.sum(w * a, axis=1) + u * hb
            dA_acc += w * dt[:, None]
            dD_acc += dy * u
            if SOFTPLUS:
                ddt = ddt * (1.0 / (1.0 + tl.exp(-dtb)))
            dbias_acc += ddt
            tl.store(DU + (b * L + t) * Dm + d, (dt * hb + dskip * dy).to(DU.dtype.element_ty), mask=dmask)
            tl.store(DDT + (b * L + t) * Dm + d, ddt.to(DDT.dtype.element_ty), mask=dmask)
            carry = da * dh
    tl.store(DH0 + state_off, carry, mask=m2)
    tl.store(DAp + state_off, dA_acc, mask=m2)
    tl.store(DDp + b * Dm + d, dD_acc, mask=dmask)
    tl.store(DBiasp + b * Dm + d, dbias_acc, mask=dmask)


def scan_backward(dy, dh_last, u, delta, A, B, C, D, z, bias, softplus: bool, ckpt):
    """Launch the backward. Returns grads for (u, delta, A, B, C, D, z, bias, state)."""
    Bt, L, Dm = u.shape
    N = A.shape[1]
    dev = u.device
    cdt = compute_dtype(u.dtype)
    sdt = torch.float64 if cdt == tl.float64 else torch.float32
    block_d, block_n, warps = tiles(N)
    n_dblk = triton.cdiv(Dm, block_d)
    n_chunks = ckpt.shape[1]
    if dy is None:
        dy = torch.zeros_like(u)
    if dy.stride(-1) != 1:
        dy = dy.contiguous()
    dhl = dh_last.contiguous() if dh_last is not None else None
    du = torch.empty((Bt, L, Dm), dtype=u.dtype, device=dev)
    ddt = torch.empty((Bt, L, Dm), dtype=delta.dtype, device=dev)
    dz = torch.empty((Bt, L, Dm), dtype=z.dtype, device=dev) if z is not None else None
    dAp = torch.zeros((Bt, Dm, N), dtype=sdt, device=dev)
    dBp = torch.zeros((Bt, n_dblk, L, N), dtype=sdt, device=dev)
    dCp = torch.zeros((Bt, n_dblk, L, N), dtype=sdt, device=dev)
    dDp = torch.zeros((Bt, Dm), dtype=sdt, device=dev)
    dbp = torch.zeros((Bt, Dm), dtype=sdt, device=dev)
    dh0 = torch.zeros((Bt, Dm, N), dtype=sdt, device=dev) if dhl is None else dhl.to(sdt).clone()
    scratch = torch.empty((Bt, n_dblk, CHUNK, block_d, block_n), dtype=sdt, device=dev)
    A_c = A.contiguous()
    if Bt > 0 and Dm > 0 and L > 0:
        _scan_bwd_kernel[(Bt, n_dblk)](
            u, delta, z if z is not None else u, A_c, B, C, D if D is not None else A_c,
            bias if bias is not None else A_c, ckpt, dy, dhl if dhl is not None else dh0, scratch,
            du, ddt, dz if dz is not None else du, dAp, dBp, dCp, dDp, dbp, dh0,
            L, Dm, N, n_chunks, n_dblk, u.stride(0), u.stride(1), delta.stride(0), delta.stride(1),
            *((z.stride(0), z.stride(1)) if z is not None else (0, 0)),
            B.stride(0), B.stride(1), C.stride(0), C.stride(1), dy.stride(0), dy.stride(1),
            HAS_D=D is not None, HAS_Z=z is not None, HAS_BIAS=bias is not None, SOFTPLUS=softplus,
            HAS_DHL=dhl is not None, BLOCK_D=block_d, BLOCK_N=block_n, CHUNK=CHUNK, COMPUTE=cdt,
            num_warps=warps)
    else:  # empty sequence: only the pass-through state gradient is non-zero
        du.zero_(), ddt.zero_()
        if dz is not None:
            dz.zero_()
    dB = dBp.sum(1).to(B.dtype)
    dC = dCp.sum(1).to(C.dtype)
    return (du, ddt, dAp.sum(0).to(A.dtype), dB, dC, dDp.sum(0).to(D.dtype) if D is not None else None, dz,
            dbp.sum(0).to(bias.dtype) if bias is not None else None, dh0)
