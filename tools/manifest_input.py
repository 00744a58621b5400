"""How tools accept a manifest: a workspace path *or* YAML text, never both.

Every tool that takes a manifest funnels through :func:`load`, which

* enforces the size limit on submitted text,
* resolves a path through the sandbox (inside the workspace, ``.caramba/`` refused) or
  names a preset (``preset:<name>``),
* calls the engine's ``load_manifest`` with the server's ``allow_python_impl`` setting, so
  a manifest that names a ``python:`` impl is refused unless the server was started with
  ``--allow-python-impl``.

Text has no file: it is validated as if it were ``manifests/<name>.yml`` of the
workspace, so messages name that file and relative ``!include``s resolve from there.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

from caramba.engine.errors import CarambaError
from caramba.tools.catalog import preset_path
from caramba.tools.common import ToolDeps


class ManifestInputError(CarambaError):
    """The manifest argument itself is wrong (both/neither given, too large)."""


def source_of(deps: ToolDeps, path: str | None, text: str | None, name: str = "submitted") -> tuple[Path, str | None]:
    """``(source path, text or None)`` after checking the arguments."""
    if (path is None) == (text is None):
        raise ManifestInputError("pass exactly one of 'path' (a workspace file or 'preset:<name>') and 'text' (YAML)",
                                 fix="e.g. path='manifests/tiny.yml', or text='version: 2\\n…'")
    if text is not None:
        limit = deps.sandbox.limits.max_manifest_bytes
        if len(text.encode()) > limit:
            raise ManifestInputError(f"manifest text is {len(text.encode())} bytes; the limit is {limit}",
                                     fix="split it with !include files written by write_manifest")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "submitted"
        return deps.workspace.root / "manifests" / f"{safe}.yml", text
    assert path is not None
    if path.startswith("preset:"):
        return preset_path(deps.workspace, path.removeprefix("preset:")), None
    return deps.sandbox.resolve(path, must_exist=True), None


def load(deps: ToolDeps, path: str | None, text: str | None, overrides: list[str] | None = None,
         name: str = "submitted") -> Any:
    """The validated ``Manifest`` (raises ``ManifestError`` with every issue)."""
    from caramba.engine.manifest import load_manifest

    source, body = source_of(deps, path, text, name)
    return checked(deps, load_manifest(source, text=body, overrides=list(overrides or []),
                                       allow_python_impl=deps.allow_python_impl))


def checked(deps: ToolDeps, manifest: Any) -> Any:
    """Refuse a manifest that grants itself ``python:`` impls on a server that does not.

    ``defaults.runtime.allow_python_impl: true`` in the YAML (or an override) would switch
    the permission on from inside the submitted text; only the server operator may.
    """
    runtime = getattr(getattr(manifest, "defaults", None), "runtime", None)
    granted = runtime.get("allow_python_impl") if isinstance(runtime, dict) else getattr(runtime, "allow_python_impl", False)
    if granted and not deps.allow_python_impl:
        raise ManifestInputError(
            "the manifest sets defaults.runtime.allow_python_impl, but this MCP server does not allow python: impls",
            fix="remove that setting (and any python: impl), or restart the server with --allow-python-impl")
    return manifest


def materialize(deps: ToolDeps, path: str | None, text: str | None) -> Path:
    """A file a ``caramba run`` subprocess can execute: the given path, or the text saved
    under ``.caramba/submitted/<sha256>.yml`` (atomically; identical texts share a file).
    Shipped presets are copied the same way, since runs execute files of the workspace."""
    source, body = source_of(deps, path, text)
    if body is None:
        if source.is_relative_to(deps.workspace.root):
            return source
        body = source.read_text()  # a shipped preset: run a copy that lives in the workspace
    folder = deps.workspace.state_dir / "submitted"
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / f"{hashlib.sha256(body.encode()).hexdigest()[:20]}.yml"
    if not dst.exists():
        # unique per writer: identical texts submitted at once (threads of this server or
        # other processes) must not share a temp file
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        tmp.write_text(body)
        os.replace(tmp, dst)
    return dst
