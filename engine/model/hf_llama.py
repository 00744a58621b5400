"""Hugging Face Llama checkpoints ⇄ a manifest-built ``TransformerModel``.

A Llama-family checkpoint is a local directory with ``config.json`` and safetensors
(``model.safetensors`` or shards listed in ``model.safetensors.index.json``). Nothing is
downloaded. The caramba model must have the Llama shape, written in the manifest as::

    embedder {type: token}
    StackedTopology
      NestedTopology repeat: L
        ResidualTopology [RMSNormLayer, AttentionLayer]      # input_layernorm, self_attn
        ResidualTopology [RMSNormLayer, SwiGLULayer]         # post_attention_layernorm, mlp
      RMSNormLayer                                           # model.norm
      LinearLayer (bias: false)                              # lm_head

The name mapping is explicit (:func:`llama_name_map`): the blocks are found in forward
order (the i-th attention layer is ``model.layers.i.self_attn``; the norms alternate
input/post-attention and the last one is ``model.norm``) and each HF tensor gets exactly
one caramba parameter. HF's ``gate_proj``/``up_proj`` are stacked into caramba's fused
``gate_up`` (gate first). Both sides use the rotate-half RoPE layout, so q/k need no
permutation. RoPE scaling (``rope_scaling`` llama3 / linear, or transformers 5's
``rope_parameters``) must equal the manifest's ``AttentionLayer.rope_scaling``; export
writes it back. Anything that does not line up — a config field (width, heads, eps, RoPE
base and scaling), a tensor shape, a tensor without a home or a parameter left unfilled — is a
:class:`CarambaError` that lists every problem.

:func:`export_hf_llama` writes the reverse: ``config.json`` + ``model.safetensors`` that
``transformers.LlamaForCausalLM.from_pretrained`` loads (directory written to a temp
name, then renamed).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from caramba.engine.errors import CarambaError
from caramba.engine.layers.attention import AttentionLayer
from caramba.engine.layers.base import FieldError
from caramba.engine.layers.linear import LinearLayer
from caramba.engine.layers.norms import RMSNormLayer
from caramba.engine.layers.rope_tables import RopeScaling
from caramba.engine.layers.swiglu import SwiGLULayer
from caramba.engine.model.transformer import TransformerModel, last_leaf_module

SHAPE_FIX = ("write the model as token embedder → NestedTopology(repeat: L)[Residual[RMSNorm, Attention], "
             "Residual[RMSNorm, SwiGLU]] → RMSNormLayer → LinearLayer(bias: false)")


def _find_model(module: nn.Module) -> TransformerModel:
    if isinstance(module, TransformerModel):
        return module
    for m in module.modules():
        if isinstance(m, TransformerModel):
            return m
    raise CarambaError(f"{type(module).__name__} holds no TransformerModel", fix="use system.language_model with "
                       "model.type: TransformerModel")


def _parts(model: TransformerModel) -> tuple[list[AttentionLayer], list[SwiGLULayer], list[RMSNormLayer], LinearLayer]:
    attn = [m for m in model.topology.modules() if isinstance(m, AttentionLayer)]
    mlp = [m for m in model.topology.modules() if isinstance(m, SwiGLULayer)]
    norms = [m for m in model.topology.modules() if isinstance(m, RMSNormLayer)]
    head = last_leaf_module(model.topology)
    L = len(attn)
    problems = []
    if L == 0 or len(mlp) != L:
        problems.append(f"found {L} AttentionLayer and {len(mlp)} SwiGLULayer; a Llama has one of each per block")
    if len(norms) != 2 * L + 1:
        problems.append(f"found {len(norms)} RMSNormLayer; a Llama with {L} blocks has {2 * L + 1}")
    if not isinstance(head, LinearLayer):
        problems.append(f"the model ends in {type(head).__name__}, not a LinearLayer head")
    if problems:
        raise CarambaError("the model is not Llama-shaped: " + "; ".join(problems), fix=SHAPE_FIX)
    return attn, mlp, norms, head  # type: ignore[return-value]


def llama_name_map(model: nn.Module) -> dict[str, list[tuple[nn.Module, str]]]:
    """HF tensor name → the caramba (module, attribute path) pieces it fills, in order.

    A list with two entries means the HF tensors are stacked along dim 0 into one
    caramba parameter (``gate_up``); the map is keyed by each HF name separately.
    """
    m = _find_model(model)
    attn, mlp, norms, head = _parts(m)
    out: dict[str, list[tuple[nn.Module, str]]] = {"model.embed_tokens.weight": [(m.embedder.token, "weight")]}
    for i, (a, f) in enumerate(zip(attn, mlp)):
        p = f"model.layers.{i}."
        out[p + "input_layernorm.weight"] = [(norms[2 * i], "weight")]
        out[p + "post_attention_layernorm.weight"] = [(norms[2 * i + 1], "weight")]
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            lin = getattr(a, proj)
            out[p + f"self_attn.{proj}.weight"] = [(lin, "weight")]
            if lin.bias is not None:
                out[p + f"self_attn.{proj}.bias"] = [(lin, "bias")]
        out[p + "mlp.gate_proj.weight"] = [(f.gate_up, "weight:0")]
        out[p + "mlp.up_proj.weight"] = [(f.gate_up, "weight:1")]
        out[p + "mlp.down_proj.weight"] = [(f.down, "weight")]
        if f.gate_up.bias is not None:
            out[p + "mlp.gate_proj.bias"] = [(f.gate_up, "bias:0")]
            out[p + "mlp.up_proj.bias"] = [(f.gate_up, "bias:1")]
            out[p + "mlp.down_proj.bias"] = [(f.down, "bias")]
    out["model.norm.weight"] = [(norms[-1], "weight")]
    out["lm_head.weight"] = [(head.linear, "weight")]
    return out


def read_hf_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        raise CarambaError(f"no config.json in {directory}", fix="point init_from at a local Hugging Face model "
                           "directory (config.json + *.safetensors)")
    return json.loads(path.read_text())


def read_hf_tensors(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a local safetensors checkpoint (single file or index + shards)."""
    from safetensors.torch import load_file

    index = directory / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = sorted(p.name for p in directory.glob("*.safetensors"))
    if not files:
        raise CarambaError(f"no *.safetensors in {directory}", fix="save the model with safe_serialization "
                           "(transformers' default) or convert the .bin weights to safetensors")
    tensors: dict[str, torch.Tensor] = {}
    for name in files:
        tensors.update(load_file(str(directory / name)))
    return tensors


def hf_rope(cfg: dict[str, Any]) -> tuple[float, RopeScaling | None]:
    """RoPE base and scaling of a HF config: the legacy ``rope_theta`` + ``rope_scaling``
    keys (Llama 3.x checkpoints) or transformers 5's ``rope_parameters``.

    Raises :class:`CarambaError` for scaling types caramba does not implement.
    """
    params = cfg.get("rope_parameters") or {}
    scaling = cfg.get("rope_scaling") or {}
    theta = params.get("rope_theta", cfg.get("rope_theta", 10000.0))
    try:
        return float(theta), RopeScaling.from_hf(params if params.get("rope_type") else scaling)
    except FieldError as exc:
        raise CarambaError(f"config.json: {exc.message} (supported: {exc.expected}, or none)",
                           fix="load a checkpoint with llama3, linear or default RoPE") from None
    except ValidationError as exc:
        raise CarambaError(f"config.json: rope_scaling is invalid: {exc.errors()[0]['msg']}",
                           fix="check the rope_scaling factors in the checkpoint's config.json") from None


def _show(scaling: RopeScaling | None) -> str:
    if scaling is None:
        return "none"
    return "{" + ", ".join(f"{k}: {v}" for k, v in scaling.model_dump().items()
                           if scaling.type == "llama3" or k in ("type", "factor")) + "}"


def _check_config(cfg: dict[str, Any], m: TransformerModel, attn: list[AttentionLayer], mlp: list[SwiGLULayer],
                  norms: list[RMSNormLayer]) -> list[str]:
    a, f = attn[0].config, mlp[0].config
    d_head = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    theta, scaling = hf_rope(cfg)
    want = {
        "vocab_size": (cfg.get("vocab_size"), m.embedder.config.vocab_size, "embedder.vocab_size"),
        "hidden_size": (cfg.get("hidden_size"), m.embedder.config.d_model, "d_model"),
        "num_hidden_layers": (cfg.get("num_hidden_layers"), len(attn), "NestedTopology.repeat"),
        "num_attention_heads": (cfg.get("num_attention_heads"), a.n_heads, "AttentionLayer.n_heads"),
        "num_key_value_heads": (cfg.get("num_key_value_heads", cfg.get("num_attention_heads")), a.kv_heads,
                                "AttentionLayer.n_kv_heads"),
        "head_dim": (d_head, a.head_dim, "d_model / n_heads"),
        "intermediate_size": (cfg.get("intermediate_size"), f.hidden, "SwiGLULayer.d_ff"),
        "rope_theta": (theta, a.rope_base, "AttentionLayer.rope_base"),
        "rms_norm_eps": (cfg.get("rms_norm_eps"), norms[0].config.eps, "RMSNormLayer.eps"),
    }
    problems = [f"{k}: checkpoint has {hf}, the model has {ours} ({where})"
                for k, (hf, ours, where) in want.items() if hf is not None and hf != ours]
    if _show(scaling) != _show(a.rope_scaling):
        problems.append(f"rope_scaling: checkpoint has {_show(scaling)}, the model has {_show(a.rope_scaling)} "
                        "(AttentionLayer.rope_scaling)")
    if cfg.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act '{cfg['hidden_act']}' (SwiGLULayer uses silu)")
    return problems


def load_hf_llama(model: nn.Module, directory: str | Path) -> list[str]:
    """Copy a local HF Llama checkpoint into ``model`` (a system or TransformerModel).

    Returns the HF tensor names loaded. Raises :class:`CarambaError` listing every
    config mismatch, shape mismatch, unmatched checkpoint tensor and unfilled parameter.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CarambaError(f"checkpoint directory {directory} does not exist",
                           fix="give a local directory with config.json and *.safetensors")
    cfg = read_hf_config(directory)
    m = _find_model(model)
    attn, mlp, norms, _ = _parts(m)
    problems = _check_config(cfg, m, attn, mlp, norms)
    if problems:
        raise CarambaError(f"{directory}: checkpoint config does not match the model:\n  - " + "\n  - ".join(problems),
                           fix="change the manifest's model to the checkpoint's shape")
    tensors = read_hf_tensors(directory)
    if "lm_head.weight" not in tensors and cfg.get("tie_word_embeddings"):
        tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"]
    name_map = llama_name_map(m)
    tied_model = m.config.tied_embeddings
    if tied_model and not torch.equal(tensors["lm_head.weight"], tensors["model.embed_tokens.weight"]):
        raise CarambaError(f"{directory}: the checkpoint has a separate lm_head but the model ties its embeddings",
                           fix="set tied_embeddings: false in the manifest's model")
    unmatched = sorted(set(tensors) - set(name_map))
    missing = sorted(set(name_map) - set(tensors))
    shape_problems: list[str] = []
    with torch.no_grad():
        for hf_name, targets in name_map.items():
            if hf_name not in tensors:
                continue
            module, attr = targets[0]
            pname, _, part = attr.partition(":")
            param: torch.Tensor = getattr(module, pname)
            src = tensors[hf_name]
            if part:  # one half of a stacked (fused) parameter
                rows = param.shape[0] // 2
                dst = param[int(part) * rows:(int(part) + 1) * rows]
            else:
                dst = param
            if tuple(dst.shape) != tuple(src.shape):
                shape_problems.append(f"{hf_name}: checkpoint {tuple(src.shape)} vs model {tuple(dst.shape)}")
                continue
            dst.copy_(src.to(dst.dtype))
    if unmatched or missing or shape_problems:
        lines = ([f"checkpoint tensors with no place in the model: {', '.join(unmatched)}"] if unmatched else [])
        lines += [f"model parameters not in the checkpoint: {', '.join(missing)}"] if missing else []
        lines += [f"shape mismatch {s}" for s in shape_problems]
        raise CarambaError(f"{directory}: checkpoint does not fit the model:\n  - " + "\n  - ".join(lines),
                           fix="check attention/mlp biases and the tied head against the checkpoint's config.json")
    return sorted(name_map)


def export_hf_llama(model: nn.Module, directory: str | Path, *, max_position_embeddings: int = 2048) -> Path:
    """Write ``model`` as a HF Llama directory (config.json + model.safetensors)."""
    from safetensors.torch import save_file

    m = _find_model(model)
    attn, mlp, norms, head = _parts(m)
    a = attn[0].config
    tied = head.linear.weight is m.embedder.token.weight
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "vocab_size": m.embedder.config.vocab_size, "hidden_size": m.embedder.config.d_model,
        "intermediate_size": mlp[0].config.hidden, "num_hidden_layers": len(attn),
        "num_attention_heads": a.n_heads, "num_key_value_heads": a.kv_heads, "head_dim": a.head_dim,
        "rms_norm_eps": norms[0].config.eps, "rope_theta": a.rope_base,
        "max_position_embeddings": max_position_embeddings, "tie_word_embeddings": tied,
        "rope_scaling": a.rope_scaling.to_hf() if a.rope_scaling is not None else None,
        "attention_bias": a.bias, "mlp_bias": mlp[0].config.bias, "torch_dtype": "float32",
    }
    tensors: dict[str, torch.Tensor] = {}
    for hf_name, [(module, attr)] in llama_name_map(m).items():
        if tied and hf_name == "lm_head.weight":
            continue
        pname, _, part = attr.partition(":")
        t = getattr(module, pname).detach()
        if part:
            rows = t.shape[0] // 2
            t = t[int(part) * rows:(int(part) + 1) * rows]
        tensors[hf_name] = t.float().contiguous().clone()
    directory = Path(directory)
    tmp = directory.with_name(directory.name + ".tmp-export")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
    return directory
