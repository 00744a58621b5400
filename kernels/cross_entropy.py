"""Cross-entropy over large vocabularies, gradient computed in the forward pass.

Per row of logits ``x (V,)`` with target ``y``, one program makes two passes over V in
blocks: an online max/sum-exp pass giving ``lse``, then a pass writing the gradient
``(softmax(x) - onehot(y)) / n_valid`` in the logits' dtype. The loss is
``sum(lse - x[y]) / n_valid`` over rows whose target is not ``ignore_index``. So:

* no fp32 copy of the logits is ever made (the reference upcasts: 2x the bf16 logits,
  plus an fp32 softmax in backward); the only (N, V) buffer is the gradient, in the
  logits' dtype — at most one logits tensor of extra memory;
* backward is a single multiply of that buffer by the incoming scalar gradient.

:func:`linear_cross_entropy` goes further for LM heads: it computes ``hidden @ W.T`` in
row chunks, runs the kernel *in place* on each chunk's logits, and immediately folds the
chunk's gradient into ``d_hidden`` and ``d_W`` — the full (N, V) logits never exist.
``n_valid`` is read by the kernel from device memory (no host sync for it).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from caramba.kernels.checks import check_dtype, check_same_device, check_shape, fail

_BLOCK_V = 4096  # vocabulary columns per step: 8 KiB of bf16 per load, 2 passes per row


@triton.jit
def _ce_kernel(
    X,  # (N, V) logits, row stride stride_x, last dim contiguous
    DX,  # (N, V) gradient output (may alias X: in-place), row stride stride_dx
    Y,  # (N,) int64 targets
    Loss,  # (N,) fp32 per-row loss (0 for ignored rows)
    NValid,  # (1,) fp32 number of non-ignored rows
    stride_x, stride_dx, V, ignore_index,
    BLOCK_V: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    x_row = X + row * stride_x
    dx_row = DX + row * stride_dx
    y = tl.load(Y + row)
    cols = tl.arange(0, BLOCK_V)
    if y == ignore_index:
        for start in range(0, V, BLOCK_V):
            tl.store(dx_row + start + cols, tl.zeros((BLOCK_V,), dtype=DX.dtype.element_ty),
                     mask=start + cols < V)
        tl.store(Loss + row, 0.0)
    else:
        m = tl.full((BLOCK_V,), float("-inf"), dtype=tl.float32)
        d = tl.zeros((BLOCK_V,), dtype=tl.float32)
        for start in range(0, V, BLOCK_V):  # pass 1: per-lane online max / sum of exp
            x = tl.load(x_row + start + cols, mask=start + cols < V, other=float("-inf")).to(tl.float32)
            m_new = tl.maximum(m, x)
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
            d = d * tl.exp(m - m_safe) + tl.exp(x - m_safe)
            m = m_new
        m_all = tl.max(m, axis=0)
        lse = m_all + tl.log(tl.sum(d * tl.exp(m - m_all), axis=0))
        x_y = tl.load(x_row + y).to(tl.float32)
        inv_n = 1.0 / tl.load(NValid)
        for start in range(0, V, BLOCK_V):  # pass 2: gradient, written in the logits' dtype
            mask = start + cols < V
            x = tl.load(x_row + start + cols, mask=mask, other=0.0).to(tl.float32)
            g = tl.exp(x - lse) - tl.where(start + cols == y, 1.0, 0.0)
            tl.store(dx_row + start + cols, (g * inv_n).to(DX.dtype.element_ty), mask=mask)
        tl.store(Loss + row, lse - x_y)


def _check(op: str, logits: torch.Tensor, targets: torch.Tensor, ignore_index: int) -> None:
    check_same_device(op, logits=logits, targets=targets)
    check_dtype(op, "logits", logits, (torch.float16, torch.bfloat16, torch.float32))
    check_shape(op, "logits", logits, (None, None), "(N, V)")
    _check_targets(op, targets, logits.shape[0], logits.shape[1], ignore_index)


def _check_targets(op: str, targets: torch.Tensor, N: int, V: int, ignore_index: int) -> None:
    check_shape(op, "targets", targets, (N,), "(N,)")
    if targets.dtype not in (torch.int64, torch.int32):
        raise fail(op, f"targets have dtype {targets.dtype}", "pass integer class indices (torch.long)")
    bad = ((targets < 0) | (targets >= V)) & (targets != ignore_index)
    if bool(bad.any()):
        first = int(targets[bad][0])
        raise fail(op, f"target {first} is outside the vocabulary [0, {V})",
                   f"check the tokenizer's vocab size against the model's ({V}) or use ignore_index={ignore_index}")


def ce_forward_into(logits: torch.Tensor, targets: torch.Tensor, grad: torch.Tensor, n_valid: torch.Tensor,
                    ignore_index: int) -> torch.Tensor:
    """Run the kernel: write the scaled gradient into ``grad`` (may be ``logits``); return per-row losses."""
    N, V = logits.shape
    loss = torch.empty(N, dtype=torch.float32, device=logits.device)
    if logits.stride(-1) != 1:
        raise fail("cross_entropy", f"logits have last-dim stride {logits.stride(-1)}", "pass logits.contiguous()")
    if N:
        _ce_kernel[(N,)](logits, grad, targets.to(torch.int64), loss, n_valid, logits.stride(0), grad.stride(0), V,
                         ignore_index, BLOCK_V=min(_BLOCK_V, triton.next_power_of_2(V)), num_warps=8)
    return loss


def _n_valid(targets: torch.Tensor, ignore_index: int) -> torch.Tensor:
    return (targets != ignore_index).sum().to(torch.float32).reshape(1)


class CrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, targets, ignore_index: int):  # type: ignore[override]
        _check("cross_entropy", logits, targets, ignore_index)
        n_valid = _n_valid(targets, ignore_index)
        grad = torch.empty_like(logits, memory_format=torch.contiguous_format)
        loss = ce_forward_into(logits, targets, grad, n_valid, ignore_index).sum() / n_valid[0]
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    def backward(ctx, dloss):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return grad * dloss.to(grad.dtype), None, None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean cross-entropy (Triton). logits (N, V) fp16/bf16/fp32, targets (N,) int."""
    return CrossEntropyFunction.apply(logits, targets, ignore_index)


def _chunk_rows(N: int, C: int, V: int) -> int:
    """Rows per chunk so a chunk's logits are about the size of the hidden states (Liger's rule)."""
    return max(1, triton.next_power_of_2(triton.cdiv(N, max(1, triton.cdiv(V, C)))))


class LinearCrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, ignore_index: int, chunk: int | None):  # type: ignore[override]
        op = "linear_cross_entropy"
        check_same_device(op, hidden=hidden, weight=weight, targets=targets)
        check_shape(op, "hidden", hidden, (None, None), "(N, C)")
        check_shape(op, "weight", weight, (None, hidden.shape[1]), "(V, C)")
        if hidden.dtype != weight.dtype:
            raise fail(op, f"hidden is {hidden.dtype} but weight is {weight.dtype}", "cast both to one dtype")
        N, V = hidden.shape[0], weight.shape[0]
        _check_targets(op, targets, N, V, ignore_index)
        n_valid = _n_valid(targets, ignore_index)
        rows = chunk or _chunk_rows(N, hidden.shape[1], V)
        d_hidden = torch.empty_like(hidden)
        d_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        for start in range(0, N, rows):
            h = hidden[start:start + rows]
            logits = h @ weight.t()  # (rows, V): the only logits that ever exist
            total += ce_forward_into(logits, targets[start:start + rows], logits, n_valid, ignore_index).sum()
            d_hidden[start:start + rows] = logits @ weight  # logits now hold dL/dlogits
            d_weight.addmm_(logits.t().float(), h.float())  # fp32 accumulation across chunks
        ctx.save_for_backward(d_hidden, d_weight.to(weight.dtype))
        return total / n_valid[0]

    @staticmethod
    def backward(ctx, dloss):  # type: ignore[override]
        d_hidden, d_weight = ctx.saved_tensors
        return d_hidden * dloss.to(d_hidden.dtype), d_weight * dloss.to(d_weight.dtype), None, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         ignore_index: int = -100, chunk: int | None = None) -> torch.Tensor:
    """cross_entropy(hidden @ weight.T, targets) in row chunks; the (N, V) logits never exist."""
    return LinearCrossEntropyFunction.apply(hidden, weight, targets, ignore_index, chunk)
