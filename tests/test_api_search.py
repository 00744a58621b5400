"""REST API code-graph, memory and retrieval routes against a real embedded FalkorDB and a
real DeepLake store (TestClient on the real app; same code as the MCP tools)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from caramba.api.app import ApiOptions, create_app
from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401  (fixture)
from caramba.tests.support.toy_package import write_toy_package

AUTH = {"Authorization": "Bearer s"}

MODELS = '''\
class Block:
    def forward(self, x):
        return x


class GatedBlock(Block):
    def forward(self, x):
        return gate(x)


def gate(x):
    return x
'''

def test_codegraph_memory_rag_routes(falkordb_workspace):
    ws, _ep = falkordb_workspace
    write_toy_package(ws.root, MODELS)
    (ws.root / "notes").mkdir()
    (ws.root / "notes" / "muon.md").write_text("# Muon optimizer\nMuon converged faster than AdamW on the 50M model.\n"
                                               "\n# RoPE\nRotary theta 500k lowered validation loss.\n")
    with TestClient(create_app(ApiOptions(workspace=ws.root, token="s"))) as c:
        started = c.post("/api/codegraph/sync", json={"path": "toy"}, headers=AUTH).json()
        assert started["job_id"].startswith("sync-") and started["state"] == "running"
        deadline = time.monotonic() + 120
        while (job := c.get(f"/api/codegraph/syncs/{started['job_id']}", headers=AUTH).json())["state"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        rep = job["report"]
        again = c.post("/api/codegraph/sync", json={"path": "toy", "wait": True}, headers=AUTH).json()
        assert again["state"] == "completed" and again["report"]["skipped"] == 3  # incremental
        assert [j["job_id"] for j in c.get("/api/codegraph/syncs", headers=AUTH).json()] == [
            again["job_id"], started["job_id"]]
        assert rep["graph"] == "toy" and rep["files"] == 3 and not rep["errors"]
        found = c.get("/api/codegraph/find", params={"name": "gate"}, headers=AUTH).json()["rows"]
        assert [(r["qualname"], r["line"]) for r in found] == [("toy.models.gate", MODELS.splitlines().index("def gate(x):") + 1)]
        callers = c.get("/api/codegraph/callers", params={"symbol": "gate"}, headers=AUTH).json()["rows"]
        assert {r["caller"] for r in callers} == {"toy.models.GatedBlock.forward"}
        callees = c.get("/api/codegraph/callees", params={"symbol": "toy.models.GatedBlock.forward"}, headers=AUTH).json()
        assert [r["callee"] for r in callees["resolved"]] == ["toy.models.gate"]
        subs = c.get("/api/codegraph/subclasses", params={"cls": "Block"}, headers=AUTH).json()["rows"]
        assert [s["qualname"] for s in subs] == ["toy.models.GatedBlock"]
        usage = c.get("/api/codegraph/layer-usage", params={"layer_type": "SSMLayer"}, headers=AUTH).json()["rows"]
        assert [u["manifest"] for u in usage] == ["toy.yml"]
        q = c.post("/api/codegraph/query", json={"cypher": "MATCH (c:Class) RETURN c.qualname ORDER BY c.qualname"},
                   headers=AUTH).json()
        assert q["rows"] == [["toy.models.Block"], ["toy.models.GatedBlock"]] and q["truncated"] is False
        w = c.post("/api/codegraph/query", json={"cypher": "MATCH (c:Class) DETACH DELETE c"}, headers=AUTH)
        assert w.status_code == 400 and "read-only" in w.json()["message"]
        assert c.post("/api/codegraph/sync", json={"path": ".."}, headers=AUTH).status_code == 403
        missing = c.get("/api/codegraph/find", params={"name": "gate", "graph": "nope"}, headers=AUTH)
        assert missing.status_code == 400 and "no code graph named" in missing.json()["message"]

        idx = c.post("/api/rag/index", json={"paths": ["notes"], "kind": "note"}, headers=AUTH).json()
        assert idx["sources_indexed"] == 1 and idx["total_chunks"] >= 2
        hits = c.get("/api/rag/search", params={"query": "Muon optimizer", "k": 2}, headers=AUTH).json()["hits"]
        assert "Muon" in hits[0]["text"] and hits[0]["path"] == "notes/muon.md"

        assert c.get("/api/memory/search", params={"query": "rotary"}, headers=AUTH).json() == {"facts": []}
        add = c.post("/api/memory/add", json={"text": "theta 500k helps"}, headers=AUTH)
        assert add.status_code == 400 and "language model" in add.json()["message"] and add.json()["fix"]
