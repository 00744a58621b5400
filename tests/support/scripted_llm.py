"""A scripted OpenAI-compatible LLM server on loopback, for tests (memory, agents, tools).

The one fake in caramba's test suite: everything else (LiteLLM, Graphiti, ADK, MCP) runs
for real and reaches this server over HTTP, exactly as it would reach a vLLM or OpenAI
endpoint. Point LiteLLM at it with ``model="openai/scripted"`` and
``api_base=server.base_url``.

Usage::

    from caramba.tests.support.scripted_llm import ScriptedLLM, scripted_llm  # noqa: F401

    def test_x(scripted_llm: ScriptedLLM):
        # 1. assistant turns, replayed in order (text and/or tool calls)
        scripted_llm.add_turn("Let me look that up.",
                              tool_calls=[{"name": "search", "arguments": {"q": "rope"}}])
        scripted_llm.add_turn("RoPE theta 500k helped.")
        # usage the reply reports (default: 10 prompt tokens + one per word) and a delay
        scripted_llm.add_turn("Long answer.", usage={"prompt_tokens": 5000, "completion_tokens": 900},
                              delay_s=3.0)
        # 2. structured output: persistent rules chosen by a matcher on the request
        scripted_llm.on_json({"entities": []}, schema="ExtractedEntities")
        scripted_llm.on_json(lambda req: {...}, prompt_contains="summarize")
        ...
        assert scripted_llm.schema_names() == [...]          # what was asked, in order

How a chat request is answered, first match wins:

1. a JSON rule (``on_json``) whose matchers all hold: ``schema`` equals the
   ``response_format.json_schema.name``; ``prompt_contains`` is a substring of the joined
   message contents; ``when(request_body)`` returns true. The reply is the rule's dict,
   or the rule's callable applied to a :class:`ChatRequest` view of the request.
2. the next queued turn (``add_turn``), optionally guarded by its own ``when``.
3. otherwise HTTP 400 with a message naming the schema and the last user message, so an
   unscripted request fails the test loudly instead of hanging or retrying (a reply
   function that raises is answered the same way; its error is kept in ``errors``).

``/v1/embeddings`` answers with deterministic bag-of-words hashing vectors of
``embedding_dim`` (texts sharing words get similar vectors), or ``embed_fn``. Every
request is recorded in ``requests``. ``"stream": true`` chat requests get Server-Sent
Events chunks (content deltas, tool-call deltas, a finish chunk, a usage chunk when
``stream_options.include_usage`` is set, and ``[DONE]``). A turn's ``delay_s`` makes the
server wait that long before answering (budgets' wall-clock tests, cancellation).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from caramba.tests.support.openai_wire import completion, hashing_embedding, stream_chunks

JsonReply = dict[str, Any] | Callable[["ChatRequest"], dict[str, Any]]


@dataclass
class ChatRequest:
    """A recorded request, with helpers for matchers and reply functions."""

    path: str
    body: dict[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages") or [])

    @property
    def prompt(self) -> str:
        """All message contents joined (text parts of multi-part contents included)."""
        parts: list[str] = []
        for m in self.messages:
            c = m.get("content")
            if isinstance(c, str):
                parts.append(c)
            elif isinstance(c, list):
                parts.extend(p.get("text", "") for p in c if isinstance(p, dict))
        return "\n".join(parts)

    @property
    def last_user(self) -> str:
        users = [m for m in self.messages if m.get("role") == "user"]
        c = users[-1].get("content") if users else ""
        return c if isinstance(c, str) else json.dumps(c)

    @property
    def schema_name(self) -> str | None:
        rf = self.body.get("response_format") or {}
        return (rf.get("json_schema") or {}).get("name") if isinstance(rf, dict) else None

    @property
    def schema(self) -> dict[str, Any] | None:
        rf = self.body.get("response_format") or {}
        return (rf.get("json_schema") or {}).get("schema") if isinstance(rf, dict) else None


@dataclass
class _Rule:
    reply: JsonReply
    schema: str | None
    prompt_contains: str | None
    when: Callable[[dict[str, Any]], bool] | None
    hits: int = 0

    def matches(self, req: ChatRequest) -> bool:
        if self.schema is not None and req.schema_name != self.schema:
            return False
        if self.prompt_contains is not None and self.prompt_contains not in req.prompt:
            return False
        return self.when is None or bool(self.when(req.body))


@dataclass
class _Turn:
    content: str | None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    when: Callable[[dict[str, Any]], bool] | None = None
    usage: dict[str, int] | None = None
    delay_s: float = 0.0


class ScriptedLLM:
    """The server object: script it, point clients at ``base_url``, assert on ``requests``."""

    def __init__(self, embedding_dim: int = 64,
                 embed_fn: Callable[[str], list[float]] | None = None) -> None:
        self.embedding_dim = embedding_dim
        self.embed_fn = embed_fn or (lambda t: hashing_embedding(t, embedding_dim))
        self.requests: list[ChatRequest] = []
        self.unanswered: list[ChatRequest] = []
        self.errors: list[str] = []  # exceptions raised by reply functions
        self._rules: list[_Rule] = []
        self._turns: list[_Turn] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- scripting ---------------------------------------------------------------------
    def add_turn(self, content: str | None = None, *, tool_calls: list[dict[str, Any]] | None = None,
                 when: Callable[[dict[str, Any]], bool] | None = None,
                 usage: dict[str, int] | None = None, delay_s: float = 0.0) -> None:
        """Queue one assistant turn. ``tool_calls``: ``[{"name": ..., "arguments": {...}}]``;
        ``usage``: ``{"prompt_tokens": n, "completion_tokens": m}`` the reply reports;
        ``delay_s``: seconds to wait before answering."""
        if content is None and not tool_calls:
            raise ValueError("a scripted turn needs content, tool_calls, or both")
        with self._lock:
            self._turns.append(_Turn(content, list(tool_calls or []), when, usage, delay_s))

    def on_json(self, reply: JsonReply, *, schema: str | None = None,
                prompt_contains: str | None = None,
                when: Callable[[dict[str, Any]], bool] | None = None) -> None:
        """Answer matching requests (every time, not once) with JSON ``reply``."""
        with self._lock:
            self._rules.append(_Rule(reply, schema, prompt_contains, when))

    @property
    def pending_turns(self) -> int:
        return len(self._turns)

    def chat_requests(self) -> list[ChatRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def schema_names(self) -> list[str | None]:
        return [r.schema_name for r in self.chat_requests()]

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("ScriptedLLM is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def litellm_model(self, name: str = "scripted") -> str:
        return f"openai/{name}"

    def start(self) -> "ScriptedLLM":
        owner = self

        class Handler(_Handler):
            llm = owner

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="scripted-llm")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "ScriptedLLM":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering ----------------------------------------------------------------------
    def _answer_chat(self, req: ChatRequest) -> _Turn | None:
        with self._lock:
            for rule in self._rules:
                if rule.matches(req):
                    rule.hits += 1
                    if not callable(rule.reply):
                        return _Turn(json.dumps(rule.reply))
                    try:
                        return _Turn(json.dumps(rule.reply(req)))
                    except Exception as e:  # a broken reply function fails the request loudly
                        self.errors.append(f"{type(e).__name__}: {e}")
                        return None
            for i, turn in enumerate(self._turns):
                if turn.when is None or turn.when(req.body):
                    return self._turns.pop(i)
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    llm: ScriptedLLM

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        return

    def _send_json(self, status: int, data: dict[str, Any]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path.rstrip("/").endswith("/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "body is not JSON"}})
            return
        req = ChatRequest(self.path, body)
        self.llm.requests.append(req)
        if self.path.endswith("/embeddings"):
            inputs = body.get("input")
            texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
            data = [{"object": "embedding", "index": i, "embedding": self.llm.embed_fn(str(t))}
                    for i, t in enumerate(texts)]
            self._send_json(200, {"object": "list", "data": data, "model": body.get("model", "scripted"),
                                  "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}})
            return
        if not self.path.endswith("/chat/completions"):
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        answer = self.llm._answer_chat(req)
        if answer is None:
            self.llm.unanswered.append(req)
            why = f"; reply function failed: {self.llm.errors[-1]}" if self.llm.errors else ""
            self._send_json(400, {"error": {"type": "invalid_request_error", "message":
                            f"ScriptedLLM has no scripted answer{why} (schema={req.schema_name!r}, "
                            f"last user message={req.last_user[:300]!r})"}})
            return
        if answer.delay_s:
            time.sleep(answer.delay_s)
        model = str(body.get("model", "scripted"))
        if not body.get("stream"):
            self._send_json(200, completion(model, answer.content, answer.tool_calls, answer.usage))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        for ch in stream_chunks(model, answer.content, answer.tool_calls, answer.usage, include_usage):
            self.wfile.write(f"data: {json.dumps(ch)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def scripted_llm() -> Iterator[ScriptedLLM]:
    """A started :class:`ScriptedLLM` on 127.0.0.1 (random port), stopped after the test."""
    with ScriptedLLM() as server:
        yield server
