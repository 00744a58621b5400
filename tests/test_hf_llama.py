"""Load a tiny random transformers LlamaForCausalLM into a manifest-built model and back."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from caramba.engine.errors import CarambaError
from caramba.engine.model.hf_llama import export_hf_llama, load_hf_llama
from caramba.engine.systems.build import build_system
from caramba.tests.library_fixtures import llama_system


def _hf(tmp_path, tied: bool = False, **kw):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=61, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6, max_position_embeddings=128,
                      tie_word_embeddings=tied, **kw)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # RMSNorm weights start at 1; make them matter
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    model.save_pretrained(tmp_path / "hf")
    return model, tmp_path / "hf"


@pytest.mark.parametrize("tied", [False, True])
def test_logits_match_transformers(tmp_path, tied: bool) -> None:
    hf, path = _hf(tmp_path, tied=tied)
    system = build_system(llama_system(n_kv_heads=2, tied=tied)).eval()
    loaded = load_hf_llama(system, path)
    assert "model.layers.1.mlp.up_proj.weight" in loaded
    ids = torch.randint(0, 61, (2, 17))
    with torch.no_grad():
        ours = system({"input_ids": ids})["logits"]
        ref = hf(ids).logits
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_export_roundtrip_loads_in_transformers(tmp_path) -> None:
    torch.manual_seed(3)
    system = build_system(llama_system(n_kv_heads=2)).eval()
    out = export_hf_llama(system, tmp_path / "export")
    assert json.loads((out / "config.json").read_text())["num_key_value_heads"] == 2
    hf = LlamaForCausalLM.from_pretrained(out).eval()
    ids = torch.randint(0, 61, (1, 9))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, system({"input_ids": ids})["logits"], atol=1e-4, rtol=1e-4)


def test_init_from_in_the_system_config(tmp_path) -> None:
    hf, path = _hf(tmp_path)
    spec = llama_system(n_kv_heads=2)
    spec["config"]["init_from"] = str(path)
    system = build_system(spec).eval()
    ids = torch.randint(0, 61, (1, 5))
    with torch.no_grad():
        torch.testing.assert_close(system({"input_ids": ids})["logits"], hf(ids).logits, atol=1e-4, rtol=1e-4)
    build_system(spec, device="meta")  # dry-run builds never read the weights


def test_mismatches_are_listed(tmp_path) -> None:
    _, path = _hf(tmp_path)
    with pytest.raises(CarambaError) as info:
        load_hf_llama(build_system(llama_system(n_kv_heads=4, d_ff=40)), path)
    msg = info.value.message
    assert "num_key_value_heads: checkpoint has 2, the model has 4" in msg and "intermediate_size" in msg
    # an unexpected tensor (a bias the model has no place for) is named
    from safetensors.torch import load_file, save_file
    tensors = load_file(str(path / "model.safetensors"))
    tensors["model.layers.0.self_attn.q_proj.bias"] = torch.zeros(32)
    save_file(tensors, str(path / "model.safetensors"))
    with pytest.raises(CarambaError, match=r"no place in the model: model\.layers\.0\.self_attn\.q_proj\.bias"):
        load_hf_llama(build_system(llama_system(n_kv_heads=2)), path)
    with pytest.raises(CarambaError, match="does not exist"):
        load_hf_llama(build_system(llama_system()), tmp_path / "nope")
