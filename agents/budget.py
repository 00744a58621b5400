"""Budgets: per-process limits on LLM calls, tokens, cost and wall-clock time.

:class:`Budget` is the manifest/CLI config (``process.budget``); :class:`Accountant`
counts what a process spends (fed by the agent callbacks of :mod:`caramba.agents.team`)
and raises :class:`BudgetExceeded` *before* the call that would go over a limit, so a
runaway agent stops cleanly with its transcript intact.

Cost comes from LiteLLM's local price table (``litellm.model_cost``). A model missing
from it (a local server, the scripted test server) is *unpriced*: its calls count
towards calls and tokens but not cost, and the transcript marks them ``cost_usd: null``.
"""

from __future__ import annotations

import os
import threading
import time

from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.errors import CarambaError

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


class BudgetExceeded(CarambaError):
    """A process reached one of its limits."""


class Budget(BaseModel):
    """Limits of one process run (``process.budget`` in a manifest)."""

    model_config = ConfigDict(extra="forbid")

    max_llm_calls: int = Field(200, ge=1, description="model calls across all personas")
    max_tokens: int = Field(2_000_000, ge=1, description="prompt + completion tokens")
    max_cost_usd: float = Field(5.0, ge=0.0, description="USD, priced models only")
    max_wall_s: float = Field(3600.0, gt=0.0, description="seconds since the process started")


def price(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD for one call from LiteLLM's local price table, or None when unpriced."""
    import litellm

    table = litellm.model_cost
    entry = table.get(model) or table.get(model.split("/", 1)[-1])
    if not entry:
        return None
    return (prompt_tokens * float(entry.get("input_cost_per_token") or 0.0)
            + completion_tokens * float(entry.get("output_cost_per_token") or 0.0))


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
        self._lock = threading.Lock()

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def check_before_call(self) -> None:
        """Raise if one more LLM call would break a limit."""
        b = self.budget
        fix = "raise process.budget.<limit> in the manifest (or --max-llm-calls / --max-wall-s)"
        if self.llm_calls >= b.max_llm_calls:
            raise BudgetExceeded(f"LLM call budget used up ({self.llm_calls}/{b.max_llm_calls} calls)", fix=fix)
        if self.tokens >= b.max_tokens:
            raise BudgetExceeded(f"token budget used up ({self.tokens}/{b.max_tokens} tokens)", fix=fix)
        if self.cost_usd > 0 and self.cost_usd >= b.max_cost_usd:
            raise BudgetExceeded(f"cost budget used up (${self.cost_usd:.4f} of ${b.max_cost_usd:.2f})", fix=fix)
        if self.elapsed() >= b.max_wall_s:
            raise BudgetExceeded(f"wall-clock budget used up ({self.elapsed():.0f}s of {b.max_wall_s:.0f}s)", fix=fix)

    def add_call(self, prompt_tokens: int, completion_tokens: int, cost: float | None) -> None:
        with self._lock:
            self.llm_calls += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.cost_usd += cost or 0.0

    def add_tool_call(self) -> None:
        with self._lock:
            self.tool_calls += 1

    def totals(self) -> dict[str, float | int]:
        return {"llm_calls": self.llm_calls, "tool_calls": self.tool_calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "cost_usd": round(self.cost_usd, 6),
                "wall_s": round(self.elapsed(), 3)}
