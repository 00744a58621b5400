"""Which model each persona talks to, decided before a process starts.

Precedence, first that applies:

1. an override (``--model`` on the CLI, or ``process.model`` in a manifest) repoints
   every persona of the process to one LiteLLM model string, with ``--api-base`` /
   ``process.api_base`` (else the workspace's ``llm.api_base``);
2. the persona's own ``model`` (``claude.yml`` says ``anthropic/…``) and ``api_base``;
3. the workspace's model (``caramba.yml`` ``llm:``, or ``CARAMBA_LLM_MODEL``).

:func:`resolve_team_models` checks every persona up front (model string known to LiteLLM,
API key present) and raises one :class:`AgentModelError` naming each unusable persona,
its model and how to configure it, so a process never starts half-way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from caramba.agents.personas import Persona
from caramba.engine.errors import CarambaError
from caramba.llm import HOW_TO_CONFIGURE, LLMSettings, resolve_model
from caramba.workspace import LLMConfig


class AgentModelError(CarambaError):
    """No usable model for one or more personas of a process."""


@dataclass(frozen=True)
class ModelOverride:
    """``--model`` / ``process.model``: one model for every persona."""

    model: str
    api_base: str | None = None


def _choice(persona: Persona, override: ModelOverride | None, ws_llm: LLMConfig) -> tuple[str | None, str | None, str]:
    """``(model, api_base, where the choice came from)``."""
    ws_model = os.environ.get("CARAMBA_LLM_MODEL") or ws_llm.model
    ws_base = os.environ.get("CARAMBA_LLM_API_BASE") or ws_llm.api_base
    if override is not None:
        return override.model, override.api_base or ws_base, "--model override"
    if persona.model:
        return persona.model, persona.api_base, f"persona file {persona.name}.yml"
    return ws_model, ws_base, "caramba.yml llm.model / CARAMBA_LLM_MODEL"


def resolve_team_models(personas: list[Persona], ws_llm: LLMConfig,
                        override: ModelOverride | None = None) -> dict[str, LLMSettings]:
    """Settings per persona name; every problem reported at once."""
    out: dict[str, LLMSettings] = {}
    problems: list[str] = []
    for p in personas:
        model, api_base, source = _choice(p, override, ws_llm)
        if not model:
            problems.append(f"persona '{p.name}': no model (its file sets none and the workspace has no llm.model)")
            continue
        try:
            s = resolve_model(model, api_base=api_base,
                              api_key_env=ws_llm.api_key_env if source.startswith("caramba.yml") else None,
                              temperature=p.temperature, what="model")
        except CarambaError as e:
            problems.append(f"persona '{p.name}': model '{model}' (from {source}) is not usable: {e.message}")
            continue
        out[p.name] = s
    if problems:
        raise AgentModelError(
            "no usable model for this process:\n  - " + "\n  - ".join(problems),
            fix=HOW_TO_CONFIGURE + "; or repoint every persona with --model <litellm model> "
                "[--api-base URL] (process.model in a manifest)")
    return out
