"""A real ``caramba serve`` on a free loopback port for the API and browser tests.

    with api_server(ws) as srv:
        httpx.get(srv.url + "/api/runs", headers=srv.headers)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from caramba.tests.support.procs import free_port, stop_process


@dataclass
class ApiServer:
    url: str
    token: str
    proc: subprocess.Popen[bytes]
    stderr: Path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def api_server(ws: Path, *args: str, timeout: float = 60.0) -> Iterator[ApiServer]:
    """Start ``python -m caramba serve`` for workspace ``ws``; stop it afterwards."""
    port = free_port()
    env = dict(os.environ)
    env.pop("CARAMBA_API_TOKEN", None)
    err = ws / f".api-{port}.stderr"
    with err.open("wb") as ferr:
        proc = subprocess.Popen([sys.executable, "-m", "caramba", "serve", "--port", str(port),
                                 "--workspace", str(ws), *args],
                                stdout=subprocess.DEVNULL, stderr=ferr, env=env, cwd=ws)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"caramba serve exited {proc.returncode}: {err.read_text()}")
            try:
                if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"caramba serve did not answer: {err.read_text()}")
            time.sleep(0.1)
        token_file = ws / ".caramba" / "api_token"
        token = token_file.read_text().strip() if token_file.exists() else ""
        yield ApiServer(url=url, token=token, proc=proc, stderr=err)
    finally:
        stop_process(proc)
