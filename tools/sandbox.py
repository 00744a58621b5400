"""The workspace sandbox: every path a client names is resolved inside the workspace.

Clients (assistants, agents) pass paths as strings. ``Sandbox.resolve`` turns one into
an absolute path and refuses, with an actionable message:

* anything outside the workspace root: ``..`` segments, absolute paths elsewhere, and
  symlinks whose target lies outside (the path is resolved *through* the links first);
* the private state folder ``.caramba/`` (job records, the HTTP token, databases).

Reads are bounded (``max_read_bytes``) so that a client cannot pull a 10 GB checkpoint
through a tool call; listings and searches are bounded by ``max_entries``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from caramba.engine.errors import CarambaError
from caramba.workspace import Workspace

PRIVATE_DIRS = frozenset({".caramba"})
SKIP_DIRS = frozenset({".caramba", ".git", ".venv", "__pycache__", "node_modules", ".mypy_cache",
                       ".pytest_cache", "caramba.egg-info"})


class SandboxError(CarambaError):
    """A path or size a client asked for that the sandbox refuses."""


class Limits(BaseModel):
    """Size limits of the tools (bytes / counts)."""

    model_config = ConfigDict(extra="forbid")

    max_read_bytes: int = Field(512 * 1024, description="largest text returned by read_file / get_artifact")
    max_image_bytes: int = Field(8 * 1024 * 1024, description="largest PNG returned as image content")
    max_manifest_bytes: int = Field(256 * 1024, description="largest manifest text accepted by a tool")
    max_entries: int = Field(1000, description="most entries returned by list_files / search_files")
    max_search_file_bytes: int = Field(2 * 1024 * 1024, description="files larger than this are not searched")


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="workspace-relative path")
    kind: str = Field(description="'file' or 'dir'")
    size: int | None = Field(None, description="bytes (files only)")


class SearchHit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    line: int = Field(description="1-based line number")
    text: str = Field(description="the matching line (trimmed to 300 characters)")


class Sandbox:
    """Path resolution and bounded file access inside one workspace."""

    def __init__(self, workspace: Workspace, limits: Limits | None = None) -> None:
        self.workspace = workspace
        self.limits = limits or Limits()

    def resolve(self, path: str, *, must_exist: bool = False) -> Path:
        """The absolute path for a client-supplied ``path``, or a SandboxError."""
        if "\x00" in path:
            raise SandboxError("path contains a NUL byte", fix="pass a plain relative path")
        full = self.workspace.resolve(path or ".")
        rel = full.relative_to(self.workspace.root)
        if rel.parts and rel.parts[0] in PRIVATE_DIRS:
            raise SandboxError(f"path '{path}' is inside caramba's private state folder .caramba/",
                               fix="job state is available through the run tools (run_status, list_runs)")
        if must_exist and not full.exists():
            raise SandboxError(f"'{path}' does not exist in the workspace",
                               fix="list_files shows what is there")
        return full

    def rel(self, full: Path) -> str:
        return str(full.relative_to(self.workspace.root)) or "."

    def read_text(self, path: str, *, offset: int = 0, max_bytes: int | None = None) -> tuple[str, int, bool]:
        """``(text, size, truncated)`` of a UTF-8 file, at most ``max_bytes`` from ``offset``."""
        full = self.resolve(path, must_exist=True)
        if not full.is_file():
            raise SandboxError(f"'{path}' is a directory, not a file", fix="use list_files for directories")
        limit = min(max_bytes or self.limits.max_read_bytes, self.limits.max_read_bytes)
        size = full.stat().st_size
        with full.open("rb") as f:
            f.seek(max(0, offset))
            data = f.read(limit)
        if b"\x00" in data[:8192]:
            raise SandboxError(f"'{path}' is a binary file ({size} bytes)",
                               fix="read_file returns text only; PNG artifacts come through get_artifact")
        return data.decode("utf-8", errors="replace"), size, max(0, offset) + len(data) < size

    def list_files(self, path: str = ".", *, pattern: str = "*", recursive: bool = False) -> tuple[list[FileEntry], bool]:
        """Entries under ``path`` matching the glob ``pattern``; ``(entries, truncated)``."""
        base = self.resolve(path, must_exist=True)
        if not base.is_dir():
            raise SandboxError(f"'{path}' is a file, not a directory", fix="use read_file for files")
        out: list[FileEntry] = []
        for full in self._walk(base, recursive):
            if not fnmatch.fnmatch(full.name, pattern):
                continue
            if len(out) >= self.limits.max_entries:
                return out, True
            is_dir = full.is_dir()
            out.append(FileEntry(path=self.rel(full), kind="dir" if is_dir else "file",
                                 size=None if is_dir else full.stat().st_size))
        return out, False

    def search(self, query: str, *, path: str = ".", glob: str = "*",
               regex: bool = False) -> tuple[list[SearchHit], bool, list[str]]:
        """Lines containing ``query`` (or matching it as a regex) in text files under ``path``:
        ``(hits, truncated, files skipped for being larger than max_search_file_bytes)``."""
        if not query:
            raise SandboxError("the search query is empty", fix="pass the text to look for")
        try:
            rx = re.compile(query if regex else re.escape(query))
        except re.error as e:
            raise SandboxError(f"'{query}' is not a valid regular expression: {e}",
                               fix="fix the pattern, or pass regex=false to search for the literal text") from None
        base = self.resolve(path, must_exist=True)
        files = [base] if base.is_file() else self._walk(base, True)
        hits: list[SearchHit] = []
        skipped: list[str] = []
        for full in files:
            if not full.is_file() or not fnmatch.fnmatch(full.name, glob):
                continue
            if full.stat().st_size > self.limits.max_search_file_bytes:
                skipped.append(self.rel(full))  # said in the result: a silent skip reads as "not found"
                continue
            data = full.read_bytes()
            if b"\x00" in data[:8192]:
                continue
            for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                if rx.search(line):
                    if len(hits) >= self.limits.max_entries:
                        return hits, True, skipped
                    hits.append(SearchHit(path=self.rel(full), line=n, text=line.strip()[:300]))
        return hits, False, skipped

    def _walk(self, base: Path, recursive: bool) -> list[Path]:
        """Entries under ``base`` (sorted), skipping private/tool folders and links that leave."""
        out: list[Path] = []
        if not recursive:
            candidates = sorted(base.iterdir())
        else:
            candidates = []
            for root, dirs, files in os.walk(base):
                dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
                r = Path(root)
                candidates += [r / d for d in dirs] + [r / f for f in sorted(files)]
        for p in candidates:
            if p.name in SKIP_DIRS and p.parent == self.workspace.root:
                continue
            if p.is_symlink():
                try:
                    self.resolve(str(p))
                except CarambaError:
                    continue
            out.append(p)
        return out
