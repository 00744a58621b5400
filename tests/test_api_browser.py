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
