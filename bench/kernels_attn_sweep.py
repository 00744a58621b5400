"""Tile sweep for the flash attention kernels (how kernels/flash_check.py's tiles were chosen).

    python bench/kernels_attn_sweep.py        # bf16, B4 H16 S4096, D 64 and 128, causal

Times the forward kernel and the backward kernels for a handful of fixed tile configs;
no autotuning happens at run time (deterministic numerics), so this is run by hand on
the target GPU and the winners are written into ``fwd_blocks`` / ``bwd_blocks``.
"""

from __future__ import annotations

import math

import torch
import triton

from caramba.kernels import flash, flash_bwd
from caramba.kernels.flash_check import Blocks

FWD = [(128, 64, 8, 3), (128, 128, 8, 3), (128, 64, 4, 3), (64, 64, 4, 3), (128, 32, 4, 4), (128, 128, 8, 2)]
KV = [(64, 64, 8, 2), (32, 128, 4, 3), (64, 128, 8, 2), (32, 64, 4, 3), (64, 64, 4, 3), (32, 128, 8, 2)]
DQ = [(64, 64, 8, 2), (128, 32, 4, 3), (128, 64, 8, 2), (64, 32, 4, 3), (128, 32, 8, 2)]


def main() -> None:
    print(f"# {torch.cuda.get_device_name()}, triton {triton.__version__}")
    for D in (128, 64):
        B, H, S = 4, 16, 4096
        q, k, v = (torch.randn(B, H, S, D, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        scale = 1 / math.sqrt(D)
        flops = 4 * B * H * S * S * D * 0.5
        for m, n, w, st in FWD:
            blk = Blocks(m, n, w, st, "tf32")
            try:
                t = triton.testing.do_bench(lambda: flash.attention_forward(q, k, v, None, None, True, scale, None, blk),
                                            warmup=10, rep=50)
                print(f"D{D} fwd  m{m} n{n} w{w} s{st}: {t:.3f} ms {flops / t / 1e9:.0f} TFLOP/s", flush=True)
            except Exception as e:  # noqa: BLE001 - a config that does not fit (shared memory) is reported
                print(f"D{D} fwd  m{m} n{n} w{w} s{st}: failed {type(e).__name__}", flush=True)
        o, lse = flash.attention_forward(q, k, v, None, None, True, scale, None)
        do = torch.randn_like(o)
        base_q = Blocks(*DQ[0], "tf32")
        for cfgs, which in ((KV, "dkdv"), (DQ, "dq")):
            for m, n, w, st in cfgs:
                blk = Blocks(m, n, w, st, "tf32")
                pair = (blk, base_q) if which == "dkdv" else (Blocks(*KV[0], "tf32"), blk)
                try:
                    t = triton.testing.do_bench(lambda: flash_bwd.attention_backward(
                        do, q, k, v, None, None, o, lse, True, scale * 1.4426950408889634, scale, None, pair),
                        warmup=10, rep=50)
                    print(f"D{D} bwd({which} varies) m{m} n{n} w{w} s{st}: {t:.3f} ms "
                          f"{2.5 * flops / t / 1e9:.0f} TFLOP/s", flush=True)
                except Exception as e:  # noqa: BLE001
                    print(f"D{D} bwd({which}) m{m} n{n} w{w} s{st}: failed {type(e).__name__}", flush=True)


if __name__ == "__main__":
    main()
