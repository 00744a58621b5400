"""Triton selective scan (kernels/scan.py, scan_bwd.py) against the sequential definition.

On CPU the real kernels run under TRITON_INTERPRET=1 (conftest) on small shapes; on CUDA
the same tests run compiled, plus bf16 and larger shapes (``gpu``-marked). Shapes are
ragged on purpose: L not a multiple of the kernel's 16-token chunk, Dm and N not powers of
two (the kernel masks its tiles). Tolerance: ||out - ref|| / ||ref|| < 1e-5 forward and
< 1e-4 for every gradient in fp32 (bf16: 2e-2, inputs rounded to bf16 for both sides).
"""

from __future__ import annotations

import pytest
import torch

from caramba.kernels import dispatch, scan
from caramba.kernels.checks import KernelInputError
from caramba.kernels.scan_ref import selective_scan_sequential
from caramba.tests.kernels_support import DEVICE, ON_GPU, rel_err

NAMES = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "state"]


def _inputs(Bt: int, L: int, Dm: int, N: int, dtype: torch.dtype = torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)

    def r(*s: int, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(*s, generator=g) * scale).to(DEVICE)
    A = -torch.rand(Dm, N, generator=g).to(DEVICE) * 3 - 0.05
    ts = [r(Bt, L, Dm), r(Bt, L, Dm), A, r(Bt, L, N), r(Bt, L, N), r(Dm), r(Bt, L, Dm), r(Dm, scale=0.5),
          r(Bt, Dm, N)]
    return [t.to(dtype).requires_grad_(True) for t in ts]


def _call(fn, ins: list[torch.Tensor], full: bool):
    if full:
        return fn(*ins[:6], z=ins[6], delta_bias=ins[7], delta_softplus=True, state=ins[8], return_state=True)
    return fn(*ins[:5], return_state=True)


def _compare(Bt: int, L: int, Dm: int, N: int, full: bool, dtype: torch.dtype = torch.float32,
             tol: float = 1e-5, gtol: float = 1e-4) -> None:
    ins = _inputs(Bt, L, Dm, N, dtype)
    if not full:  # plain scan: delta must already be a positive step
        with torch.no_grad():
            ins[1].copy_(torch.nn.functional.softplus(ins[1]))
    ref_ins = [t.detach().double().requires_grad_(True) for t in ins]
    used = 9 if full else 5
    y, h = _call(scan.selective_scan, ins, full)
    y_ref, h_ref = _call(selective_scan_sequential, ref_ins, full)
    assert y.dtype == dtype and y.shape == (Bt, L, Dm) and h.shape == (Bt, Dm, N)
    assert rel_err(y, y_ref) < tol and rel_err(h, h_ref) < tol
    gy, gh = torch.randn_like(y_ref), torch.randn_like(h_ref)
    got = torch.autograd.grad((y.double() * gy).sum() + (h.double() * gh).sum(), ins[:used])
    want = torch.autograd.grad((y_ref * gy).sum() + (h_ref * gh).sum(), ref_ins[:used])
    for name, g, w in zip(NAMES, got, want):
        assert g.dtype == dtype, name
        assert rel_err(g, w) < gtol, f"d{name}: {rel_err(g, w):.2e}"


def test_scan_all_options_ragged_shapes_fwd_bwd() -> None:
    # L = 37: two full 16-token chunks and a ragged one; Dm = 24 and N = 5 pad their tiles.
    _compare(2, 37, 24, 5, full=True)


def test_scan_plain_several_channel_blocks() -> None:
    # N = 16 -> 32-channel blocks; Dm = 40 needs two programs per row, the second one masked.
    _compare(1, 19, 40, 16, full=False)


def test_scan_gradcheck_fp64() -> None:
    ins = [t.detach().double().requires_grad_(True) for t in _inputs(1, 5, 3, 2)]
    assert torch.autograd.gradcheck(lambda *t: _call(scan.selective_scan, list(t), True), ins, fast_mode=True)


def test_scan_empty_sequence_passes_the_state_through() -> None:
    ins = _inputs(2, 0, 3, 2)
    y, h = _call(scan.selective_scan, ins, True)
    assert y.shape == (2, 0, 3)
    torch.testing.assert_close(h, ins[8].detach())


def test_scan_accepts_strided_views_like_the_layer_makes() -> None:
    """B and C are column slices of one x_proj output (row stride r + 2N), as in SSMLayer."""
    Bt, L, Dm, N = 1, 9, 6, 3
    dbc = torch.randn(Bt, L, 2 + 2 * N, device=DEVICE)
    _, Bm, Cm = torch.split(dbc, [2, N, N], dim=-1)
    u, delta = torch.randn(Bt, L, Dm, device=DEVICE), torch.rand(Bt, L, Dm, device=DEVICE)
    A = -torch.rand(Dm, N, device=DEVICE)
    y = scan.selective_scan(u, delta, A, Bm, Cm)
    assert rel_err(y, selective_scan_sequential(u, delta, A, Bm.contiguous(), Cm.contiguous())) < 1e-5


def test_scan_rejects_bad_inputs_with_named_arguments() -> None:
    u = torch.randn(1, 4, 3, device=DEVICE)
    A = -torch.rand(3, 2, device=DEVICE)
    Bm = torch.randn(1, 4, 2, device=DEVICE)
    with pytest.raises(KernelInputError, match=r"selective_scan: C has shape \(1, 4, 5\), expected \(Bt, L, N\)"):
        scan.selective_scan(u, u, A, Bm, torch.randn(1, 4, 5, device=DEVICE))
    with pytest.raises(KernelInputError, match="delta has stride"):
        scan.selective_scan(u, torch.randn(1, 3, 4, device=DEVICE).transpose(1, 2), A, Bm, Bm)
    with pytest.raises(KernelInputError, match="u has dtype torch.int64"):
        scan.selective_scan(torch.ones(1, 4, 3, dtype=torch.long, device=DEVICE), u, A, Bm, Bm)


def test_dispatch_routes_the_scan() -> None:
    assert dispatch.OPS["selective_scan"].triton == "caramba.kernels.library_scan:selective_scan"
    assert not dispatch.uses_triton("selective_scan", "cpu")
    table = {label: (path, why) for label, path, why in dispatch.table()}
    path, why = table["SelectiveScan"]
    if ON_GPU:
        assert path.startswith("Triton") and why is None
    else:
        assert path == "PyTorch reference" and "CUDA" in (why or "")


@pytest.mark.gpu
@pytest.mark.parametrize("full", [True, False])
def test_scan_gpu_larger_shapes_fp32(full: bool) -> None:
    _compare(3, 301, 200, 16, full=full)


@pytest.mark.gpu
def test_scan_gpu_bf16() -> None:
    _compare(2, 257, 136, 16, full=True, dtype=torch.bfloat16, tol=2e-2, gtol=2e-2)


@pytest.mark.gpu
def test_layer_on_cuda_runs_the_kernel_and_matches_the_cpu_path() -> None:
    from caramba.engine.layers.ssm import SSMConfig, SSMLayer

    torch.manual_seed(0)
    layer = SSMLayer(SSMConfig(d_model=32, d_state=16))
    x = torch.randn(2, 50, 32, requires_grad=True)
    y_cpu = layer(x)
    (g_cpu,) = torch.autograd.grad(y_cpu.square().sum(), x)
    layer_gpu = layer.to("cuda")
    assert dispatch.uses_triton("selective_scan", "cuda")
    xg = x.detach().cuda().requires_grad_(True)
    y_gpu = layer_gpu(xg)
    (g_gpu,) = torch.autograd.grad(y_gpu.square().sum(), xg)
    assert rel_err(y_gpu.cpu(), y_cpu) < 1e-4 and rel_err(g_gpu.cpu(), g_cpu) < 1e-3


def test_layer_feeds_the_triton_kernel_inputs_it_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    """SSMLayer through the real Triton kernel (interpreter on CPU) equals the CPU path.

    The dispatch table sends CPU tensors to the PyTorch path, so the op is pointed at the
    kernel here: this catches layouts the layer makes that the kernel refuses (strides).
    """
    from caramba.engine.layers import ssm as ssm_module
    from caramba.engine.layers.ssm import SSMConfig, SSMLayer

    torch.manual_seed(0)
    layer = SSMLayer(SSMConfig(d_model=8, d_state=4)).to(DEVICE)
    x = torch.randn(1, 9, 8, device=DEVICE, requires_grad=True)
    y_ref = layer(x)
    (g_ref,) = torch.autograd.grad(y_ref.sum(), x)
    monkeypatch.setattr(ssm_module.ops, "selective_scan", scan.selective_scan)
    y = layer(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    assert rel_err(y, y_ref) < 1e-5 and rel_err(g, g_ref) < 1e-4
