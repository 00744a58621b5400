"""Turn pydantic validation errors into :class:`ConfigProblem`\\ s with exact paths.

Model building reports every problem in a system's ``config`` at once, each with a path
relative to that config (``("model", "topology", "layers", 0, "d_model")``), what was
expected, what was found and a fix. Pydantic errors arrive as ``ValidationError``; this
module translates them: unknown keys get a did-you-mean over the config's fields, missing
keys name the field and its type, and :class:`~caramba.engine.layers.base.FieldError`\\ s
raised in validators keep their own field and fix.
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ValidationError

from caramba.engine.errors import CarambaError, ConfigProblem
from caramba.engine.layers.base import FieldError

Path = tuple[str | int, ...]


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _field_type(model: type[BaseModel], name: str) -> str | None:
    field = model.model_fields.get(name)
    if field is None or field.annotation is None:
        return None
    ann = field.annotation
    return getattr(ann, "__name__", None) or str(ann).replace("typing.", "")


def problems_from_validation(exc: ValidationError, model: type[BaseModel], prefix: Path = ()) -> list[ConfigProblem]:
    """One :class:`ConfigProblem` per pydantic error, located under ``prefix``."""
    out: list[ConfigProblem] = []
    for err in exc.errors():
        loc: Path = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        ctx_err = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_err, FieldError):
            path = prefix + loc + ((ctx_err.field,) if ctx_err.field else ())
            out.append(ConfigProblem(path, ctx_err.message, ctx_err.expected, ctx_err.found, ctx_err.fix))
            continue
        top = str(loc[0]) if loc else ""
        if kind == "extra_forbidden":
            known = sorted(model.model_fields)
            close = difflib.get_close_matches(top, known, n=1, cutoff=0.6) if len(loc) == 1 else []
            fix = f"did you mean '{close[0]}'?" if close else f"remove it; known fields: {', '.join(known)}"
            out.append(ConfigProblem(prefix + loc, f"unknown field '{loc[-1]}'", found=_short(err.get("input")), fix=fix))
        elif kind == "missing":
            typ = _field_type(model, top) if len(loc) == 1 else None
            out.append(ConfigProblem(prefix + loc, f"missing required field '{loc[-1]}'", expected=typ,
                                     fix=f"add '{loc[-1]}' to this config"))
        else:
            out.append(ConfigProblem(prefix + loc, err.get("msg", "invalid value"), expected=_expected(err),
                                     found=_short(err.get("input")), fix=_fix(err)))
    return out


def _expected(err: Any) -> str | None:
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        return str(ctx["expected"])
    for key, word in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
        if key in ctx:
            return f"{word} {ctx[key]}"
    kind = str(err.get("type", ""))
    for prefix in ("int", "float", "bool", "string", "list", "dict"):
        if kind.startswith(prefix):
            return {"string": "str"}.get(prefix, prefix)
    return None


def _fix(err: Any) -> str | None:
    exp = _expected(err)
    return f"use a value that is {exp}" if exp else None


def validate(model: type[BaseModel], raw: Any, prefix: Path, problems: list[ConfigProblem]) -> Any | None:
    """Validate ``raw`` against ``model``; on failure append problems and return None."""
    if not isinstance(raw, dict):
        problems.append(ConfigProblem(prefix, f"expected a mapping, found {type(raw).__name__}",
                                      expected="mapping", found=_short(raw), fix="write this as a YAML mapping"))
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems.extend(problems_from_validation(exc, model, prefix))
        return None


def format_path(path: Path) -> str:
    """``("model", "layers", 0, "d_model")`` → ``model.layers[0].d_model``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class ConfigError(CarambaError):
    """A component config with problems, raised when building outside the manifest
    pipeline (which reports the same problems located in the YAML source)."""

    def __init__(self, what: str, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        lines = [f"{what}: {len(problems)} config problem{'s' if len(problems) != 1 else ''}:"]
        for p in problems:
            lines.append(f"  {format_path(p.path) or '<config>'}: {p.message}")
            if p.expected is not None:
                lines.append(f"    expected: {p.expected}")
            if p.found is not None:
                lines.append(f"    found: {p.found}")
            if p.fix:
                lines.append(f"    fix: {p.fix}")
        super().__init__("\n".join(lines), fix=None)


def check_positive_widths(widths: list[int], path: Path, problems: list[ConfigProblem]) -> bool:
    """Report every non-positive entry of a ``hidden``-style width list at
    ``path + (index,)``; True when all are positive."""
    ok = True
    for i, h in enumerate(widths):
        if h <= 0:
            problems.append(ConfigProblem(path + (i,), f"hidden width must be positive, found {h}",
                                          expected="> 0", found=str(h), fix="use a positive width"))
            ok = False
    return ok
