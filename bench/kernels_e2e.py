"""End to end: a GPT-2-small-sized Llama-style LM trained with caramba's Triton kernels vs
the PyTorch references (the "kernels off" path, i.e. what ``CARAMBA_KERNELS=reference``
selects), same architecture, same data, bf16 parameters.

    python bench/kernels_e2e.py               # CUDA only; prints tokens/s and MFU per path

12 layers, d_model 768, 12 heads (head dim 64), SwiGLU MLP 2048, vocab 50304, RMSNorm,
RoPE, causal attention, T = 1024, batch 8 (8192 tokens/step). Each step: forward,
cross-entropy, backward, AdamW. MFU = (6 * params + 12 * L * T * d) FLOP/token * tokens/s
over the GPU's dense bf16 peak (H100/H200 SXM datasheet: 989 TFLOP/s).
This builds the model from the ops directly (not through a manifest), so it measures
the kernels, not the engine's own overheads.
"""

from __future__ import annotations

import time

import torch
import torch.nn as nn

from caramba.kernels import adamw, cross_entropy, flash, glu, norms, reference, rope

L, D, NH, HID, V, T, B = 12, 768, 12, 2048, 50304, 1024, 8
PEAK = 989e12


def ops_for(kernels: bool) -> dict:
    if kernels:
        return dict(rms=norms.rms_norm, rope=rope.apply_rope, attn=flash.attention, swiglu=glu.swiglu,
                    ce=cross_entropy.cross_entropy)
    return dict(rms=reference.rms_norm, rope=reference.apply_rope, attn=reference.attention,
                swiglu=reference.swiglu, ce=reference.cross_entropy)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.n1, self.n2 = nn.Parameter(torch.ones(D)), nn.Parameter(torch.ones(D))
        self.qkv, self.o = nn.Linear(D, 3 * D, bias=False), nn.Linear(D, D, bias=False)
        self.up, self.down = nn.Linear(D, 2 * HID, bias=False), nn.Linear(HID, D, bias=False)

    def forward(self, x, cos, sin, op):  # x (B, T, D)
        q, k, v = self.qkv(op["rms"](x, self.n1, 1e-6)).view(B, T, 3, NH, D // NH).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, NH, T, hd) strided views
        q, k = op["rope"](q, cos, sin), op["rope"](k, cos, sin)
        x = x + self.o(op["attn"](q, k, v, causal=True).transpose(1, 2).reshape(B, T, D))
        g, u = self.up(op["rms"](x, self.n2, 1e-6)).chunk(2, -1)
        return x + self.down(op["swiglu"](g, u))


class LM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, D)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.nf = nn.Parameter(torch.ones(D))
        self.head = nn.Linear(D, V, bias=False)

    def forward(self, idx, tgt, cos, sin, op):
        x = self.emb(idx)
        for blk in self.blocks:
            x = blk(x, cos, sin, op)
        logits = self.head(op["rms"](x, self.nf, 1e-6))
        return op["ce"](logits.reshape(-1, V), tgt.reshape(-1))


def run(kernels: bool, steps: int = 12, warm: int = 4) -> tuple[float, float, float]:
    torch.manual_seed(0)
    model = LM().cuda().to(torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    opt = (adamw.FusedAdamW if kernels else torch.optim.AdamW)(model.parameters(), lr=3e-4, weight_decay=0.1)
    inv = 1.0 / (10000 ** (torch.arange(0, D // NH, 2, device="cuda").float() / (D // NH)))
    ang = torch.arange(T, device="cuda").float()[:, None] * inv[None]
    cos, sin = ang.cos(), ang.sin()
    op = ops_for(kernels)
    data = torch.randint(0, V, (steps + warm, B, T + 1), device="cuda")
    losses = []
    for i in range(steps + warm):
        if i == warm:
            torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = model(data[i, :, :-1], data[i, :, 1:], cos, sin, op)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    torch.cuda.synchronize()
    tok_s = steps * B * T / (time.perf_counter() - t0)
    mfu = (6 * n_params + 12 * L * T * D) * tok_s / PEAK
    return tok_s, mfu, float(losses[-1])


def main() -> None:
    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}; GPT-2-small-sized LM, bf16, {B}x{T} tokens/step")
    for kernels in (True, False):
        tok_s, mfu, last = run(kernels)
        print(f"{'triton kernels' if kernels else 'pytorch reference':<18} {tok_s:>10.0f} tokens/s  "
              f"MFU {100 * mfu:5.1f}%  last loss {last:.3f}", flush=True)


if __name__ == "__main__":
    main()
