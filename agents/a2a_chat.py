"""The ``a2a_chat`` process target: :mod:`caramba.agents.a2a_client` from a manifest.

``process: {type: a2a_chat, url: http://127.0.0.1:9000, message: "..."}`` sends one
message (or, without ``message``, opens the interactive chat) and records each exchange
in the process transcript (``a2a_exchange {message, state, reply}``) and ``chat.md``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from caramba.agents.a2a_client import chat_loop
from caramba.agents.session import ProcessContext
from caramba.agents.transcript import write_text


async def run(ctx: ProcessContext) -> dict[str, Any]:
    sent: list[str] = []

    def read(prompt: str) -> str | None:
        line = ctx.io.read(prompt)
        if line is not None:
            sent.append(line)
        return line

    exchanges = await asyncio.to_thread(chat_loop, ctx.cfg.url, ctx.cfg.message, read, ctx.io.write)
    messages = [ctx.cfg.message] if ctx.cfg.message is not None else [s for s in sent if s.strip() and s.strip() != "/exit"]
    for msg, (state, reply) in zip(messages, exchanges):
        ctx.run.emit("a2a_exchange", None, url=ctx.cfg.url, message=msg, state=state, reply=reply)
    write_text(ctx.run.dir / "chat.md", "\n\n".join(f"**you**: {m}\n\n**agent** [{s}]: {r}"
                                                    for m, (s, r) in zip(messages, exchanges)) + "\n")
    return {"exchanges": len(exchanges), "last_state": exchanges[-1][0] if exchanges else None}
