"""TransformerModel via system.language_model: training, tying, init, meta build, checks."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from caramba.engine.layers.problems import ConfigError
from caramba.engine.systems.build import build_system, check_system
from caramba.engine.systems.language_model import LanguageModelSystem
from caramba.tests.support.model_configs import tiny_lm_config

LM = "system.language_model"


def test_trains_from_dict_config_with_falling_loss():
    torch.manual_seed(0)
    system = build_system({"ref": LM, "config": tiny_lm_config(tied=True, n_layers=1)})
    opt = torch.optim.AdamW(system.parameters(), lr=1e-2)
    ids = torch.randint(0, 64, (4, 13))  # a fixed batch of random tokens: memorisable
    losses = []
    for _ in range(20):
        logits = system({"input_ids": ids[:, :-1]})["logits"]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 64), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(math.log(64), abs=0.3)  # GPT-2 init: near-uniform predictions
    assert losses[-1] < 0.5 * losses[0]


def test_tied_embeddings_share_one_parameter():
    tied = build_system({"ref": LM, "config": tiny_lm_config(tied=True)})
    untied = build_system({"ref": LM, "config": tiny_lm_config(tied=False)})
    head = tied.model.topology.layers[-1].linear
    assert head.weight is tied.model.embedder.token.weight
    n_tied = sum(p.numel() for p in tied.parameters())
    assert n_tied == sum(p.numel() for p in untied.parameters()) - 64 * 32
    assert tied.describe().params == n_tied


def test_tied_embeddings_shape_and_head_problems():
    cfg = tiny_lm_config(tied=True)
    cfg["model"]["topology"]["layers"].append({"type": "rms_norm", "d_model": 64})
    problems = {p.path: p for p in LanguageModelSystem.check_config(cfg)}
    assert "ends in RMSNormLayer" in problems[("model", "tied_embeddings")].message

    cfg = tiny_lm_config(tied=True)
    cfg["model"]["topology"]["layers"][-2:] = [{"type": "linear", "d_in": 32, "d_out": 16},
                                               {"type": "linear", "d_in": 16, "d_out": 64}]
    p = {p.path: p for p in LanguageModelSystem.check_config(cfg)}[("model", "tied_embeddings")]
    assert p.expected == "(64, 32)" and p.found == "(64, 16)"


def test_head_must_emit_vocab_size():
    cfg = tiny_lm_config()
    cfg["model"]["topology"]["layers"][-1]["d_out"] = 50
    (p,) = LanguageModelSystem.check_config(cfg)
    assert p.path == ("model", "topology", "layers", 2, "d_out")
    assert p.expected == "64" and p.found == "50" and "d_out: 64" in p.fix


def test_check_config_exact_nested_path_and_did_you_mean():
    cfg = tiny_lm_config()
    block = cfg["model"]["topology"]["layers"][0]["layers"]
    block[1]["layers"][0]["d_model"] = 48
    block[0]["layers"][1]["n_heads"] = 5
    cfg["model"]["embedder"]["vocab_sise"] = 64
    problems = {p.path: p for p in LanguageModelSystem.check_config(cfg)}
    assert problems[("model", "embedder", "vocab_sise")].fix == "did you mean 'vocab_size'?"
    assert "does not divide d_model 32" in problems[("model", "topology", "layers", 0, "layers", 0, "layers", 1,
                                                     "n_heads")].message
    assert ("model", "topology", "layers", 0, "layers", 1, "layers", 0, "d_model") in problems
    assert len(problems) == 3


def test_unknown_model_and_init_and_system_fields():
    cfg = tiny_lm_config()
    cfg["model"]["type"] = "Transformer"
    cfg["init"] = {"type": "gpt3"}
    cfg["extra"] = 1
    problems = {p.path: p for p in LanguageModelSystem.check_config(cfg)}
    assert problems[("extra",)].message == "unknown field 'extra'"
    cfg.pop("extra")
    problems = {p.path: p for p in LanguageModelSystem.check_config(cfg)}
    cfg["model"]["type"] = "TransformerModle"
    cfg["model"]["embedder"]["type"] = "tokn"
    problems = {p.path: p for p in LanguageModelSystem.check_config(cfg)}
    assert problems[("model", "type")].fix == "did you mean 'TransformerModel'?"
    cfg["model"]["type"] = "TransformerModel"
    problems = {p.path: p for p in LanguageModelSystem.check_config(cfg)}
    assert problems[("model", "embedder", "type")].fix == "did you mean 'token'?"
    cfg["model"]["type"] = "Transformer"
    problems = {p.path: p for p in LanguageModelSystem.check_config(cfg)}
    assert problems[("model", "type")].fix in ("did you mean 'TransformerModel'?", "did you mean 'transformer'?")
    assert problems[("init", "type")].fix == "did you mean 'gpt2'?"
    with pytest.raises(ConfigError) as info:
        build_system({"ref": LM, "config": cfg})
    assert "model.type: unknown model type 'Transformer'" in str(info.value)


def test_gpt2_initializer_statistics():
    torch.manual_seed(0)
    n_layers = 3
    system = build_system({"ref": LM, "config": tiny_lm_config(vocab=256, d_model=64, n_layers=n_layers)})
    blocks = system.model.topology.layers[0].layers
    attn, mlp, norm = blocks[0].layers[1], blocks[1].layers[1], blocks[0].layers[0]
    assert attn.q_proj.weight.std().item() == pytest.approx(0.02, rel=0.05)
    residual_std = 0.02 / math.sqrt(2 * n_layers)
    assert attn.o_proj.weight.std().item() == pytest.approx(residual_std, rel=0.05)
    assert mlp.down.weight.std().item() == pytest.approx(residual_std, rel=0.05)
    assert system.model.embedder.token.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert torch.equal(norm.weight, torch.ones(64))
    plain = build_system({"ref": LM, "config": {**tiny_lm_config(vocab=256, d_model=64), "init": None}})
    assert plain.model.topology.layers[0].layers[0].layers[1].o_proj.weight.std().item() > 0.05  # PyTorch's init


def test_meta_build_allocates_nothing_and_counts_match():
    cfg = tiny_lm_config(d_model=64, n_layers=3, n_kv_heads=2)
    meta = build_system({"ref": LM, "config": copy.deepcopy(cfg)}, device="meta")
    tensors = [*meta.parameters(), *meta.buffers()]
    assert tensors and all(t.is_meta for t in tensors)
    cpu = build_system({"ref": LM, "config": cfg})
    assert meta.describe().to_dict() == cpu.describe().to_dict()
    assert meta.describe().params == sum(p.numel() for p in cpu.parameters())


def test_batch_without_input_ids_is_a_clear_error():
    from caramba.engine.errors import CarambaError

    system = build_system({"ref": LM, "config": tiny_lm_config()})
    with pytest.raises(CarambaError, match="needs batch\\['input_ids'\\]"):
        system({"x": torch.zeros(1, 3, dtype=torch.long)})


def test_check_system_accepts_component_spec_objects():
    class Spec:
        ref, impl, config = LM, None, tiny_lm_config()

    assert check_system(Spec()) == []
