"""Upcycle surgery: load the teacher, then initialise the student from it.

Teacher sources (``train.teacher_ckpt``):

* ``'<target>/<run id>'`` — the final weights of that run in the newest completed run of
  another target of the same manifest (its system is built from the manifest);
* a local Hugging Face Llama folder (``config.json`` + safetensors) — a Llama-shaped
  caramba model is built from ``config.json`` and the weights loaded with
  :func:`caramba.engine.model.hf_llama.load_hf_llama`.

Surgery copies every student parameter whose name and shape match the teacher's
(embeddings, norms, MLPs, head). For each (teacher attention, student DBA attention)
pair, by forward order, ``dba_init`` says how the new attention starts:

* ``svd`` — values/output copied; per head, the teacher's content score matrix
  ``M_h = W_q^hᵀ W_k^h`` (d_model × d_model) is factorised (SVD) and its top ``ds``
  components become the semantic q/k, scaled by ``(ds / D)^{1/4}`` each so the
  ``1/sqrt(ds)`` score scale reproduces the teacher's ``1/sqrt(D)``; the geometric q/k
  take the teacher's first ``dg/2`` rotary pairs (the RoPE frequencies differ, so this is
  a starting point the blockwise phase refines);
* ``random`` — values/output copied, q/k keep their random init;
* ``fresh`` — the attention keeps its random init entirely.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from caramba.engine.errors import CarambaError
from caramba.engine.infer.cache_set import attention_layers
from caramba.engine.layers.attention import AttentionLayer
from caramba.engine.layers.attention_dba import DecoupledAttentionLayer


def hf_llama_spec(cfg: dict[str, Any]) -> dict[str, Any]:
    """A ``system.language_model`` spec with the shape of a HF Llama ``config.json``."""
    C, H = cfg["hidden_size"], cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads", H)
    attn = {"type": "AttentionLayer", "d_model": C, "n_heads": H, "rope_base": float(cfg.get("rope_theta", 10000.0)),
            "bias": bool(cfg.get("attention_bias", False)), **({"mode": "gqa", "n_kv_heads": kv} if kv != H else {})}
    eps = cfg.get("rms_norm_eps", 1e-6)
    norm = {"type": "RMSNormLayer", "d_model": C, "eps": eps}
    return {"ref": "system.language_model", "config": {"init": None, "model": {
        "type": "TransformerModel", "tied_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "embedder": {"type": "token", "vocab_size": cfg["vocab_size"], "d_model": C},
        "topology": {"type": "StackedTopology", "layers": [
            {"type": "NestedTopology", "repeat": cfg["num_hidden_layers"], "layers": [
                {"type": "ResidualTopology", "layers": [norm, attn]},
                {"type": "ResidualTopology", "layers": [norm, {"type": "SwiGLULayer", "d_model": C,
                                                               "d_ff": cfg["intermediate_size"]}]}]},
            norm, {"type": "LinearLayer", "d_in": C, "d_out": cfg["vocab_size"], "bias": False}]}}}}


def load_teacher(spec: str, *, manifest: Any, run_dir: Path, manifest_dir: Path | None,
                 workspace_root: Path) -> nn.Module:
    from caramba.engine.model.hf_llama import load_hf_llama
    from caramba.engine.systems.build import build_system
    from caramba.engine.train.init_weights import load_start_weights, resolve_start_weights

    targets = {t.name: t for t in manifest.targets}
    head = spec.partition("/")[0]
    if head in targets:
        path = resolve_start_weights(spec, run_dir=run_dir, manifest_dir=manifest_dir, workspace_root=workspace_root,
                                     target_names=list(targets))
        teacher = build_system(targets[head].system, device="cpu",
                               allow_python_impl=bool(manifest.defaults.runtime.allow_python_impl))
        load_start_weights(teacher, path)
        return teacher.eval()
    p = Path(spec).expanduser()
    cands = [p] if p.is_absolute() else [*([manifest_dir / p] if manifest_dir else []), workspace_root / p]
    for c in cands:
        if (c / "config.json").is_file():
            teacher = build_system(hf_llama_spec(json.loads((c / "config.json").read_text())), device="cpu")
            load_hf_llama(teacher, c)
            return teacher.eval()
    raise CarambaError(f"train.teacher_ckpt '{spec}' is neither '<target>/<run id>' of this manifest nor a local "
                       f"Hugging Face folder (tried {', '.join(str(c) for c in cands)})",
                       fix=f"use one of {', '.join(f'{t}/<run id>' for t in targets)} or a folder with config.json")


@torch.no_grad()
def _svd_init(t: AttentionLayer, s: DecoupledAttentionLayer) -> None:
    H, D = t.n_heads, t.head_dim
    ds, dg = s.ds, s.dg
    wq = t.q_proj.weight.view(H, D, -1)                 # (H, D, C)
    wk = t.k_proj.weight.view(t.n_kv, D, -1)
    group = H // t.n_kv
    k_sem = torch.zeros_like(s.k_sem.weight).view(s.config.kv_heads, ds, -1) if s.k_sem is not None else None
    for h in range(H):
        m = wq[h].T.double() @ wk[h // group].double()  # (C, C)
        u, sv, vh = torch.linalg.svd(m)
        r = min(ds, sv.numel())
        f = sv[:r].sqrt() * (ds / D) ** 0.25
        s.q_sem.weight.view(H, ds, -1)[h, :r] = (u[:, :r] * f).T.to(s.q_sem.weight.dtype)
        kh = (h * s.config.kv_heads) // H
        if k_sem is not None and h % (H // s.config.kv_heads) == 0:
            k_sem[kh, :r] = (vh[:r].T * f).T.to(k_sem.dtype)
        half, t_half = dg // 2, D // 2
        rows = torch.cat([torch.arange(half), t_half + torch.arange(half)])
        s.q_geo.weight.view(H, dg, -1)[h] = wq[h][rows] * (dg / D) ** 0.25
        if s.k_geo is not None and h % (H // s.config.kv_heads) == 0:
            s.k_geo.weight.view(s.config.kv_heads, dg, -1)[kh] = wk[h // group][rows] * (dg / D) ** 0.25
    if k_sem is not None:
        s.k_sem.weight.copy_(k_sem.view_as(s.k_sem.weight))


def upcycle_surgery(student: nn.Module, teacher: nn.Module, dba_init: str) -> dict[str, int]:
    """Initialise ``student`` from ``teacher`` in place; returns counts of what was copied."""
    t_params = dict(teacher.named_parameters())
    s_attn, t_attn = attention_layers(student), attention_layers(teacher)
    if len(s_attn) != len(t_attn):
        raise CarambaError(f"upcycling pairs attention layers: student has {len(s_attn)}, teacher {len(t_attn)}",
                           fix="give the student the teacher's depth")
    attn_ids = {id(p) for a in s_attn for p in a.parameters()}
    copied = 0
    with torch.no_grad():
        for name, p in student.named_parameters():
            if id(p) in attn_ids:
                continue
            src = t_params.get(name)
            if src is not None and src.shape == p.shape:
                p.copy_(src)
                copied += 1
        for t, s in zip(t_attn, s_attn):
            if dba_init == "fresh":
                continue
            if not isinstance(s, DecoupledAttentionLayer):
                s.load_state_dict(t.state_dict())
                continue
            for proj in ("v_proj", "o_proj"):
                if getattr(s, proj).weight.shape == getattr(t, proj).weight.shape:
                    getattr(s, proj).load_state_dict(getattr(t, proj).state_dict())
            if dba_init == "svd":
                _svd_init(t, s)
    return {"copied_params": copied, "attention_pairs": len(s_attn)}
