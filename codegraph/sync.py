"""Incremental sync of a source tree into its code graph, atomically (build a copy, then swap).

    report = sync_repository(Path("src"), graph="myrepo", workspace=ws)
    report.parsed, report.skipped, report.removed, report.errors

How a sync stays safe and fast:

1. **Lock.** A Redis key ``codegraph:lock:<graph>`` (``SET NX PX``, refreshed while working)
   serialises syncs of one graph across processes and machines; a second sync waits, then
   finds the work done. A killed sync's lock expires after ``LOCK_TTL_MS`` (:mod:`~caramba.codegraph.sync_lock`).
2. **Diff by content hash.** Every ``*.py``/``*.yml``/``*.yaml`` file is hashed and compared
   with the ``File`` nodes; with no difference the sync ends there (no write at all).
3. **Copy, change, swap.** The live graph is copied server-side (``GRAPH.COPY``) to
   ``code:<name>.sync``; changed and deleted files are removed from the copy, changed files
   are parsed and written, and files whose references pointed into them ("dependents") are
   re-linked; then ``RENAME`` replaces the live graph in one atomic step. A sync killed at
   any point — or a FalkorDB server killed with SIGKILL — leaves the previous graph intact;
   the leftover copy is dropped by the next sync.

``progress(phase, done, total)``, if given, is called as the sync goes: ``("parse", i, n)``
while the ``n`` new or changed files are parsed (every few files), then ``("write", n, n)``
before the graph is written and swapped (the job layer turns it into progress
notifications).

Files that fail to parse are listed in ``report.errors`` (file, line, message), kept as
``File`` nodes with ``error``/``error_line`` and no symbols; everything else is indexed.
"""

from __future__ import annotations

import os
import time
import tomllib
from dataclasses import asdict, dataclass, field
from collections.abc import Callable
from pathlib import Path
from typing import Any

from caramba.codegraph import store
from caramba.codegraph.manifests import parse_manifest
from caramba.codegraph.parse import FileFacts, content_hash
from caramba.codegraph.parse_pool import parse_many
from caramba.codegraph.resolve import SymbolTable, link, link_bases
from caramba.codegraph.sync_lock import LOCK_WAIT_S, SyncLock
from caramba.engine.errors import CarambaError

SKIP_DIRS = {".git", ".hg", ".svn", ".venv", "venv", "env", "__pycache__", "node_modules", ".caramba", ".tox",
             ".mypy_cache", ".pytest_cache", "build", "dist", "site-packages", ".eggs"}


@dataclass
class SyncReport:
    graph: str
    root: str
    files: int = 0
    parsed: int = 0  # python + yaml files (re)parsed because new or changed
    skipped: int = 0  # unchanged files
    removed: int = 0  # files gone from disk, removed from the graph
    relinked: int = 0  # unchanged files whose references were re-resolved (they pointed into changed ones)
    errors: list[dict] = field(default_factory=list)  # {file, line, error}
    parsed_files: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def module_prefix(root: Path) -> str:
    """Dotted prefix of modules under ``root``: the name a ``pyproject.toml`` maps to the root
    folder (``package-dir = {"caramba" = "."}``), else the folder name if the root is itself a
    package (has ``__init__.py``), else none."""
    pp = root / "pyproject.toml"
    if pp.exists():
        try:
            cfg = tomllib.loads(pp.read_text())
        except tomllib.TOMLDecodeError:
            cfg = {}
        pkg_dir = cfg.get("tool", {}).get("setuptools", {}).get("package-dir", {})
        for name, where in pkg_dir.items():
            if name and where in (".", ""):
                return name
    return root.name if (root / "__init__.py").exists() else ""


def module_name(rel: str, prefix: str) -> str:
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([*([prefix] if prefix else []), *parts]) or prefix or "__init__"


def discover(root: Path) -> dict[str, Path]:
    """Relative posix path → file, for every Python and YAML file under ``root`` (resolved).
    Symlinked folders are not entered, and symlinked files are indexed only when they point
    inside ``root``: a sync never reads files outside the folder it was given (the MCP
    server lets agents sync workspace folders only)."""
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
                             and not d.endswith(".egg-info"))
        for fn in filenames:
            if fn.endswith((".py", ".yml", ".yaml")):
                p = Path(dirpath) / fn
                if p.is_symlink() and not p.resolve().is_relative_to(root):
                    continue
                out[p.relative_to(root).as_posix()] = p
    return out


Progress = Callable[[str, int, int], None]


def sync_repository(path: Path, *, db: Any, graph: str | None = None, lock_wait_s: float = LOCK_WAIT_S,
                    progress: Progress | None = None) -> SyncReport:
    """Bring graph ``code:<graph>`` (default: the folder name) up to date with ``path``."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise CarambaError(f"'{path}' is not a directory", fix="pass the root folder of the repository to index")
    name = root.name if graph is None else graph
    if not name.strip() or name.endswith(".sync"):  # "<name>.sync" is the copy a sync builds, then drops
        raise CarambaError(f"'{name}' cannot name a code graph" + (" (names ending in '.sync' are reserved for "
                                                                      "a sync's working copy)" if name.strip() else ""),
                           fix="pass --graph NAME with another name")
    key = store.graph_key(name)
    t0 = time.perf_counter()
    report = SyncReport(graph=name, root=str(root))
    import redis

    try:
        _sync_locked(db, root, name, key, lock_wait_s, report, progress or (lambda *_: None))
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise CarambaError(f"lost the connection to FalkorDB while syncing '{name}': {e}; "
                           "the previous graph is intact (a sync only replaces it as its last step)",
                           fix="check the server with `caramba db status` (`caramba db start` restarts the "
                               "embedded one), then run the sync again") from None
    report.seconds = time.perf_counter() - t0
    return report


def _sync_locked(db: Any, root: Path, name: str, key: str, lock_wait_s: float, report: SyncReport,
                 progress: Progress) -> None:
    with SyncLock(db, key, lock_wait_s) as lock:
        tmp_key = key + ".sync"
        if tmp_key in db.list_graphs():
            db.select_graph(tmp_key).delete()  # left by an interrupted sync
        exists = key in db.list_graphs()
        old = store.file_hashes(db.select_graph(key)) if exists else {}
        files = discover(root)
        data: dict[str, bytes] = {}
        for rel, p in files.items():
            try:
                data[rel] = p.read_bytes()
            except OSError as e:  # unreadable or vanished since the walk: reported, left out
                report.errors.append({"file": rel, "line": 0, "error": f"cannot read: {e.strerror or e}"})
        files = {rel: p for rel, p in files.items() if rel in data}
        report.files = len(files)
        changed = sorted(rel for rel, b in data.items() if old.get(rel) != content_hash(b))
        deleted = sorted(set(old) - set(files))
        report.skipped, report.removed = len(files) - len(changed), len(deleted)
        progress("parse", 0, len(changed))
        if exists and not changed and not deleted:
            return
        if exists:
            db.select_graph(key).copy(tmp_key)
        g = db.select_graph(tmp_key)
        if not exists:
            store.create_indices(g)
        store.write_repository(g, name, str(root), time.time())
        lock.refresh()
        _apply(g, root, data, changed, deleted, report, lock.refresh, fresh=not exists, progress=progress)
        store.write_counts(g)
        lock.refresh()
        db.connection.execute_command("RENAME", tmp_key, key)


def _apply(g: Any, root: Path, data: dict[str, bytes], changed: list[str], deleted: list[str],
           report: SyncReport, tick: Any, fresh: bool, progress: Progress) -> None:
    prefix = module_prefix(root)
    py = [rel for rel in changed if rel.endswith(".py")]
    parsed = parse_many([(data[rel], rel, module_name(rel, prefix)) for rel in py], tick,
                        lambda n: progress("parse", n, len(changed)))
    manifests = [parse_manifest(data[rel], path=rel) for rel in changed if not rel.endswith(".py")]
    report.parsed, report.parsed_files = len(changed), list(changed)
    progress("write", len(changed), len(changed))
    for f in [*parsed, *manifests]:
        if f.error:
            report.errors.append({"file": f.path, "line": f.error[0], "error": f.error[1]})
    gone = [*changed, *deleted] if not fresh else []  # a fresh graph has nothing to remove
    deps = sorted(store.dependents(g, gone, [f.module for f in parsed]) & set(data)) if gone else []
    report.relinked = len(deps)
    if gone:
        store.delete_files(g, gone, tick)
    table = SymbolTable()
    kinds, bases, aliases = store.load_table_rows(g)
    table.kinds.update((q, k) for q, k in kinds)
    for c, b in bases:
        table.bases.setdefault(c, []).append(b)
    for (rows,) in aliases:
        for row in rows or []:
            owner, bound, target = row.split("|", 2)
            if bound == "*":
                table.stars.setdefault(owner, []).append(target)
            else:
                table.aliases.setdefault(owner, {})[bound] = target
    dep_facts = parse_many([(data[rel], rel, module_name(rel, prefix)) for rel in deps if rel.endswith(".py")], tick)
    to_link: list[FileFacts] = [f for f in [*parsed, *dep_facts] if not f.error]
    for f in parsed:
        table.add_facts(f)
    for f in to_link:
        link_bases(f, table)
    store.write_python_files(g, parsed, tick)
    store.clear_links(g, [f.path for f in dep_facts], tick)
    links = []
    for i, f in enumerate(to_link):
        links.append((f, link(f, table)))
        if i % 200 == 199:
            tick()
    store.write_links(g, links, tick)
    store.write_manifests(g, manifests, tick)
