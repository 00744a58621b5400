"""Container entrypoint: point the shared workspace at the compose stack's FalkorDB, then
run the service's command.

With ``CARAMBA_FALKORDB_URL`` set (docker-compose sets ``redis://falkordb:6379``), the
workspace's ``caramba.yml`` must name that server as ``falkordb.url``:

* no ``caramba.yml`` yet → it is created with just that setting (atomically; the first of
  the services to start wins, the others find it);
* a ``caramba.yml`` without ``falkordb.url`` → the setting is added, the rest kept;
* a different ``falkordb.url`` → refused with a message (the user's file is not changed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml


def ensure_falkordb_url(workspace: Path, url: str) -> None:
    cfg_file = workspace / "caramba.yml"
    data = yaml.safe_load(cfg_file.read_text()) if cfg_file.exists() else {}
    data = data or {}
    current = (data.get("falkordb") or {}).get("url")
    if current == url:
        return
    if current:
        sys.exit(f"error: {cfg_file} sets falkordb.url = {current}, but this stack's FalkorDB is {url}\n"
                 f"  fix: remove falkordb.url from {cfg_file}, or unset CARAMBA_FALKORDB_URL for this service")
    data.setdefault("falkordb", {})["url"] = url
    tmp = cfg_file.with_name(f".caramba.yml.{os.getpid()}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    os.replace(tmp, cfg_file)


def main() -> None:
    url = os.environ.get("CARAMBA_FALKORDB_URL")
    if url:
        ensure_falkordb_url(Path(os.environ.get("CARAMBA_WORKSPACE", "/workspace")), url)
    if len(sys.argv) < 2:
        sys.exit("error: no command given to the caramba container\n  fix: e.g. caramba serve --host 0.0.0.0")
    os.execvp(sys.argv[1], sys.argv[1:])


if __name__ == "__main__":
    main()
