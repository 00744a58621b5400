"""Where a FalkorDB server listens, and fast probes of it (shared by the embedded and external paths).

:class:`FalkorEndpoint` is what :func:`caramba.codegraph.server.ensure_falkordb` returns;
Graphiti's ``FalkorDriver`` takes its ``host``/``port``/``username``/``password``. The probe
clients here never retry (redis-py retries with exponential backoff by default, which turns
"nothing listens there" into a multi-second hang).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from caramba.engine.errors import CarambaError

class FalkorDBError(CarambaError):
    """The FalkorDB server could not be started, reached or stopped."""


@dataclass(frozen=True)
class FalkorEndpoint:
    """Where a FalkorDB server listens. ``embedded`` is False for an external ``falkordb.url``."""

    host: str
    port: int
    url: str
    embedded: bool
    username: str | None = None
    password: str | None = None
    unix_socket: str | None = None
    pid: int | None = None
    data_dir: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["password"] = "***" if self.password else None
        return d



def client_for(ep: FalkorEndpoint):  # -> falkordb.FalkorDB
    """A ``falkordb.FalkorDB`` client for an endpoint."""
    from falkordb import FalkorDB

    return FalkorDB(host=ep.host, port=ep.port, username=ep.username, password=ep.password)


def parse_url(url: str) -> FalkorEndpoint:
    """Parse ``redis://[user:pass@]host[:port]`` or ``falkor://…`` into an endpoint."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "falkor") or not parts.hostname:
        raise FalkorDBError(f"falkordb url '{url}' is not of the form redis://host:port",
                            fix="use e.g. redis://localhost:6379 (or falkor://host:port)")
    try:
        port = parts.port or 6379
    except ValueError:
        raise FalkorDBError(f"falkordb url '{url}' has an invalid port", fix="use e.g. redis://localhost:6379") from None
    return FalkorEndpoint(host=parts.hostname, port=port, url=url, embedded=False,
                          username=unquote(parts.username) if parts.username else None,
                          password=unquote(parts.password) if parts.password else None)


def probe_client(ep: FalkorEndpoint, timeout_s: float):  # -> redis.Redis
    """A redis client that fails fast: no retries (redis-py retries with backoff by default)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(host=ep.host, port=ep.port, username=ep.username, password=ep.password,
                       socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0))


def ping(ep: FalkorEndpoint, timeout_s: float = 0.5) -> bool:
    import redis

    r = probe_client(ep, timeout_s)
    try:
        return bool(r.ping())
    except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
        return False  # ResponseError: LOADING (replaying the AOF) — not ready yet
    finally:
        r.close()


def ping_or_raise(ep: FalkorEndpoint) -> None:
    """Check that ``ep`` is a FalkorDB server we can use, else raise :class:`FalkorDBError`
    saying which of these it is: unreachable, wrong credentials, still loading its data, a
    plain Redis without the FalkorDB module, or another service speaking another protocol
    on that port (e.g. an HTTP server answering ``HTTP/1.1 400``)."""
    import redis

    r = probe_client(ep, 3.0)
    try:
        r.ping()
        r.execute_command("GRAPH.LIST")  # a plain Redis answers "unknown command"
    except redis.AuthenticationError as e:
        raise FalkorDBError(f"FalkorDB at {ep.url} refused the credentials: {e}",
                            fix="fix the user/password in falkordb.url") from None
    except (redis.ConnectionError, redis.TimeoutError) as e:
        raise FalkorDBError(f"cannot reach FalkorDB at {ep.url}: {e}",
                            fix="start it (e.g. `docker compose up -d falkordb`) or remove falkordb.url to use the embedded server") from None
    except redis.ResponseError as e:
        if str(e).startswith("LOADING"):
            raise FalkorDBError(f"FalkorDB at {ep.url} is still loading its data",
                                fix="wait a few seconds and run the command again") from None
        if "unknown command" in str(e).lower():
            raise FalkorDBError(f"{ep.url} answers but is not a FalkorDB server (a Redis without the FalkorDB "
                                "module: GRAPH.LIST is an unknown command there)",
                                fix="point falkordb.url at a FalkorDB instance (docker image falkordb/falkordb), "
                                    "or remove it to use the embedded server") from None
        raise FalkorDBError(f"FalkorDB at {ep.url} refused the check: {e}",
                            fix="check the server's ACL allows PING and GRAPH.LIST for this user") from None
    except redis.RedisError as e:  # InvalidResponse: not the Redis protocol at all
        raise FalkorDBError(f"{ep.url} does not speak the Redis protocol ({e}): another service listens there",
                            fix="check the host and port in falkordb.url (or --falkordb); FalkorDB listens on 6379 "
                                "by default") from None
    finally:
        r.close()
