"""`caramba db …` and `caramba codegraph …` end to end, in-process, on real FalkorDB servers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from caramba.cli import main
from caramba.codegraph.server import falkordb_status, stop_falkordb
from caramba.tests.support.falkordb import running_falkordb
from caramba.workspace import Workspace

FIXTURE = Path(__file__).parent / "fixtures" / "codegraph" / "proj"


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_db_and_codegraph_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(FIXTURE, tmp_path / "proj")
    try:
        assert _json(capsys, ["db", "status", "--json"])["running"] is False
        started = _json(capsys, ["db", "start", "--json"])
        assert started["embedded"] is True and started["url"].startswith("redis://127.0.0.1:")
        st = _json(capsys, ["db", "status", "--json"])
        assert st["running"] is True and st["endpoint"]["pid"] == started["pid"]
        rep = _json(capsys, ["codegraph", "sync", "proj", "--json"])
        assert (rep["graph"], rep["parsed"]) == ("proj", 6)
        callers = _json(capsys, ["codegraph", "callers", "helper", "--json"])
        assert {c["caller"] for c in callers} == {"pkg.base.Topology.layers", "pkg.base.fetch", "pkg.stack.make"}
        subs = _json(capsys, ["codegraph", "subclasses", "Topology", "--transitive", "--json"])
        assert [s["qualname"] for s in subs] == ["pkg.stack.Nested", "pkg.stack.Stacked"]
        assert _json(capsys, ["codegraph", "layer-usage", "SSMLayer", "--json"])[0]["manifest"] == "manifests/small.yml"
        rows = _json(capsys, ["codegraph", "query", "MATCH (c:Class) RETURN c.name ORDER BY c.name", "--json"])["rows"]
        assert rows == [["Nested"], ["Stacked"], ["Topology"]]
        # tables for people
        capsys.readouterr()
        assert main(["codegraph", "summary"]) == 0
        out = capsys.readouterr().out
        assert "INHERITS" in out and "Manifest" in out
        # writes are refused with an actionable error, no traceback
        assert main(["codegraph", "query", "MATCH (n) DETACH DELETE n"]) == 2
        err = capsys.readouterr().err
        assert "read-only" in err and "Traceback" not in err
        assert main(["codegraph", "callers", "no_such_function"]) == 2
        assert "no symbol 'no_such_function'" in capsys.readouterr().err
        capsys.readouterr()
        assert main(["db", "stop"]) == 0
        assert "stopped" in capsys.readouterr().out
        assert falkordb_status(Workspace(tmp_path)).running is False
    finally:
        stop_falkordb(Workspace(tmp_path))


def test_external_server_via_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    client = tmp_path / "client"
    client.mkdir()
    monkeypatch.setenv("CARAMBA_WORKSPACE", str(client))
    monkeypatch.chdir(client)
    shutil.copytree(FIXTURE, client / "proj")
    with running_falkordb(tmp_path / "server") as (_, ep):
        url = ["--falkordb", ep.url]
        assert _json(capsys, ["codegraph", "sync", "proj", "--graph", "ext", "--json", *url])["parsed"] == 6
        assert "code:ext" in _json(capsys, ["db", "status", "--json", *url])["graphs"]
        assert _json(capsys, ["codegraph", "find", "fetch", "--json", *url])[0]["qualname"] == "pkg.base.fetch"
        assert not (client / ".caramba" / "falkordb" / "server.json").exists()  # nothing embedded started
    assert main(["codegraph", "summary", "--falkordb", "redis://127.0.0.1:1"]) == 2
    assert "cannot reach FalkorDB" in capsys.readouterr().err
