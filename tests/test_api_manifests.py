"""REST API, in process (FastAPI TestClient against the real app): security and the
manifest routes.

* every guarded route refuses a missing or wrong bearer token (401, WWW-Authenticate);
  ``/api/health``, ``/docs``, ``/openapi.json`` and the dashboard files are public;
* a foreign ``Origin`` is 403, CORS headers only for ``allowed_origins``, oversized bodies 413;
* presets, catalog, validation (422 with file, line, YAML path, expected/found, fix),
  dry-run (plan with parameter counts), workspace confinement (403).
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from caramba.api.app import ApiOptions, create_app
from caramba.tests.support.mcp_manifests import tiny, tiny_bad_width, tiny_self_granted

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    with TestClient(create_app(ApiOptions(workspace=ws, token=TOKEN, max_body_bytes=64 * 1024))) as c:
        c.ws = ws  # type: ignore[attr-defined]
        yield c


def _guarded_routes(app):
    for path, ops in app.openapi()["paths"].items():
        if path.startswith("/api/") and path != "/api/health":
            for method in ops:
                yield method.upper(), re.sub(r"\{[a-z_]+\}", "x", path)


def test_every_api_route_needs_the_token(client):
    routes = list(_guarded_routes(client.app))
    assert len(routes) >= 25  # manifests, runs, results, codegraph, memory
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            r = client.request(method, path, headers=headers)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["error"] == "invalid_token" and "api_token" in r.json()["fix"]
            assert r.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/api/health").json()["ok"] is True
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/api/runs/{job_id}/events" in schema["paths"] and "HTTPBearer" in schema["components"]["securitySchemes"]
    page = client.get("/dashboard/")
    assert page.status_code == 200 and "app.js" in page.text
    assert client.get("/", follow_redirects=False).headers["location"] == "/dashboard/"


def test_origin_cors_and_size_limits(client, tmp_path):
    r = client.get("/api/presets", headers={**AUTH, "Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden_origin"
    r = client.get("/api/presets", headers={**AUTH, "Origin": "http://127.0.0.1:8080"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers  # CORS closed
    big = {"text": "# " + "x" * 70_000}
    r = client.post("/api/manifests/validate", json=big, headers=AUTH)
    assert r.status_code == 413 and r.json()["error"] == "request_too_large"
    # a chunked body without Content-Length is counted as it streams
    r = client.post("/api/manifests/validate", headers={**AUTH, "Content-Type": "application/json"},
                    content=iter([b'{"text": "', b"y" * 70_000, b'"}']))
    assert r.status_code == 413

    ws2 = tmp_path / "ws2"
    ws2.mkdir()
    app = create_app(ApiOptions(workspace=ws2, token=TOKEN, allowed_origins=("https://lab.example",)))
    with TestClient(app) as c2:
        r = c2.get("/api/presets", headers={**AUTH, "Origin": "https://lab.example"})
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://lab.example"
        pre = c2.options("/api/runs", headers={"Origin": "https://lab.example", "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code == 200
        assert c2.get("/api/presets", headers={**AUTH, "Origin": "https://other.example"}).status_code == 403


def test_presets_and_catalog(client):
    presets = client.get("/api/presets", headers=AUTH).json()
    names = {p["name"] for p in presets}
    assert "standard_transformer" in names and all(p["origin"] == "shipped" for p in presets)
    text = client.get("/api/presets/standard_transformer", headers=AUTH).json()["text"]
    assert "version: 2" in text
    r = client.get("/api/presets/nope", headers=AUTH)
    assert r.status_code == 404 and "standard_transformer" in r.json()["fix"]

    layers = client.get("/api/catalog", params={"family": "layers"}, headers=AUTH).json()
    assert {"RMSNormLayer", "AttentionLayer", "SwiGLULayer"} <= {e["name"] for e in layers}
    one = client.get("/api/catalog", params={"name": "RMSNormLayer", "with_schema": True}, headers=AUTH).json()
    assert len(one) == 1 and one[0]["config_schema"]["properties"]["d_model"]
    assert client.get("/api/catalog", params={"name": "NoSuchLayer"}, headers=AUTH).status_code == 404
    assert client.get("/api/catalog", params={"family": "bogus"}, headers=AUTH).status_code == 422


def test_validate_and_dry_run(client):
    ok = client.post("/api/manifests/validate", json={"text": tiny()}, headers=AUTH)
    assert ok.status_code == 200 and ok.json()["ok"] is True and ok.json()["targets"] == ["train"]

    bad = client.post("/api/manifests/validate", json={"text": tiny_bad_width()}, headers=AUTH)
    assert bad.status_code == 422
    body = bad.json()
    assert body["ok"] is False
    issue = body["issues"][0]
    line = tiny_bad_width().splitlines().index(next(l for l in tiny_bad_width().splitlines() if "d_model: 48" in l)) + 1
    assert issue["path"] == "targets[0].system.config.model.topology.layers[1].d_model"
    assert issue["line"] == line and issue["expected"] == "32" and issue["found"] == "48" and issue["fix"]
    assert issue["file"] == "manifests/submitted.yml"  # workspace-relative, no server paths

    ov = client.post("/api/manifests/validate", json={"text": tiny(), "overrides": ["targets[0].nope.x=1"]}, headers=AUTH)
    assert ov.status_code == 422 and ov.json()["issues"][0]["file"] == "--set"

    granted = client.post("/api/manifests/validate", json={"text": tiny_self_granted()}, headers=AUTH)
    assert granted.status_code == 400 and "allow_python_impl" in granted.json()["message"]

    plan = client.post("/api/manifests/dry-run", json={"text": tiny()}, headers=AUTH)
    assert plan.status_code == 200
    tgt = plan.json()["targets"][0]
    # embedding 64*32 + RMSNorm 32 + SwiGLU 3*32*64 + Linear 32*64+64
    assert tgt["params"] == 64 * 32 + 32 + 3 * 32 * 64 + 32 * 64 + 64
    assert tgt["tree"]["type"] and tgt["runs"][0]["steps"] == 4

    bad_plan = client.post("/api/manifests/dry-run", json={"text": tiny_bad_width()}, headers=AUTH)
    assert bad_plan.status_code == 422 and bad_plan.json()["error"] == "invalid_manifest"
    assert bad_plan.json()["issues"][0]["line"] == line
    assert bad_plan.json()["issues"][0]["file"] == "manifests/submitted.yml"

    both = client.post("/api/manifests/validate", json={"text": tiny(), "path": "x.yml"}, headers=AUTH)
    assert both.status_code == 400 and "exactly one" in both.json()["message"]
    out = client.post("/api/manifests/validate", json={"path": "../outside.yml"}, headers=AUTH)
    assert out.status_code == 403 and "outside the workspace" in out.json()["message"]
    (client.ws / ".caramba").mkdir(exist_ok=True)
    (client.ws / ".caramba" / "x.yml").write_text(tiny())
    private = client.post("/api/manifests/validate", json={"path": ".caramba/x.yml"}, headers=AUTH)
    assert private.status_code == 403
    extra = client.post("/api/manifests/validate", json={"text": tiny(), "bogus": 1}, headers=AUTH)
    assert extra.status_code == 422  # request models forbid unknown fields
    assert client.get("/api/nope", headers=AUTH).json()["error"] == "not_found"
