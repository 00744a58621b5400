"""Where every value of a manifest came from, and how problems are reported against it.

The manifest pipeline works on plain Python data (dicts, lists, scalars) so that pydantic
and the components' ``check_config`` see ordinary mappings. Next to the data it keeps a
:class:`SourceMap`: a side table from a *YAML path* — a tuple such as
``("targets", 0, "system", "config", "model")`` — to an :class:`Origin` (file, 1-based
line and column, and the path as the user wrote it). Stages that move values around
(``${var}`` substitution, ``!include``, ``NestedTopology.repeat`` expansion) copy the
entries along, so a problem found late in the pipeline still points at the source text.

Looking a path up takes the longest known prefix: a missing field ``steps`` under
``targets[0].runs[0]`` is reported at the line of ``runs[0]``, with the full path
``targets[0].runs[0].steps``.

:class:`IssueCollector` gathers :class:`~caramba.engine.errors.ManifestIssue`\\ s from
every stage so that ``caramba validate`` reports all problems at once. A stage that
cannot produce a sensible value (an unknown ``${var}``) *poisons* that path: later
stages' complaints about the same value are dropped as echoes of the first.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

from caramba.engine.errors import ManifestError, ManifestIssue

YPath = tuple[str | int, ...]

#: the pseudo file name of values that came from ``--set`` on the command line.
OVERRIDE_FILE = "--set"


def format_path(path: Iterable[str | int]) -> str:
    """``("targets", 0, "runs", 1, "lr")`` → ``targets[0].runs[1].lr``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """The closest of ``known`` to ``name`` (difflib, cutoff 0.6), or None."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def short(value: Any, limit: int = 60) -> str:
    """A one-line rendering of a found value for messages, e.g. ``'five' (a string)``."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    kind = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
            list: "a list", dict: "a mapping", type(None): "null"}.get(type(value))
    return f"{text} ({kind})" if kind else text


@dataclass(frozen=True)
class Origin:
    """Where one value was written: file, 1-based line/column, and its YAML path there."""

    file: str | None
    line: int | None
    column: int | None
    path: YPath


class SourceMap:
    """YAML path → :class:`Origin`, with longest-prefix lookup."""

    def __init__(self, entries: dict[YPath, Origin] | None = None) -> None:
        self.entries: dict[YPath, Origin] = dict(entries or {})

    def set(self, path: YPath, origin: Origin) -> None:
        self.entries[path] = origin

    def get(self, path: YPath) -> Origin | None:
        return self.entries.get(path)

    def drop_under(self, path: YPath) -> None:
        """Forget every entry strictly below ``path`` (its value was replaced)."""
        n = len(path)
        for key in [k for k in self.entries if len(k) > n and k[:n] == path]:
            del self.entries[key]

    def copy_subtree(self, src: YPath, dst: YPath, *, keep_path: bool) -> None:
        """Copy entries below ``src`` to the same relative places below ``dst``.

        With ``keep_path`` the copied origins keep reporting their original YAML path
        (used by lowering); otherwise they report the destination path but keep the
        file/line of the source text (used by ``${var}`` substitution of mappings).
        """
        n = len(src)
        for key, origin in list(self.entries.items()):
            if len(key) > n and key[:n] == src:
                new_key = dst + key[n:]
                new_path = origin.path if keep_path else new_key
                self.entries[new_key] = Origin(origin.file, origin.line, origin.column, new_path)

    def locate(self, path: YPath) -> tuple[Origin | None, YPath]:
        """The origin of the longest known prefix of ``path`` and the full source path."""
        for cut in range(len(path), -1, -1):
            origin = self.entries.get(path[:cut])
            if origin is not None:
                return origin, origin.path + path[cut:]
        return None, path


class IssueCollector:
    """Collects located :class:`ManifestIssue`\\ s; :meth:`raise_if_any` raises them all."""

    def __init__(self, smap: SourceMap, default_file: str | None) -> None:
        self.smap = smap
        self.default_file = default_file
        self.issues: list[ManifestIssue] = []
        self._poisoned: set[YPath] = set()
        self._seen: set[tuple[str, str]] = set()

    def poison(self, path: YPath) -> None:
        """Silence later issues at ``path`` or below (they would repeat an earlier one)."""
        self._poisoned.add(path)

    def is_poisoned(self, path: YPath) -> bool:
        return any(path[: len(p)] == p for p in self._poisoned)

    def add(self, path: YPath, message: str, *, expected: str | None = None,
            found: str | None = None, fix: str | None = None) -> None:
        """Record a problem at the (current, possibly lowered) YAML ``path``."""
        origin, source_path = self.smap.locate(path)
        if self.is_poisoned(path) or self.is_poisoned(source_path):
            return
        self.add_at(origin, source_path, message, expected=expected, found=found, fix=fix)

    def add_at(self, origin: Origin | None, source_path: YPath, message: str, *,
               expected: str | None = None, found: str | None = None, fix: str | None = None) -> None:
        """Record a problem at an explicit origin (for positions outside the data tree)."""
        rendered = format_path(source_path)
        # one problem in the source text is reported once, however many times YAML
        # anchors or repeats copied it into the document
        keys = {(rendered, message)}
        if origin is not None and origin.line is not None:
            keys.add((f"{origin.file}:{origin.line}:{origin.column}", message))
        if keys & self._seen:
            return
        self._seen.update(keys)
        self.issues.append(ManifestIssue(
            message=message,
            file=origin.file if origin else self.default_file,
            line=origin.line if origin else None,
            column=origin.column if origin else None,
            path=rendered, expected=expected, found=found, fix=fix,
        ))

    def raise_if_any(self) -> None:
        if self.issues:
            self.fail()

    def fail(self) -> NoReturn:
        """Raise every collected issue (callers use it where an issue was recorded)."""
        raise ManifestError(issues=sorted(self.issues, key=_issue_order))


def _issue_order(issue: ManifestIssue) -> tuple[str, int, int]:
    return (issue.file or "", issue.line or 0, issue.column or 0)
