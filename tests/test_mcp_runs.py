"""Runs through real MCP servers: background jobs that are real ``caramba run`` subprocesses.

HTTP (real server on loopback): start runs, receive progress notifications while waiting,
fetch results and a PNG artifact, compare seeds (mean ± CI), cancel a long run (it ends
'cancelled' with its checkpoint), restart the server (jobs are still listed), resume the
cancelled run, kill its process (it is marked 'interrupted' and resumable).

stdio (real subprocess): the concurrency limit refuses a second run with a clear error,
and cancelling a ``wait_run`` request (notifications/cancelled) cancels the run.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import time

import anyio

from caramba.tests.support.mcp_manifests import tiny
from caramba.tests.support.mcp_procs import error_text, http_client, http_server, stdio_client, structured, token_of

LONG = tiny(steps=100_000, save_every=1)


async def _wait_step(client, job_id: str, step: int, timeout: float = 120.0) -> dict:
    """Poll run_status until the run reports at least ``step``."""
    deadline = time.monotonic() + timeout
    while True:
        st = structured(await client.call_tool("run_status", {"job_id": job_id}))
        if (st["progress"]["step"] or 0) >= step:
            return st
        assert st["state"] == "running", st
        assert time.monotonic() < deadline, f"run {job_id} did not reach step {step}: {st}"
        await anyio.sleep(0.2)


def _job_pid(ws, job_id: str) -> int:
    return json.loads((ws / ".caramba" / "jobs" / f"{job_id}.json").read_text())["pid"]


def test_http_run_lifecycle_restart_and_resume(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    jobs: dict[str, str] = {}

    async def first_server(url: str) -> None:
        async with http_client(url, token_of(ws)) as client:
            for name, args in (("a", {"text": tiny(6)}),
                               ("b", {"text": tiny(6), "overrides": ["targets[0].runs[0].seed=2"]}),
                               ("long", {"text": LONG})):
                st = structured(await client.call_tool("run_manifest", args))
                assert st["state"] == "running"
                jobs[name] = st["job_id"]
            assert len(set(jobs.values())) == 3

            seen: list[tuple[float, float | None, str | None]] = []

            async def on_progress(p: float, total: float | None, msg: str | None) -> None:
                seen.append((p, total, msg))

            done = structured(await client.call_tool("wait_run", {"job_id": jobs["a"], "timeout_s": 240},
                                                     progress_callback=on_progress))
            assert done["timed_out"] is False and done["status"]["state"] == "completed"
            assert [p for p, _, _ in seen] == [1, 2, 3, 4, 5, 6] and {t for _, t, _ in seen} == {6}
            assert seen[-1][2].startswith("a: step 6/6 loss ")
            assert float(seen[-1][2].rsplit(" ", 1)[1]) == round(done["status"]["progress"]["loss"], 4)

            res = structured(await client.call_tool("get_results", {"job_id": jobs["a"]}))
            assert res["results"]["runs"]["a"]["steps"] == 6
            assert "artifacts/loss_curve.png" in res["artifacts"]
            png = await client.call_tool("get_artifact", {"job_id": jobs["a"], "path": "artifacts/loss_curve.png"})
            assert not png.is_error and png.content[0].type == "image" and png.content[0].mime_type == "image/png"
            assert base64.b64decode(png.content[0].data)[:8] == b"\x89PNG\r\n\x1a\n"
            assert png.structured_content["kind"] == "image"
            csv = await client.call_tool("get_artifact", {"job_id": jobs["a"], "path": "summary.csv"})
            assert not csv.is_error and "," in csv.content[0].text
            blob = (await client.read_resource(f"caramba://runs/{jobs['a']}/images/loss_curve.png")).contents[0]
            assert blob.mime_type == "image/png"
            assert base64.b64decode(blob.blob) == base64.b64decode(png.content[0].data)
            csv_res = (await client.read_resource(f"caramba://runs/{jobs['a']}/artifacts/summary.csv")).contents[0]
            assert csv_res.text == csv.content[0].text
            as_resource = (await client.read_resource(f"caramba://runs/{jobs['a']}/results")).contents[0]
            assert json.loads(as_resource.text) == res["results"]
            assert "not a file of run" in error_text(await client.call_tool(
                "get_artifact", {"job_id": jobs["a"], "path": "../../../../caramba.yml"}))
            assert "no job" in error_text(await client.call_tool("run_status", {"job_id": "20990101-000000-ffffffff"}))
            assert "not a valid job id" in error_text(await client.call_tool("run_status", {"job_id": "../x"}))

            structured(await client.call_tool("wait_run", {"job_id": jobs["b"], "timeout_s": 240}))
            cmp = structured(await client.call_tool("compare_runs", {"job_ids": [jobs["a"], jobs["b"]],
                                                                     "metrics": ["train_loss"]}))
            [row] = cmp["rows"]
            loss = row["metrics"]["train_loss"]
            assert row["key"] == "a" and loss["n"] == 2 and loss["ci95"] is not None
            assert abs(loss["mean"] - sum(loss["values"]) / 2) < 1e-12

            await _wait_step(client, jobs["long"], 2)
            st = structured(await client.call_tool("cancel_run", {"job_id": jobs["long"], "wait_s": 120}))
            assert st["state"] == "cancelled" and st["resumable"] is True
            jobs["cancel_step"] = str(st["progress"]["step"])

    async def second_server(url: str) -> None:
        async with http_client(url, token_of(ws)) as client:
            listed = {j["job_id"]: j for j in structured(await client.call_tool("list_runs", {}))["jobs"]}
            assert listed[jobs["a"]]["state"] == "completed" and listed[jobs["b"]]["state"] == "completed"
            assert listed[jobs["long"]]["state"] == "cancelled" and listed[jobs["long"]]["resumable"]

            st = structured(await client.call_tool("resume_run", {"job_id": jobs["long"]}))
            assert st["state"] == "running"
            await _wait_step(client, jobs["long"], int(jobs["cancel_step"]) + 2)
            os.kill(_job_pid(ws, jobs["long"]), signal.SIGKILL)  # a crash: no clean shutdown
            deadline = time.monotonic() + 30
            while (st := structured(await client.call_tool("run_status", {"job_id": jobs["long"]})))["state"] == "running":
                assert time.monotonic() < deadline
                await anyio.sleep(0.2)
            assert st["state"] == "interrupted" and st["resumable"] and "resume_run" in st["message"]
            only = structured(await client.call_tool("list_runs", {"state": "interrupted"}))["jobs"]
            assert [j["job_id"] for j in only] == [jobs["long"]]

    with http_server(ws) as (url, _proc, _err):
        anyio.run(first_server, url)
    with http_server(ws) as (url, _proc, _err):
        anyio.run(second_server, url)

    events = (ws / structured_run_dir(ws, jobs["long"]) / "events.jsonl").read_text().splitlines()
    starts = [json.loads(e) for e in events if '"run_started"' in e]
    assert len(starts) == 2 and starts[1]["resumed"] is True and starts[1]["start_step"] >= int(jobs["cancel_step"])


def structured_run_dir(ws, job_id: str) -> str:
    return json.loads((ws / ".caramba" / "jobs" / f"{job_id}.json").read_text())["run_dir"]


def test_stdio_limit_and_cancel_by_notification(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()

    async def main() -> None:
        async with stdio_client(ws, "--max-jobs", "1") as client:
            job = structured(await client.call_tool("run_manifest", {"text": LONG}))["job_id"]
            err = error_text(await client.call_tool("run_manifest", {"text": tiny(2)}))
            assert "limit 1" in err and job in err and "fix:" in err

            first = anyio.Event()

            async def on_progress(p: float, total: float | None, msg: str | None) -> None:
                if p >= 2:
                    first.set()

            async def waiter() -> None:
                await client.call_tool("wait_run", {"job_id": job, "timeout_s": 300}, progress_callback=on_progress)

            async with anyio.create_task_group() as tg:
                tg.start_soon(waiter)
                with anyio.fail_after(180):
                    await first.wait()
                tg.cancel_scope.cancel()  # the SDK sends notifications/cancelled for the wait_run request

            deadline = time.monotonic() + 120
            while (st := structured(await client.call_tool("run_status", {"job_id": job})))["state"] == "running":
                assert time.monotonic() < deadline, st
                await anyio.sleep(0.2)
            assert st["state"] == "cancelled" and st["resumable"]
            # the slot is free again
            nxt = structured(await client.call_tool("run_manifest", {"text": tiny(2)}))
            done = structured(await client.call_tool("wait_run", {"job_id": nxt["job_id"], "timeout_s": 240}))
            assert done["status"]["state"] == "completed"

    anyio.run(main)
