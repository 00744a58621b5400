"""LoRA layer and manifest-level PEFT: wrap, freeze, train, merge, export."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_model

from caramba.engine.errors import CarambaError
from caramba.engine.layers.lora import LoRALinear, LoRALinearLayer
from caramba.engine.manifest.schema_train import PeftConfig
from caramba.engine.systems.build import build_system
from caramba.engine.train.peft import apply_peft, merge_peft, peft_summary, save_merged
from caramba.tests.library_fixtures import llama_system
from caramba.tests.library_fixtures import one_thread  # noqa: F401, E402

pytestmark = pytest.mark.usefixtures("one_thread")


def test_lora_linear_math_and_merge() -> None:
    torch.manual_seed(0)
    base = torch.nn.Linear(6, 5)
    lora = LoRALinear(base, r=2, alpha=4.0)
    x = torch.randn(3, 6)
    torch.testing.assert_close(lora(x), base(x))  # B = 0 at start: no change
    with torch.no_grad():
        lora.lora_B.normal_()
    expected = x @ (base.weight + 2.0 * lora.lora_B @ lora.lora_A).T + base.bias
    torch.testing.assert_close(lora(x), expected, atol=1e-5, rtol=1e-5)
    merged = lora.merge()
    torch.testing.assert_close(merged(x), expected, atol=1e-5, rtol=1e-5)


def test_lora_layer_shape_and_only_adapter_trains() -> None:
    layer = LoRALinearLayer(LoRALinearLayer.Config(d_in=8, d_out=4, r=2))
    x = torch.randn(2, 3, 8)
    y = layer(x)
    assert y.shape == (2, 3, 4)
    y.sum().backward()
    assert layer.lora.base.weight.grad is None
    assert layer.lora.lora_B.grad is not None and layer.lora.lora_B.grad.abs().sum() > 0


def test_peft_on_a_built_model_trains_adapters_and_merges(tmp_path) -> None:
    torch.manual_seed(0)
    system = build_system(llama_system())
    ids = torch.randint(0, 61, (4, 12))
    before = system({"input_ids": ids})["logits"].detach()
    frozen = {k: v.clone() for k, v in system.state_dict().items()}
    wrapped = apply_peft(system, PeftConfig(r=4, alpha=8, target_modules=["q_proj", "v_proj"],
                                            modules_to_save=["embedder"]))
    assert len(wrapped) == 4 and all(p.endswith(("q_proj", "v_proj")) for p in wrapped)
    torch.testing.assert_close(system({"input_ids": ids})["logits"], before)  # identity at init
    trainable = {n for n, p in system.named_parameters() if p.requires_grad}
    assert trainable == {n for n in trainable if "lora_" in n or "embedder" in n}
    assert any("lora_A" in n for n in trainable) and "model.embedder.token.weight" in trainable
    counts = peft_summary(system)
    assert 0 < counts["trainable"] < counts["total"]

    opt = torch.optim.AdamW([p for p in system.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(15):
        logits = system({"input_ids": ids[:, :-1]})["logits"]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 61), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1
    state = system.state_dict()
    k_name = "model.topology.layers.0.layers.0.layers.1.k_proj.weight"
    torch.testing.assert_close(state[k_name], frozen[k_name])  # untouched (not a target)

    system.eval()
    adapted = system({"input_ids": ids})["logits"].detach()
    path = save_merged(system, tmp_path / "merged" / "model.safetensors")
    assert not any(isinstance(m, LoRALinear) for m in system.modules())
    torch.testing.assert_close(system({"input_ids": ids})["logits"], adapted, atol=1e-5, rtol=1e-5)
    fresh = build_system(llama_system()).eval()
    load_model(fresh, str(path))
    torch.testing.assert_close(fresh({"input_ids": ids})["logits"], adapted, atol=1e-5, rtol=1e-5)


def test_target_by_layer_type_and_disabled() -> None:
    system = build_system(llama_system())
    assert apply_peft(system, PeftConfig(enabled=False)) == []
    wrapped = apply_peft(system, PeftConfig(target_modules=["attention"]))
    assert len(wrapped) == 8  # q, k, v, o in two attention layers
    assert merge_peft(system) == 8


def test_no_match_is_an_actionable_error() -> None:
    system = build_system(llama_system())
    with pytest.raises(CarambaError) as info:
        apply_peft(system, PeftConfig(target_modules=["qkv"]))
    assert "match no linear layer" in info.value.message and "q_proj" in info.value.fix
