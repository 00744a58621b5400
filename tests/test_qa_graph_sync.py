"""`caramba codegraph sync` as a user drives it: interrupted and killed syncs leave no
parse workers behind, symlinks never pull in files from outside the folder, and result
tables never cut names short. Real embedded FalkorDB, the real console script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from caramba.tests.support.children import child_pids, wait_gone
from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401 (fixture)

CARAMBA = Path(sys.executable).parent / "caramba"


def _cli(ws: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CARAMBA), *args], cwd=ws, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "CARAMBA_WORKSPACE": str(ws), **(env or {})})


def _big_tree(folder: Path, files: int, salt: str) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(files):
        body = "\n".join(f"def f{j}(x):\n    '''step {j}'''\n    return f{j - 1}(x) + {i}\n" for j in range(80))
        (folder / f"m{i}.py").write_text(f"# {salt}\n{body}\n")


def _start_sync(ws: Path, events: Path) -> subprocess.Popen[str]:
    """A sync of ``big`` in its own session; returns once it is parsing in worker processes."""
    events.unlink(missing_ok=True)
    proc = subprocess.Popen([str(CARAMBA), "codegraph", "sync", "big", "--events", str(events)], cwd=ws,
                            env={**os.environ, "CARAMBA_WORKSPACE": str(ws)}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        lines = events.read_text().splitlines() if events.exists() else []
        if any(json.loads(ln).get("phase") == "parse" and json.loads(ln)["done"] > 0 for ln in lines):
            return proc
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.02)
    raise AssertionError("the sync never reported parse progress")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="parse workers start only with 2+ cores")
def test_interrupted_or_killed_sync_leaves_no_workers(falkordb_workspace) -> None:
    ws, _ep = falkordb_workspace
    big = ws.root / "big"
    big.mkdir()
    (big / "first.py").write_text("def original():\n    return 1\n")
    assert _cli(ws.root, "codegraph", "sync", "big").returncode == 0
    events = ws.root / "events.jsonl"

    _big_tree(big, 300, "a")  # a crash: the parent is SIGKILLed mid-parse
    proc = _start_sync(ws.root, events)
    workers = child_pids(proc.pid)
    assert len(workers) >= 2
    os.kill(proc.pid, signal.SIGKILL)
    assert wait_gone(workers, 10) == set(), "parse workers outlived their SIGKILLed sync"
    proc.communicate(timeout=10)  # nobody holds the sync's output pipe open any more

    _big_tree(big, 300, "b")  # Ctrl-C reaching only the parent (a job manager's SIGINT)
    proc = _start_sync(ws.root, events)
    workers = child_pids(proc.pid)
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130, out
    assert wait_gone(workers, 5) == set()
    # the previous graph is intact, and the next sync completes
    q = _cli(ws.root, "codegraph", "query", "MATCH (f:File) RETURN count(f)", "--json")
    assert json.loads(q.stdout)["rows"] == [[1]]
    done = _cli(ws.root, "codegraph", "sync", "big", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["files"] == 301


def test_symlinks_outside_the_folder_are_not_indexed(falkordb_workspace, tmp_path: Path) -> None:
    ws, _ep = falkordb_workspace
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("def secret_outside():\n    pass\n")
    proj = ws.root / "proj"
    proj.mkdir()
    (proj / "real.py").write_text("def real():\n    pass\n")
    (proj / "alias.py").symlink_to(proj / "real.py")  # inside the folder: indexed
    (proj / "leak.py").symlink_to(outside / "secret.py")
    (proj / "leakdir").symlink_to(outside, target_is_directory=True)
    rep = json.loads(_cli(ws.root, "codegraph", "sync", "proj", "--json").stdout)
    assert rep["files"] == 2
    rows = json.loads(_cli(ws.root, "codegraph", "query", "MATCH (f:File) RETURN f.path ORDER BY f.path",
                           "--json").stdout)["rows"]
    assert rows == [["alias.py"], ["real.py"]]
    assert json.loads(_cli(ws.root, "codegraph", "find", "secret_outside", "--json").stdout) == []


def test_tables_show_whole_qualnames_on_narrow_terminals(falkordb_workspace) -> None:
    ws, _ep = falkordb_workspace
    proj = ws.root / "proj"
    (proj / "deeply" / "nested").mkdir(parents=True)
    (proj / "deeply" / "nested" / "module_with_long_name.py").write_text(
        "class AVeryLongClassNameIndeed:\n    def a_rather_long_method_name(self, first_argument, second_argument):\n"
        "        pass\n")
    assert _cli(ws.root, "codegraph", "sync", "proj").returncode == 0
    out = _cli(ws.root, "codegraph", "find", "a_rather_long_method_name", env={"COLUMNS": "60"}).stdout
    cells = "".join(line.split("│")[2].strip() for line in out.splitlines() if line.count("│") > 2)
    assert "…" not in out
    assert "deeply.nested.module_with_long_name.AVeryLongClassNameIndeed.a_rather_long_method_name" in cells


def test_reserved_or_empty_graph_names_are_refused(falkordb_workspace) -> None:
    ws, _ep = falkordb_workspace
    (ws.root / "model.sync").mkdir()
    (ws.root / "model.sync" / "a.py").write_text("def a():\n    pass\n")
    # was: "graph model.sync: 1 files, 1 parsed" and then "no code graph named 'model.sync'"
    # (hidden like a sync's working copy, and dropped by the next sync of a graph 'model')
    for args in (["model.sync"], ["model.sync", "--graph", "x.sync"], ["model.sync", "--graph", ""]):
        res = _cli(ws.root, "codegraph", "sync", *args)
        assert res.returncode == 2 and "cannot name a code graph" in res.stderr and "--graph NAME" in res.stderr
    assert _cli(ws.root, "codegraph", "sync", "model.sync", "--graph", "model").returncode == 0
    assert "a.a" in [r["qualname"] for r in json.loads(_cli(ws.root, "codegraph", "find", "a", "--json").stdout)]


def test_query_timeout_and_truncation_are_explained(falkordb_workspace, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from caramba.cli import main
    from caramba.codegraph import queries

    ws, _ep = falkordb_workspace
    proj = ws.root / "proj"
    proj.mkdir()
    for i in range(12):
        (proj / f"m{i}.py").write_text("\n".join(f"def f{j}():\n    pass\n" for j in range(100)))
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(ws.root))
    assert main(["codegraph", "sync", "proj"]) == 0
    capsys.readouterr()
    assert main(["codegraph", "query", "MATCH (s:Symbol) RETURN s.qualname"]) == 0
    out = capsys.readouterr().out  # 1212 symbols: the table shows 1000 and says so
    assert "only the first 1000 rows are shown" in out and "LIMIT" in out
    monkeypatch.setattr(queries, "QUERY_TIMEOUT_MS", 1)  # so that a runaway query hits it at once
    code = main(["codegraph", "query", "MATCH (a:Symbol), (b:Symbol), (c:Symbol) RETURN count(*)"])
    err = capsys.readouterr().err
    assert code == 2
    assert "the query ran past the" in err
    assert "check the Cypher syntax" not in err and "anchor the MATCH" in err


def test_deeply_nested_generated_code_is_reported_not_fatal(falkordb_workspace, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from caramba.cli import main

    ws, _ep = falkordb_workspace
    proj = ws.root / "proj"
    proj.mkdir()
    (proj / "table.py").write_text("TABLE = " + " + ".join(["1"] * 20000) + "\n")  # generated code
    (proj / "ok.py").write_text("def fine():\n    pass\n")
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(ws.root))
    capsys.readouterr()
    assert main(["codegraph", "sync", "proj", "--json"]) == 0  # was: RecursionError traceback, nothing indexed
    rep = json.loads(capsys.readouterr().out)
    assert rep["files"] == 2 and [e["file"] for e in rep["errors"]] == ["table.py"]
    assert "too deeply nested" in rep["errors"][0]["error"]
    assert main(["codegraph", "find", "fine", "--json"]) == 0
    assert [r["qualname"] for r in json.loads(capsys.readouterr().out)] == ["ok.fine"]
    assert main(["rag", "index", "proj"]) == 0  # the retrieval index takes it as text
    out = capsys.readouterr().out
    assert out.startswith("indexed 2 sources") and "proj/table.py: not parseable Python (RecursionError)" in out


def test_yaml_aliases_are_walked_once(falkordb_workspace, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from caramba.cli import main

    ws, _ep = falkordb_workspace
    proj = ws.root / "proj"
    proj.mkdir()
    # anchors reused at every level ("billion laughs"): 2**40 paths through 41 nodes
    levels = ["blk0: &blk0 {type: AttentionLayer}"] + [f"blk{i}: &blk{i} [*blk{i - 1}, *blk{i - 1}]"
                                                       for i in range(1, 41)]
    (proj / "laughs.yml").write_text("\n".join(levels) + "\ntargets: [*blk40]\n")
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(ws.root))
    assert main(["codegraph", "sync", "proj"]) == 0  # was: an exponential walk (hours, then memory)
    capsys.readouterr()
    assert main(["codegraph", "layer-usage", "AttentionLayer", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"manifest": "laughs.yml", "name": "laughs.yml", "line": 1}]
