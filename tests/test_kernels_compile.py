"""The Triton kernels under ``torch.compile``: custom ops, no graph breaks, same numbers as eager.

On CPU the kernels run under TRITON_INTERPRET=1 (conftest), so the compiled graphs call
the real kernel code. Each op is checked three ways:

* ``torch.library.opcheck``: schema, fake (meta) implementation vs the real one, autograd
  registration and AOT dispatch with dynamic shapes;
* a function calling the entry points (what ``caramba.kernels.ops`` routes to) compiled
  with ``fullgraph=True`` gives the eager values and gradients, and its FX graph holds the
  ``caramba::*`` op as one node (Dynamo did not trace into the Triton launcher);
* the engine: a tiny LM trained with ``train.compile_model: true`` and every op routed to
  its Triton kernel has the eager run's losses and no graph break.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from caramba.kernels import dispatch, library, library_attn, library_loss, library_scan
from caramba.kernels.checks import KernelInputError
from caramba.tests.kernels_support import DEVICE

OPS = torch.ops.caramba


def _t(*shape: int, grad: bool = True, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, device=DEVICE, dtype=dtype).requires_grad_(grad)


def _opcheck_cases() -> list[tuple[str, Callable[[], tuple]]]:
    tg = lambda: torch.tensor([1, 2, -100, 4, 5, 49], device=DEVICE)  # noqa: E731
    return [
        ("norm_fwd", lambda: (_t(2, 3, 9), _t(9), None, 1e-6, True)),
        ("norm_fwd", lambda: (_t(5, 9), _t(9), _t(9), 1e-5, False)),
        ("norm_fwd", lambda: (_t(4, 9), None, None, 1e-5, False)),
        ("glu_fwd", lambda: (_t(3, 11), _t(3, 11), False)),
        ("glu_fwd", lambda: (_t(3, 11), _t(3, 11), True)),
        ("rope", lambda: (_t(1, 2, 8, 16), _t(8, 3, grad=False), _t(8, 3, grad=False), 1.0)),
        ("flash_fwd", lambda: (_t(1, 4, 8, 16), _t(1, 2, 8, 16), _t(1, 2, 8, 16), None, None, True, 0.25, None)),
        ("flash_fwd", lambda: (_t(1, 2, 5, 16), _t(1, 2, 9, 16), _t(1, 2, 9, 16), _t(1, 2, 5, 8), _t(1, 2, 9, 8),
                               True, 0.2, 4)),
        ("ce_fwd", lambda: (_t(6, 50), tg(), -100)),
        ("linear_ce_fwd", lambda: (_t(6, 8), _t(50, 8), tg(), -100, 0)),
        ("scan_fwd", lambda: (*_scan_args(), True)),
    ]


def _scan_args() -> tuple[torch.Tensor, ...]:
    """u, delta, A, B, C, D, z, delta_bias, state for a (2, 20, 6) sequence with N = 4."""
    Bt, L, Dm, N = 2, 20, 6, 4
    A = (-torch.rand(Dm, N, device=DEVICE)).requires_grad_()
    return (_t(Bt, L, Dm), _t(Bt, L, Dm), A, _t(Bt, L, N), _t(Bt, L, N), _t(Dm), _t(Bt, L, Dm), _t(Dm),
            _t(Bt, Dm, N))


@pytest.mark.parametrize("name,make", _opcheck_cases(), ids=[f"{n}{i}" for i, (n, _) in enumerate(_opcheck_cases())])
def test_custom_op_passes_opcheck(name: str, make: Callable[[], tuple]) -> None:
    torch.manual_seed(0)
    results = torch.library.opcheck(getattr(OPS, name).default, make())
    assert set(results.values()) == {"SUCCESS"}, results


class _Graphs:
    """A torch.compile backend that records each FX graph's call targets, then runs aot_eager."""

    def __init__(self) -> None:
        self.targets: list[str] = []

    def __call__(self, gm: torch.fx.GraphModule, inputs: list) -> Callable:
        from torch._dynamo.backends.common import aot_autograd  # noqa: F401  (registers aot_eager)

        self.targets += [str(n.target) for n in gm.graph.nodes if n.op == "call_function"]
        return torch._dynamo.lookup_backend("aot_eager")(gm, inputs)


def _compare(fn: Callable[..., torch.Tensor], args: tuple[torch.Tensor, ...], expect_ops: set[str]) -> None:
    torch._dynamo.reset()
    graphs = _Graphs()
    compiled = torch.compile(fn, backend=graphs, fullgraph=True)
    grads_of = [a for a in args if a.requires_grad]
    eager = fn(*args)
    g_eager = torch.autograd.grad(eager, grads_of)
    comp = compiled(*args)
    g_comp = torch.autograd.grad(comp, grads_of)
    torch.testing.assert_close(comp, eager, rtol=1e-6, atol=1e-6)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    found = {t.removeprefix("caramba.").split(".")[0] for t in graphs.targets if t.startswith("caramba.")}
    assert found == expect_ops, graphs.targets


def test_compiled_norms_glu_match_eager() -> None:
    torch.manual_seed(1)
    x, w, b, up = _t(2, 5, 24), _t(24), _t(24), _t(2, 5, 24)

    def fn(x, w, b, up):
        h = library.rms_norm(x, w, 1e-6) + library.layer_norm(x, w, b, 1e-5)
        return (library.swiglu(h, up) * library.geglu(up, h)).square().sum()

    _compare(fn, (x, w, b, up), {"norm_fwd", "glu_fwd"})


def test_compiled_rope_and_attention_match_eager() -> None:
    torch.manual_seed(2)
    q, k, v = _t(2, 4, 12, 16), _t(2, 2, 12, 16), _t(2, 2, 12, 16)
    qg, kg = _t(2, 4, 12, 8), _t(2, 2, 12, 8)
    cos, sin = torch.randn(12, 3, device=DEVICE), torch.randn(12, 3, device=DEVICE)

    def fn(q, k, v, qg, kg):
        qr, kr = library.apply_rope(q, cos, sin), library.apply_rope(k, cos, sin)
        o = library_attn.attention(qr, kr, v, causal=True)
        o2 = library_attn.decoupled_attention(q, k, library.apply_rope(qg, cos[:, :2], sin[:, :2]), kg, v,
                                              causal=True, window=5)
        return (o * o2).sum() + library_attn.attention(q, k, v, causal=False).square().sum()

    _compare(fn, (q, k, v, qg, kg), {"rope", "flash_fwd"})


def test_compiled_cross_entropy_matches_eager() -> None:
    torch.manual_seed(3)
    logits, hidden, weight = _t(7, 40), _t(7, 8), _t(40, 8)
    targets = torch.tensor([0, 39, -100, 5, 5, 17, 3], device=DEVICE)

    def fn(logits, hidden, weight):
        return library_loss.cross_entropy(logits, targets) + library_loss.linear_cross_entropy(hidden, weight, targets)

    _compare(fn, (logits, hidden, weight), {"ce_fwd", "linear_ce_fwd"})


def test_bad_input_under_compile_is_the_kernel_error() -> None:
    q, k = _t(1, 3, 4, 16), _t(1, 2, 4, 16)  # 3 heads are not a multiple of 2 KV heads
    torch._dynamo.reset()
    fn = torch.compile(lambda q, k: library_attn.attention(q, k, k, causal=True), backend="aot_eager")
    with pytest.raises(Exception) as info:
        fn(q, k)
    chain, err = [], info.value
    while err is not None:
        chain.append(err)
        err = err.__cause__ or err.__context__
    assert any(isinstance(e, KernelInputError) and "not a multiple of k's 2" in str(e) for e in chain), chain


def test_compiled_selective_scan_matches_eager() -> None:
    torch.manual_seed(5)
    u, delta, A, B, C, D, z, bias, state = _scan_args()

    def fn(u, delta, A, B, C, D, z, bias, state):
        y, h = library_scan.selective_scan(u, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True,
                                           state=state, return_state=True)
        plain = library_scan.selective_scan(u, delta, A, B, C)
        return y.square().sum() + h.sum() + plain.sum()

    _compare(fn, (u, delta, A, B, C, D, z, bias, state), {"scan_fwd"})


def _train(folder: Path, compile_model: bool) -> list[float]:
    from caramba.engine.manifest import load_manifest
    from caramba.engine.runner import run_target
    from caramba.tests.support.training import write_tiny_lm
    from caramba.workspace import Workspace

    folder.mkdir()
    path = write_tiny_lm(folder, steps=3, save_every=0, eval_every=0)
    path.write_text(path.read_text().replace("device: cpu", f"device: cpu\n          compile_model: {str(compile_model).lower()}"))
    events: list[dict] = []
    run_target(load_manifest(path), workspace=Workspace(folder), console=False, on_event=events.append, argv=[])
    return [e["loss"] for e in events if e["event"] == "progress"]


def test_engine_compile_model_with_every_op_on_its_triton_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if torch.cuda.is_available():
        pytest.skip("the interpreter run is the CPU stand-in; on CUDA bench/engine_e2e.py --compile covers it")
    from torch._dynamo.utils import counters

    dispatch.resolve_all()
    real = dispatch.uses_triton
    monkeypatch.setattr(dispatch, "uses_triton",
                        lambda op, dev, *a: op != "adamw" or real(op, dev, *a))
    eager = _train(tmp_path / "eager", compile_model=False)
    torch._dynamo.reset()
    counters.clear()
    compiled = _train(tmp_path / "compiled", compile_model=True)
    assert len(compiled) == len(eager) == 3
    assert compiled == pytest.approx(eager, rel=1e-4)
    assert dict(counters["graph_break"]) == {}
    assert counters["stats"]["unique_graphs"] >= 1


@pytest.mark.gpu
def test_inductor_compiles_a_block_of_kernels_on_gpu() -> None:
    """Inductor (the default backend) with the custom ops in the graph: no re-compile of our
    Triton source (the failure this issue fixed), same values and gradients as eager."""
    torch.manual_seed(4)
    bf = dict(device="cuda", dtype=torch.bfloat16)
    x, w = torch.randn(2, 256, 128, **bf, requires_grad=True), torch.randn(128, **bf, requires_grad=True)
    wq = torch.randn(128, 3 * 128, **bf, requires_grad=True) * 0.05
    cos, sin = torch.randn(256, 16, device="cuda"), torch.randn(256, 16, device="cuda")

    def block(x, w, wq):
        h = library.rms_norm(x, w, 1e-6)
        q, k, v = (h @ wq).view(2, 256, 3, 4, 32).permute(2, 0, 3, 1, 4).unbind(0)
        o = library_attn.attention(library.apply_rope(q, cos, sin), library.apply_rope(k, cos, sin), v,
                                   causal=True, window=64)
        o = o.transpose(1, 2).reshape(2, 256, 128)
        return library.swiglu(o, x).float().square().mean()

    torch._dynamo.reset()
    compiled = torch.compile(block, fullgraph=True)
    eager = block(x, w, wq)
    g_eager = torch.autograd.grad(eager, (x, w))
    comp = compiled(x, w, wq)
    g_comp = torch.autograd.grad(comp, (x, w))
    torch.testing.assert_close(comp, eager, rtol=2e-2, atol=1e-3)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b, rtol=5e-2, atol=5e-3)
