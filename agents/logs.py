"""How agent commands show library log messages: one line each on stderr.

Agent processes (``caramba brainstorm``, ``caramba run`` of a process target, ``caramba
a2a serve``) run ADK, LiteLLM and an in-process MCP server. Left alone, the MCP SDK's
``MCPServer()`` installs a Rich handler with Rich tracebacks on the root logger, so an LLM
call that fails — which caramba then reports itself as ``error: persona '…' (model): …``
and records in ``events.jsonl`` — first printed a thousand-line boxed traceback logged by
ADK, and LiteLLM printed "Give Feedback / Get Help" banners on stdout.

:func:`plain_library_logs` (called before the MCP server is built) gives the root logger a
plain stderr handler first, so the SDK's set-up is a no-op: warnings and errors of
libraries stay visible, as ``LEVEL logger: message``, and a logged exception adds its type
and message on the same line instead of its traceback. ``caramba --debug`` re-raises
caramba's own errors with their traceback as before.
"""

from __future__ import annotations

import logging
import sys

class OneLineFormatter(logging.Formatter):
    """``WARNING google_adk.x: message (ValueError: detail)`` — never a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            detail = str(exc).splitlines()[0] if str(exc) else ""
            text += f" ({type(exc).__name__}{': ' + detail if detail else ''})"
        return text


def plain_library_logs(level: int = logging.WARNING) -> None:
    """Install the one-line stderr handler on the root logger (once; only when nothing
    else configured logging first, e.g. a test or an embedding application)."""
    import warnings

    # (LiteLLM's "Give Feedback / Get Help" banners are switched off where every model is
    # resolved: caramba.llm.settings.resolve_model.)
    # ADK's "[EXPERIMENTAL]" notices, repeated with source lines for every class it builds
    # (A2A, credential service): caramba pins google-adk and a2a-sdk in pyproject.toml.
    warnings.filterwarnings("ignore", message=r"\[EXPERIMENTAL\] ", category=UserWarning)
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter())
    root.addHandler(handler)
    root.setLevel(level)
