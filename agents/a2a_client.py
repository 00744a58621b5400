"""``caramba chat --a2a URL``: a terminal client for any A2A agent (a2a-sdk 1.x).

It resolves the agent card, shows the agent's skills, then sends each line you type as a
message and streams the answer (status updates as they arrive, each shown once: the newest
is held back until the next arrives, and dropped when it is the final answer, which is
printed as ``<agent> [<state>]> <reply>``); the
conversation keeps its ``context_id`` so the agent remembers earlier turns. ``/exit`` or
end of input stops. Errors reaching the agent are reported as :class:`A2AChatError`.
The ``a2a_chat`` process target does the same from a manifest (``process.url``,
``process.message`` for one non-interactive message).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from caramba.engine.errors import CarambaError


class A2AChatError(CarambaError):
    """The A2A agent could not be reached or answered with an error."""


def _text(parts: Any) -> str:
    return "".join(p.text for p in parts if p.HasField("text")) if parts else ""


async def send(client: Any, text: str, context_id: str | None, write: Callable[[str], None]) -> tuple[str, str, str]:
    """Send one message, stream the reply through ``write``: ``(final text, task state, context id)``."""
    from a2a.types import Message, Part, Role, SendMessageRequest, TaskState

    msg = Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[Part(text=text)],
                  context_id=context_id or "")
    final, state, ctx = "", "unknown", context_id or ""
    pending = ""  # the newest status text, held back: it is often the final answer itself
    async for resp in client.send_message(SendMessageRequest(message=msg)):
        kind = resp.WhichOneof("payload")
        if kind == "task":
            state, ctx = TaskState.Name(resp.task.status.state), resp.task.context_id
            for a in resp.task.artifacts:
                final = _text(a.parts) or final
        elif kind == "status_update":
            state, ctx = TaskState.Name(resp.status_update.status.state), resp.status_update.context_id
            said = _text(resp.status_update.status.message.parts)
            if said and said != pending:  # the same text twice in a row is shown once
                if pending:
                    write(pending)  # an intermediate message (a sub-agent, a tool step): show it now
                pending = said
        elif kind == "artifact_update":
            piece = _text(resp.artifact_update.artifact.parts)
            final = final + piece if resp.artifact_update.append else piece
        elif kind == "message":
            final = _text(resp.message.parts)
    if not final.strip():
        final = pending  # no artifact (e.g. a failed task): the last status text is the answer
    elif pending and pending.strip() != final.strip():
        write(pending)  # the last status text was not the answer: it still has to be shown
    return final, state, ctx


async def _open(url: str) -> tuple[Any, Any, Any]:
    import httpx
    from a2a.client import A2ACardResolver, ClientConfig, ClientFactory

    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=3600.0))
    try:
        card = await A2ACardResolver(http, url).get_agent_card()
    except Exception as e:  # httpx/a2a errors: tell the user what failed, where
        await http.aclose()
        raise A2AChatError(f"no A2A agent card at {url}/.well-known/agent-card.json ({type(e).__name__}: {e})",
                           fix="start one with `caramba a2a serve`, or check the URL") from None
    client = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)
    return http, card, client


def chat_loop(url: str, message: str | None = None, read: Callable[[str], str | None] | None = None,
              write: Callable[[str], None] = print) -> list[tuple[str, str]]:
    """Interactive (or single ``message``) chat; returns ``[(state, reply), …]``."""

    def default_read(prompt: str) -> str | None:
        try:
            return input(prompt)
        except EOFError:
            return None

    reader = read or default_read

    async def main() -> list[tuple[str, str]]:
        http, card, client = await _open(url.rstrip("/"))
        out: list[tuple[str, str]] = []
        try:
            write(f"{card.name}: {card.description}")
            write("skills: " + ", ".join(s.name for s in card.skills))
            ctx: str | None = None
            while True:
                line = message if message is not None else reader("you> ")
                if line is None or line.strip() == "/exit":
                    break
                if line.strip():
                    reply, state, ctx = await send(client, line, ctx, write)
                    write(f"{card.name} [{state}]> {reply}")
                    out.append((state, reply))
                if message is not None:
                    break
        finally:
            await client.close()
            await http.aclose()
        return out

    return asyncio.run(main())
