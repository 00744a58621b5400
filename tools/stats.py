"""Mean and 95% confidence interval of a small sample (repeated seeds).

The interval is Student's t: ``mean ± t(0.975, n-1) · s / sqrt(n)`` with ``s`` the sample
standard deviation (n-1 in the denominator). With n = 1 there is no interval (``None``):
one seed says nothing about seed-to-seed spread, and reporting ±0 would claim it does.

    >>> summary([1.0, 2.0, 3.0]).mean
    2.0
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field


class Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: int = Field(description="number of values (seeds)")
    mean: float
    std: float | None = Field(None, description="sample standard deviation (n-1); None for n=1")
    ci95: float | None = Field(None, description="half-width of the 95% t-interval; None for n=1")
    values: list[float]


def summary(values: list[float]) -> Summary:
    """Mean, sample std and 95% t-interval half-width of ``values`` (non-empty)."""
    if not values:
        raise ValueError("summary() needs at least one value")
    n = len(values)
    mean = sum(values) / n
    if n == 1:
        return Summary(n=1, mean=mean, values=list(values))
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    from scipy import stats  # heavy (~1 s): only when an interval is computed

    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return Summary(n=n, mean=mean, std=std, ci95=half, values=list(values))
