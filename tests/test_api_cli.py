"""``caramba serve`` as a user runs it: the real command in a subprocess.

* first start generates ``.caramba/api_token`` (0600) and prints the dashboard link with it;
  the API refuses calls without it;
* a managed token (``CARAMBA_API_TOKEN``) is never printed;
* binding beyond loopback without a managed token is refused with a fix (exit 2).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from caramba.tests.support.api_server import api_server
from caramba.tests.support.procs import free_port


def test_serve_generates_token_and_prints_link(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    with api_server(ws) as srv:
        token_file = ws / ".caramba" / "api_token"
        assert oct(token_file.stat().st_mode & 0o777) == "0o600" and len(srv.token) >= 32
        assert httpx.get(srv.url + "/api/runs").status_code == 401
        assert httpx.get(srv.url + "/api/runs", headers=srv.headers).json() == {"total": 0, "runs": []}
        assert f"/dashboard/#token={srv.token}" in srv.stderr.read_text()


def test_managed_token_is_not_printed(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    port = free_port()
    env = {**os.environ, "CARAMBA_API_TOKEN": "managed-secret-value"}
    proc = subprocess.Popen([sys.executable, "-m", "caramba", "serve", "--port", str(port), "--workspace", str(ws)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None
            time.sleep(0.1)
        headers = {"Authorization": "Bearer managed-secret-value"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/presets", headers=headers).status_code == 200
        assert not (ws / ".caramba" / "api_token").exists()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    assert "managed-secret-value" not in err and "#token=<your token>" in err


def test_non_loopback_bind_needs_a_managed_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CARAMBA_API_TOKEN"}
    for extra in ([], ["--no-auth"]):
        r = subprocess.run([sys.executable, "-m", "caramba", "serve", "--host", "0.0.0.0", "--port", "1",
                            "--workspace", str(tmp_path), *extra], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert "refusing to serve on 0.0.0.0" in r.stderr and "fix:" in r.stderr and "Traceback" not in r.stderr
