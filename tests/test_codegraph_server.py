"""The embedded FalkorDB server: start, reuse, lock, persistence, stale state, external URL."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from caramba.codegraph.server import (FalkorDBError, connect, data_dir, ensure_falkordb, falkordb_status,
                                      stop_falkordb)
from caramba.tests.support.falkordb import falkordb_workspace, running_falkordb  # noqa: F401
from caramba.workspace import Workspace


def _wait_dead(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} still alive")


def test_start_reuse_persist_stop(falkordb_workspace) -> None:
    ws, ep = falkordb_workspace
    assert ep.embedded and ep.host == "127.0.0.1" and ep.port > 0 and ep.pid
    d = data_dir(ws)
    info = json.loads((d / "server.json").read_text())
    assert info["pid"] == ep.pid and info["port"] == ep.port
    # a second ensure reuses the live server instead of starting another
    assert ensure_falkordb(ws) == ep
    g = connect(ws).select_graph("t")
    g.query("CREATE (:N {x: 41})")
    st = falkordb_status(ws)
    assert st.running and st.endpoint.port == ep.port and "t" in st.graphs
    assert stop_falkordb(ws) is True
    assert not (d / "server.json").exists()
    assert falkordb_status(ws).running is False
    assert stop_falkordb(ws) is False  # nothing to stop
    # restart: the data persisted, on a new process
    ep2 = ensure_falkordb(ws)
    assert ep2.pid != ep.pid
    assert connect(ws).select_graph("t").ro_query("MATCH (n:N) RETURN n.x").result_set == [[41]]


def test_sigkill_leaves_stale_state_that_is_recovered(falkordb_workspace) -> None:
    ws, ep = falkordb_workspace
    g = connect(ws).select_graph("k")
    g.query("UNWIND range(1, 100) AS i CREATE (:N {i: i})")
    time.sleep(1.2)  # appendfsync everysec
    os.kill(ep.pid, signal.SIGKILL)
    _wait_dead(ep.pid)
    d = data_dir(ws)
    assert (d / "server.json").exists()  # stale: the server had no chance to clean up
    st = falkordb_status(ws)
    assert st.running is False
    ep2 = ensure_falkordb(ws)
    assert ep2.pid != ep.pid
    assert connect(ws).select_graph("k").ro_query("MATCH (n:N) RETURN count(n)").result_set == [[100]]


def test_external_url_is_used_and_never_stopped(tmp_path: Path) -> None:
    with running_falkordb(tmp_path / "server_ws") as (_, other):
        client_root = tmp_path / "client_ws"
        client_root.mkdir()
        (client_root / "caramba.yml").write_text(f"falkordb:\n  url: redis://127.0.0.1:{other.port}\n")
        ws = Workspace(client_root)
        ep = ensure_falkordb(ws)
        assert not ep.embedded and ep.port == other.port
        connect(ws).select_graph("ext").query("CREATE (:E)")
        assert "ext" in falkordb_status(ws).graphs
        assert not (client_root / ".caramba" / "falkordb" / "server.json").exists()  # nothing started here
        with pytest.raises(FalkorDBError, match="external server"):
            stop_falkordb(ws)


def test_unreachable_or_bad_url_is_a_clear_error(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    with pytest.raises(FalkorDBError, match="cannot reach FalkorDB") as e:
        ensure_falkordb(ws, url="redis://127.0.0.1:1")
    assert e.value.fix
    with pytest.raises(FalkorDBError, match="redis://host:port"):
        ensure_falkordb(ws, url="http://localhost:6379")
    st = falkordb_status(ws, url="redis://127.0.0.1:1")
    assert st.running is False and "cannot reach" in st.problem


def test_concurrent_starts_share_one_server(tmp_path: Path) -> None:
    """Three processes asking for the server at once get the same one (control + server locks)."""
    import subprocess
    import sys

    code = ("import json, sys; from caramba.codegraph.server import ensure_falkordb; "
            "from caramba.workspace import Workspace; ep = ensure_falkordb(Workspace(sys.argv[1])); "
            "print(json.dumps([ep.pid, ep.port]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    try:
        outs = [p.communicate(timeout=120)[0] for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        assert len({o.strip() for o in outs}) == 1  # one pid, one port
        pid = json.loads(outs[0])[0]
        assert falkordb_status(Workspace(tmp_path)).endpoint.pid == pid
    finally:
        stop_falkordb(Workspace(tmp_path))
