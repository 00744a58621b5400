"""The error types every caramba boundary raises.

One convention for the whole engine: core code raises a subclass of
:class:`CarambaError` with an actionable message (what, where, how to fix). The CLI turns
a ``CarambaError`` into a clean message and exit code 2 (user error) without a
traceback; ``--debug`` shows the traceback. Anything else is a bug and exits 1 with the
traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


class CarambaError(Exception):
    """A user-facing error: bad input, missing file, unavailable service.

    ``exit_code`` is what the CLI exits with (2 = the user can fix it).
    """

    exit_code: int = 2

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        """The message as shown to a user: the problem, then the fix on its own line."""
        return self.message if not self.fix else f"{self.message}\n  fix: {self.fix}"


def first_error(exc: ValidationError) -> tuple[str, dict[str, Any]]:
    """The first problem pydantic found, as ``(dotted location, its error dict)``: what a
    user-facing message names when a config does not validate (``""`` for the root)."""
    err = exc.errors()[0]
    return ".".join(str(x) for x in err["loc"]), err


class NotImplementedYet(CarambaError):
    """A manifest field that is accepted and validated but whose feature is owned by
    a later piece of work. Raised only when a run actually needs the feature."""


@dataclass(frozen=True)
class ManifestIssue:
    """One problem in a manifest, located precisely.

    ``path`` is the YAML path in the *source* document, e.g.
    ``targets[0].system.config.model.topology.layers[1].d_model``.
    """

    message: str
    file: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    path: str = ""
    expected: str | None = None
    found: str | None = None
    fix: str | None = None

    def render(self) -> str:
        where = self.file or "<manifest>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        head = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        lines = [head]
        if self.expected is not None:
            lines.append(f"  expected: {self.expected}")
        if self.found is not None:
            lines.append(f"  found: {self.found}")
        if self.fix:
            lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "message": self.message, "file": self.file, "line": self.line,
            "column": self.column, "path": self.path, "expected": self.expected,
            "found": self.found, "fix": self.fix,
        }


@dataclass
class ManifestError(CarambaError):
    """Every problem found in a manifest, reported at once (not just the first)."""

    issues: list[ManifestIssue] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.message = self.render()
        self.fix = None
        Exception.__init__(self, self.message)

    def render(self) -> str:  # type: ignore[override]
        n = len(self.issues)
        head = f"manifest has {n} error{'s' if n != 1 else ''}:"
        return "\n".join([head, *(i.render() for i in self.issues)])


@dataclass(frozen=True)
class ConfigProblem:
    """A problem inside one component's ``config`` mapping, found by that component's
    own ``check_config``. ``path`` is relative to the config mapping, e.g.
    ``("model", "topology", "layers", 0, "layers", 1, "d_model")``; the manifest
    pipeline turns it into a :class:`ManifestIssue` with file, line and full YAML path.
    """

    path: tuple[str | int, ...]
    message: str
    expected: str | None = None
    found: str | None = None
    fix: str | None = None
