"""The docker-compose stack, checked without a Docker engine (none here or in CI).

The stack was never started by these tests; they check the file's structure (services,
images/builds, health checks, the shared workspace volume, FalkorDB wiring, no secrets),
run ``docker compose config`` (or the standalone ``docker-compose config``) when such a
binary exists, and exercise the container entrypoint that writes ``falkordb.url``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
CARAMBA_SERVICES = ("caramba-api", "caramba-mcp", "caramba-a2a")


def _compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_structure():
    doc = _compose()
    services = doc["services"]
    assert set(services) == {"falkordb", *CARAMBA_SERVICES}
    fdb = services["falkordb"]
    assert fdb["image"].startswith("falkordb/falkordb")
    assert "falkordb-data:/var/lib/falkordb/data" in fdb["volumes"]
    assert set(doc["volumes"]) == {"workspace", "falkordb-data"}
    for name, svc in services.items():
        hc = svc["healthcheck"]
        assert hc["test"][0] == "CMD" and hc["retries"] >= 3, name
    for name in CARAMBA_SERVICES:
        svc = services[name]
        assert svc["build"]["context"] == "." and "TORCH_INDEX_URL" in svc["build"]["args"]
        assert "workspace:/workspace" in svc["volumes"], name
        env = svc["environment"]
        assert env["CARAMBA_WORKSPACE"] == "/workspace"
        assert env["CARAMBA_FALKORDB_URL"] == "redis://falkordb:6379"
        assert svc["depends_on"]["falkordb"]["condition"] == "service_healthy"
        assert svc["command"][0] == "caramba"
        for port in svc["ports"]:
            assert port.startswith("127.0.0.1:"), (name, port)  # published on loopback only
    assert services["caramba-api"]["command"][:2] == ["caramba", "serve"]
    assert services["caramba-mcp"]["command"][:4] == ["caramba", "mcp", "serve", "--http"]
    assert services["caramba-a2a"]["command"][:3] == ["caramba", "a2a", "serve"]
    assert "/api/health" in " ".join(services["caramba-api"]["healthcheck"]["test"])


def test_no_secrets_in_compose_dockerfile_or_env_example():
    text = COMPOSE.read_text()
    for key, value in re.findall(r"^\s*([A-Z_]*(?:TOKEN|KEY|PASSWORD|SECRET)[A-Z_]*):\s*(.+)$", text, re.M):
        assert value.strip().startswith("${"), f"{key} must come from .env, found {value!r}"
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    for key in ("CARAMBA_API_TOKEN", "CARAMBA_MCP_TOKEN", "OPENAI_API_KEY"):
        assert example[key] == "", key
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text))
    assert used <= set(example), f"undocumented variables: {used - set(example)}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".caramba", "runs"} <= set(ignored)  # no secrets or local state in the image
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG BASE=python:3.11" in dockerfile and "FROM ${BASE}" in dockerfile
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in dockerfile
    assert not re.search(r"(TOKEN|API_KEY)=\S", dockerfile)


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_docker_compose_config_validates(tmp_path):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no `docker compose` / `docker-compose` binary here (CI installs docker-compose)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARAMBA_")}
    ok = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], cwd=ROOT, capture_output=True, text=True,
                        env={**env, "CARAMBA_API_TOKEN": "t1", "CARAMBA_MCP_TOKEN": "t2"})
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], cwd=tmp_path, capture_output=True,
                             text=True, env=env)
    assert missing.returncode != 0 and "CARAMBA_API_TOKEN" in missing.stderr  # refuses to start without tokens
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("retries: 20", "retries: many"))
    bad = subprocess.run([*cli, "-f", str(broken), "config", "-q"], cwd=tmp_path, capture_output=True, text=True,
                         env={**env, "CARAMBA_API_TOKEN": "t1", "CARAMBA_MCP_TOKEN": "t2"})
    assert bad.returncode != 0  # the validator really checks types


def _entrypoint(ws: Path, *cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CARAMBA_WORKSPACE": str(ws), "CARAMBA_FALKORDB_URL": "redis://falkordb:6379"}
    return subprocess.run([sys.executable, str(ROOT / "docker" / "entrypoint.py"), *cmd], env=env,
                          capture_output=True, text=True)


def test_entrypoint_points_the_workspace_at_the_stack_falkordb(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    r = _entrypoint(ws, sys.executable, "-c", "print('started')")
    assert r.returncode == 0 and r.stdout.strip() == "started"
    assert yaml.safe_load((ws / "caramba.yml").read_text()) == {"falkordb": {"url": "redis://falkordb:6379"}}
    (ws / "caramba.yml").write_text("llm: {model: openai/gpt-4o-mini}\n")
    assert _entrypoint(ws, "true").returncode == 0
    assert yaml.safe_load((ws / "caramba.yml").read_text()) == {
        "llm": {"model": "openai/gpt-4o-mini"}, "falkordb": {"url": "redis://falkordb:6379"}}
    (ws / "caramba.yml").write_text("falkordb: {url: 'redis://elsewhere:6379'}\n")
    r = _entrypoint(ws, "true")
    assert r.returncode != 0 and "fix:" in r.stderr and "elsewhere" in (ws / "caramba.yml").read_text()
