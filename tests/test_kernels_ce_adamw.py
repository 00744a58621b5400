"""Cross-entropy (plain and chunked linear) and fused AdamW Triton kernels vs references."""

from __future__ import annotations

import pytest
import torch

from caramba.kernels import adamw, cross_entropy as ce, optim, reference
from caramba.tests.kernels_support import DEVICE, ON_GPU, rel_err


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.bfloat16, 2e-2), (torch.float16, 5e-3)])
@pytest.mark.parametrize("V", [37, 5003])  # 5003 > one 4096-column block: multi-block online softmax
def test_cross_entropy_matches_reference(dtype, tol, V) -> None:
    N = 6
    x = (torch.randn(N, V, device=DEVICE) * 4).to(dtype).requires_grad_()
    y = torch.randint(0, V, (N,), device=DEVICE)
    y[1] = -100  # ignored row: no loss, zero gradient
    loss = ce.cross_entropy(x, y)
    ref = reference.cross_entropy(x, y)
    assert abs(loss.item() - ref.item()) / ref.item() < tol
    g, = torch.autograd.grad(loss * 2.5, x)
    gr, = torch.autograd.grad(ref * 2.5, x)
    assert g.dtype == dtype and rel_err(g, gr) < tol * 2
    assert float(g[1].abs().max()) == 0.0


@pytest.mark.parametrize("bad", [12, -3])
def test_cross_entropy_poisons_out_of_vocab_target_without_a_host_sync(bad) -> None:
    """An out-of-range target is checked on the device: loss and that row's gradient are NaN
    (the trainer then stops naming the cause); other rows' gradients stay finite."""
    x = torch.randn(3, 10, device=DEVICE, requires_grad=True)
    loss = ce.cross_entropy(x, torch.tensor([1, bad, 3], device=DEVICE))
    assert torch.isnan(loss)
    g, = torch.autograd.grad(loss, x)
    assert torch.isnan(g[1]).all()
    ok = ce.cross_entropy(x, torch.tensor([1, -100, 3], device=DEVICE))  # ignore_index is not "bad"
    assert torch.isfinite(ok)


@pytest.mark.parametrize("chunk", [4, None])
def test_linear_cross_entropy_never_builds_full_logits_and_matches(chunk) -> None:
    h = torch.randn(11, 8, device=DEVICE, requires_grad=True)
    w = torch.randn(37, 8, device=DEVICE, requires_grad=True)
    y = torch.randint(0, 37, (11,), device=DEVICE)
    y[0] = -100
    loss = ce.linear_cross_entropy(h, w, y, chunk=chunk)
    ref = reference.linear_cross_entropy(h, w, y)
    assert abs(loss.item() - ref.item()) < 1e-5
    for g, r in zip(torch.autograd.grad(loss, (h, w)), torch.autograd.grad(ref, (h, w))):
        assert rel_err(g, r) < 1e-5


@pytest.mark.parametrize("pdtype", [torch.float32, torch.bfloat16])
def test_fused_adamw_tracks_torch_adamw(pdtype) -> None:
    torch.manual_seed(0)
    shapes = [(5, 7), (4099,), (3,)]  # 4099: two blocks, ragged tail
    ours = [torch.randn(s, device=DEVICE).to(pdtype).requires_grad_() for s in shapes]
    theirs = [p.detach().float().clone().requires_grad_() for p in ours]
    groups = [{"params": ours[:2]}, {"params": ours[2:], "weight_decay": 0.0}]
    opt = adamw.FusedAdamW(groups, lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    ref = torch.optim.AdamW([{"params": theirs[:2]}, {"params": theirs[2:], "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    # bf16: within one ulp of the rounded fp32 update (the interpreter truncates instead of rounding)
    tol = 1e-6 if pdtype == torch.float32 else 8e-3
    for _ in range(3):
        for a, b in zip(ours, theirs):
            g = torch.randn_like(b)
            a.grad, b.grad = g.to(pdtype), g.to(pdtype).float()
            with torch.no_grad():
                b.copy_(a.float())  # same starting point each step: compare one update, not drift
        opt.step()
        ref.step()
        for a, b in zip(ours, theirs):
            assert a.dtype == pdtype and rel_err(a, b.to(pdtype)) < tol
            assert rel_err(opt.state[a]["exp_avg_sq"], ref.state[b]["exp_avg_sq"]) < 1e-6
    assert float(opt.state[ours[0]]["step"]) == 3.0


def test_fused_adamw_whole_chunks_and_unaligned_tensors() -> None:
    """A tensor spanning whole chunks takes the unmasked (vectorisable) branch, its tail the
    masked one; a parameter whose storage starts 4 bytes off a 16-byte boundary makes the
    bucket use byte-unit addresses. Both match torch's AdamW."""
    torch.manual_seed(1)
    big = torch.randn(adamw._CHUNK + 37, device=DEVICE)
    backing = torch.randn(1 + 1000, device=DEVICE)
    odd = backing[1:]  # contiguous view at a 4-byte offset
    for params in ([big], [big.clone(), odd]):
        ours = [torch.nn.Parameter(t) for t in params]
        theirs = [torch.nn.Parameter(t.detach().clone()) for t in params]
        opt = adamw.FusedAdamW(ours, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
        ref = torch.optim.AdamW(theirs, lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
        for a, b in zip(ours, theirs):
            a.grad = torch.randn_like(a)
            b.grad = a.grad.clone()
        opt.step()
        ref.step()
        align = opt._addrs[next(iter(opt._addrs))][1][1]
        assert align == (16 if len(params) == 1 else 1)
        for a, b in zip(ours, theirs):
            assert rel_err(a, b) < 1e-6 and rel_err(opt.state[a]["exp_avg"], ref.state[b]["exp_avg"]) < 1e-6


def test_make_adamw_routes_by_device() -> None:
    p = torch.nn.Parameter(torch.randn(3, device=DEVICE))
    opt = optim.make_adamw([p], lr=1e-3)
    assert isinstance(opt, adamw.FusedAdamW if ON_GPU else torch.optim.AdamW)
