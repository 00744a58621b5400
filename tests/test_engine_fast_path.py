"""The trainer's per-step fast paths keep their semantics: aux losses read from the module
list fixed for a run equal the tree walk (and the list is dropped afterwards), and the MoE
preset still logs ``aux_*`` while training (``test_presets_library``)."""

from __future__ import annotations

import torch

from caramba.engine.layers.moe import MoELayer
from caramba.engine.systems.build import build_system

SPEC = {"ref": "system.language_model", "config": {"model": {
    "type": "TransformerModel", "embedder": {"type": "token", "vocab_size": 32, "d_model": 16},
    "topology": {"type": "StackedTopology", "layers": [
        {"type": "ResidualTopology", "layers": [
            {"type": "RMSNormLayer", "d_model": 16},
            {"type": "MoELayer", "d_model": 16, "d_ff": 32, "num_experts": 4, "top_k": 2,
             "aux_loss": {"type": "kl", "weight": 0.5}}]},
        {"type": "LinearLayer", "d_in": 16, "d_out": 32}]}}}}


def test_fixed_structure_reads_the_same_aux_losses_and_is_released():
    torch.manual_seed(0)
    system = build_system(SPEC)
    system({"input_ids": torch.randint(0, 32, (2, 8))})
    walked = system.aux_losses()
    assert walked and all(k.endswith("moe_load_balance") for k in walked)
    with system.fixed_structure():
        fixed = system.aux_losses()
        assert "_aux_modules" in system.__dict__
    assert fixed.keys() == walked.keys() and all(torch.equal(fixed[k], walked[k]) for k in walked)
    assert "_aux_modules" not in system.__dict__  # later surgery is seen again by the walk
    system.extra = MoELayer(MoELayer.Config(d_model=16, d_ff=32, num_experts=4, top_k=2))
    system.extra(torch.randn(2, 8, 16))
    assert any(k.startswith("extra.") for k in system.aux_losses())


def test_fixed_structure_without_aux_modules_returns_nothing():
    spec = {**SPEC, "config": {"model": {**SPEC["config"]["model"], "topology": {
        "type": "StackedTopology", "layers": [{"type": "LinearLayer", "d_in": 16, "d_out": 32}]}}}}
    system = build_system(spec)
    with system.fixed_structure():
        assert system.aux_losses() == {} and system.__dict__["_aux_modules"] == []
