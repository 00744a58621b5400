"""Benchmark every Triton kernel against PyTorch eager, torch.compile and (attention) SDPA.

    python bench/kernels.py                  # all kernels, large bf16 shapes, on a CUDA GPU
    python bench/kernels.py --only attention,rms_norm --csv out.csv

Per case and provider: median / p20 / p80 time (``triton.testing.do_bench``: CUDA events,
warm-up first), the achieved rate — GB/s of the bytes the op must move (each input read
once, each output written once) as % of the GPU's HBM peak, or TFLOP/s for attention
(4·B·H·T·S·D, halved for causal; backward = 2.5x forward) — and the speed-up of the
Triton kernel over each baseline (``>1`` = Triton faster). CE cases add peak extra memory.
One fixed table on stdout, the same rows as CSV (``--csv``).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Callable

import torch
import triton

from caramba.kernels import adamw, cross_entropy, flash, glu, norms, quant_decode, reference, rope, scan, scan_ref

from kernel_bench_common import COLUMNS, HBM_PEAK, Case, _compiled, _fb, _lazy, _peak_mem, _timeit  # sibling module (run as a script)


def norm_cases(dt) -> list[Case]:
    N, C = 16384, 4096
    x = torch.randn(N, C, device="cuda", dtype=dt, requires_grad=True)
    w = torch.randn(C, device="cuda", dtype=dt, requires_grad=True)
    b = torch.randn(C, device="cuda", dtype=dt, requires_grad=True)
    nb = N * C * x.element_size()
    out = []
    for name, tri, ref, ins in (("rms_norm", norms.rms_norm, reference.rms_norm, [x, w]),
                                ("layer_norm", norms.layer_norm, reference.layer_norm, [x, w, b])):
        eps = (1e-6,) if name == "rms_norm" else (1e-5,)
        a = tuple(ins) + eps
        comp = _compiled(ref)
        out.append(Case(name, "fwd", f"{N}x{C}", 2 * nb, "GB/s", {
            "triton": lambda t=tri, a=a: t(*a), "eager": lambda r=ref, a=a: r(*a), "compile": lambda c=comp, a=a: c(*a)}))
        out.append(Case(name, "fwd+bwd", f"{N}x{C}", 5 * nb, "GB/s", {
            "triton": _fb(tri, ins, *eps), "eager": _fb(ref, ins, *eps), "compile": _fb(comp, ins, *eps)}))
    return out


def glu_rope_cases(dt) -> list[Case]:
    g = torch.randn(8192, 14336, device="cuda", dtype=dt, requires_grad=True)
    u = torch.randn_like(g, requires_grad=True)
    nb = g.numel() * g.element_size()
    sw_c = _compiled(reference.swiglu)
    cases = [Case("swiglu", "fwd", "8192x14336", 3 * nb, "GB/s", {
        "triton": lambda: glu.swiglu(g, u), "eager": lambda: reference.swiglu(g, u), "compile": lambda: sw_c(g, u)}),
        Case("swiglu", "fwd+bwd", "8192x14336", 8 * nb, "GB/s", {
            "triton": _fb(glu.swiglu, [g, u]), "eager": _fb(reference.swiglu, [g, u]), "compile": _fb(sw_c, [g, u])})]
    B, H, T, D = 8, 32, 4096, 128
    x = torch.randn(B, H, T, D, device="cuda", dtype=dt, requires_grad=True)
    ang = torch.rand(T, D // 2, device="cuda") * 6.0
    cos, sin = ang.cos(), ang.sin()
    nb = x.numel() * x.element_size()
    rc = _compiled(reference.apply_rope)
    cases += [Case("rope", "fwd", f"{B}x{H}x{T}x{D}", 2 * nb, "GB/s", {
        "triton": lambda: rope.apply_rope(x, cos, sin), "eager": lambda: reference.apply_rope(x, cos, sin),
        "compile": lambda: rc(x, cos, sin)}),
        Case("rope", "fwd+bwd", f"{B}x{H}x{T}x{D}", 4 * nb, "GB/s", {
            "triton": _fb(rope.apply_rope, [x], cos, sin), "eager": _fb(reference.apply_rope, [x], cos, sin),
            "compile": _fb(rc, [x], cos, sin)})]
    return cases


def _sdpa(backend):
    from torch.nn.attention import sdpa_kernel

    def run(q, k, v, causal):
        with sdpa_kernel(backend):
            return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return run


def attention_cases(dt) -> list[Case]:
    from torch.nn.attention import SDPBackend

    cases = []
    for D, causal, S in ((128, True, 4096), (128, False, 4096), (64, True, 4096), (128, True, 8192)):
        B, H = (4, 16) if S == 4096 else (2, 16)
        q, k, v = (torch.randn(B, H, S, D, device="cuda", dtype=dt, requires_grad=True) for _ in range(3))
        flops = 4 * B * H * S * S * D * (0.5 if causal else 1.0)
        shape = f"B{B} H{H} S{S} D{D} {'causal' if causal else 'full'}"
        fns = {"triton": lambda q, k, v, c=causal: flash.attention(q, k, v, causal=c),
               "sdpa_flash": lambda q, k, v, c=causal: _sdpa(SDPBackend.FLASH_ATTENTION)(q, k, v, c),
               "sdpa_cudnn": lambda q, k, v, c=causal: _sdpa(SDPBackend.CUDNN_ATTENTION)(q, k, v, c)}
        provs = {n: (lambda f=f, q=q, k=k, v=v: f(q, k, v)) for n, f in fns.items()}
        cases.append(Case("attention", "fwd", shape, flops, "TFLOP/s", provs))
        cases.append(Case("attention", "fwd+bwd", shape, 3.5 * flops, "TFLOP/s",
                          {n: _fb(f, [q, k, v]) for n, f in fns.items()}))
    return cases


def decode_cases(dt) -> list[Case]:
    """Decode: one query against a long cache (GQA 32/8), memory bound: bytes of K and V."""
    cases = []
    B, H, Hkv, S, D = 8, 32, 8, 8192, 128
    q = torch.randn(B, H, 1, D, device="cuda", dtype=dt)
    k, v = (torch.randn(B, Hkv, S, D, device="cuda", dtype=dt) for _ in range(2))
    kb = 2 * k.numel() * k.element_size()
    cases.append(Case("attention", "decode", f"B{B} H{H}/{Hkv} S{S} D{D}", kb, "GB/s", {
        "triton": lambda: flash.attention(q, k, v, causal=True),
        "sdpa_best": lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)}))
    for fmt in ("q8_0", "q4_0"):  # same decode over a quantised cache; baseline: SDPA on the bf16 cache
        kd, ks = reference.quantize_kv(k, fmt)
        vd, vs = reference.quantize_kv(v, fmt)
        qb = 2 * (kd.numel() * kd.element_size() + ks.numel() * ks.element_size())
        cases.append(Case("attention", f"dec-{fmt}", f"B{B} H{H}/{Hkv} S{S} D{D}", qb, "GB/s", {
            "triton": lambda a=(q, kd, ks, vd, vs, fmt): quant_decode.decode_attention_quantized(*a),
            "sdpa_bf16": lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True)}))
    return cases


def ce_cases(dt) -> list[Case]:
    N, V, C = 8192, 128256, 4096
    x = torch.randn(N, V, device="cuda", dtype=dt, requires_grad=True)
    y = torch.randint(0, V, (N,), device="cuda")
    nb = x.numel() * x.element_size()
    cc = _compiled(reference.cross_entropy)
    cases = [Case("cross_entropy", "fwd+bwd", f"N{N} V{V}", 2 * nb, "GB/s", {  # read logits, write grad
        "triton": _fb(cross_entropy.cross_entropy, [x], y), "eager": _fb(reference.cross_entropy, [x], y),
        "compile": _fb(cc, [x], y)}, memory=True)]
    h = torch.randn(N, C, device="cuda", dtype=dt, requires_grad=True)
    w = torch.randn(V, C, device="cuda", dtype=dt, requires_grad=True) * 0.02
    w = w.detach().requires_grad_()
    lc = _compiled(reference.linear_cross_entropy)
    cases.append(Case("linear_ce", "fwd+bwd", f"N{N} C{C} V{V}", 3 * 2 * N * C * V, "TFLOP/s", {
        "triton": _fb(cross_entropy.linear_cross_entropy, [h, w], y),
        "eager": _fb(reference.linear_cross_entropy, [h, w], y),
        "compile": _fb(lc, [h, w], y)}, memory=True))
    return cases


def adamw_cases(_dt) -> list[Case]:
    shapes = [(50304, 768)] + [(768, 768)] * 48 + [(3072, 768)] * 24 + [(768, 3072)] * 24 + [(768,)] * 100
    n = sum(math.prod(s) for s in shapes)
    out = []
    for name, make in (("triton", lambda ps: adamw.FusedAdamW(ps, lr=1e-4, weight_decay=0.1)),
                       ("torch_fused", lambda ps: torch.optim.AdamW(ps, lr=1e-4, weight_decay=0.1, fused=True)),
                       ("torch_foreach", lambda ps: torch.optim.AdamW(ps, lr=1e-4, weight_decay=0.1, foreach=True))):
        ps = [torch.nn.Parameter(torch.randn(s, device="cuda")) for s in shapes]
        for p in ps:
            p.grad = torch.randn_like(p)
        out.append((name, make(ps)))
    return [Case("adamw", "step", f"{n / 1e6:.0f}M fp32 params, {len(shapes)} tensors", 28 * n, "GB/s",
                 {name: opt.step for name, opt in out})]


def scan_cases(dt) -> list[Case]:
    """Mamba S6 with everything fused (softplus(delta + bias), D skip, silu(z) gate), N = 16.

    Bytes: u, delta, z read and out written (fwd); fwd+bwd adds dout read and du, ddelta,
    dz written, plus B and C read (and dB, dC written). Baselines: the PyTorch path
    (``scan_ref.selective_scan``: a loop of one addcmul per token, hand-written backward),
    and — on a short sequence only, since torch.compile unrolls the Python time loop —
    ``torch.compile`` of the sequential definition.
    """
    cases = []
    for Bt, L, Dm, with_compile in ((8, 2048, 2048, False), (8, 128, 2048, True)):
        N = 16
        u, delta, z = (torch.randn(Bt, L, Dm, device="cuda", dtype=dt, requires_grad=True) for _ in range(3))
        Bm, Cm = (torch.randn(Bt, L, N, device="cuda", dtype=dt, requires_grad=True) for _ in range(2))
        A = (-torch.rand(Dm, N, device="cuda") * 4).requires_grad_()
        D, bias = (torch.randn(Dm, device="cuda", requires_grad=True) for _ in range(2))
        ins = [u, delta, A, Bm, Cm, D, z, bias]
        X, Y = Bt * L * Dm * u.element_size(), Bt * L * N * u.element_size()

        def call(f, u, delta, A, Bm, Cm, D, z, bias):
            return f(u, delta, A, Bm, Cm, D, z=z, delta_bias=bias, delta_softplus=True)
        fns = {"triton": scan.selective_scan, "eager": scan_ref.selective_scan}
        if with_compile:
            fns["compile_seq"] = _compiled(scan_ref.selective_scan_sequential)
        shape = f"B{Bt} L{L} D{Dm} N{N}"
        cases.append(Case("selective_scan", "fwd", shape, 4 * X + 2 * Y, "GB/s",
                          {n: (lambda f=f: call(f, *ins)) for n, f in fns.items()}))
        cases.append(Case("selective_scan", "fwd+bwd", shape, 8 * X + 4 * Y, "GB/s",
                          {n: _lazy(lambda f=f: _fb(lambda *a: call(f, *a), ins)) for n, f in fns.items()},
                          memory=True))
    return cases


GROUPS = {"rms_norm": norm_cases, "glu_rope": glu_rope_cases, "attention": attention_cases,
          "decode": decode_cases, "ce": ce_cases,
          "adamw": adamw_cases, "scan": scan_cases}


def _try_time(name: str, fn: Callable[[], object]) -> tuple[float, float, float] | None:
    """A baseline that cannot run here (e.g. no cuDNN attention) is reported, not fatal."""
    try:
        return _timeit(fn)
    except Exception as e:  # noqa: BLE001 - reporting a missing baseline, not switching implementation
        if name == "triton":
            raise
        print(f"# {name} unavailable: {type(e).__name__}: {str(e).splitlines()[0][:120]}", flush=True)
        return None


def run_case(case: Case, peak: float) -> list[dict]:
    times = {name: t for name, fn in case.providers.items() if (t := _try_time(name, fn)) is not None}
    mem = {name: _peak_mem(case.providers[name]) for name in times} if case.memory else {}
    t_ours = times["triton"][0]
    rows = []
    for name, (p50, p20, p80) in times.items():
        rate = case.work / (p50 * 1e-3) / (1e9 if case.unit == "GB/s" else 1e12)
        pct = 100 * rate * 1e9 / peak if case.unit == "GB/s" else float("nan")
        rows.append(dict(kernel=case.kernel, mode=case.mode, shape=case.shape, provider=name, ms_p50=p50,
                         ms_p20=p20, ms_p80=p80, rate=rate, unit=case.unit, pct_peak=pct,
                         speedup_vs=p50 / t_ours, peak_mem_mb=mem.get(name, float("nan"))))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(GROUPS), help=f"comma list of {','.join(GROUPS)}")
    ap.add_argument("--csv", default=None)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench/kernels.py needs a CUDA GPU (the Triton kernels are the subject)", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in HBM_PEAK.items() if k in name), 3.35e12)
    print(f"# {name}, torch {torch.__version__}, triton {triton.__version__}, HBM peak {peak / 1e12:.2f} TB/s, bf16")
    rows: list[dict] = []
    for group in args.only.split(","):
        for case in GROUPS[group](torch.bfloat16):
            rows += run_case(case, peak)
            torch.cuda.empty_cache()
            for r in [r for r in rows if r["kernel"] == case.kernel and r["mode"] == case.mode
                      and r["shape"] == case.shape]:
                print(f"{r['kernel']:<14}{r['mode']:<8}{r['shape']:<32}{r['provider']:<14}"
                      f"{r['ms_p50']:>9.3f} ms [{r['ms_p20']:.3f}-{r['ms_p80']:.3f}] {r['rate']:>8.1f} {r['unit']:<8}"
                      f"{r['pct_peak']:>6.1f}% peak  triton x{r['speedup_vs']:.2f}"
                      + (f"  mem {r['peak_mem_mb']:.0f} MB" if r['peak_mem_mb'] == r['peak_mem_mb'] else ""),
                      flush=True)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
