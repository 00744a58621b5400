"""Personas: who the agents are, as YAML files in ``agents/personas/``.

A persona is data, not code::

    name: experimenter
    description: Turns ideas into valid caramba manifests and runs them.
    instructions: |
      You are ...
    model: null            # LiteLLM model string; null = the workspace's llm.model
    temperature: 0.2
    tools: [manifests, runs, results]   # MCP tool groups it may call (see agents/toolgroups.py)
    sub_agents: []         # personas it can hand work to (transfer_to_agent), or remote
                           # agents over A2A: {name, a2a: URL, description} or a bare URL
                           # (see agents/remote.py)
    output_schema: null    # the structured reply it gives: proposals | verdict | review
                           # (processes validate it with the models in agents/replies.py)

``load_persona("claude")`` reads ``agents/personas/claude.yml`` (or a workspace's own
``personas/claude.yml``, which wins, so a project can tune its team without editing
caramba). Unknown names raise with the list of available personas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from caramba.agents.remote import RemoteSubAgent, is_url
from caramba.agents.toolgroups import GROUPS
from caramba.engine.errors import CarambaError, first_error

BUILTIN_DIR = Path(__file__).parent / "personas"
OutputSchema = Literal["proposals", "verdict", "review"]


class PersonaError(CarambaError):
    """A persona file is missing or invalid."""


class Persona(BaseModel):
    """One persona file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="id used for @routing and team roles")
    description: str = Field(description="one line: what this persona is for (shown in agent cards)")
    instructions: str = Field(description="the system prompt")
    model: str | None = Field(None, description="LiteLLM model string; None = the workspace's llm.model")
    api_base: str | None = Field(None, description="OpenAI-compatible endpoint for this persona's model")
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    tools: list[str] = Field(default_factory=list, description="MCP tool groups it may call")
    sub_agents: list[str | RemoteSubAgent] = Field(
        default_factory=list, description="personas it can delegate to, or remote A2A agents ({name, a2a} or a URL)")
    output_schema: OutputSchema | None = Field(None, description="structured reply the processes parse")

    def local_sub_agents(self) -> list[str]:
        """Names of the personas it can transfer to."""
        return [s for s in self.sub_agents if isinstance(s, str) and not is_url(s)]

    def remote_sub_agents(self) -> list[RemoteSubAgent]:
        """The A2A agents it can transfer to."""
        return [s if isinstance(s, RemoteSubAgent) else RemoteSubAgent.from_url(s)
                for s in self.sub_agents if not isinstance(s, str) or is_url(s)]

    def tool_names(self) -> list[str]:
        """The MCP tool allowlist for this persona (the union of its groups)."""
        names: list[str] = []
        for g in self.tools:
            names.extend(GROUPS[g])
        return names


def _dirs(workspace_root: Path | None) -> list[Path]:
    dirs = [workspace_root / "personas"] if workspace_root is not None else []
    return [*dirs, BUILTIN_DIR]


def list_personas(workspace_root: Path | None = None) -> list[str]:
    """Names of every persona available (workspace personas first, then built-ins)."""
    seen: dict[str, None] = {}
    for d in _dirs(workspace_root):
        if d.is_dir():
            for f in sorted(d.glob("*.yml")):
                seen.setdefault(f.stem, None)
    return list(seen)


def load_persona(name: str, workspace_root: Path | None = None) -> Persona:
    """Read and validate one persona; errors name the file and the field."""
    for d in _dirs(workspace_root):
        f = d / f"{name}.yml"
        if f.is_file():
            return _parse(f)
    raise PersonaError(f"unknown persona '{name}'",
                       fix=f"use one of: {', '.join(list_personas(workspace_root))} "
                           "(or add personas/<name>.yml to the workspace)")


def _parse(f: Path) -> Persona:
    try:
        raw = yaml.safe_load(f.read_text()) or {}
    except yaml.YAMLError as e:
        raise PersonaError(f"{f}: not valid YAML: {e}",
                           fix="fix the YAML syntax at the line shown (compare agents/personas/research_lead.yml)") from None
    if not isinstance(raw, dict):
        raise PersonaError(f"{f}: a persona is a mapping of fields", fix="see agents/personas/research_lead.yml")
    try:
        p = Persona.model_validate(raw)
    except ValidationError as e:
        where, first = first_error(e)
        raise PersonaError(f"{f}: {where}: {first['msg']}",
                           fix="fields: name, description, instructions, model, api_base, temperature, "
                               "tools, sub_agents, output_schema") from None
    if p.name != f.stem:
        raise PersonaError(f"{f}: name '{p.name}' differs from the file name", fix=f"set name: {f.stem}")
    try:
        remotes = p.remote_sub_agents()
    except ValidationError as e:
        raise PersonaError(f"{f}: sub_agents: {e.errors()[0]['msg']}",
                           fix="a remote sub-agent is {name, a2a: http://host:port} or a bare http(s) URL") from None
    names = [*p.local_sub_agents(), *(r.name for r in remotes)]
    if len(set(names)) != len(names) or p.name in names:
        raise PersonaError(f"{f}: sub_agents: names must be unique and differ from the persona ({', '.join(names)})",
                           fix="give each remote sub-agent its own name: {name: ..., a2a: URL}")
    unknown = [g for g in p.tools if g not in GROUPS]
    if unknown:
        raise PersonaError(f"{f}: tools: unknown tool group(s) {', '.join(unknown)}",
                           fix=f"tool groups are: {', '.join(GROUPS)}")
    return p
