// The live run page: state and progress, loss / learning-rate / throughput charts fed by
// the run's server-sent events, final metrics, verification verdicts, benchmark tables,
// artifacts (images inline), the model tree and the raw event log.

import { api, blobUrl, followEvents } from "./api.js";
import { LineChart } from "./chart.js";
import { errorBox, esc, num, stateBadge, table } from "./util.js";

export async function runPage(app, id) {
  const st = await api(`/api/runs/${encodeURIComponent(id)}`);
  const base = `/api/runs/${encodeURIComponent(id)}`;
  app.innerHTML = `<h1>Run <span id="run-id">${esc(id)}</span> <span id="run-state">${stateBadge(st.state)}</span></h1>
    <div class="card"><div class="row"><span>${esc(st.manifest)} · target <b>${esc(st.target ?? "default")}</b></span>
      <span id="step-text" class="muted"></span><button id="cancel">Cancel</button><button id="resume">Resume</button></div>
      <div class="progress"><div id="bar" style="width:0%"></div></div><div id="run-msg"></div></div>
    <div class="grid" id="charts"></div>
    <h2>Final metrics</h2><div id="final" class="card"><p class="muted">appear when the run finishes</p></div>
    <h2>Verification</h2><div id="verify" class="card"><p class="muted">no verification results</p></div>
    <h2>Benchmarks</h2><div id="bench" class="card"><p class="muted">no benchmark results</p></div>
    <h2>Artifacts</h2><div id="artifacts" class="card artifacts"><p class="muted">none yet</p></div>
    <h2>Model</h2><div id="tree" class="card tree"><p class="muted">loading…</p></div>
    <h2>Events</h2><pre id="events"></pre>`;
  const $ = (sel) => app.querySelector(sel);
  const charts = $("#charts");
  const loss = new LineChart(charts, { title: "loss", xLabel: "step" });
  const lr = new LineChart(charts, { title: "learning rate", xLabel: "step" });
  const tps = new LineChart(charts, { title: "throughput (tokens/s)", xLabel: "step" });
  loss.svg.id = "loss-chart";
  const verdicts = [], benches = {}, finals = {};
  let state = st.state, redraw = false, treeShown = false;

  const setState = (s, message) => {
    state = s;
    $("#run-state").innerHTML = stateBadge(s);
    $("#cancel").disabled = !["running", "starting"].includes(s);
    $("#resume").disabled = !["cancelled", "interrupted", "failed"].includes(s);
    $("#run-msg").innerHTML = message && s !== "running" ? errorBox({ message }) : "";
  };
  setState(st.state, st.message);
  $("#cancel").onclick = async () => { try { setState((await api(`${base}/cancel?wait_s=0`, { method: "POST" })).state); } catch (e) { $("#run-msg").innerHTML = errorBox(e); } };
  $("#resume").onclick = async () => { try { await api(`${base}/resume`, { method: "POST" }); location.reload(); } catch (e) { $("#run-msg").innerHTML = errorBox(e); } };

  const log = $("#events");
  const onEvent = (type, ev) => {
    if (type !== "state" && type !== "end") {
      log.textContent = (log.textContent + JSON.stringify(ev) + "\n").split("\n").slice(-200).join("\n");
    }
    const run = ev.run ?? "";
    if (type === "state" || type === "end") setState(ev.state, ev.message);
    else if (type === "run_started" && !treeShown) showTree();
    else if (type === "progress") {
      loss.add(`${run} train`, ev.step, ev.loss); lr.add(run, ev.step, ev.lr); tps.add(run, ev.step, ev.tokens_per_s);
      $("#bar").style.width = ev.total ? `${(100 * ev.step) / ev.total}%` : "0%";
      $("#step-text").textContent = `${run}: step ${ev.step}/${ev.total ?? "?"} · loss ${num(ev.loss)}`;
      redraw = true;
    } else if (type === "eval") { loss.add(`${run} val`, ev.step, ev.val_loss); redraw = true; }
    else if (type === "verify") { verdicts.push(verdictRow(run, ev)); showVerdicts(verdicts); }
    else if (type === "benchmark") { benches[ev.id] = ev; showBenches(benches); }
    else if (type === "run_finished") { finals[run] = ev.metrics || {}; showFinals(finals); }
    else if (type === "artifact") showArtifacts();
    if (type === "target_finished" || type === "end") loadResults();
  };
  const frame = () => { if (redraw) { redraw = false; loss.update(); lr.update(); tps.update(); } raf = requestAnimationFrame(frame); };
  let raf = requestAnimationFrame(frame);

  function showFinals(runs) {
    const rows = Object.entries(runs).map(([rid, m]) => ({ run: rid, ...(m.metrics ?? m) }));
    $("#final").innerHTML = rows.length ? table(rows, null, "final-metrics") : `<p class="muted">no final metrics</p>`;
  }
  // verify events / results.json verdicts: {run, type, verdict|passed, metrics, thresholds, failures}
  function verdictRow(run, v) {
    const verdict = v.verdict ?? (v.passed === undefined ? "" : v.passed ? "pass" : "fail");
    const metrics = v.metrics || {};
    return { run, check: v.type ?? v.check ?? "", verdict, ...metrics,
             failures: (v.failures || []).join("; ") };
  }
  function showVerdicts(rows) {
    if (!rows.length) return;
    const metricCols = [...new Set(rows.flatMap((r) => Object.keys(r)))].filter((c) => !["run", "check", "verdict", "failures"].includes(c));
    $("#verify").innerHTML = table(rows, ["run", "check", "verdict", ...metricCols, "failures"], "verdicts");
    $("#verify").querySelectorAll("td").forEach((td) => {
      const t = td.textContent.trim().toLowerCase();
      if (t === "pass") td.classList.add("verdict-pass");
      if (t === "fail") td.classList.add("verdict-fail");
    });
  }
  // benchmark events carry {id, type, rows: count}; results.json has the measured rows
  function showBenches(byId) {
    const ids = Object.keys(byId);
    if (!ids.length) return;
    $("#bench").innerHTML = ids.map((id) => {
      const b = byId[id];
      const head = `<h3>${esc(id)}</h3><p class="muted">${esc(b.type ?? "")}${b.device ? " · " + esc(b.device) : ""}</p>`;
      return head + (Array.isArray(b.rows) ? table(b.rows) : `<p class="muted">${num(b.rows)} rows measured; the table appears when the run finishes</p>`);
    }).join("");
  }
  async function showArtifacts() {
    const list = await api(`${base}/artifacts`).catch(() => []);
    if (!list.length) return;
    const box = $("#artifacts");
    box.innerHTML = `<ul>${list.map((a) => `<li><a href="#" data-path="${esc(a.path)}">${esc(a.path)}</a>
      <span class="muted">${esc(a.content_type)} · ${a.bytes} B</span></li>`).join("")}</ul><div class="grid" id="images"></div>`;
    box.querySelectorAll("a[data-path]").forEach((a) => (a.onclick = async (ev) => {
      ev.preventDefault();
      const link = document.createElement("a");
      link.href = await blobUrl(`${base}/artifacts/${a.dataset.path}`); link.download = a.dataset.path.split("/").pop(); link.click();
    }));
    for (const a of list.filter((x) => x.content_type.startsWith("image/"))) {
      const img = document.createElement("img");
      img.alt = a.path; img.src = await blobUrl(`${base}/artifacts/${a.path}`);
      box.querySelector("#images").appendChild(img);
    }
  }
  async function showTree() {
    try {
      const t = await api(`${base}/tree`);
      treeShown = true;
      const node = (n) => `<li><b>${esc(n.name)}</b> <span class="type">${esc(n.type)}</span> <span class="params">${num(n.params)} params</span>
        ${n.children && n.children.length ? `<ul>${n.children.map(node).join("")}</ul>` : ""}</li>`;
      $("#tree").innerHTML = t.tree ? `<p>${num(t.params)} parameters</p><ul>${node(t.tree)}</ul>` : `<p class="muted">no model tree</p>`;
    } catch (e) { if (e.status !== 404) $("#tree").innerHTML = errorBox(e); }
  }
  async function loadResults() {
    const res = await api(`${base}/results`).catch(() => null);
    if (!res || !res.results) return;
    const r = res.results;
    if (r.runs) showFinals(Array.isArray(r.runs) ? Object.fromEntries(r.runs.map((x) => [x.id, x])) : r.runs);
    const v = r.verdicts;
    if (v && typeof v === "object") {
      const rows = Array.isArray(v) ? v.map((x) => verdictRow(x.run ?? "", x))
        : Object.entries(v).flatMap(([rid, x]) => (Array.isArray(x) ? x : [x]).map((y) => verdictRow(rid, y)));
      showVerdicts(rows);
    }
    if (r.benchmarks && typeof r.benchmarks === "object") showBenches(r.benchmarks);
    showArtifacts();
  }

  showTree();
  const abort = new AbortController();
  followEvents(`${base}/events`, onEvent, abort.signal).catch((e) => { $("#run-msg").innerHTML = errorBox(e); });
  return () => { abort.abort(); cancelAnimationFrame(raf); };
}
