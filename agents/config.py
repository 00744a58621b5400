"""What a ``type: process`` target may say, one pydantic model per process type.

::

    targets:
      - type: process
        name: brainstorm
        team: {lead: research_lead, architect: architect, claude: claude}
        process:
          type: brainstorm            # brainstorm | manifest_author (research_loop,
          topic: cheaper attention    #   development) | paper_write | paper_review | a2a_chat
          rounds: 2
          model: null                 # repoint every persona (like --model)
          budget: {max_llm_calls: 60}

Team roles are free names mapped to personas; each process says which roles it needs
(``REQUIRED_ROLES``) and fills missing ones from ``DEFAULT_TEAMS``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from caramba.agents.budget import Budget
from caramba.engine.errors import CarambaError

ALIASES = {"research_loop": "manifest_author", "development": "manifest_author"}


class ProcessConfigError(CarambaError):
    """A process target's ``process:`` section is invalid."""


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    model: str | None = Field(None, description="LiteLLM model for every persona (overrides persona files)")
    api_base: str | None = Field(None, description="OpenAI-compatible endpoint for `model`")
    budget: Budget = Field(default_factory=Budget)


class BrainstormConfig(_Base):
    type: Literal["brainstorm"]
    topic: str | None = Field(None, description="non-interactive when set (not blank); None = interactive REPL")
    rounds: int = Field(1, ge=1, le=20, description="contribution rounds of every member")

    @field_validator("topic")
    @classmethod
    def _topic_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("the topic is blank: give the question to discuss, or leave topic out "
                             "for the interactive session")
        return v
    validate_proposals: bool = Field(True, description="check each proposal's overrides against its base preset")


class ManifestAuthorConfig(_Base):
    type: Literal["manifest_author"]
    goal: str = Field(description="what to achieve, in words (e.g. 'lowest val_loss on tiny LM in 20 steps')")
    metric: str = Field("val_loss", description="results.json metric the leaderboard ranks by")
    mode: Literal["min", "max"] = Field("min", description="whether lower or higher is better")
    max_iterations: int = Field(2, ge=1, le=50, description="draft→run→review cycles")
    max_repairs: int = Field(3, ge=0, le=20, description="repair attempts per draft after validation errors")
    base: str | None = Field(None, description="a preset to start from (shown to the experimenter)")
    device: str | None = Field("cpu", description="device for the runs ('cpu', 'cuda', None = the run picks)")
    run_timeout_s: float = Field(1800.0, gt=0, description="give up waiting for one run after this long")


class PaperWriteConfig(_Base):
    type: Literal["paper_write"]
    runs: list[str] = Field(min_length=1, description="run directories (workspace-relative, e.g. runs/tiny/train/<id>)")
    title: str = Field("Untitled caramba study", description="paper title")
    compile: bool = Field(True, description="compile to PDF when a TeX engine is installed")


class PaperReviewConfig(_Base):
    type: Literal["paper_review"]
    paper: str = Field(description="the .tex file to review (workspace-relative)")
    strictness: Literal["lenient", "standard", "strict"] = "standard"


class A2AChatConfig(_Base):
    type: Literal["a2a_chat"]
    url: str = Field(description="base URL of an A2A agent (its card is at /.well-known/agent-card.json)")
    message: str | None = Field(None, description="send one message and stop; None = interactive")


CONFIGS: dict[str, type[_Base]] = {
    "brainstorm": BrainstormConfig, "manifest_author": ManifestAuthorConfig,
    "paper_write": PaperWriteConfig, "paper_review": PaperReviewConfig, "a2a_chat": A2AChatConfig,
}
DEFAULT_TEAMS: dict[str, dict[str, str]] = {
    "brainstorm": {"lead": "research_lead", "architect": "architect", "experimenter": "experimenter",
                   "reviewer": "reviewer", "chatgpt": "chatgpt", "claude": "claude", "gemini": "gemini"},
    "manifest_author": {"experimenter": "experimenter", "reviewer": "reviewer"},
    "paper_write": {"writer": "writer"},
    "paper_review": {"reviewer": "reviewer"},
    "a2a_chat": {},
}
REQUIRED_ROLES: dict[str, tuple[str, ...]] = {
    "brainstorm": ("lead",), "manifest_author": ("experimenter", "reviewer"),
    "paper_write": ("writer",), "paper_review": ("reviewer",), "a2a_chat": (),
}


def parse_process(raw: dict[str, Any], where: str) -> _Base:
    """Validate ``process:``; ``where`` names it in errors (``targets[0].process``)."""
    kind = raw.get("type")
    kind = ALIASES.get(kind, kind) if isinstance(kind, str) else kind
    if kind not in CONFIGS:
        raise ProcessConfigError(f"{where}.type: unknown process type {raw.get('type')!r}",
                                 fix=f"use one of: {', '.join([*CONFIGS, *ALIASES])}")
    try:
        return CONFIGS[kind].model_validate({**raw, "type": kind})
    except ValidationError as e:
        lines = [f"{where}.{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()]
        raise ProcessConfigError("invalid process section:\n  " + "\n  ".join(lines),
                                 fix=f"fields of '{kind}': {', '.join(CONFIGS[kind].model_fields)}") from None


def team_for(kind: str, team: dict[str, str]) -> dict[str, str]:
    """The manifest's team over the defaults; required roles must end up filled."""
    chosen = dict(team) if team else dict(DEFAULT_TEAMS[kind])
    for role in REQUIRED_ROLES[kind]:
        chosen.setdefault(role, DEFAULT_TEAMS[kind][role])
    return chosen
