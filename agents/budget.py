"""Budgets: per-process limits on LLM calls, tokens, cost and wall-clock time.

:class:`Budget` is the manifest/CLI config (``process.budget``); :class:`Accountant`
counts what a process spends (fed by the agent callbacks of :mod:`caramba.agents.team`)
and raises :class:`BudgetExceeded` (exit code 3) so a runaway process stops cleanly with
its transcript intact:

* before every model call, when a limit is already reached (``calls >= max_llm_calls``,
  ``tokens >= max_tokens``, ``cost >= max_cost_usd``, ``elapsed >= max_wall_s``);
* right after a model call whose reported usage went *over* the token or cost limit
  (:meth:`Accountant.check_spent`) — the turn is recorded, its tool calls are not run;
* at the wall-clock limit even in the middle of a model or tool call: the process body
  runs under ``asyncio.timeout`` (:mod:`caramba.agents.session`), which cancels it.

Tokens are the provider's reported ``usage`` (prompt + completion). Cost comes from
LiteLLM's local price table (``litellm.model_cost``, via ``litellm.cost_per_token``). A
model missing from that table (a local server, the scripted test server) is *unpriced*:
the transcript marks its turns ``cost_usd: null``, and a process that sets
``max_cost_usd`` refuses to start with such a model (:func:`check_priced`) rather than
silently count it as free.
"""

from __future__ import annotations

import os
import threading
import time

from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.errors import CarambaError

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

FIX = "raise process.budget.{field} in the manifest (or the matching --max-… option of the command)"


class BudgetExceeded(CarambaError):
    """A process reached one of its limits (the CLI exits 3)."""

    exit_code = 3

    def __init__(self, limit: str, message: str) -> None:
        self.limit = limit  # the Budget field: max_llm_calls | max_tokens | max_cost_usd | max_wall_s
        super().__init__(message, fix=FIX.format(field=limit))


class UnpricedModel(CarambaError):
    """A cost budget is set but a persona's model has no price in LiteLLM's table."""


class Budget(BaseModel):
    """Limits of one process run (``process.budget`` in a manifest)."""

    model_config = ConfigDict(extra="forbid")

    max_llm_calls: int = Field(200, ge=1, description="model calls across all personas")
    max_tokens: int = Field(2_000_000, ge=1, description="prompt + completion tokens, as the provider reports")
    max_cost_usd: float | None = Field(None, gt=0.0, description="USD from LiteLLM's price table; every "
                                       "persona's model must be priced (None = no cost limit)")
    max_wall_s: float = Field(3600.0, gt=0.0, description="seconds since the process started")


def is_priced(model: str) -> bool:
    """Whether LiteLLM's local price table knows ``model`` (with or without its provider prefix)."""
    import litellm

    table = litellm.model_cost
    return model in table or model.split("/", 1)[-1] in table


def price(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD for one call from LiteLLM's local price table, or None when unpriced."""
    import litellm

    if not is_priced(model):
        return None
    prompt_usd, completion_usd = litellm.cost_per_token(model=model, prompt_tokens=prompt_tokens,
                                                        completion_tokens=completion_tokens)
    return float(prompt_usd) + float(completion_usd)


def check_priced(budget: Budget, models: dict[str, str]) -> None:
    """Pre-flight: with ``max_cost_usd`` set, every persona's model (``{persona: model}``) must be priced."""
    if budget.max_cost_usd is None:
        return
    unpriced = [f"persona '{p}' uses '{m}'" for p, m in models.items() if not is_priced(m)]
    if unpriced:
        raise UnpricedModel(
            f"process.budget.max_cost_usd = {budget.max_cost_usd} cannot be enforced: LiteLLM's price table has "
            f"no price for {'; '.join(unpriced)}, so its spend would count as $0",
            fix="use a model name LiteLLM prices (e.g. openai/gpt-4o-mini, also when routed to an api_base), "
                "or drop max_cost_usd and limit max_tokens / max_llm_calls instead")


class Accountant:
    """Running totals of one process, checked against its :class:`Budget`."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.started = time.monotonic()
        self.llm_calls = 0
        self.tool_calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cost_usd = 0.0
        self.unpriced_calls = 0
        self._lock = threading.Lock()

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining_wall_s(self) -> float:
        return self.budget.max_wall_s - self.elapsed()

    def wall_exceeded(self) -> BudgetExceeded:
        return BudgetExceeded("max_wall_s", f"wall-clock budget used up ({self.elapsed():.1f}s of "
                                            f"{self.budget.max_wall_s:g}s); the process was stopped")

    def check_before_call(self) -> None:
        """Raise if one more LLM call would break a limit."""
        b = self.budget
        if self.llm_calls >= b.max_llm_calls:
            raise BudgetExceeded("max_llm_calls", f"LLM call budget used up ({self.llm_calls}/{b.max_llm_calls} calls)")
        if self.tokens >= b.max_tokens:
            raise BudgetExceeded("max_tokens", f"token budget used up ({self.tokens}/{b.max_tokens} tokens)")
        if b.max_cost_usd is not None and self.cost_usd >= b.max_cost_usd:
            raise BudgetExceeded("max_cost_usd", f"cost budget used up (${self.cost_usd:.6f} of ${b.max_cost_usd:g})")
        if self.elapsed() >= b.max_wall_s:
            raise self.wall_exceeded()

    def check_spent(self) -> None:
        """Raise if what was spent already went over a limit (after a call's usage is known)."""
        b = self.budget
        if self.tokens > b.max_tokens:
            raise BudgetExceeded("max_tokens", f"token budget exceeded: {self.tokens} tokens used "
                                               f"({self.prompt_tokens} prompt + {self.completion_tokens} completion), "
                                               f"limit {b.max_tokens}")
        if b.max_cost_usd is not None and self.cost_usd > b.max_cost_usd:
            raise BudgetExceeded("max_cost_usd", f"cost budget exceeded: ${self.cost_usd:.6f} spent, "
                                                 f"limit ${b.max_cost_usd:g}")
        if self.elapsed() >= b.max_wall_s:
            raise self.wall_exceeded()

    def add_call(self, prompt_tokens: int, completion_tokens: int, cost: float | None) -> None:
        with self._lock:
            self.llm_calls += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            if cost is None:
                self.unpriced_calls += 1
            else:
                self.cost_usd += cost

    def add_tool_call(self) -> None:
        with self._lock:
            self.tool_calls += 1

    def totals(self) -> dict[str, float | int | None]:
        """What the process spent; ``cost_usd`` is None when no call was priced."""
        priced = self.llm_calls - self.unpriced_calls
        return {"llm_calls": self.llm_calls, "tool_calls": self.tool_calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "tokens": self.tokens,
                "cost_usd": round(self.cost_usd, 8) if priced or not self.llm_calls else None,
                "unpriced_calls": self.unpriced_calls, "wall_s": round(self.elapsed(), 3)}


def describe_totals(totals: dict[str, float | int | None]) -> str:
    """One line for the terminal: ``3 LLM calls, 1,234 tokens (1,000 prompt + 234 completion), $0.0012, 2 tool calls, 4.1s``."""
    cost = totals.get("cost_usd")
    money = "cost unknown (unpriced model)" if cost is None else f"${cost:.4f}"
    return (f"{totals.get('llm_calls', 0)} LLM calls, {totals.get('tokens', 0):,} tokens "
            f"({totals.get('prompt_tokens', 0):,} prompt + {totals.get('completion_tokens', 0):,} completion), "
            f"{money}, {totals.get('tool_calls', 0)} tool calls, {totals.get('wall_s', 0)}s")
