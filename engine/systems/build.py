"""``build_system``: a component spec → a checked, built :class:`System`.

``spec`` is the manifest's ``ComponentSpec`` (``.ref``, ``.impl``, ``.config``) or a
plain dict with the same keys. Every config problem is reported at once in one
:class:`~caramba.engine.layers.problems.ConfigError`. ``device="meta"`` builds shapes
only (no memory), which is what ``--dry-run`` plans use.

``impl: python:module:Symbol`` replaces the registered class with a user ``System``
subclass and is refused unless ``allow_python_impl=True`` (the manifest pipeline
refuses it first; this is the second lock).
"""

from __future__ import annotations

from typing import Any

import torch

from caramba.engine.errors import CarambaError, ConfigProblem
from caramba.engine.layers.base import FieldError
from caramba.engine.layers.problems import ConfigError
from caramba.engine.layers.python_impl import load_python_impl
from caramba.engine.systems.base import System
from caramba.engine.systems.registry import SYSTEMS
from caramba.engine.topology.spec import Problems


def _spec_parts(spec: Any) -> tuple[str, str | None, Any]:
    if isinstance(spec, str):
        return spec, None, {}
    if isinstance(spec, dict):
        unknown = set(spec) - {"ref", "impl", "config"}
        if unknown or "ref" not in spec:
            raise CarambaError(f"a system spec needs 'ref' (and optionally 'impl', 'config'); got keys {sorted(spec)}",
                               fix="write {ref: system.language_model, config: {...}}")
        return spec["ref"], spec.get("impl"), spec.get("config") or {}
    if hasattr(spec, "ref"):
        return spec.ref, getattr(spec, "impl", None), getattr(spec, "config", None) or {}
    raise CarambaError(f"cannot build a system from {type(spec).__name__}", fix="pass a ComponentSpec or a dict")


def system_class(ref: str, impl: str | None, *, allow_python_impl: bool) -> type[System]:
    """The class that implements ``ref`` (or ``impl`` when given and allowed)."""
    if impl is None:
        return SYSTEMS.get(ref)
    try:
        cls = load_python_impl(impl, allowed=allow_python_impl)
    except FieldError as e:
        raise CarambaError(f"system '{ref}': {e.message}", fix=e.fix) from None
    if not (isinstance(cls, type) and issubclass(cls, System)):
        raise CarambaError(f"system impl {impl} is not a caramba System subclass",
                           fix="subclass caramba.engine.systems.base.System (Config, plan, from_plan, forward)")
    return cls


def check_system(spec: Any, *, allow_python_impl: bool = False) -> list[ConfigProblem]:
    """Every problem in the spec's config (paths relative to ``config``)."""
    ref, impl, config = _spec_parts(spec)
    return system_class(ref, impl, allow_python_impl=allow_python_impl).check_config(
        config, allow_python_impl=allow_python_impl)


def build_system(spec: Any, *, device: str | torch.device = "cpu", allow_python_impl: bool = False) -> System:
    """Check and build the system named by ``spec`` on ``device``."""
    ref, impl, config = _spec_parts(spec)
    cls = system_class(ref, impl, allow_python_impl=allow_python_impl)
    problems: list[ConfigProblem] = Problems()
    plan = cls.plan(config, (), problems, allow_python_impl=allow_python_impl)
    if problems or plan is None:
        raise ConfigError(f"system '{ref}'", list(problems))
    with torch.device(device):
        system = cls.from_plan(plan)
    system.ref = ref
    return system
