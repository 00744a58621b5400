"""Cross-entropy over large vocabularies without materialising full-precision logits.

Per row of logits ``x (V,)`` with target ``y``, the forward kernel streams V in blocks
with an online max/sum-exp giving ``lse`` and the loss ``lse - x[y]``; the gradient
kernel writes ``(softmax(x) - onehot(y)) * dloss / n_valid`` in the logits' dtype. The
loss is ``sum(lse - x[y]) / n_valid`` over rows whose target is not ``ignore_index``. So:

* no fp32 copy of the logits is ever made (the reference upcasts: 2x the bf16 logits,
  plus an fp32 softmax in backward); the only (N, V) buffer is the gradient, in the
  logits' dtype, allocated in backward — at most one logits tensor of extra memory;
* the bytes moved are the minimum for an unfused head: forward reads the logits once
  (online max/sum-exp -> lse, loss), backward reads them once more and writes the
  gradient already scaled by ``dloss / n_valid`` (read from device memory, no sync).

:func:`linear_cross_entropy` goes further for LM heads: it computes ``hidden @ W.T`` in
row chunks, runs the kernel *in place* on each chunk's logits, and immediately folds the
chunk's gradient into ``d_hidden`` and ``d_W`` — the full (N, V) logits never exist.
``n_valid`` is read by the kernel from device memory (no host sync for it).

Targets outside ``[0, V)`` (other than ``ignore_index``) cannot be checked on the host
without a device sync on every call, which would stall the training loop's CPU/GPU
overlap. The kernels check them on the device instead: such a row's loss and gradient
are NaN, so the mean loss is NaN and the trainer stops at its next logging step with a
message naming the likely cause (targets outside the model's vocabulary). Shapes and
dtypes are still checked on the host (free).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from caramba.kernels.checks import SignatureCache, check_dtype, check_same_device, check_shape, fail

_BLOCK_V = 4096  # vocabulary columns per step: 8 KiB of bf16 per load, 2 passes per row


@triton.jit
def _ce_fwd_kernel(
    X,  # (N, V) logits, row stride stride_x, last dim contiguous
    Y,  # (N,) int64 targets
    Loss,  # (N,) fp32 per-row loss (0 for ignored rows)
    LSE,  # (N,) fp32 per-row log-sum-exp (saved for the gradient kernel)
    stride_x, V, ignore_index,
    BLOCK_V: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    x_row = X + row * stride_x
    y = tl.load(Y + row)
    cols = tl.arange(0, BLOCK_V)
    m = tl.full((BLOCK_V,), float("-inf"), dtype=tl.float32)
    d = tl.zeros((BLOCK_V,), dtype=tl.float32)
    for start in range(0, V, BLOCK_V):  # one pass: per-lane online max / sum of exp
        x = tl.load(x_row + start + cols, mask=start + cols < V, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, x)
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        d = d * tl.exp(m - m_safe) + tl.exp(x - m_safe)
        m = m_new
    m_all = tl.max(m, axis=0)
    lse = m_all + tl.log(tl.sum(d * tl.exp(m - m_all), axis=0))
    tl.store(LSE + row, lse)
    if y == ignore_index:
        tl.store(Loss + row, 0.0)
    elif (y < 0) | (y >= V):  # outside the vocabulary: poison the loss (see module docstring)
        tl.store(Loss + row, float("nan"))
    else:
        tl.store(Loss + row, lse - tl.load(x_row + y).to(tl.float32))


@triton.jit
def _ce_grad_kernel(
    X,  # (N, V) logits, row stride stride_x
    DX,  # (N, V) gradient output (may alias X: in-place), row stride stride_dx
    Y,  # (N,) int64 targets
    LSE,  # (N,) fp32 log-sum-exp from the forward kernel
    Scale,  # (1,) fp32 dloss / n_valid, read on device (no host sync)
    stride_x, stride_dx, V, ignore_index,
    BLOCK_V: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_V + tl.arange(0, BLOCK_V)
    mask = cols < V
    y = tl.load(Y + row)
    x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    g = (tl.exp(x - tl.load(LSE + row)) - tl.where(cols == y, 1.0, 0.0)) * tl.load(Scale)
    g = tl.where((y < 0) | (y >= V), float("nan"), g)
    g = tl.where(y == ignore_index, 0.0, g)
    tl.store(DX + row * stride_dx + cols, g.to(DX.dtype.element_ty), mask=mask)


def check_inputs(op: str, logits: torch.Tensor, targets: torch.Tensor, ignore_index: int) -> None:
    check_same_device(op, logits=logits, targets=targets)
    check_dtype(op, "logits", logits, (torch.float16, torch.bfloat16, torch.float32))
    check_shape(op, "logits", logits, (None, None), "(N, V)")
    _check_targets(op, targets, logits.shape[0], logits.shape[1], ignore_index)


def _check_targets(op: str, targets: torch.Tensor, N: int, V: int, ignore_index: int) -> None:
    """Host-side checks that need no device sync; the value range is checked in the kernels."""
    check_shape(op, "targets", targets, (N,), "(N,)")
    if targets.dtype not in (torch.int64, torch.int32):
        raise fail(op, f"targets have dtype {targets.dtype}", "pass integer class indices (torch.long)")


def ce_loss(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row ``(loss, lse)`` in fp32 (loss 0 on ignored rows); one read of the logits."""
    N, V = logits.shape
    if logits.stride(-1) != 1:
        raise fail("cross_entropy", f"logits have last-dim stride {logits.stride(-1)}", "pass logits.contiguous()")
    loss = torch.empty(N, dtype=torch.float32, device=logits.device)
    lse = torch.empty(N, dtype=torch.float32, device=logits.device)
    if N:
        _ce_fwd_kernel[(N,)](logits, targets, loss, lse, logits.stride(0), V, ignore_index,
                             BLOCK_V=min(_BLOCK_V, triton.next_power_of_2(V)), num_warps=8)
    return loss, lse


def ce_grad_into(logits: torch.Tensor, grad: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor,
                 scale: torch.Tensor, ignore_index: int) -> None:
    """Write ``(softmax - onehot) * scale`` into ``grad`` (which may be ``logits`` itself)."""
    N, V = logits.shape
    block = min(_BLOCK_V, triton.next_power_of_2(V))
    if N:
        _ce_grad_kernel[(N, triton.cdiv(V, block))](logits, grad, targets, lse, scale, logits.stride(0),
                                                    grad.stride(0), V, ignore_index, BLOCK_V=block, num_warps=8)


def _n_valid(targets: torch.Tensor, ignore_index: int) -> torch.Tensor:
    return (targets != ignore_index).sum(dtype=torch.float32).reshape(1)


_checked = SignatureCache()


def ce_forward(logits: torch.Tensor, targets: torch.Tensor,
               ignore_index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked forward: ``(mean loss (), lse (N,), n_valid (1,))``, fp32."""
    _checked.get((logits.shape, logits.dtype, logits.device, targets.shape, targets.dtype, targets.device),
                 lambda: check_inputs("cross_entropy", logits, targets, ignore_index))
    targets = targets.to(torch.int64)
    n_valid = _n_valid(targets, ignore_index)
    loss, lse = ce_loss(logits, targets, ignore_index)
    return loss.sum() / n_valid[0], lse, n_valid


def ce_backward(dloss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, lse: torch.Tensor,
                n_valid: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """``d loss / d logits`` (logits' dtype, contiguous): one read of the logits, one write."""
    grad = torch.empty_like(logits, memory_format=torch.contiguous_format)
    ce_grad_into(logits, grad, targets.to(torch.int64), lse, (dloss.float() / n_valid).reshape(1), ignore_index)
    return grad


class CrossEntropyFunction(torch.autograd.Function):
    """Forward: one read of the logits (lse, loss). Backward: one read + one write (the grad)."""

    @staticmethod
    def forward(ctx, logits, targets, ignore_index: int):  # type: ignore[override]
        loss, lse, n_valid = ce_forward(logits, targets, ignore_index)
        ctx.save_for_backward(logits, targets, lse, n_valid)
        ctx.ignore_index = ignore_index
        return loss

    @staticmethod
    def backward(ctx, dloss):  # type: ignore[override]
        logits, targets, lse, n_valid = ctx.saved_tensors
        return ce_backward(dloss, logits, targets, lse, n_valid, ctx.ignore_index), None, None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean cross-entropy (Triton). logits (N, V) fp16/bf16/fp32, targets (N,) int."""
    return CrossEntropyFunction.apply(logits, targets, ignore_index)


def _chunk_rows(N: int, C: int, V: int) -> int:
    """Rows per chunk: 8 chunks (each chunk's logits are 1/8 of the full logits), at least 256 rows
    so each chunk's matmuls still fill the GPU."""
    return min(N, max(256, triton.cdiv(N, 8)))


def linear_ce_forward(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, ignore_index: int,
                      chunk: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loss and both gradients (for dloss = 1) in one pass over row chunks: ``(loss, d_hidden, d_weight)``."""
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
    d_hidden = torch.empty_like(hidden, memory_format=torch.contiguous_format)
    d_weight = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
    total = torch.zeros((), dtype=torch.float32, device=hidden.device)
    targets = targets.to(torch.int64)
    scale = (1.0 / n_valid).reshape(1)
    for start in range(0, N, rows):
        h, y = hidden[start:start + rows], targets[start:start + rows]
        logits = h @ weight.t()  # (rows, V): the only logits that ever exist
        loss, lse = ce_loss(logits, y, ignore_index)
        total += loss.sum()
        ce_grad_into(logits, logits, y, lse, scale, ignore_index)  # in place: logits -> dL/dlogits
        d_hidden[start:start + rows] = logits @ weight
        d_weight += logits.t() @ h  # tensor-core matmul, fp32 accumulation across chunks
    return total / n_valid[0], d_hidden, d_weight.to(weight.dtype)


class LinearCrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, ignore_index: int, chunk: int | None):  # type: ignore[override]
        loss, d_hidden, d_weight = linear_ce_forward(hidden, weight, targets, ignore_index, chunk)
        ctx.save_for_backward(d_hidden, d_weight)
        return loss

    @staticmethod
    def backward(ctx, dloss):  # type: ignore[override]
        d_hidden, d_weight = ctx.saved_tensors
        return d_hidden * dloss.to(d_hidden.dtype), d_weight * dloss.to(d_weight.dtype), None, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         ignore_index: int = -100, chunk: int | None = None) -> torch.Tensor:
    """cross_entropy(hidden @ weight.T, targets) in row chunks; the (N, V) logits never exist."""
    return LinearCrossEntropyFunction.apply(hidden, weight, targets, ignore_index, chunk)
