"""``codegraph_sync`` as a persisted background job, through real ``caramba mcp serve``
processes (stdio and streamable HTTP) on the workspace's embedded FalkorDB.

* stdio: the tool returns a job id at once; ``wait_sync`` streams progress notifications
  (files parsed / total) to completion; the graph answers queries; ``wait: true`` does
  both in one call and a re-sync is incremental; run tools refuse sync ids.
* HTTP: a sync of a larger tree is cancelled mid-way and the previous graph is intact; a
  sync SIGKILLed mid-way is ``interrupted`` for the next server, which lists every job;
  syncing again is safe and indexes everything.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import anyio

from caramba.tests.support.falkordb import falkordb_workspace  # noqa: F401  (fixture)
from caramba.tests.support.mcp_procs import (
    error_text, http_client, http_server, stdio_client, structured, token_of,
)
from caramba.tests.support.toy_package import write_toy_package

MODELS = '''\
class Block:
    def forward(self, x):
        return gate(x)


def gate(x):
    return x
'''


def _big_tree(folder: Path, n: int) -> None:
    """``n`` modules of 30 functions each (a sync of a few seconds)."""
    for i in range(n):
        fns = "\n".join(f"def f{j}_{i}(x):\n    return f{(j + 1) % 30}_{i}(x) + x\n" for j in range(30))
        (folder / f"mod{i}.py").write_text(f"class C{i}:\n    pass\n\n\n{fns}")


def _pid(ws: Path, job_id: str) -> int:
    return json.loads((ws / ".caramba" / "jobs" / f"{job_id}.json").read_text())["pid"]


async def _until_parsing(client: Any, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll sync_status until the sync has parsed at least one batch of files."""
    deadline = time.monotonic() + timeout
    while True:
        st = structured(await client.call_tool("sync_status", {"job_id": job_id}))
        assert st["state"] in ("starting", "running"), st
        if st["progress"]["phase"] == "parse" and st["progress"]["done"] > 0:
            return st
        assert time.monotonic() < deadline, st
        await anyio.sleep(0.05)


def test_sync_job_over_stdio(falkordb_workspace):
    ws, _ep = falkordb_workspace
    pkg = write_toy_package(ws.root, MODELS)

    async def main() -> None:
        seen: list[tuple[float, float | None, str | None]] = []

        async def on_progress(p: float, total: float | None, msg: str | None) -> None:
            seen.append((p, total, msg))

        async with stdio_client(ws.root) as client:
            started = structured(await client.call_tool("codegraph_sync", {"path": "toy"}))
            assert started["job_id"].startswith("sync-") and started["state"] == "running"
            assert started["graph"] == "toy" and started["report"] is None

            done = structured(await client.call_tool("wait_sync", {"job_id": started["job_id"]},
                                                     progress_callback=on_progress))
            st = done["status"]
            assert not done["timed_out"] and st["state"] == "completed" and st["exit_code"] == 0
            assert st["report"]["graph"] == "toy" and st["report"]["files"] == 3 and st["report"]["parsed"] == 3
            assert seen and seen[-1][:2] == (3, 3) and "toy: 3/3 files" in (seen[-1][2] or "")
            assert [p for p, _, _ in seen] == sorted(p for p, _, _ in seen)
            rows = structured(await client.call_tool("find_symbol", {"name": "gate"}))["rows"]
            assert [r["qualname"] for r in rows] == ["toy.models.gate"]

            (pkg / "models.py").write_text(MODELS + "\n\ndef added(x):\n    return gate(x)\n")
            seen.clear()
            again = structured(await client.call_tool("codegraph_sync", {"path": "toy", "wait": True},
                                                      progress_callback=on_progress))
            assert again["state"] == "completed"
            assert (again["report"]["parsed"], again["report"]["skipped"]) == (1, 2)  # incremental
            assert seen and seen[-1][:2] == (1, 1)
            callers = structured(await client.call_tool("callers", {"symbol": "gate"}))["rows"]
            assert "toy.models.added" in {c["caller"] for c in callers}

            listed = structured(await client.call_tool("list_syncs", {}))["jobs"]
            assert [j["job_id"] for j in listed] == [again["job_id"], started["job_id"]]
            assert {j["state"] for j in listed} == {"completed"}
            assert "code-graph sync, not a run" in error_text(
                await client.call_tool("run_status", {"job_id": started["job_id"]}))
            assert all(j["job_id"] != started["job_id"]
                       for j in structured(await client.call_tool("list_runs", {}))["jobs"])
            assert "outside the workspace" in error_text(await client.call_tool("codegraph_sync", {"path": ".."}))
            assert "not a usable code graph name" in error_text(
                await client.call_tool("codegraph_sync", {"path": "toy", "graph": "-x"}))

    anyio.run(main)


def test_sync_cancel_interrupt_and_restart_over_http(falkordb_workspace):
    ws, _ep = falkordb_workspace
    big = ws.root / "big"
    big.mkdir()
    (big / "first.py").write_text("def original():\n    return 1\n")
    ids: dict[str, str] = {}

    async def files_in_graph(client: Any) -> int:
        q = structured(await client.call_tool("codegraph_query", {
            "cypher": "MATCH (f:File) RETURN count(f)", "graph": "big"}))
        return q["rows"][0][0]

    async def first_server(url: str) -> None:
        async with http_client(url, token_of(ws.root)) as client:
            first = structured(await client.call_tool("codegraph_sync", {"path": "big", "wait": True}))
            assert first["state"] == "completed" and first["report"]["files"] == 1
            ids["first"] = first["job_id"]

            _big_tree(big, 600)
            st = structured(await client.call_tool("codegraph_sync", {"path": "big"}))
            ids["cancelled"] = st["job_id"]
            seen = await _until_parsing(client, st["job_id"])
            assert seen["progress"]["total"] == 600
            st = structured(await client.call_tool("cancel_sync", {"job_id": st["job_id"], "wait_s": 60}))
            assert st["state"] == "cancelled" and st["report"] is None and "previous graph" in st["message"]
            # the previous graph is untouched and usable
            assert await files_in_graph(client) == 1
            rows = structured(await client.call_tool("find_symbol", {"name": "original", "graph": "big"}))["rows"]
            assert [r["qualname"] for r in rows] == ["first.original"]

            st = structured(await client.call_tool("codegraph_sync", {"path": "big"}))
            ids["killed"] = st["job_id"]
            await _until_parsing(client, st["job_id"])
            os.kill(_pid(ws.root, st["job_id"]), signal.SIGKILL)  # a crash, not a cancel

    async def second_server(url: str) -> None:
        async with http_client(url, token_of(ws.root)) as client:
            listed = {j["job_id"]: j for j in structured(await client.call_tool("list_syncs", {}))["jobs"]}
            assert set(listed) == set(ids.values())
            assert listed[ids["first"]]["state"] == "completed"
            assert listed[ids["cancelled"]]["state"] == "cancelled"
            killed = listed[ids["killed"]]
            assert killed["state"] == "interrupted" and "again" in killed["message"]
            assert await files_in_graph(client) == 1  # still the graph of the first sync

            rerun = structured(await client.call_tool("codegraph_sync", {"path": "big", "wait": True,
                                                                         "timeout_s": 300}))
            assert rerun["state"] == "completed", rerun
            assert rerun["report"]["files"] == 601 and rerun["report"]["parsed"] == 600
            assert await files_in_graph(client) == 601
            rows = structured(await client.call_tool("find_symbol", {"name": "f3_599", "graph": "big"}))["rows"]
            assert [r["qualname"] for r in rows] == ["mod599.f3_599"]

    with http_server(ws.root) as (url, _proc, _err):
        anyio.run(first_server, url)
    with http_server(ws.root) as (url, _proc, _err):
        anyio.run(second_server, url)


def test_cancelling_a_waiting_sync_request_cancels_the_sync(falkordb_workspace):
    """``codegraph_sync(wait: true)`` cancelled by the client (the SDK sends
    notifications/cancelled) stops the sync job itself; the previous graph stays."""
    ws, _ep = falkordb_workspace
    big = ws.root / "big"
    big.mkdir()
    (big / "first.py").write_text("def original():\n    return 1\n")

    async def main() -> None:
        async with stdio_client(ws.root) as client:
            first = structured(await client.call_tool("codegraph_sync", {"path": "big", "wait": True}))
            assert first["state"] == "completed"
            _big_tree(big, 600)
            parsing = anyio.Event()

            async def on_progress(p: float, total: float | None, msg: str | None) -> None:
                if total == 600 and p > 0:
                    parsing.set()

            async def waiter() -> None:
                await client.call_tool("codegraph_sync", {"path": "big", "wait": True, "timeout_s": 300},
                                       progress_callback=on_progress)

            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                with anyio.fail_after(180):
                    await parsing.wait()
                tg.cancel_scope.cancel()

            deadline = time.monotonic() + 120
            while True:
                jobs = structured(await client.call_tool("list_syncs", {}))["jobs"]
                newest = jobs[0]
                if newest["state"] not in ("starting", "running"):
                    break
                assert time.monotonic() < deadline, newest
                await anyio.sleep(0.2)
            assert newest["job_id"] != first["job_id"] and newest["state"] == "cancelled", newest
            q = structured(await client.call_tool("codegraph_query", {
                "cypher": "MATCH (f:File) RETURN count(f)", "graph": "big"}))
            assert q["rows"][0][0] == 1  # still the first sync's graph

    anyio.run(main)
