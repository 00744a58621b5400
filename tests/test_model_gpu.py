"""The model-building stack on CUDA (Triton kernels behind caramba.kernels.ops)."""

from __future__ import annotations

import pytest
import torch

from caramba.engine.layers.cache import KVCache
from caramba.engine.systems.build import build_system
from caramba.tests.support.model_configs import tiny_lm_config

pytestmark = pytest.mark.gpu
LM = "system.language_model"


def _pair(**kw):
    torch.manual_seed(0)
    cfg = tiny_lm_config(vocab=128, d_model=64, n_heads=4, **kw)
    cpu = build_system({"ref": LM, "config": cfg})
    gpu = build_system({"ref": LM, "config": cfg}, device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    return cpu, gpu


@pytest.mark.parametrize("kv", [None, 2])
def test_cuda_forward_and_grads_match_cpu_reference(kv):
    cpu, gpu = _pair(n_kv_heads=kv, tied=True)
    ids = torch.randint(0, 128, (2, 33))
    out_c = cpu({"input_ids": ids})["logits"]
    out_g = gpu({"input_ids": ids.cuda()})["logits"]
    torch.testing.assert_close(out_g.cpu(), out_c, atol=2e-3, rtol=2e-3)
    out_c.square().mean().backward()
    out_g.square().mean().backward()
    for (name, pc), pg in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        torch.testing.assert_close(pg.grad.cpu(), pc.grad, atol=2e-3, rtol=5e-2, msg=name)


def test_cuda_kv_cache_decode_matches_full_forward():
    _, gpu = _pair(n_kv_heads=2)
    gpu.eval()
    ids = torch.randint(0, 128, (3, 20), device="cuda")
    with torch.no_grad():
        full = gpu({"input_ids": ids})["logits"]
        cache = KVCache()
        parts = [gpu({"input_ids": ids[:, :12]}, cache=cache)["logits"]]
        for t in range(12, 20):
            parts.append(gpu({"input_ids": ids[:, t : t + 1]}, cache=cache)["logits"])
    torch.testing.assert_close(torch.cat(parts, 1), full, atol=2e-3, rtol=2e-3)


def test_cuda_bf16_autocast_training_loss_falls():
    _, gpu = _pair()
    opt = torch.optim.AdamW(gpu.parameters(), lr=1e-2)
    ids = torch.randint(0, 128, (8, 65), device="cuda")
    losses = []
    for _ in range(30):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = gpu({"input_ids": ids[:, :-1]})["logits"]
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, 128), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(map(lambda v: v == v, losses))  # no NaN
    assert losses[-1] < 0.5 * losses[0]
