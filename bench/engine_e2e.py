"""End to end through the engine: ``manifests/standard_transformer.yml`` at GPT-2-small size,
trained by ``caramba run`` with the kernels on (the platform's dispatch table) and off
(``CARAMBA_KERNELS=reference``: every op on its PyTorch reference, AdamW = torch.optim.AdamW).

::

    python bench/engine_e2e.py                       # CUDA; both paths, prints tokens/s, MFU, ratio
    python bench/engine_e2e.py --steps 120 --warmup 40 --batch 8 --block 1024
    python bench/engine_e2e.py --compile             # train.compile_model: true on both paths
    python bench/engine_e2e.py --compile reduce-overhead   # ... replaying each step as a CUDA graph
    python bench/engine_e2e.py --profile             # + GPU kernel time per step (host-bound or not)
    python bench/engine_e2e.py --cprofile DIR        # + where the host time goes (cProfile per path)

The preset is changed only through ``--set`` (what a user would type): 12 layers,
d_model 768, 12 heads, SwiGLU 2048, block 1024, a BPE tokenizer trained locally on the
standard-library corpus with a 32,768-token vocabulary (GPT-2's own tokenizer files cannot be
downloaded here), bf16 autocast. Each path runs in its own process (the dispatch table is
chosen once at import). Tokens/s comes from the runner's ``progress`` events over steps
``warmup+1 … steps`` (start-up, tokenizer training and data preparation excluded; with
``--profile`` the last ``warmup`` steps are profiled instead of timed). MFU uses
the usual estimate ``(6·N + 12·L·T·d)`` FLOP per token over the GPU's dense bf16 peak
(H100/H200 SXM datasheet: 989 TFLOP/s).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path

PEAK_BF16 = 989e12
ROOT = Path(__file__).resolve().parents[1]


def sets(a: argparse.Namespace) -> list[str]:
    """The ``--set`` overrides that turn the CPU preset into GPT-2-small on a GPU."""
    run = "targets[0].runs[0].train"
    return [f"vars.vocab_size={a.vocab}", f"vars.d_model={a.d_model}", f"vars.n_heads={a.heads}",
            f"vars.n_layers={a.layers}", f"vars.d_ff={a.d_ff}", f"vars.block_size={a.block}",
            f"vars.batch_size={a.batch}", "vars.lr=0.0006", f"vars.steps={a.steps}",
            "targets[0].data.config.tokenizer=bpe", f"targets[0].data.config.vocab_size={a.vocab}",
            "defaults.runtime.save_every=0", "defaults.logging.instrument=plain",
            f"{run}.device=cuda", f"{run}.use_amp=true", f"{run}.amp_dtype=bfloat16",
            f"{run}.warmup_steps=10", f"{run}.log_every={a.warmup}", f"{run}.eval_every=0",
            f"{run}.compile_model={'true' if a.compile else 'false'}"] + \
        ([f"{run}.compile_mode={a.compile}"] if a.compile else [])


def n_params(a: argparse.Namespace) -> int:
    """Parameters of the preset's model (token embedding, blocks, final norm, untied head)."""
    d = a.d_model
    block = 4 * d * d + 3 * d * a.d_ff + 2 * d
    return a.vocab * d + a.layers * block + d + d * a.vocab


class GpuBusy:
    """``--profile``: torch.profiler (CUDA activity only) over the last ``w`` progress steps,
    after the timed window, because the profiler slows every later launch (measured on an
    H100: a window timed after a profiled one ran 2-3x slower). It reports the GPU kernel time
    per step; dividing by the unprofiled step time gives the busy share (far below 100% =
    host-bound step)."""

    def __init__(self, first: int, last: int) -> None:
        from torch.profiler import ProfilerActivity, profile

        self.first, self.last, self.prof, self.result = first, last, profile(activities=[ProfilerActivity.CUDA]), {}

    def __call__(self, e: dict) -> None:
        import torch

        if e["event"] != "progress" or e["step"] not in (self.first, self.last):
            return
        torch.cuda.synchronize()
        if e["step"] == self.first:
            self.prof.start()
            return
        self.prof.stop()
        gpu = sum(k.self_device_time_total for k in self.prof.key_averages()) / 1e6
        self.result = {"window_steps": self.last - self.first, "gpu_ms_per_step": 1e3 * gpu / (self.last - self.first)}


def child(a: argparse.Namespace) -> None:
    """One path in this process: run the preset, print tokens/s as one JSON line."""
    from caramba.engine.manifest import load_manifest
    from caramba.engine.runner import run_target
    from caramba.kernels.dispatch import render_table
    from caramba.workspace import Workspace

    events: list[dict] = []
    end = a.steps - a.warmup if a.profile else a.steps  # never time the profiled window
    busy = GpuBusy(end, a.steps) if a.profile else None

    def on_event(e: dict) -> None:
        events.append(e)
        if busy:
            busy(e)

    with tempfile.TemporaryDirectory() as ws:
        manifest = load_manifest(ROOT / "manifests" / "standard_transformer.yml", overrides=sets(a))
        prof = cProfile.Profile() if a.cprofile else None
        if prof:
            prof.enable()
        run_target(manifest, workspace=Workspace(ws), console=False, on_event=on_event, argv=[])
        if prof:
            prof.disable()
            mode = os.environ.get("CARAMBA_KERNELS") or "kernels"
            with open(Path(a.cprofile) / f"host_{mode}.txt", "w") as f:
                pstats.Stats(prof, stream=f).sort_stats("tottime").print_stats(60)
                pstats.Stats(prof, stream=f).sort_stats("cumulative").print_stats(80)
    prog = {e["step"]: e for e in events if e["event"] == "progress"}
    tps = (end - a.warmup) * a.batch * a.block / (prog[end]["ts"] - prog[a.warmup]["ts"])
    print(json.dumps({"tokens_per_s": tps, "final_loss": prog[a.steps]["loss"], "table": render_table().splitlines(),
                      "profile": busy.result if busy else None}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--warmup", type=int, default=40)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--block", type=int, default=1024)
    p.add_argument("--d-model", type=int, default=768)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--heads", type=int, default=12)
    p.add_argument("--d-ff", type=int, default=2048)
    p.add_argument("--vocab", type=int, default=32768)
    p.add_argument("--compile", nargs="?", const="default", metavar="MODE",
                   help="train.compile_model: true on both paths, with train.compile_mode MODE "
                        "(default | reduce-overhead | max-autotune | max-autotune-no-cudagraphs)")
    p.add_argument("--profile", action="store_true",
                   help="also report GPU kernel time per step (the last --warmup steps are profiled, "
                        "not timed)")
    p.add_argument("--cprofile", metavar="DIR", help="write each path's host-side cProfile (whole run) to DIR")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.steps % a.warmup:
        p.error("--steps must be a multiple of --warmup (progress is logged every --warmup steps)")
    if a.profile and a.steps < 3 * a.warmup:
        p.error("--profile needs --steps >= 3 * --warmup (one window profiled, a later one timed)")
    if a.child:
        child(a)
        return
    flops_per_token = 6 * n_params(a) + 12 * a.layers * a.block * a.d_model
    results = {}
    for label, mode in (("kernels on", ""), ("PyTorch only", "reference")):
        env = dict(os.environ, CARAMBA_KERNELS=mode)
        proc = subprocess.run([sys.executable, __file__, "--child", *sys.argv[1:]], env=env,
                              capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{label} path failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        results[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"GPT-2-small via manifests/standard_transformer.yml: {n_params(a) / 1e6:.1f}M params, "
          f"L={a.layers} d={a.d_model} T={a.block} B={a.batch}, bf16 autocast"
          f"{f', torch.compile ({a.compile})' if a.compile else ''}, "
          f"timed steps {a.warmup + 1}..{a.steps - a.warmup if a.profile else a.steps}")
    for label, r in results.items():
        mfu = r["tokens_per_s"] * flops_per_token / PEAK_BF16
        print(f"{label:>13}: {r['tokens_per_s']:>10,.0f} tokens/s  MFU {100 * mfu:5.1f}%  loss {r['final_loss']:.3f}")
        if r["profile"]:
            gpu, wall = r["profile"]["gpu_ms_per_step"], 1e3 * a.batch * a.block / r["tokens_per_s"]
            print(f"{'':>15}GPU kernels {gpu:.1f} ms of a {wall:.1f} ms step ({100 * gpu / wall:.0f}% busy"
                  f"{'; host-bound' if gpu < 0.8 * wall else ''})")
    on, off = results["kernels on"]["tokens_per_s"], results["PyTorch only"]["tokens_per_s"]
    print(f"ratio kernels on / PyTorch only: {on / off:.2f}")
    print("dispatch (kernels on):\n  " + "\n  ".join(results["kernels on"]["table"]))


if __name__ == "__main__":
    main()
