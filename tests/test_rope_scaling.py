"""RoPE scaling (llama3, linear) in the standard AttentionLayer and the HF Llama loader/exporter.

The reference is transformers' own LlamaForCausalLM: a tiny random checkpoint with
``rope_scaling`` whose ``original_max_position_embeddings`` is far below the sequence
length, so the scaled frequencies really differ from the plain ones (the control test
shows the unscaled model misses by far more than the tolerance).
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from caramba.engine.errors import CarambaError
from caramba.engine.layers.attention import AttentionLayer
from caramba.engine.layers.problems import ConfigError
from caramba.engine.layers.rope import RopeCache, rope_tables
from caramba.engine.layers.rope_tables import RopeScaling, inv_frequencies, scaled_rope_tables
from caramba.engine.model.hf_llama import export_hf_llama, load_hf_llama
from caramba.engine.systems.build import build_system
from caramba.kernels import ops
from caramba.tests.library_fixtures import llama_system

LLAMA3 = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 16}
T = 48  # positions well beyond original_max_position_embeddings


def _hf(tmp_path, rope_scaling: dict | None, head_dim_heads: int = 2):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=61, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=head_dim_heads, num_key_value_heads=head_dim_heads, rms_norm_eps=1e-6,
                      max_position_embeddings=512, rope_scaling=rope_scaling)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # sharpen attention (random init is near-uniform) so positions matter
        for name, p in model.named_parameters():
            if "q_proj" in name or "k_proj" in name:
                p.mul_(8.0)
    model.save_pretrained(tmp_path / "hf")
    return model, tmp_path / "hf"


def _system(scaling: dict | None):
    return build_system(llama_system(n_heads=2, attention={"rope_scaling": scaling} if scaling else None)).eval()


def _legacy_config(path) -> None:
    """Rewrite transformers 5's ``rope_parameters`` as the ``rope_theta`` + ``rope_scaling``
    keys that Llama 3.x checkpoints on the Hub carry."""
    cfg = json.loads((path / "config.json").read_text())
    params = cfg.pop("rope_parameters")
    cfg["rope_theta"] = params.pop("rope_theta")
    cfg["rope_scaling"] = params
    (path / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("kind", ["llama3", "llama3-legacy-keys", "linear"])
def test_scaled_checkpoint_logits_match_transformers(tmp_path, kind: str) -> None:
    hf_scaling = {"rope_type": "linear", "factor": 4.0} if kind == "linear" else {"rope_type": "llama3", **LLAMA3}
    ours_scaling = {"type": hf_scaling["rope_type"], **{k: v for k, v in hf_scaling.items() if k != "rope_type"}}
    hf, path = _hf(tmp_path, hf_scaling)
    if kind == "llama3-legacy-keys":
        _legacy_config(path)
    system = _system(ours_scaling)
    load_hf_llama(system, path)
    ids = torch.randint(0, 61, (2, T))
    with torch.no_grad():
        ref = hf(ids).logits
        torch.testing.assert_close(system({"input_ids": ids})["logits"], ref, atol=1e-4, rtol=1e-4)
        # control: the same weights with unscaled RoPE are far off, so the match above needs the scaling
        plain = _system(None)
        plain.load_state_dict(system.state_dict())
        assert (plain({"input_ids": ids})["logits"] - ref).abs().max() > 1e-2


def test_scaled_tables_differ_and_match_transformers_frequencies() -> None:
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = LlamaConfig(hidden_size=32, num_attention_heads=2, max_position_embeddings=512,
                      rope_scaling={"rope_type": "llama3", **LLAMA3})
    ref, _ = ROPE_INIT_FUNCTIONS["llama3"](cfg, "cpu")
    scaling = RopeScaling(type="llama3", **LLAMA3)
    torch.testing.assert_close(inv_frequencies(16, 10000.0, scaling), ref.float(), atol=1e-7, rtol=1e-6)
    cos_s, _ = rope_tables(0, T, 16, 10000.0, "cpu", scaling)
    cos_p, _ = rope_tables(0, T, 16, 10000.0, "cpu")
    assert (cos_s - cos_p).abs().max() > 0.5  # low frequencies really moved
    plain = inv_frequencies(16, 10000.0)
    torch.testing.assert_close(inv_frequencies(16, 10000.0, scaling)[-1], plain[-1] / 8.0)  # longest wavelength / factor


def test_attention_layer_hands_the_scaled_tables_to_the_rope_kernel() -> None:
    """The layer's q/k rotation equals ops.apply_rope with the scaled tables (cached,
    sliced at the decode offset), not with the plain ones."""
    torch.manual_seed(0)
    scaling = {"type": "llama3", **LLAMA3}
    layer = AttentionLayer(AttentionLayer.Config(d_model=32, n_heads=2, rope_scaling=scaling)).eval()
    x = torch.randn(1, T, 32)
    q, k, v = layer.project(x)
    cos, sin = scaled_rope_tables(torch.arange(T), 16, 10000.0, RopeScaling(**scaling))
    qr, kr = ops.apply_rope(q, cos, sin), ops.apply_rope(k, cos, sin)
    want = layer.o_proj(ops.attention(qr, kr, v, causal=True).transpose(1, 2).reshape(1, T, 32))
    with torch.no_grad():
        torch.testing.assert_close(layer(x), want, atol=1e-5, rtol=1e-5)
        c40, s40 = layer.rope.tables(40, 3, x.device)  # a decode slice of the cached tables
        torch.testing.assert_close(c40, cos[40:43])
        torch.testing.assert_close(s40, sin[40:43])
    assert isinstance(layer.rope, RopeCache) and layer.rope.scaling == RopeScaling(**scaling)


def test_export_writes_rope_scaling_and_transformers_agrees(tmp_path) -> None:
    torch.manual_seed(3)
    system = _system({"type": "llama3", **LLAMA3})
    out = export_hf_llama(system, tmp_path / "export")
    written = json.loads((out / "config.json").read_text())["rope_scaling"]
    assert written["rope_type"] == "llama3" and written["original_max_position_embeddings"] == 16
    hf = LlamaForCausalLM.from_pretrained(out).eval()
    ids = torch.randint(0, 61, (1, T))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, system({"input_ids": ids})["logits"], atol=1e-4, rtol=1e-4)
    load_hf_llama(_system({"type": "llama3", **LLAMA3}), out)  # and it loads back


def test_scaling_mismatch_and_unsupported_types_are_clear_errors(tmp_path) -> None:
    _, path = _hf(tmp_path, {"rope_type": "llama3", **LLAMA3})
    with pytest.raises(CarambaError, match=r"rope_scaling: checkpoint has \{type: llama3, factor: 8.0.*the model "
                       r"has none \(AttentionLayer.rope_scaling\)"):
        load_hf_llama(_system(None), path)
    cfg = json.loads((path / "config.json").read_text())
    cfg.pop("rope_parameters", None)
    cfg["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16}
    (path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CarambaError, match=r"RoPE scaling type 'yarn' is not supported \(supported: llama3 \| linear"):
        load_hf_llama(_system(None), path)


@pytest.mark.parametrize("scaling, where, words", [
    ({"type": "dynamic", "factor": 2.0}, "rope_scaling.type", "'dynamic' is not supported"),
    ({"type": "linear", "factor": 2.0, "low_freq_factor": 1.0}, "rope_scaling.low_freq_factor", "only apply to"),
    ({"type": "llama3", "low_freq_factor": 4.0, "high_freq_factor": 1.0}, "rope_scaling.high_freq_factor", "below"),
    ({"type": "llama3", "factr": 8.0}, "rope_scaling.factr", "unknown field"),
])
def test_manifest_rope_scaling_errors_name_the_field(scaling: dict, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        _system(scaling)
    problem = info.value.problems[0]
    assert ".".join(str(p) for p in problem.path).endswith(where) and words in problem.message


def test_rope_scaling_without_rope_is_an_error() -> None:
    with pytest.raises(ConfigError, match="rope_scaling is set but rope is false"):
        build_system(llama_system(n_heads=2, attention={"rope": False,
                                                        "rope_scaling": {"type": "linear", "factor": 2.0}}))


@pytest.mark.gpu
def test_cuda_scaled_rope_matches_cpu(tmp_path) -> None:
    """On CUDA the Triton rope kernel gets the scaled tables: logits equal transformers'."""
    hf, path = _hf(tmp_path, {"rope_type": "llama3", **LLAMA3})
    system = build_system(llama_system(n_heads=2, attention={"rope_scaling": {"type": "llama3", **LLAMA3}}),
                          device="cuda").eval()
    load_hf_llama(system, path)
    ids = torch.randint(0, 61, (2, T))
    with torch.no_grad():
        torch.testing.assert_close(system({"input_ids": ids.cuda()})["logits"].cpu(), hf(ids).logits,
                                   atol=2e-3, rtol=2e-3)
