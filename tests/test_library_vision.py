"""PatchEmbedLayer, Conv2dLayer, ViTModel / MLPModel via system.classifier, GPTModel alias."""

from __future__ import annotations

import pytest
import torch

from caramba.engine.layers.conv2d import Conv2dLayer
from caramba.engine.layers.patch_embed import PatchEmbedLayer
from caramba.engine.layers.problems import ConfigError
from caramba.engine.systems.build import build_system
from caramba.tests.library_fixtures import llama_system, one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def test_patch_embed_equals_manual_patch_projection() -> None:
    torch.manual_seed(0)
    layer = PatchEmbedLayer(PatchEmbedLayer.Config(image_size=4, patch_size=2, in_channels=3, d_model=5))
    x = torch.randn(2, 3, 4, 4)
    out = layer(x)
    assert out.shape == (2, 1 + 4, 5)
    w = layer.proj.weight.reshape(5, -1)  # (d_model, C*p*p)
    for idx, (i, j) in enumerate([(0, 0), (0, 2), (2, 0), (2, 2)]):
        patch = x[:, :, i:i + 2, j:j + 2].reshape(2, -1)
        expected = patch @ w.T + layer.proj.bias + layer.pos[0, 1 + idx]
        torch.testing.assert_close(out[:, 1 + idx], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[:, 0], (layer.cls[0, 0] + layer.pos[0, 0]).expand(2, 5))
    torch.testing.assert_close(layer(x.reshape(2, -1)), out)  # flat input is reshaped
    with pytest.raises(ValueError, match="patch_size 3 does not divide image_size 4"):
        PatchEmbedLayer.Config(image_size=4, patch_size=3, d_model=5)


def test_conv2d_matches_functional_and_checks_channels() -> None:
    layer = Conv2dLayer(Conv2dLayer.Config(in_channels=2, out_channels=3, kernel_size=3, padding=1, activation="relu"))
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    y = layer(x)
    torch.testing.assert_close(y, torch.relu(torch.nn.functional.conv2d(x, layer.conv.weight, layer.conv.bias,
                                                                         padding=1)))
    y.sum().backward()
    assert x.grad is not None
    with pytest.raises(ValueError, match=r"expects \(B, 2, H, W\)"):
        layer(torch.randn(1, 3, 6, 6))


def _vit(topology_d: int = 32) -> dict:
    block = [{"type": "ResidualTopology", "layers": [
        {"type": "LayerNormLayer", "d_model": 32},
        {"type": "AttentionLayer", "d_model": 32, "n_heads": 4, "causal": False, "rope": False}]}]
    return {"ref": "system.classifier", "config": {"model": {
        "type": "ViTModel", "patch": {"image_size": 8, "patch_size": 2, "in_channels": 1, "d_model": 32},
        "n_classes": 10, "topology": {"type": "StackedTopology", "layers": [
            *block, {"type": "LinearLayer", "d_in": 32, "d_out": topology_d}]}}}}


def test_vit_shapes_and_learns_a_batch() -> None:
    torch.manual_seed(0)
    system = build_system(_vit())
    x = torch.randn(32, 64)
    y = torch.randint(0, 10, (32,))
    out = system({"x": x})["logits"]
    assert out.shape == (32, 10)
    opt = torch.optim.Adam(system.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(system({"x": x})["logits"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.2 * first  # memorises a small batch


def test_vit_width_problem_names_the_topology() -> None:
    with pytest.raises(ConfigError, match="the blocks emit width 16, not d_model 32"):
        build_system(_vit(topology_d=16))


def test_mlp_model_and_gpt_alias() -> None:
    system = build_system({"ref": "system.classifier", "config": {"model": {
        "type": "MLPModel", "d_in": 6, "hidden": [8], "n_out": 3}}})
    assert system({"x": torch.randn(4, 6)})["logits"].shape == (4, 3)
    spec = llama_system()
    spec["config"]["model"]["type"] = "GPTModel"
    gpt = build_system(spec)
    assert type(gpt.model).__name__ == "GPTModel"
    assert gpt({"input_ids": torch.randint(0, 61, (2, 5))})["logits"].shape == (2, 5, 61)
