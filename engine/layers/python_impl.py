"""``impl: python:module:Symbol`` — user code in place of a registry entry, only on request.

Manifests name registry entries, never import paths, so a manifest cannot run arbitrary
code. A researcher who wants to try their own module opts in explicitly
(``defaults.runtime.allow_python_impl: true`` or ``--allow-python-impl``); the manifest
pipeline refuses ``impl`` otherwise, and the builders here refuse again (defence in
depth) unless they are called with ``allow_python_impl=True``.
"""

from __future__ import annotations

import importlib
from typing import Any

from caramba.engine.layers.base import FieldError

PREFIX = "python:"
REFUSED_FIX = "set defaults.runtime.allow_python_impl: true in the manifest (or pass --allow-python-impl)"


def load_python_impl(impl: Any, *, allowed: bool) -> Any:
    """Import the symbol named by ``impl`` (``python:package.module:Symbol``).

    Raises :class:`FieldError` (field ``impl``) when not allowed, malformed or missing.
    """
    if not isinstance(impl, str) or not impl.startswith(PREFIX):
        raise FieldError("impl", "impl must be 'python:module:Symbol'", expected="python:module:Symbol",
                         found=repr(impl), fix="write impl: python:my_package.my_module:MyClass, or remove it")
    if not allowed:
        raise FieldError("impl", f"python implementations are not allowed: {impl}", found=impl, fix=REFUSED_FIX)
    target = impl[len(PREFIX):]
    module_name, sep, symbol = target.partition(":")
    if not sep or not module_name or not symbol:
        raise FieldError("impl", f"malformed impl {impl!r}", expected="python:module:Symbol", found=impl,
                         fix="separate the module and the symbol with ':'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise FieldError("impl", f"cannot import module '{module_name}': {e}", found=impl,
                         fix="check the module name and that it is on PYTHONPATH") from e
    obj: Any = module
    for part in symbol.split("."):
        if not hasattr(obj, part):
            raise FieldError("impl", f"module '{module_name}' has no attribute '{symbol}'", found=impl,
                             fix="check the symbol name") from None
        obj = getattr(obj, part)
    return obj
