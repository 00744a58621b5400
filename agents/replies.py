"""Structured parts of model replies: fenced blocks and typed JSON.

Models are asked to put structured answers in one fenced block (```json / ```yaml).
:func:`fenced` finds it; :func:`parse_json_reply` validates it with a pydantic model and
raises :class:`ReplyError` with the precise problem, which the processes send back to the
model for one bounded retry (never a silent guess).
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from caramba.engine.errors import CarambaError

T = TypeVar("T")
_FENCE = re.compile(r"```([A-Za-z0-9_-]*)[ \t]*\n(.*?)```", re.S)


class ReplyError(CarambaError):
    """A model's reply lacks the structured part it was asked for."""


def fenced(text: str, lang: str) -> str | None:
    """The last fenced block tagged ``lang`` (or untagged), or None."""
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(text or "")]
    tagged = [b for t, b in blocks if t == lang or (lang == "yaml" and t == "yml")]
    if tagged:
        return tagged[-1]
    untagged = [b for t, b in blocks if t == ""]
    return untagged[-1] if untagged else None


def parse_json_reply(text: str, shape: Any, what: str) -> Any:
    """Parse the ```json block of ``text`` into ``shape`` (a pydantic type/annotation)."""
    block = fenced(text, "json")
    if block is None:
        raise ReplyError(f"the {what} reply has no ```json block", fix="answer with exactly one ```json block")
    try:
        data = json.loads(block)
    except json.JSONDecodeError as e:
        raise ReplyError(f"the {what} ```json block is not valid JSON: {e}", fix="send valid JSON") from None
    try:
        return TypeAdapter(shape).validate_python(data)
    except ValidationError as e:
        lines = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or '<root>'}: {err['msg']}" for err in e.errors()[:8])
        raise ReplyError(f"the {what} JSON does not have the expected shape: {lines}",
                         fix="follow the requested fields exactly") from None


class Proposal(BaseModel):
    """One ranked experiment proposal: a concrete manifest change."""

    model_config = ConfigDict(extra="ignore")

    rank: int = Field(ge=1)
    title: str
    rationale: str = ""
    base: str = Field(description="preset name (list_presets) or workspace manifest path")
    overrides: list[str] = Field(min_length=1, description="'dotted.path=value' changes to base")
    metric: str = "val_loss"


class Verdict(BaseModel):
    model_config = ConfigDict(extra="ignore")

    verdict: str = Field(pattern="^(accept|revise|reject)$")
    score: float = Field(ge=0, le=10)
    reasons: list[str] = Field(default_factory=list)


class FollowUp(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str
    rationale: str = ""
    base: str | None = None
    overrides: list[str] = Field(default_factory=list)


class Review(BaseModel):
    model_config = ConfigDict(extra="ignore")

    score: float = Field(ge=0, le=10)
    summary: str
    strengths: list[str] = Field(default_factory=list)
    weaknesses: list[str] = Field(default_factory=list)
    follow_ups: list[FollowUp] = Field(default_factory=list)


async def ask_structured(ctx: Any, role: str, prompt: str, shape: Any, what: str, retries: int = 1) -> Any:
    """Ask persona ``role`` and parse its JSON reply; on a bad reply send the precise
    problem back, at most ``retries`` times, then raise :class:`ReplyError`."""
    text = await ctx.team.ask(ctx.persona(role), prompt)
    for attempt in range(retries + 1):
        try:
            return parse_json_reply(text, shape, what)
        except ReplyError as e:
            ctx.run.emit("reply_error", ctx.persona(role), what=what, message=e.render())
            if attempt == retries:
                raise
            text = await ctx.team.ask(ctx.persona(role), f"Your previous answer could not be used: {e.render()}\n"
                                      f"Answer again with one ```json block.\n\nThe request was:\n{prompt}")
    raise AssertionError("unreachable")
