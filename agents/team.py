"""A team of personas as google-adk agents on LiteLLM, with caramba's MCP tools.

Each persona becomes an ADK ``LlmAgent`` whose model is ADK's ``LiteLlm`` wrapper around
the persona's LiteLLM model string (see :mod:`caramba.agents.models`) and whose tools are
an ``McpToolset`` on caramba's MCP server, limited to the persona's tool groups.

Every model call and tool call passes through the callbacks below, which

* enforce the process budget (:class:`~caramba.agents.budget.Accountant`): before each model
  call, and right after one whose reported usage went over the token or cost limit (its
  tool calls then never run);
* let a persona delegate: its ``sub_agents`` on the team (and remote ones over A2A, see
  :mod:`caramba.agents.remote`) are ADK sub-agents it can ``transfer_to_agent`` to; the
  ``message`` event of the answer names the sub-agent that gave it (``answered_by``);
* write ``llm_turn`` and ``tool_call`` events (arguments, result summary, duration) into
  the process transcript (:class:`~caramba.agents.transcript.ProcessRun`).

::

    team = Team(personas, settings, link, run, accountant)
    reply = await team.ask("architect", "How would you cut attention cost?")
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from caramba.agents.budget import Accountant, BudgetExceeded, price
from caramba.agents.mcp_link import McpLink
from caramba.agents.personas import Persona
from caramba.agents.remote import build_remote
from caramba.agents.transcript import ProcessRun, summarize
from caramba.engine.errors import CarambaError
from caramba.llm import LLMSettings

APP_NAME = "caramba"
USER_ID = "researcher"


class AgentCallError(CarambaError):
    """A model call failed (provider error, unreachable server)."""


class Team:
    """Personas as ADK agents sharing one MCP link, transcript and budget."""

    def __init__(self, personas: list[Persona], settings: dict[str, LLMSettings], link: McpLink | None,
                 run: ProcessRun, accountant: Accountant) -> None:
        from google.adk.sessions import InMemorySessionService

        self.personas = {p.name: p for p in personas}
        self.settings = settings
        self.link = link
        self.run = run
        self.accountant = accountant
        self.sessions = InMemorySessionService()
        self._runners: dict[str, Any] = {}
        self._toolsets: list[Any] = []
        self._remotes: list[Any] = []
        self._t0: dict[str, float] = {}
        self._budget_error: BudgetExceeded | None = None

    # -- building -----------------------------------------------------------------------
    def build_agent(self, name: str, *, with_sub_agents: bool = False) -> Any:
        """A fresh ``LlmAgent`` for persona ``name`` (fresh: ADK agents have one parent).

        ``with_sub_agents``: its ``sub_agents`` that are on this team, plus its remote A2A
        sub-agents (:mod:`caramba.agents.remote`), become ADK sub-agents it can
        ``transfer_to_agent`` to."""
        from google.adk.agents import LlmAgent
        from google.adk.models.lite_llm import LiteLlm
        from google.genai import types

        p = self.personas[name]
        s = self.settings[name]
        kwargs: dict[str, Any] = {}
        if s.api_base:
            kwargs["api_base"] = s.api_base
        if s.api_key:
            kwargs["api_key"] = s.api_key
        tools = [self.link.toolset(p.tool_names())] if (self.link is not None and p.tools) else []
        self._toolsets.extend(tools)
        subs: list[Any] = []
        if with_sub_agents:
            subs = [self.build_agent(n) for n in p.local_sub_agents() if n in self.personas]
            remotes = [build_remote(r, self.run) for r in p.remote_sub_agents()]
            self._remotes.extend(remotes)
            subs += remotes
        text = p.instructions
        return LlmAgent(
            name=p.name, description=p.description, model=LiteLlm(model=s.model, **kwargs),
            instruction=lambda _ctx, _text=text: _text,  # a provider: no {state} templating of the prompt
            tools=tools, sub_agents=subs,
            generate_content_config=types.GenerateContentConfig(temperature=s.temperature),
            before_model_callback=self._before_model, after_model_callback=self._after_model,
            before_tool_callback=self._before_tool, after_tool_callback=self._after_tool,
            on_tool_error_callback=self._tool_error,
        )

    def runner(self, name: str) -> Any:
        from google.adk.runners import Runner

        if name not in self._runners:
            self._runners[name] = Runner(app_name=APP_NAME, agent=self.build_agent(name, with_sub_agents=True),
                                         session_service=self.sessions, auto_create_session=True)
        return self._runners[name]

    async def close(self) -> None:
        """Close every MCP session and A2A client the agents opened."""
        for ts in self._toolsets:
            await ts.close()
        self._toolsets.clear()
        for remote in self._remotes:
            await remote.cleanup()
        self._remotes.clear()

    # -- asking -------------------------------------------------------------------------
    async def ask(self, name: str, message: str, *, session: str | None = None) -> str:
        """Send ``message`` to persona ``name`` and return its final text.

        ``session``: reuse a conversation (same id → the persona remembers); default is a
        fresh one per call (the processes pass shared context in the message itself)."""
        from google.genai import types

        if name not in self.personas:
            raise CarambaError(f"'{name}' is not on this team", fix=f"team: {', '.join(self.personas)}")
        self.accountant.check_before_call()
        self.run.emit("message", name, role="user", text=message)
        sid = session or f"{name}-{uuid.uuid4().hex[:8]}"
        content = types.Content(role="user", parts=[types.Part(text=message)])
        final, author = "", name
        async for event in self.runner(name).run_async(user_id=USER_ID, session_id=sid, new_message=content):
            if event.error_code or event.error_message:
                raise AgentCallError(f"persona '{name}' ({self.settings[name].describe()}): "
                                     f"{event.error_code}: {event.error_message}",
                                     fix="check the model, its API key or the api_base server")
            if event.is_final_response() and event.content and event.content.parts:
                final = "".join(part.text or "" for part in event.content.parts if not part.thought)
                author = event.author or name
        if self._budget_error is not None:
            raise self._budget_error
        extra = {"answered_by": author} if author != name else {}  # a sub-agent it transferred to
        self.run.emit("message", name, role="assistant", text=final, **extra)
        return final

    # -- callbacks ----------------------------------------------------------------------
    def _budget_stop(self, check: Any) -> BudgetExceeded | None:
        """Run a budget check; a stop is remembered (and raised by :meth:`ask` once ADK
        has wound down) instead of raised inside ADK's callbacks."""
        if self._budget_error is None:
            try:
                check()
            except BudgetExceeded as e:
                self._budget_error = e
        return self._budget_error

    @staticmethod
    def _stopped_reply(error: BudgetExceeded) -> Any:
        """A model reply with no tool calls: ends the agent's turn without calling the model."""
        from google.adk.models.llm_response import LlmResponse
        from google.genai import types

        return LlmResponse(content=types.Content(role="model", parts=[
            types.Part(text=f"[stopped by the process budget: {error.message}]")]), turn_complete=True)

    def _before_model(self, callback_context: Any, llm_request: Any) -> Any:
        stop = self._budget_stop(self.accountant.check_before_call)
        if stop is not None:
            return self._stopped_reply(stop)
        self._t0[f"llm:{callback_context.invocation_id}:{callback_context.agent_name}"] = time.monotonic()
        return None

    def _after_model(self, callback_context: Any, llm_response: Any) -> None:
        if getattr(llm_response, "partial", False):
            return None
        name = callback_context.agent_name
        t0 = self._t0.pop(f"llm:{callback_context.invocation_id}:{name}", time.monotonic())
        usage = llm_response.usage_metadata
        prompt = int(getattr(usage, "prompt_token_count", 0) or 0)
        completion = int(getattr(usage, "candidates_token_count", 0) or 0)
        model = self.settings[name].model if name in self.settings else "?"
        cost = price(model, prompt, completion)
        self.accountant.add_call(prompt, completion, cost)
        parts = llm_response.content.parts if llm_response.content and llm_response.content.parts else []
        text = "".join(p.text or "" for p in parts if not p.thought)
        calls = [{"name": p.function_call.name, "args": summarize(dict(p.function_call.args or {}))}
                 for p in parts if p.function_call]
        self.run.emit("llm_turn", name, model=model, duration_s=round(time.monotonic() - t0, 4),
                      prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost,
                      text=summarize(text), tool_calls=calls,
                      error=llm_response.error_message)
        stop = self._budget_stop(self.accountant.check_spent)
        return self._stopped_reply(stop) if stop is not None else None  # drops the turn's tool calls

    def _before_tool(self, tool: Any, args: dict[str, Any], tool_context: Any) -> Any:
        stop = self._budget_stop(self.accountant.check_spent)
        if stop is not None:  # not run; the next model call is refused by _before_model
            return {"error": f"not run: {stop.message}"}
        self._t0[f"tool:{tool_context.function_call_id}"] = time.monotonic()
        return None

    def _after_tool(self, tool: Any, args: dict[str, Any], tool_context: Any, tool_response: Any) -> None:
        t0 = self._t0.pop(f"tool:{tool_context.function_call_id}", time.monotonic())
        failed = isinstance(tool_response, dict) and bool(tool_response.get("isError") or tool_response.get("is_error")
                                                          or "error" in tool_response)
        self.accountant.add_tool_call()
        self.run.emit("tool_call", tool_context.agent_name, tool=tool.name, args=summarize(args),
                      ok=not failed, result=summarize(_payload(tool_response)), duration_s=round(time.monotonic() - t0, 4))
        return None

    def _tool_error(self, tool: Any, args: dict[str, Any], tool_context: Any, error: Exception) -> None:
        t0 = self._t0.pop(f"tool:{tool_context.function_call_id}", time.monotonic())
        self.accountant.add_tool_call()
        self.run.emit("tool_call", tool_context.agent_name, tool=tool.name, args=summarize(args), ok=False,
                      result=f"{type(error).__name__}: {error}", duration_s=round(time.monotonic() - t0, 4))
        return None


def _payload(response: Any) -> Any:
    """What an MCP tool answered: its structured content, else its text content."""
    if not isinstance(response, dict):
        return response
    for key in ("structuredContent", "structured_content"):
        if response.get(key) is not None:
            return response[key]
    content = response.get("content")
    if isinstance(content, list):
        return " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return response
