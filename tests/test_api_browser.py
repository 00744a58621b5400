"""The dashboard in a real headless browser (Debian ``chromium`` driven by playwright).

Open the dashboard with the token link, start a short CPU run from its form (a workspace
preset), watch the loss chart grow on the run page while the run trains (live
server-sent events), wait for the final metrics to appear and check them against the
run's ``results.json``; the model tree and the loss-curve image are shown too. Then a
second run is compared with the first (runs table → tick both → compare page with both
curves and the pooled metrics). Screenshots land in the test's tmp folder
(``run_page.png``, ``compare_page.png``).

Skips only when chromium is not installed here; CI installs it (``.ci/run``).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import httpx
import pytest

from caramba.tests.support.api_server import api_server
from caramba.tests.support.mcp_manifests import tiny

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STEPS = 40

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; CI installs it)")


def test_live_run_page_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "manifests").mkdir()
    (ws / "manifests" / "tiny.yml").write_text(tiny(STEPS))  # shows up as the workspace preset 'tiny'
    with api_server(ws) as srv:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1600})
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{srv.url}/dashboard/#token={srv.token}")
                page.wait_for_selector("#preset option[value='tiny'], #preset option:text-is('tiny')", state="attached")
                assert "token=" not in page.url  # the token left the address bar
                # start the run from the dashboard's form; it opens the run page
                page.select_option("#preset", "tiny")
                page.click("#start button")
                page.wait_for_url("**/dashboard/#/run/*", timeout=60_000)
                job = page.url.rsplit("/", 1)[1]
                page.wait_for_selector("#loss-chart")

                seen: list[int] = []
                deadline = time.monotonic() + 240
                while time.monotonic() < deadline:
                    n = int(page.get_attribute("#loss-chart", "data-points") or 0)
                    if not seen or n != seen[-1]:
                        seen.append(n)
                    if n >= STEPS:
                        break
                    time.sleep(0.1)
                assert seen[-1] == STEPS, f"loss chart points seen: {seen}"
                # live: the chart showed intermediate states, not only the finished curve
                assert any(0 < n < STEPS for n in seen), f"chart never updated mid-run: {seen}"
                assert page.locator("#loss-chart polyline").count() >= 1

                page.wait_for_selector("#final-metrics", timeout=120_000)
                page.wait_for_selector("#run-state .state-completed", timeout=60_000)
                cells = page.locator("#final-metrics td").all_inner_texts()
                results = json.loads(next((ws / "runs").glob(f"*/*/{job}/results.json")).read_text())
                assert cells[0] == "a"
                headers = page.locator("#final-metrics th").all_inner_texts()
                shown = float(cells[headers.index("train_loss")])
                assert shown == pytest.approx(results["runs"]["a"]["train_loss"], rel=1e-4)

                page.wait_for_selector("#tree li .type", timeout=60_000)
                assert "TransformerModel" in page.inner_text("#tree")
                page.wait_for_selector("#artifacts img[alt='loss_curve.png']", timeout=30_000)
                page.wait_for_function("document.querySelector(\"#artifacts img\").naturalWidth > 0")
                page.screenshot(path=str(tmp_path / "run_page.png"), full_page=True)

                # a second (shorter) run, then the runs table and the compare page
                r = httpx.post(srv.url + "/api/runs", json={"text": tiny(4), "overrides": ["targets[0].runs[0].seed=7"]},
                               headers=srv.headers, timeout=60)
                other = r.json()["job_id"]
                page.goto(f"{srv.url}/dashboard/#/runs")
                page.wait_for_selector(f"#runs-table input.pick[value='{other}']")
                page.wait_for_function(f"document.querySelector(\"#runs-table\").innerText.split('completed').length > 2",
                                       timeout=180_000)  # both rows completed (the table refreshes itself)
                page.check(f"#runs-table input.pick[value='{job}']")
                page.check(f"#runs-table input.pick[value='{other}']")
                page.click("#compare")
                page.wait_for_selector("#compare-table td", timeout=60_000)
                assert page.get_attribute("#compare-train", "data-points") == str(STEPS + 4)
                text = page.inner_text("#compare-table")
                assert "train_loss" in text and "a" in text
                page.screenshot(path=str(tmp_path / "compare_page.png"), full_page=True)
                assert errors == [], errors
            finally:
                browser.close()
    shot = tmp_path / "run_page.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _write_finished_run(ws: Path, job: str) -> None:
    """A finished run directory written by hand in the layout the engine writes (events of
    engine/verify/report.py and engine/bench/run.py, results.json of
    engine/artifacts/bench_writer.py), and its job record."""
    from caramba.tools.job_store import JobRecord, JobStore

    run_dir = ws / "runs" / "tiny" / "train" / job
    (run_dir / "artifacts").mkdir(parents=True)
    (run_dir / "manifest.yml").write_text(tiny(3))
    (run_dir / "run.json").write_text(json.dumps({"manifest": "tiny", "target": "train", "run_id": job,
                                                  "created": 1.0, "argv": [], "pid": 1, "state": "completed"}))
    events = [{"event": "target_started", "run": None}, {"event": "run_started", "run": "a", "steps": 3}]
    events += [{"event": "progress", "run": "a", "step": s, "total": 3, "loss": 4.0 - s / 10, "lr": 1e-3,
                "tokens_per_s": 100.0 * s} for s in (1, 2, 3)]
    kv = {"type": "kvcache", "passed": True, "metrics": {"max_abs_err": 2e-6}, "thresholds": {"max_abs_err": 1e-4},
          "failures": []}
    fid = {"type": "fidelity", "passed": False, "metrics": {"kl": 0.31}, "thresholds": {"kl": 0.1},
           "failures": ["kl = 0.31 > the bound 0.1"]}
    events += [{"event": "eval", "run": "a", "step": 3, "val_loss": 3.95}]
    events += [{"event": "verify", "run": run, "verdict": "pass" if v["passed"] else "fail", "type": v["type"],
                "metrics": v["metrics"], "thresholds": v["thresholds"], "failures": v["failures"], "fail_fast": False}
               for run, v in (("a", kv), ("b", fid))]
    events += [{"event": "benchmark", "run": None, "id": "latency", "type": "latency", "rows": 2, "models": ["student"]},
               {"event": "run_finished", "run": "a", "metrics": {"train_loss": 3.7, "val_loss": 3.95}},
               {"event": "target_finished", "run": None, "state": "completed"}]
    (run_dir / "events.jsonl").write_text("".join(json.dumps({"ts": 1.0 + i, **e}) + "\n" for i, e in enumerate(events)))
    bench_rows = [{"model": "student", "repeat": 0, "seed": 0, "context": c, "p50_ms": p} for c, p in ((128, 8.25), (512, 19.5))]
    (run_dir / "results.json").write_text(json.dumps({
        "runs": {"a": {"train_loss": 3.7, "val_loss": 3.95}}, "verdicts": {"a": kv, "b": fid},
        "benchmarks": {"latency": {"type": "latency", "models": ["student"], "repeats": 1, "device": "cpu",
                                   "versions": {}, "rows": bench_rows}}}))
    JobStore(ws / ".caramba" / "jobs").save(JobRecord(job_id=job, manifest="manifests/tiny.yml", target="train",
                                                      state="completed", log=".caramba/jobs/x.log",
                                                      run_dir=f"runs/tiny/train/{job}"))


def test_verdicts_and_benchmarks_render(tmp_path):
    from playwright.sync_api import sync_playwright

    ws = tmp_path / "ws"
    ws.mkdir()
    job = "20260101-000000-abcdef01"
    _write_finished_run(ws, job)
    with api_server(ws) as srv, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})
            page.goto(f"{srv.url}/dashboard/#token={srv.token}")
            page.wait_for_selector(f"#runs-table a[href='#/run/{job}']")
            page.click(f"#runs-table a[href='#/run/{job}']")
            page.wait_for_selector("#verdicts td.verdict-fail")
            assert page.get_attribute("#loss-chart", "data-points") == "4"  # 3 train + 1 validation
            assert page.locator("#loss-chart polyline").count() == 2
            rows = page.locator("#verdicts tbody tr").all_inner_texts()
            assert len(rows) == 2  # the results.json verdicts replace the streamed ones, no duplicates
            assert any("kvcache" in r and "pass" in r and "2.000e-6" in r for r in rows)
            assert any("fidelity" in r and "fail" in r and "0.31 > the bound" in r for r in rows)
            assert page.locator("#verdicts td.verdict-pass").count() == 1
            page.wait_for_selector("#bench h3")
            assert page.inner_text("#bench h3") == "latency"
            bench = page.inner_text("#bench table")
            assert "p50_ms" in bench and "19.5" in bench and "512" in bench
            assert "3.95" in page.inner_text("#final-metrics")
            page.screenshot(path=str(tmp_path / "verdicts.png"), full_page=True)
        finally:
            browser.close()
