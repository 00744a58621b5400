"""CPU cost per call of each kernel op: how much Python/launch work a training step pays per op.

At tiny shapes the GPU finishes each kernel in a few microseconds, so a loop of calls is
bound by the host: wall time per call (one synchronize before and after the loop) is the
CPU cost of the launcher, its checks and allocations, the autograd node and the Triton
launch. Compared with the PyTorch reference of the same op, and with an empty Triton
launch (1 and 28 arguments: the floor no launcher can go under).

::

    python bench/kernels_overhead.py                    # CUDA; prints a table, --json FILE writes rows
    TRITON_INTERPRET=1 python bench/kernels_overhead.py --stub-launch   # any machine, see below

``--stub-launch`` (for a machine without a GPU, or to isolate caramba's own share): every
``@triton.jit`` kernel of the op modules is replaced by a launch that does nothing, so the
timing is only the host work around it — input checks, launch-parameter computation,
allocations, the autograd node — measured as process CPU time per call on CPU tensors.
It excludes the Triton launch itself (see the empty-launch rows of a CUDA run) and CUDA's
allocator/driver costs, so compare it only with another ``--stub-launch`` run.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
import triton
import triton.language as tl


@triton.jit
def _empty1(X):
    pass


@triton.jit
def _empty28(A0, A1, A2, A3, A4, A5, A6, A7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21,
             a22, a23, a24, a25, C0: tl.constexpr, C1: tl.constexpr):
    pass


def per_call_us(fn: Callable[[], object], n: int = 300, warmup: int = 30) -> float:
    """Median over 5 repeats of the time per call of ``n`` back-to-back calls, in µs: wall time
    between two synchronizes on CUDA, process CPU time on CPU (``--stub-launch``)."""
    cuda = torch.cuda.is_available()
    clock = time.perf_counter if cuda else time.process_time
    for _ in range(warmup):
        fn()
    if cuda:
        torch.cuda.synchronize()
    times = []
    for _ in range(5):
        t0 = clock()
        for _ in range(n):
            fn()
        if cuda:
            torch.cuda.synchronize()
        times.append((clock() - t0) / n * 1e6)
    return sorted(times)[2]


class _NoLaunch:
    """Stands in for a ``@triton.jit`` kernel: ``kernel[grid](*args)`` does nothing."""

    def __getitem__(self, grid: object) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def stub_launches() -> list[str]:
    """Replace every ``_*_kernel`` of the op modules by :class:`_NoLaunch`; returns their names."""
    import importlib

    names = []
    for mod_name in ("norms", "rope", "glu", "flash", "flash_bwd", "cross_entropy"):
        mod = importlib.import_module(f"caramba.kernels.{mod_name}")
        for attr in list(vars(mod)):
            if attr.startswith("_") and attr.endswith("_kernel"):
                setattr(mod, attr, _NoLaunch())
                names.append(f"{mod_name}.{attr}")
    return names


def _fwd_bwd(op: Callable[..., torch.Tensor], args: tuple, grad: torch.Tensor) -> Callable[[], None]:
    leaves = [t for t in args if t.requires_grad]

    def run() -> None:  # autograd.grad: no accumulation into .grad (host work on CPU tensors)
        torch.autograd.grad(op(*args), leaves, grad)
    return run


def cases(dev: str) -> list[tuple[str, Callable[..., torch.Tensor], Callable[..., torch.Tensor], tuple]]:
    """(name, Triton entry point, reference, args) at tiny shapes; tensors require grad."""
    from caramba.kernels import library, library_attn, library_loss, reference

    bf = dict(device=dev, dtype=torch.bfloat16)
    g = lambda *s: torch.randn(*s, **bf).requires_grad_()  # noqa: E731
    x, w, b = g(64, 768), g(768), g(768)
    q, k, v = g(1, 12, 64, 64), g(1, 12, 64, 64), g(1, 12, 64, 64)
    cos, sin = torch.randn(64, 32, device=dev), torch.randn(64, 32, device=dev)
    logits, tgt = g(64, 32768), torch.randint(0, 32768, (64,), device=dev)
    return [
        ("rms_norm", lambda x, w: library.rms_norm(x, w, 1e-6), lambda x, w: reference.rms_norm(x, w, 1e-6), (x, w)),
        ("layer_norm", lambda x, w, b: library.layer_norm(x, w, b, 1e-5),
         lambda x, w, b: reference.layer_norm(x, w, b, 1e-5), (x, w, b)),
        ("apply_rope", lambda q: library.apply_rope(q, cos, sin), lambda q: reference.apply_rope(q, cos, sin), (q,)),
        ("swiglu", library.swiglu, reference.swiglu, (g(64, 2048), g(64, 2048))),
        ("attention", lambda q, k, v: library_attn.attention(q, k, v, causal=True),
         lambda q, k, v: reference.attention(q, k, v, causal=True), (q, k, v)),
        ("cross_entropy", lambda z: library_loss.cross_entropy(z, tgt), lambda z: reference.cross_entropy(z, tgt),
         (logits,)),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--stub-launch", action="store_true", help="time only the host work around the launches")
    a = p.parse_args()
    rows: list[dict] = []
    if a.stub_launch:
        if torch.cuda.is_available():
            raise SystemExit("--stub-launch is the CPU stand-in; on a GPU run without it")
        print("stubbed:", ", ".join(stub_launches()))
        dev = "cpu"
    elif not torch.cuda.is_available():
        raise SystemExit("bench/kernels_overhead.py needs a CUDA GPU, or --stub-launch (with TRITON_INTERPRET=1)")
    else:
        dev = "cuda"
        t = torch.zeros(8, device=dev)
        ints = list(range(18))
        rows += [{"op": "empty Triton launch, 1 arg", "triton_fwd_us": per_call_us(lambda: _empty1[(1,)](t))},
                 {"op": "empty Triton launch, 28 args",
                  "triton_fwd_us": per_call_us(lambda: _empty28[(1,)](t, t, t, t, t, t, t, t, *ints, C0=1, C1=2))}]
    for name, tri, ref, args in cases(dev):
        out = tri(*args)
        grad = torch.ones_like(out)
        row = {"op": name, "triton_fwd_us": per_call_us(lambda: tri(*args)),
               "triton_fwd_bwd_us": per_call_us(_fwd_bwd(tri, args, grad))}
        if dev == "cuda":  # the reference's CPU compute is no host-overhead figure
            row.update(reference_fwd_us=per_call_us(lambda: ref(*args)),
                       reference_fwd_bwd_us=per_call_us(_fwd_bwd(ref, args, grad)))
        rows.append(row)
    where = torch.cuda.get_device_name() if dev == "cuda" else "CPU, launches stubbed"
    print(f"{where}, torch {torch.__version__}, triton {triton.__version__}: "
          "host µs per call (tiny shapes, bf16, inputs require grad)")
    print(f"{'op':<30}{'Triton fwd':>12}{'ref fwd':>10}{'Triton f+b':>12}{'ref f+b':>10}")
    for r in rows:
        cells = [r.get(k) for k in ("triton_fwd_us", "reference_fwd_us", "triton_fwd_bwd_us", "reference_fwd_bwd_us")]
        print(f"{r['op']:<30}" + "".join(f"{c:>{wd}.1f}" if c is not None else " " * wd
                                         for c, wd in zip(cells, (12, 10, 12, 10))))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
