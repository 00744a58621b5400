"""Code graph on a real embedded FalkorDB: exact answers, incremental sync, errors, concurrency, crashes."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from caramba.codegraph.queries import CodeGraph
from caramba.codegraph.server import connect, ensure_falkordb
from caramba.codegraph.sync import sync_repository
from caramba.engine.errors import CarambaError
from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401

FIXTURE = Path(__file__).parent / "fixtures" / "codegraph" / "proj"


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    dst = tmp_path / "proj"
    shutil.copytree(FIXTURE, dst)
    return dst


def _callers(cg: CodeGraph, q: str) -> set[tuple[str, int]]:
    return {(c["caller"], c["line"]) for c in cg.callers(q)}


def _consistent(cg: CodeGraph) -> None:
    """No duplicated symbols, every symbol belongs to a file that exists in the graph."""
    dup = cg.query("MATCH (s:Symbol) WITH s.qualname AS q, count(*) AS n WHERE n > 1 RETURN q")["rows"]
    assert dup == []
    files = {r[0] for r in cg.query("MATCH (f:File) RETURN f.path", limit=100_000)["rows"]}
    owners = {r[0] for r in cg.query("MATCH (s:Symbol) RETURN DISTINCT s.file", limit=100_000)["rows"]}
    assert owners <= files


def test_ingest_gives_exact_answers(falkordb_workspace, proj: Path) -> None:
    ws, _ = falkordb_workspace
    db = connect(ws)
    r = sync_repository(proj, db=db)
    assert (r.graph, r.files, r.parsed, r.skipped, r.removed, r.errors) == ("proj", 6, 6, 0, 0, [])
    cg = CodeGraph.open(db)
    assert _callers(cg, "pkg.base.helper") == {("pkg.base.Topology.layers", 17), ("pkg.base.fetch", 21),
                                               ("pkg.stack.make", 11)}
    run = cg.callees("pkg.stack.Nested.run")  # self.build() found on the base class through the MRO
    assert [(c["callee"], c["line"]) for c in run["resolved"]] == [("pkg.base.Topology.build", 22)]
    assert run["unresolved"] == [{"line": 23, "text": "np.zeros"}]
    layers = cg.callees("pkg.stack.Stacked.layers")  # super() and a module function
    assert {c["callee"] for c in layers["resolved"]} == {"pkg.base.Topology.layers", "pkg.stack.make"}
    assert [s["qualname"] for s in cg.subclasses("Topology")] == ["pkg.stack.Stacked"]
    assert [(s["qualname"], s["depth"]) for s in cg.subclasses("pkg.base.Topology", transitive=True)] == [
        ("pkg.stack.Nested", 2), ("pkg.stack.Stacked", 1)]
    imp = cg.imports("pkg.stack")
    assert {i["target"] for i in imp["imports"]} == {"pkg", "pkg.base", "pkg.base.Topology", "pkg.registry.register"}
    assert imp["unresolved"] == ["numpy"]
    assert {i["importer"] for i in cg.imports("pkg.base")["imported_by"]} == {"pkg", "pkg.stack"}
    assert cg.layer_usage("SSMLayer") == [{"manifest": "manifests/small.yml", "name": "small", "line": 15}]
    assert cg.layer_usage("AttentionLayer") == []
    fetch = cg.find("fetch")
    assert fetch[0]["qualname"] == "pkg.base.fetch" and fetch[0]["signature"] == "()"
    deco = cg.query("MATCH (c:Class)-[d:DECORATED_BY]->(f) RETURN c.qualname, f.qualname, d.text")["rows"]
    assert deco == [["pkg.stack.Stacked", "pkg.registry.register", "register('StackedTopology')"]]
    s = cg.summary()
    assert s["nodes"]["Class"] == 3 and s["nodes"]["Method"] == 4 and s["nodes"]["Manifest"] == 1
    assert s["edges"]["INHERITS"] == 2
    # no change: nothing parsed, nothing written
    again = sync_repository(proj, db=db)
    assert (again.parsed, again.skipped, again.removed) == (0, 6, 0)


def test_edit_delete_syntax_error_and_recovery(falkordb_workspace, proj: Path) -> None:
    ws, _ = falkordb_workspace
    db = connect(ws)
    sync_repository(proj, db=db, graph="p")
    cg = CodeGraph.open(db, "p")
    # edit one file: only it is parsed; files pointing into it are re-linked, their edges survive
    base = proj / "pkg" / "base.py"
    base.write_text(base.read_text().replace("def helper(x):\n    return x + 1",
                                             "def helper(x):\n    return twice(x)\n\n\ndef twice(x):\n    return 2 * x"))
    r = sync_repository(proj, db=db, graph="p")
    assert (r.parsed, r.parsed_files, r.skipped) == (1, ["pkg/base.py"], 5)
    assert r.relinked == 2  # pkg/__init__.py and pkg/stack.py point into pkg/base.py
    assert _callers(cg, "pkg.base.twice") == {("pkg.base.helper", 7)}
    assert ("pkg.stack.make", 11) in _callers(cg, "pkg.base.helper")
    assert [s["qualname"] for s in cg.subclasses("Topology")] == ["pkg.stack.Stacked"]
    _consistent(cg)
    # delete a file: its symbols and the edges into them go; importers see unresolved imports
    (proj / "pkg" / "registry.py").unlink()
    r = sync_repository(proj, db=db, graph="p")
    assert (r.parsed, r.removed) == (0, 1)
    assert cg.find("register") == []
    assert "pkg.registry.register" in cg.imports("pkg.stack")["unresolved"]
    # put it back: the importer is re-linked because its unresolved import names the new module
    shutil.copy(FIXTURE / "pkg" / "registry.py", proj / "pkg" / "registry.py")
    r = sync_repository(proj, db=db, graph="p")
    assert r.parsed == 1 and r.relinked >= 1
    assert cg.query("MATCH (:Class)-[d:DECORATED_BY]->(f) RETURN f.qualname")["rows"] == [["pkg.registry.register"]]
    # a syntax error is reported with file and line; the rest is indexed
    (proj / "pkg" / "broken.py").write_text("x = 1\ndef f(:\n    pass\n")
    r = sync_repository(proj, db=db, graph="p")
    assert r.errors == [{"file": "pkg/broken.py", "line": 2, "error": "invalid syntax"}]
    assert cg.summary()["errors"] == [{"file": "pkg/broken.py", "line": 2, "error": "invalid syntax"}]
    assert cg.find("helper") and cg.find("broken") == []
    (proj / "pkg" / "broken.py").write_text("def fixed():\n    return 1\n")
    r = sync_repository(proj, db=db, graph="p")
    assert r.errors == [] and cg.find("fixed")[0]["qualname"] == "pkg.broken.fixed"
    assert cg.summary()["errors"] == []
    _consistent(cg)


def _big_project(root: Path, files: int, funcs: int) -> None:
    (root / "big").mkdir(parents=True)
    (root / "big" / "__init__.py").write_text("")
    for i in range(files):
        body = [f"from big.m{i - 1} import f0 as prev\n" if i else ""]
        for j in range(funcs):
            body.append(f"def f{j}(x):\n    return prev(x) + f{max(j - 1, 0)}(x)\n" if i else
                        f"def f{j}(x):\n    return x\n")
        (root / "big" / f"m{i}.py").write_text("\n".join(body))


def test_concurrent_syncs_serialise(falkordb_workspace, tmp_path: Path) -> None:
    ws, _ = falkordb_workspace
    root = tmp_path / "big_repo"
    _big_project(root, 60, 10)
    reports, errors = [], []

    def go() -> None:
        try:
            reports.append(sync_repository(root, db=connect(ws), graph="big"))
        except Exception as e:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == [] and len(reports) == 2
    assert sorted(r.parsed for r in reports) == [0, 61]  # the second one waited, then found nothing to do
    cg = CodeGraph.open(connect(ws), "big")
    assert cg.summary()["nodes"]["Function"] == 600
    assert {c["caller"] for c in cg.callers("big.m0.f0")} == {f"big.m1.f{j}" for j in range(10)}  # via `prev`
    _consistent(cg)


def test_server_killed_mid_sync_keeps_previous_graph(falkordb_workspace, tmp_path: Path) -> None:
    ws, ep = falkordb_workspace
    root = tmp_path / "big_repo"
    _big_project(root, 5, 5)
    db = connect(ws)
    sync_repository(root, db=db, graph="big")
    before = CodeGraph.open(db, "big").summary()
    time.sleep(1.2)  # the append-only file is fsynced every second
    shutil.rmtree(root / "big")
    _big_project(root, 400, 10)
    failure: list[BaseException] = []

    def go() -> None:
        try:
            sync_repository(root, db=connect(ws), graph="big")
        except BaseException as e:  # noqa: BLE001
            failure.append(e)

    watcher = connect(ws)
    t = threading.Thread(target=go)
    t.start()
    deadline = time.monotonic() + 60
    while "code:big.sync" not in watcher.list_graphs():
        assert time.monotonic() < deadline and t.is_alive(), "the sync never started writing"
        time.sleep(0.005)
    os.kill(ep.pid, signal.SIGKILL)
    t.join(60)
    assert len(failure) == 1 and isinstance(failure[0], CarambaError)
    assert "previous graph is intact" in str(failure[0])
    ep2 = ensure_falkordb(ws)
    assert ep2.pid != ep.pid
    db = connect(ws)
    cg = CodeGraph.open(db, "big")
    assert cg.summary()["nodes"] == before["nodes"]  # the old graph, untouched
    r = sync_repository(root, db=db, graph="big")
    assert (r.parsed, r.removed) == (400, 0)  # m0..m4 changed too (new functions), __init__ did not
    assert cg.summary()["nodes"]["Function"] == 400 * 10
    assert "code:big.sync" not in db.list_graphs()
    _consistent(cg)


def test_sync_process_killed_mid_sync_is_recovered(falkordb_workspace, tmp_path: Path) -> None:
    """A sync whose *process* dies (SIGKILL) leaves its lock and a half-built copy behind:
    the live graph is untouched, and the next sync takes over the dead holder's lock at once."""
    import subprocess
    import sys

    ws, ep = falkordb_workspace
    root = tmp_path / "big_repo"
    _big_project(root, 3, 3)
    db = connect(ws)
    sync_repository(root, db=db, graph="big")
    before = CodeGraph.open(db, "big").summary()["nodes"]
    shutil.rmtree(root / "big")
    _big_project(root, 400, 10)
    code = ("import sys; from pathlib import Path; from caramba.codegraph.server import connect; "
            "from caramba.codegraph.sync import sync_repository; from caramba.workspace import Workspace; "
            "sync_repository(Path(sys.argv[1]), db=connect(Workspace(sys.argv[2])), graph='big')")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), str(ws.root)])
    try:
        deadline = time.monotonic() + 90
        while "code:big.sync" not in db.list_graphs():
            assert time.monotonic() < deadline and proc.poll() is None, "the sync never started writing"
            time.sleep(0.005)
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert db.connection.get("codegraph:lock:code:big") is not None  # left behind by the dead process
    assert CodeGraph.open(db, "big").summary()["nodes"] == before
    t = time.monotonic()
    r = sync_repository(root, db=db, graph="big", lock_wait_s=30)
    assert r.parsed == 400 and time.monotonic() - t < 60
    assert "code:big.sync" not in db.list_graphs()
    assert CodeGraph.open(db, "big").summary()["nodes"]["Function"] == 400 * 10
