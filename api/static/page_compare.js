// Compare two or more runs: their loss curves (train and validation) on shared charts and
// their final metrics side by side, with repeated runs (seeds) pooled into mean ± 95% CI
// by the server (GET /api/compare).

import { api } from "./api.js";
import { LineChart } from "./chart.js";
import { errorBox, esc, stateBadge, table } from "./util.js";

async function allMetrics(id, split) {
  const rows = [];
  let offset = 0;
  while (offset !== null) {
    const page = await api(`/api/runs/${encodeURIComponent(id)}/metrics?split=${split}&offset=${offset}&limit=5000`);
    rows.push(...page.rows);
    offset = page.next_offset;
  }
  return rows;
}

export async function comparePage(app, ids) {
  app.innerHTML = `<h1>Compare ${ids.length} runs</h1><div id="who" class="card"></div>
    <div class="grid" id="charts"></div><h2>Final metrics</h2><div id="cmp" class="card"></div>
    <h2>Per run</h2><div id="per-run" class="card"></div>`;
  const statuses = await Promise.all(ids.map((id) => api(`/api/runs/${encodeURIComponent(id)}`)));
  app.querySelector("#who").innerHTML = statuses.map((s) =>
    `<div><a href="#/run/${esc(s.job_id)}">${esc(s.job_id)}</a> ${stateBadge(s.state)} <span class="muted">${esc(s.manifest)} · ${esc(s.target ?? "")}</span></div>`).join("");
  const charts = app.querySelector("#charts");
  const train = new LineChart(charts, { title: "train loss", xLabel: "step" });
  const val = new LineChart(charts, { title: "validation loss", xLabel: "step" });
  train.svg.id = "compare-train";
  for (const id of ids) {
    for (const [split, chart, key] of [["train", train, "loss"], ["val", val, "loss"]]) {
      const rows = await allMetrics(id, split);
      const byRun = {};
      for (const r of rows) (byRun[r.run ?? ""] ??= []).push([r.step, r[key] ?? r.val_loss]);
      for (const [run, pts] of Object.entries(byRun)) chart.set(`${id.slice(-8)}:${run}`, pts);
    }
  }
  train.emptyText = val.emptyText = "no metrics of this split";
  train.update(); val.update();
  try {
    const cmp = await api(`/api/compare?${ids.map((i) => `ids=${encodeURIComponent(i)}`).join("&")}`);
    const rows = cmp.rows.flatMap((r) => Object.entries(r.metrics).map(([m, s]) => ({
      key: r.key, metric: m, n: s.n, mean: s.mean, "± 95% CI": s.ci95 ?? "", runs: r.jobs.join(", ") })));
    app.querySelector("#cmp").innerHTML = table(rows, null, "compare-table");
  } catch (e) { app.querySelector("#cmp").innerHTML = errorBox(e); }
  const per = await Promise.all(ids.map((id) => api(`/api/runs/${encodeURIComponent(id)}/results`).catch(() => null)));
  const rows = [];
  per.forEach((res, i) => {
    const runs = res && res.results && res.results.runs;
    if (runs && !Array.isArray(runs)) for (const [rid, m] of Object.entries(runs)) rows.push({ job: ids[i], run: rid, ...m });
  });
  app.querySelector("#per-run").innerHTML = table(rows);
  return () => {};
}
