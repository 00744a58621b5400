"""Every layer: output shape, finite output and a gradient on every parameter and input."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from caramba.engine.layers.attention import AttentionLayer
from caramba.engine.layers.base import FieldError
from caramba.engine.layers.registry import LAYERS, check_unique_aliases

CASES = [
    ("LinearLayer", {"d_in": 12, "d_out": 7}, 7),
    ("DropoutLayer", {"p": 0.2}, 12),
    ("RMSNormLayer", {"d_model": 12}, 12),
    ("LayerNormLayer", {"d_model": 12}, 12),
    ("AttentionLayer", {"d_model": 12, "n_heads": 3}, 12),
    ("AttentionLayer", {"d_model": 12, "n_heads": 2, "n_kv_heads": 1, "mode": "gqa", "bias": True}, 12),
    ("SwiGLULayer", {"d_model": 12, "d_ff": 20}, 12),
    ("GLULayer", {"d_model": 12, "d_ff": 9, "activation": "sigmoid"}, 12),
    ("DenseLayer", {"d_in": 12, "d_out": 5, "activation": "silu"}, 5),
]


@pytest.mark.parametrize(("name", "fields", "out"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_shape_and_gradients(name, fields, out):
    torch.manual_seed(0)
    cls = LAYERS.get(name).resolve(fields)
    layer = cls(cls.Config(**fields))
    x = torch.randn(2, 5, 12, requires_grad=True)
    y = layer(x)
    assert y.shape == (2, 5, out)
    assert torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for pname, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname
    assert cls.Config(**fields).infer_width(12) == out


def test_dropout_is_identity_in_eval():
    layer = LAYERS.get("DropoutLayer")(LAYERS.get("DropoutLayer").Config(p=0.5)).eval()
    x = torch.randn(3, 4)
    assert torch.equal(layer(x), x)


def test_aliases_resolve_and_are_unique():
    check_unique_aliases()
    for alias, name in {"rms_norm": "RMSNormLayer", "layer_norm": "LayerNormLayer", "attention": "AttentionLayer",
                        "swiglu": "SwiGLULayer", "linear": "LinearLayer", "dropout": "DropoutLayer"}.items():
        assert LAYERS.canonical(alias) == name


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"d_model": 10, "n_heads": 3}, "n_heads", "does not divide d_model 10"),
    ({"d_model": 16, "n_heads": 4, "n_kv_heads": 3, "mode": "gqa"}, "n_kv_heads", "does not divide n_heads 4"),
    ({"d_model": 16, "n_heads": 4, "n_kv_heads": 2}, "n_kv_heads", "set mode: gqa"),
    ({"d_model": 16, "n_heads": 4, "mode": "gqa"}, "n_kv_heads", "mode gqa needs n_kv_heads"),
    ({"d_model": 12, "n_heads": 4}, "rope", "even head dim"),
])
def test_attention_config_problems_name_the_field(fields, field, words):
    with pytest.raises(ValidationError) as info:
        AttentionLayer.Config(**fields)
    err = info.value.errors()[0]["ctx"]["error"]
    assert isinstance(err, FieldError) and err.field == field
    assert words in err.message or words in (err.fix or "")


def test_width_mismatch_raises_field_error():
    cfg = LAYERS.get("RMSNormLayer").Config(d_model=8)
    with pytest.raises(FieldError) as info:
        cfg.infer_width(16)
    assert info.value.field == "d_model" and info.value.expected == "16" and info.value.found == "8"
    assert cfg.infer_width(None) == 8
