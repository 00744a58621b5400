"""Parse the time windows memory search accepts: ISO dates and a few plain phrases.

``parse_when("last week")`` → (now − 7 days, now). Accepted: ``today``, ``yesterday``,
``last week``/``this week`` (7 days), ``last month`` (30 days), ``last N days|hours|weeks``,
and ISO 8601 dates or datetimes (``2026-11-20``, ``2026-11-20T10:00``; naive = UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from caramba.engine.errors import CarambaError

_UNITS = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(days=7),
          "month": timedelta(days=30)}


def parse_instant(text: str, *, what: str = "time", phrases: bool = False) -> datetime:
    """An ISO date/datetime (naive = UTC) as an aware UTC datetime. ``phrases``: the caller
    also accepts the phrases of :func:`parse_when` (the error's fix says so only then)."""
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise CarambaError(f"{what} '{text}' is not a date",
                           fix="use an ISO date like 2026-11-20 or 2026-11-20T10:00"
                               + (", or a phrase: today, yesterday, last week, last 3 days" if phrases else
                                  " (phrases such as 'last week' go in --since)")) from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def parse_when(text: str, *, now: datetime | None = None) -> tuple[datetime, datetime | None]:
    """A phrase or a date → (since, until-or-None)."""
    now = now or datetime.now(UTC)
    t = text.strip().lower()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if t == "today":
        return midnight, None
    if t == "yesterday":
        return midnight - timedelta(days=1), midnight
    if t in ("last week", "this week", "past week"):
        return now - timedelta(days=7), None
    if t in ("last month", "this month", "past month"):
        return now - timedelta(days=30), None
    m = re.fullmatch(r"(?:last|past)\s+(\d+)\s+(hour|day|week|month)s?", t)
    if m:
        return now - int(m.group(1)) * _UNITS[m.group(2)], None
    return parse_instant(text, what="--since", phrases=True), None


def parse_window(since: str | None, until: str | None, *,
                 now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """``--since`` (phrase or date) and ``--until`` (date) → (since, until); an ``--until``
    given wins over the end a phrase implies. A window that ends before it starts is an error."""
    lo, hi = parse_when(since, now=now) if since else (None, None)
    if until:
        hi = parse_instant(until, what="--until")
    if lo is not None and hi is not None and hi < lo:
        raise CarambaError(f"--until {hi:%Y-%m-%d %H:%M} is before --since {lo:%Y-%m-%d %H:%M}: "
                           "no fact can match", fix="swap them, or drop one")
    return lo, hi
