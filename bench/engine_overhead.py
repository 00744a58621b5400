"""Engine overhead: the same GPT trained (a) from a manifest through ``run_target`` and
(b) by a plain hand-written PyTorch loop — same model math, batch shape, optimizer and
steps. Prints tokens/s of each and the ratio manifest/hand (target ≥ 0.97).

::

    python bench/engine_overhead.py --device cpu --steps 60 --warmup 10
    python bench/engine_overhead.py --device cuda --steps 300 --warmup 50 --d-model 512 --layers 8

Both sides time only steps ``warmup+1 … steps`` (the runner's from its ``progress``
events, the loop's with ``time.perf_counter`` after a device sync), so start-up, data
preparation and the final checkpoint are excluded from both. The two are run
alternately ``--repeats`` times (hand first on even repeats, manifest first on odd ones,
so neither always runs warm) and the best of each is reported (the least disturbed by
other load on the machine). Each side's process CPU time per step over the same steps is
reported too (``cpu_ms_per_step``): on a shared machine it moves less than wall time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

MANIFEST = """\
version: 2
name: overhead
defaults:
  logging: {{instrument: none, tensorboard: false}}
  runtime: {{save_every: 0}}
targets:
  - type: experiment
    name: gpt
    backend: torch
    task: task.language_modeling
    data:
      ref: dataset.random_tokens
      config: {{vocab_size: {vocab}, n_tokens: {n_tokens}, block_size: {block}, val_frac: 0}}
    system:
      ref: system.language_model
      config:
        model:
          type: TransformerModel
          embedder: {{type: token, vocab_size: {vocab}, d_model: {d}}}
          topology:
            type: StackedTopology
            layers:
              - type: NestedTopology
                repeat: {layers}
                layers:
                  - type: ResidualTopology
                    layers:
                      - {{type: RMSNormLayer, d_model: {d}}}
                      - {{type: AttentionLayer, d_model: {d}, n_heads: {heads}, mode: standard}}
                  - type: ResidualTopology
                    layers:
                      - {{type: RMSNormLayer, d_model: {d}}}
                      - {{type: SwiGLULayer, d_model: {d}, d_ff: {ff}}}
              - {{type: RMSNormLayer, d_model: {d}}}
              - {{type: LinearLayer, d_in: {d}, d_out: {vocab}, bias: false}}
    objective: objective.next_token_ce
    trainer: trainer.standard
    runs:
      - id: train
        seed: 0
        steps: {steps}
        train: {{batch_size: {batch}, block_size: {block}, lr: 0.0003, device: {device}, log_every: {warmup}}}
"""


def manifest_run(args: argparse.Namespace, text: str) -> tuple[float, float]:
    """Tokens/s and CPU ms per step of steps warmup+1..steps through the runner (progress events)."""
    from caramba.engine.manifest import load_manifest
    from caramba.engine.runner import run_target
    from caramba.workspace import Workspace

    with tempfile.TemporaryDirectory() as ws:
        path = Path(ws) / "overhead.yml"
        path.write_text(text)
        events: list[dict] = []
        cpu: dict[int, float] = {}

        def on_event(e: dict) -> None:
            if e["event"] == "progress":
                cpu[e["step"]] = time.process_time()
            events.append(e)
        run_target(load_manifest(path), workspace=Workspace(ws), console=False, on_event=on_event, argv=[])
    prog = {e["step"]: e["ts"] for e in events if e["event"] == "progress"}
    n = args.steps - args.warmup
    return n * args.batch * args.block / (prog[args.steps] - prog[args.warmup]), \
        (cpu[args.steps] - cpu[args.warmup]) * 1e3 / n


def hand_run(args: argparse.Namespace, text: str) -> tuple[float, float]:
    """Tokens/s and CPU ms per step of the same model trained by a minimal loop (no runner, no events)."""
    import yaml

    from caramba.engine.systems.build import build_system
    from caramba.kernels import ops
    from caramba.kernels.optim import make_adamw

    device = torch.device(args.device)
    torch.manual_seed(0)
    spec = yaml.safe_load(text)["targets"][0]["system"]
    model = build_system(spec, device="cpu").to(device)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = make_adamw([{"params": decay, "weight_decay": 0.0}, {"params": rest, "weight_decay": 0.0}], lr=3e-4)
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, args.vocab, (args.n_tokens,), generator=g)
    model.train()
    t0 = c0 = 0.0
    for step in range(1, args.steps + 1):
        ix = torch.randint(0, args.n_tokens - args.block - 1, (args.batch,), generator=g)
        chunk = torch.stack([data[i: i + args.block + 1] for i in ix.tolist()])  # (B, T+1)
        x, y = chunk[:, :-1].to(device), chunk[:, 1:].to(device)
        logits = model({"input_ids": x})["logits"]  # (B, T, V)
        loss = ops.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step % args.warmup == 0:
            loss.item()  # the runner syncs on its logging steps too
        if step == args.warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
    if device.type == "cuda":
        torch.cuda.synchronize()
    n = args.steps - args.warmup
    return n * args.batch * args.block / (time.perf_counter() - t0), (time.process_time() - c0) * 1e3 / n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--block", type=int, default=128)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--n-tokens", type=int, default=200_000)
    p.add_argument("--json", action="store_true", help="print one JSON line")
    args = p.parse_args()
    if args.steps % args.warmup:
        p.error("--steps must be a multiple of --warmup (the runner logs every --warmup steps)")
    text = MANIFEST.format(vocab=args.vocab, n_tokens=args.n_tokens, block=args.block, d=args.d_model,
                           layers=args.layers, heads=args.heads, ff=(8 * args.d_model // 3 + 31) // 32 * 32,
                           steps=args.steps, batch=args.batch, device=args.device, warmup=args.warmup)
    hand, engine, hand_cpu, engine_cpu = [], [], [], []
    for i in range(args.repeats):
        for side in (("hand", "manifest") if i % 2 == 0 else ("manifest", "hand")):
            tps, cpu = hand_run(args, text) if side == "hand" else manifest_run(args, text)
            (hand if side == "hand" else engine).append(tps)
            (hand_cpu if side == "hand" else engine_cpu).append(cpu)
    out = {"device": args.device, "torch": torch.__version__, "threads": torch.get_num_threads(),
           "hand_tokens_per_s": max(hand), "manifest_tokens_per_s": max(engine),
           "hand_cpu_ms_per_step": min(hand_cpu), "manifest_cpu_ms_per_step": min(engine_cpu),
           "hand_cpu_all": hand_cpu, "manifest_cpu_all": engine_cpu,
           "ratio": max(engine) / max(hand), "hand_all": hand, "manifest_all": engine,
           "hand_median": statistics.median(hand), "manifest_median": statistics.median(engine),
           "config": {k: v for k, v in vars(args).items() if k != "json"}}
    if args.json:
        print(json.dumps(out))
        return
    print(f"device {args.device} | torch {torch.__version__} | threads {out['threads']} | "
          f"GPT d={args.d_model} L={args.layers} B={args.batch} T={args.block} steps {args.warmup + 1}..{args.steps}")
    print(f"hand-written loop : {out['hand_tokens_per_s']:>12,.0f} tokens/s  (runs: {', '.join(f'{h:,.0f}' for h in hand)})")
    print(f"manifest + runner : {out['manifest_tokens_per_s']:>12,.0f} tokens/s  (runs: {', '.join(f'{e:,.0f}' for e in engine)})")
    print(f"CPU time per step : hand {out['hand_cpu_ms_per_step']:.2f} ms, manifest "
          f"{out['manifest_cpu_ms_per_step']:.2f} ms (best of {args.repeats})")
    print(f"ratio manifest/hand: {out['ratio']:.3f}  (target >= 0.97)")


if __name__ == "__main__":
    main()
