"""20 MCP clients at once on one HTTP server, each starting and reading its own run.

Each client submits the tiny manifest with its own seed (``--set``-style override), waits
for its run, and checks that what comes back is *its* run: the job id is unique, the
status carries its override, and the resolved manifest written in the run directory has
its seed. Nothing lost (20 distinct completed jobs), nothing mixed up.
"""

from __future__ import annotations

import anyio
import yaml

from caramba.tests.support.mcp_manifests import tiny
from caramba.tests.support.mcp_procs import http_client, http_server, structured, token_of

N_CLIENTS = 20


def test_twenty_concurrent_clients(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    results: dict[int, dict] = {}

    async def one_client(url: str, token: str, seed: int) -> None:
        async with http_client(url, token) as client:
            st = structured(await client.call_tool("run_manifest", {
                "text": tiny(2), "overrides": [f"targets[0].runs[0].seed={seed}"]}))
            done = structured(await client.call_tool("wait_run", {"job_id": st["job_id"], "timeout_s": 600}))
            status = done["status"]
            resolved = structured(await client.call_tool("read_file", {"path": f"{status['run_dir']}/manifest.yml"}))
            res = structured(await client.call_tool("get_results", {"job_id": st["job_id"]}))
            results[seed] = {"job": st["job_id"], "status": status,
                             "manifest": yaml.safe_load(resolved["text"]), "results": res}

    async def main(url: str) -> None:
        token = token_of(ws)
        async with anyio.create_task_group() as tg:
            for seed in range(N_CLIENTS):
                tg.start_soon(one_client, url, token, 100 + seed)

    with http_server(ws, "--max-jobs", str(N_CLIENTS)) as (url, _proc, _err):
        anyio.run(main, url)
        assert len(results) == N_CLIENTS
        assert len({r["job"] for r in results.values()}) == N_CLIENTS
        for seed, r in results.items():
            st = r["status"]
            assert st["state"] == "completed", st
            assert st["job_id"] == r["job"] and st["run_dir"].endswith(r["job"])
            assert st["overrides"] == [f"targets[0].runs[0].seed={seed}"]
            assert r["manifest"]["targets"][0]["runs"][0]["seed"] == seed
            assert r["results"]["job_id"] == r["job"] and r["results"]["results"]["runs"]["a"]["steps"] == 2

        async def listing() -> list[dict]:
            async with http_client(url, token_of(ws)) as client:
                return structured(await client.call_tool("list_runs", {"limit": 100}))["jobs"]

        listed = anyio.run(listing)
        assert sorted(j["job_id"] for j in listed) == sorted(r["job"] for r in results.values())
        assert {j["state"] for j in listed} == {"completed"}
