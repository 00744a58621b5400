"""REST API runs, in process (TestClient on the real app; runs are real ``caramba run``
subprocesses of the shared JobManager).

* start two short runs (seed 1 and 2), follow one over server-sent events (progress with
  step/loss/lr/tokens_per_s for every step, run_finished, target_finished, end), list with
  filters, paginate metrics, read results, artifacts with their content types, the model
  tree, compare (pooled mean ± CI), resume-after-last-event-id;
* cancel a long run (cancelled, checkpoint kept, resumable), resume it, cancel again;
* refusals: bad manifest (422 located), unknown target (400), unknown run (404),
  resume of a completed run (409), checkpoints and path tricks not served (404).
"""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from caramba.api.app import ApiOptions, create_app
from caramba.tests.support.mcp_manifests import tiny, tiny_bad_width

TOKEN = "runs-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    with TestClient(create_app(ApiOptions(workspace=ws, token=TOKEN))) as c:
        c.ws = ws  # type: ignore[attr-defined]
        yield c


def sse(client, path, headers=None):
    """Every (event, data, id) of a server-sent-events response, until the server ends it."""
    out, event, data, ident = [], "message", [], None
    with client.stream("GET", path, headers={**AUTH, **(headers or {})}, timeout=300) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line == "":
                if data:
                    out.append((event, json.loads("\n".join(data)), ident))
                event, data, ident = "message", [], None
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line.startswith("id:"):
                ident = line[3:].strip()
    return out


def wait_state(client, job_id, states, timeout=240):
    deadline = time.monotonic() + timeout
    while True:
        st = client.get(f"/api/runs/{job_id}", headers=AUTH).json()
        if st["state"] in states:
            return st
        assert time.monotonic() < deadline, st
        time.sleep(0.2)


def test_run_lifecycle_events_results_artifacts(client):
    a = client.post("/api/runs", json={"text": tiny(6, 2)}, headers=AUTH)
    assert a.status_code == 201, a.text
    b = client.post("/api/runs", json={"text": tiny(6), "overrides": ["targets[0].runs[0].seed=2"]}, headers=AUTH)
    ja, jb = a.json()["job_id"], b.json()["job_id"]
    assert a.json()["state"] == "running"

    events = sse(client, f"/api/runs/{ja}/events")
    kinds = [e for e, _, _ in events]
    assert kinds[0] == "state" and kinds[-1] == "end" and events[-1][1]["state"] == "completed"
    progress = [d for e, d, _ in events if e == "progress"]
    assert [p["step"] for p in progress] == [1, 2, 3, 4, 5, 6]
    assert all(p["total"] == 6 and p["loss"] > 0 and p["lr"] == 0.001 and p["tokens_per_s"] > 0 for p in progress)
    assert kinds.index("run_started") < kinds.index("progress") < kinds.index("run_finished") < kinds.index("target_finished")
    arts = [d["path"] for e, d, _ in events if e == "artifact"]
    assert all(not p.startswith("/") for p in arts) and any(p.endswith("loss_curve.png") for p in arts)
    last_id = [i for _, _, i in events if i][-1]
    replay = sse(client, f"/api/runs/{ja}/events", headers={"Last-Event-ID": last_id})
    assert [e for e, _, _ in replay] == ["state", "end"]  # nothing is sent twice

    wait_state(client, jb, {"completed"})
    listed = client.get("/api/runs", headers=AUTH).json()
    assert listed["total"] == 2 and {r["job_id"] for r in listed["runs"]} == {ja, jb}
    assert client.get("/api/runs", params={"state": "running"}, headers=AUTH).json()["total"] == 0
    assert client.get("/api/runs", params={"target": "train", "limit": 1}, headers=AUTH).json()["total"] == 2
    assert len(client.get("/api/runs", params={"limit": 1}, headers=AUTH).json()["runs"]) == 1
    assert client.get("/api/runs", params={"manifest": "nomatch"}, headers=AUTH).json()["total"] == 0

    st = client.get(f"/api/runs/{ja}", headers=AUTH).json()
    assert st["state"] == "completed" and st["progress"]["step"] == 6 and st["metrics"]["train"]["step"] == 6

    p1 = client.get(f"/api/runs/{ja}/metrics", params={"split": "train", "limit": 4}, headers=AUTH).json()
    assert p1["total"] == 6 and [r["step"] for r in p1["rows"]] == [1, 2, 3, 4] and p1["next_offset"] == 4
    p2 = client.get(f"/api/runs/{ja}/metrics", params={"split": "train", "offset": 4, "limit": 4}, headers=AUTH).json()
    assert [r["step"] for r in p2["rows"]] == [5, 6] and p2["next_offset"] is None
    assert [r["loss"] for r in p1["rows"] + p2["rows"]] == [p["loss"] for p in progress]

    res = client.get(f"/api/runs/{ja}/results", headers=AUTH).json()
    assert res["results"]["runs"]["a"]["steps"] == 6 and "artifacts/loss_curve.png" in res["artifacts"]
    listing = {x["path"]: x for x in client.get(f"/api/runs/{ja}/artifacts", headers=AUTH).json()}
    assert listing["loss_curve.png"]["content_type"] == "image/png"
    png = client.get(f"/api/runs/{ja}/artifacts/loss_curve.png", headers=AUTH)
    assert png.headers["content-type"] == "image/png" and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    csv = client.get(f"/api/runs/{ja}/artifacts/summary.csv", headers=AUTH)
    assert csv.headers["content-type"].startswith("text/csv") and "," in csv.text
    tex = client.get(f"/api/runs/{ja}/artifacts/summary.tex", headers=AUTH)
    assert tex.headers["content-type"] == "application/x-tex" and "\\" in tex.text
    rj = client.get(f"/api/runs/{ja}/artifacts/results.json", headers=AUTH)
    assert rj.headers["content-type"] == "application/json" and rj.json() == res["results"]
    for bad in ("../checkpoints/a/step_2/state.pt", "../../../../etc/passwd", "checkpoints/a/latest", "nope.png"):
        assert client.get(f"/api/runs/{ja}/artifacts/{bad}", headers=AUTH).status_code == 404, bad

    tree = client.get(f"/api/runs/{ja}/tree", headers=AUTH).json()
    assert tree["target"] == "train" and tree["params"] == 64 * 32 + 32 + 3 * 32 * 64 + 32 * 64 + 64
    assert "TransformerModel" in json.dumps(tree["tree"])

    cmp = client.get("/api/compare", params=[("ids", ja), ("ids", jb)], headers=AUTH).json()
    row = cmp["rows"][0]
    assert row["key"] == "a" and sorted(row["jobs"]) == sorted([ja, jb])
    loss = row["metrics"]["train_loss"]
    assert loss["n"] == 2 and loss["ci95"] is not None
    assert loss["mean"] == pytest.approx(sum(loss["values"]) / 2)

    again = client.post(f"/api/runs/{ja}/resume", headers=AUTH)
    assert again.status_code == 409 and "already completed" in again.json()["message"]


def test_cancel_resume_and_refusals(client):
    long = client.post("/api/runs", json={"text": tiny(100_000, 1)}, headers=AUTH).json()["job_id"]
    deadline = time.monotonic() + 240
    while (client.get(f"/api/runs/{long}", headers=AUTH).json()["progress"]["step"] or 0) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    st = client.post(f"/api/runs/{long}/cancel", params={"wait_s": 120}, headers=AUTH).json()
    assert st["state"] == "cancelled" and st["resumable"] is True
    stopped_at = st["progress"]["step"]
    events = sse(client, f"/api/runs/{long}/events")
    assert events[-1] == ("end", {"state": "cancelled"}, None)
    resumed = client.post(f"/api/runs/{long}/resume", headers=AUTH)
    assert resumed.status_code == 200 and resumed.json()["state"] == "running"
    deadline = time.monotonic() + 240
    while (client.get(f"/api/runs/{long}", headers=AUTH).json()["progress"]["step"] or 0) <= stopped_at:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert client.post(f"/api/runs/{long}/cancel", params={"wait_s": 120}, headers=AUTH).json()["state"] == "cancelled"

    bad = client.post("/api/runs", json={"text": tiny_bad_width()}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["issues"][0]["path"].endswith("layers[1].d_model")
    nt = client.post("/api/runs", json={"text": tiny(), "target": "nope"}, headers=AUTH)
    assert nt.status_code == 400 and "train" in nt.json()["message"] + str(nt.json()["fix"])
    for path in ("/api/runs/nope", "/api/runs/nope/events", "/api/runs/nope/results", "/api/runs/nope/tree",
                 "/api/runs/nope/metrics", "/api/runs/nope/artifacts"):
        r = client.get(path, headers=AUTH)
        assert r.status_code == 404 and r.json()["fix"], path
    assert client.post("/api/runs/nope/cancel", headers=AUTH).status_code == 404
    assert client.get("/api/runs/..%2F..%2Fetc", headers=AUTH).status_code in (400, 404)
    assert client.get("/api/compare", params={"ids": "nope"}, headers=AUTH).status_code == 404


def test_terminal_run_is_adopted_cancelled_and_resumed(client):
    """A run started with ``caramba run`` in a terminal shows up (running, live), can be
    cancelled through the API (SIGTERM to its process) and resumed as a job."""
    import os
    import subprocess
    import sys

    (client.ws / "long.yml").write_text(tiny(100_000, 1))
    run_id = "20260101-120000-cli1"
    env = {**os.environ, "CARAMBA_WORKSPACE": str(client.ws)}
    proc = subprocess.Popen([sys.executable, "-m", "caramba", "run", "long.yml", "--run-id", run_id],
                            cwd=client.ws, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while True:
            listed = client.get("/api/runs", headers=AUTH).json()["runs"]
            st = next((r for r in listed if r["job_id"] == run_id), None)
            if st is not None and (st["progress"]["step"] or 0) >= 2:
                break
            assert proc.poll() is None and time.monotonic() < deadline, st
            time.sleep(0.3)
        assert st["state"] == "running" and st["manifest"] == f"runs/tiny/train/{run_id}/manifest.yml"
        done = client.post(f"/api/runs/{run_id}/cancel", params={"wait_s": 120}, headers=AUTH).json()
        assert done["state"] == "cancelled" and done["resumable"] is True
        assert proc.wait(timeout=60) is not None
        stopped_at = done["progress"]["step"]
        resumed = client.post(f"/api/runs/{run_id}/resume", headers=AUTH)
        assert resumed.status_code == 200 and resumed.json()["state"] == "running"
        deadline = time.monotonic() + 240
        while (client.get(f"/api/runs/{run_id}", headers=AUTH).json()["progress"]["step"] or 0) <= stopped_at:
            assert time.monotonic() < deadline
            time.sleep(0.3)
        final = client.post(f"/api/runs/{run_id}/cancel", params={"wait_s": 120}, headers=AUTH).json()
        assert final["state"] == "cancelled"
        steps = [r["step"] for r in client.get(f"/api/runs/{run_id}/metrics", params={"limit": 10_000},
                                               headers=AUTH).json()["rows"]]
        assert steps == sorted(steps) and steps[0] == 1  # one continuous curve across the resume
    finally:
        if proc.poll() is None:
            proc.kill()
