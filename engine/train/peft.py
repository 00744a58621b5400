"""Manifest-level PEFT: put LoRA adapters on the matching linears of any built model.

``train.peft`` in a run::

    train:
      peft: {enabled: true, type: lora, r: 8, alpha: 16, dropout: 0.0,
             target_modules: [q_proj, v_proj], modules_to_save: [head]}

:func:`apply_peft` walks the model's modules. An ``nn.Linear`` is wrapped in a
:class:`~caramba.engine.layers.lora.LoRALinear` when one of ``target_modules`` matches
it. A fragment matches a module path when it

* equals one dotted segment of the path (``q_proj`` matches ``…layers.1.q_proj``),
* is a glob over the whole path (``*.layers.0.*``), or
* names an enclosing layer by type or alias (``attention`` / ``AttentionLayer`` match
  every linear inside an attention layer; ``LinearLayer`` matches a linear layer).

Then every parameter is frozen except the adapters and the parameters of modules
matching ``modules_to_save`` (same rules). Matching nothing is an error that lists the
linear layers the model has. :func:`merge_peft` folds every adapter back into its base
weight (the model is then a plain model with the same outputs) and
:func:`save_merged` writes that state dict as safetensors (temp file + rename).
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from caramba.engine.errors import CarambaError
from caramba.engine.layers.lora import LoRALinear
from caramba.engine.layers.registry import LAYERS, TOPOLOGIES


def _type_names(module: nn.Module) -> set[str]:
    """Registered names and aliases of ``module``'s class (empty for plain torch modules)."""
    from caramba.engine.layers.attention import ATTENTION_MODES

    names = set()
    if any(type(module) is cls for _, cls in ATTENTION_MODES.items()):
        names |= {"AttentionLayer", "attention"}  # every attention mode answers to the layer's name
    for reg in (LAYERS, TOPOLOGIES):
        for name, cls in reg.items():
            if type(module) is cls:
                names.add(name)
                names.update(a for a, target in reg.aliases().items() if target == name)
    return names


def _matches(path: str, ancestors: list[nn.Module], fragments: list[str]) -> bool:
    segments = path.split(".")
    owner_types: set[str] = set()
    for m in ancestors:
        owner_types |= _type_names(m)
    for frag in fragments:
        if frag in segments or fnmatch.fnmatchcase(path, frag) or frag in owner_types:
            return True
    return False


def _walk(module: nn.Module, prefix: str = "", ancestors: list[nn.Module] | None = None):
    """Yield (path, module, ancestors including itself) depth-first."""
    chain = [*(ancestors or []), module]
    yield prefix, module, chain
    for name, child in module.named_children():
        yield from _walk(child, f"{prefix}.{name}" if prefix else name, chain)


def apply_peft(model: nn.Module, peft: Any) -> list[str]:
    """Wrap matching linears of ``model`` with LoRA and freeze the rest.

    ``peft`` is the manifest's ``PeftConfig`` (``enabled, type, r, alpha, dropout,
    target_modules, modules_to_save``). Returns the wrapped module paths; does nothing
    (returns ``[]``) when ``peft.enabled`` is false.
    """
    if not peft.enabled:
        return []
    if peft.type != "lora":
        raise CarambaError(f"train.peft.type '{peft.type}' is not supported", fix="use type: lora")
    linears: list[tuple[str, nn.Module, str, nn.Linear, list[nn.Module]]] = []
    for path, module, chain in _walk(model):
        for name, child in module.named_children():
            if isinstance(child, nn.Linear):
                linears.append((f"{path}.{name}" if path else name, module, name, child, chain))
    chosen = [item for item in linears if _matches(item[0], item[4], list(peft.target_modules))]
    if not chosen:
        sample = ", ".join(p for p, *_ in linears[:12]) or "(none)"
        raise CarambaError(
            f"train.peft.target_modules {list(peft.target_modules)} match no linear layer of the model",
            fix=f"use names from the model's linear layers, e.g. q_proj, v_proj, AttentionLayer; it has: {sample}")
    for _, parent, name, linear, _ in chosen:
        setattr(parent, name, LoRALinear(linear, peft.r, peft.alpha, peft.dropout))
    for p in model.parameters():
        p.requires_grad_(False)
    for _, module, chain in _walk(model):
        if isinstance(module, LoRALinear):
            module.lora_A.requires_grad_(True)
            module.lora_B.requires_grad_(True)
    saved = list(peft.modules_to_save)
    if saved:
        hits = [m for path, m, chain in _walk(model) if path and _matches(path, chain, saved)]
        if not hits:
            raise CarambaError(f"train.peft.modules_to_save {saved} match no module of the model",
                               fix="name a module path segment (e.g. the head's index) or a layer type")
        for m in hits:
            m.requires_grad_(True)
    return [p for p, *_ in chosen]


def peft_summary(model: nn.Module) -> dict[str, int]:
    """Parameter counts: ``trainable`` and ``total`` (shared tensors counted once)."""
    seen: set[int] = set()
    total = trainable = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return {"trainable": trainable, "total": total}


def merge_peft(model: nn.Module) -> int:
    """Replace every ``LoRALinear`` by its merged base linear; returns how many merged."""
    count = 0
    for _, module, _ in list(_walk(model)):
        for name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, name, child.merge())
                count += 1
    for p in model.parameters():
        p.requires_grad_(True)
    return count


def save_merged(model: nn.Module, path: str | Path) -> Path:
    """Merge the adapters and write the plain state dict as safetensors, atomically."""
    from safetensors.torch import save_model

    merge_peft(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_model(model, str(tmp))  # handles tied (shared) tensors
    os.replace(tmp, path)
    return path


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors (``…lora_A`` / ``…lora_B``), for saving adapters alone."""
    return {k: v for k, v in model.state_dict().items() if k.endswith(("lora_A", "lora_B"))}
