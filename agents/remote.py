"""Sub-agents served by another caramba (or any A2A agent), reached over A2A.

A persona's ``sub_agents`` list names local personas *or* remote agents::

    sub_agents:
      - architect                                   # a persona of this team
      - {name: remote_reviewer, a2a: "http://127.0.0.1:9001",
         description: "Reviewer of the other lab"}  # served by `caramba a2a serve --persona reviewer`
      - http://127.0.0.1:9002                       # short form; its name is a2a_127_0_0_1_9002

A remote entry becomes ADK's ``RemoteA2aAgent`` (it fetches the agent card at
``<a2a>/.well-known/agent-card.json`` on first use and sends messages over A2A), so the
lead can ``transfer_to_agent`` to it exactly like to a local sub-agent; the remote
agent's reply comes back as events of the lead's conversation. The transcript records
``delegation {persona: <remote name>, url}`` when the remote agent is called and
``remote_reply {persona, url, text, duration_s}`` with what it answered.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator

from caramba.agents.transcript import ProcessRun, summarize

CARD_PATH = "/.well-known/agent-card.json"


class RemoteSubAgent(BaseModel):
    """A ``sub_agents`` entry served over A2A."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="the name the lead transfers to")
    a2a: str = Field(description="base URL of the A2A agent (or the full URL of its agent card)")
    description: str = Field("", description="what it does (default: the agent card's description)")

    @field_validator("a2a")
    @classmethod
    def _http(cls, url: str) -> str:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"'{url}' is not an http(s) URL of an A2A agent (e.g. http://127.0.0.1:9001)")
        return url.rstrip("/")

    @property
    def card_url(self) -> str:
        return self.a2a if self.a2a.endswith(".json") else self.a2a + CARD_PATH

    @classmethod
    def from_url(cls, url: str) -> "RemoteSubAgent":
        """The short form: a bare URL, named after its host and port."""
        parsed = urlparse(url)
        name = "a2a_" + re.sub(r"[^a-z0-9]+", "_", (parsed.netloc or url).lower()).strip("_")
        return cls(name=name, a2a=url)


def is_url(entry: str) -> bool:
    return entry.startswith(("http://", "https://"))


def build_remote(spec: RemoteSubAgent, run: ProcessRun) -> Any:
    """ADK's ``RemoteA2aAgent`` for ``spec``, with its calls recorded in ``run``'s transcript."""
    from google.adk.agents.remote_a2a_agent import RemoteA2aAgent

    started: dict[str, float] = {}

    def before(callback_context: Any) -> None:
        started[callback_context.invocation_id] = time.monotonic()
        run.emit("delegation", spec.name, url=spec.a2a)
        return None

    def after(callback_context: Any) -> None:
        t0 = started.pop(callback_context.invocation_id, time.monotonic())
        texts = [part.text for ev in callback_context.session.events
                 if ev.author == spec.name and ev.invocation_id == callback_context.invocation_id
                 and ev.content and ev.content.parts for part in ev.content.parts if part.text and not part.thought]
        run.emit("remote_reply", spec.name, url=spec.a2a, text=summarize("".join(texts)),
                 duration_s=round(time.monotonic() - t0, 4))
        return None

    return RemoteA2aAgent(name=spec.name, agent_card=spec.card_url, description=spec.description,
                          before_agent_callback=before, after_agent_callback=after)
