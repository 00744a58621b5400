"""OpenAI chat/embedding wire format for the scripted LLM server (tests only): the
response bodies and streaming chunks an OpenAI-compatible endpoint returns, and the
deterministic hashing embedding it serves."""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any


def hashing_embedding(text: str, dim: int) -> list[float]:
    """Deterministic bag-of-words vector: shared words → similar vectors."""
    vec = [0.0] * dim
    for w in re.findall(r"[a-z0-9]+", text.lower()):
        h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little")
        vec[h % dim] += 1.0 if (h >> 63) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def usage_of(content: str | None, usage: dict[str, int] | None) -> dict[str, int]:
    """The ``usage`` block: the scripted one, else 10 prompt tokens + one per word of content."""
    u = dict(usage) if usage else {"prompt_tokens": 10, "completion_tokens": len((content or "").split())}
    u.setdefault("prompt_tokens", 0)
    u.setdefault("completion_tokens", 0)
    u["total_tokens"] = u["prompt_tokens"] + u["completion_tokens"]
    return u


def completion(model: str, content: str | None, tool_calls: list[dict[str, Any]],
               usage: dict[str, int] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        msg["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                              "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
                             for c in tool_calls]
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": msg,
                         "finish_reason": "tool_calls" if tool_calls else "stop"}],
            "usage": usage_of(content, usage)}


def stream_chunks(model: str, content: str | None, tool_calls: list[dict[str, Any]],
                  usage: dict[str, int] | None = None, include_usage: bool = False) -> Iterator[dict[str, Any]]:
    """SSE chunks; with ``include_usage`` (the request's ``stream_options.include_usage``) a
    last chunk with empty ``choices`` carries ``usage``, as OpenAI sends it."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    for piece in re.findall(r"\S+\s*|\s+", content or ""):
        yield chunk({"content": piece})
    for i, c in enumerate(tool_calls):
        yield chunk({"tool_calls": [{"index": i, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                                     "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}]})
    yield chunk({}, "tool_calls" if tool_calls else "stop")
    if include_usage:
        yield {**base, "choices": [], "usage": usage_of(content, usage)}
