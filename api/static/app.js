// caramba dashboard entry: token intake, hash routing, and the runs table.
// Routes: #/runs (table + start form), #/run/<id> (live run page), #/compare/<id>,<id>,…

import { api, ApiError, setToken, takeTokenFromFragment } from "./api.js";
import { errorBox, esc, num, stateBadge, when } from "./util.js";
import { runPage } from "./page_run.js";
import { comparePage } from "./page_compare.js";

const app = document.getElementById("app");
let cleanup = null; // the current page's teardown (stops streams and timers)

function tokenForm(message) {
  app.innerHTML = `<div class="card"><h1>Token needed</h1><p>${esc(message)}</p>
    <p class="muted">Open the link printed by <code>caramba serve</code>, or paste the token from
    <code>&lt;workspace&gt;/.caramba/api_token</code>:</p>
    <form id="tok" class="row"><input id="tokv" size="50" autocomplete="off"><button class="primary">Use token</button></form></div>`;
  document.getElementById("tok").onsubmit = (ev) => { ev.preventDefault(); setToken(document.getElementById("tokv").value); route(); };
}

async function runsPage() {
  app.innerHTML = `<h1>Runs</h1>
    <div class="card"><form id="start" class="row">
      <label>preset <select id="preset"></select></label>
      <label>target <input id="target" size="10" placeholder="default"></label>
      <label>--set <input id="overrides" size="40" placeholder="targets[0].runs[0].steps=20 (space separated)"></label>
      <button class="primary">Start run</button><span id="startmsg"></span></form></div>
    <div class="row"><label>state <select id="state"><option value="">any</option>
      ${["running", "completed", "failed", "cancelled", "interrupted"].map((s) => `<option>${s}</option>`).join("")}</select></label>
      <button id="compare">Compare selected</button></div>
    <div id="runs" class="card"></div>`;
  const presets = await api("/api/presets");
  document.getElementById("preset").innerHTML = presets.map((p) => `<option>${esc(p.name)}</option>`).join("");
  document.getElementById("start").onsubmit = async (ev) => {
    ev.preventDefault();
    const msg = document.getElementById("startmsg");
    const overrides = document.getElementById("overrides").value.split(/\s+/).filter(Boolean);
    try {
      const st = await api("/api/runs", { method: "POST", body: {
        path: `preset:${document.getElementById("preset").value}`, overrides,
        target: document.getElementById("target").value || null } });
      location.hash = `#/run/${st.job_id}`;
    } catch (e) { msg.innerHTML = errorBox(e); }
  };
  document.getElementById("compare").onclick = () => {
    const ids = [...document.querySelectorAll("input.pick:checked")].map((c) => c.value);
    if (ids.length >= 2) location.hash = `#/compare/${ids.join(",")}`;
  };
  document.getElementById("state").onchange = () => refresh();
  async function refresh() {
    const state = document.getElementById("state").value;
    const data = await api(`/api/runs?limit=200${state ? `&state=${state}` : ""}`);
    const picked = new Set([...document.querySelectorAll("input.pick:checked")].map((c) => c.value));
    const rows = data.runs.map((r) => {
      const p = r.progress;
      return `<tr><td><input type="checkbox" class="pick" value="${esc(r.job_id)}" ${picked.has(r.job_id) ? "checked" : ""}></td>
        <td><a href="#/run/${esc(r.job_id)}">${esc(r.job_id)}</a></td><td>${esc(r.manifest)}</td><td>${esc(r.target ?? "")}</td>
        <td>${stateBadge(r.state)}</td><td>${p.step ?? ""}${p.total ? " / " + p.total : ""}</td>
        <td>${num(p.loss)}</td><td>${when(r.created)}</td></tr>`;
    }).join("");
    const active = data.runs.some((r) => r.state === "running" || r.state === "starting");
    document.getElementById("runs").innerHTML = data.runs.length ? `<table id="runs-table"><thead><tr><th></th><th>run</th>
      <th>manifest</th><th>target</th><th>state</th><th>step</th><th>loss</th><th>started</th></tr></thead><tbody>${rows}</tbody></table>`
      : `<p class="muted">No runs yet: start one above, over MCP, or with POST /api/runs.</p>`;
    return active;
  }
  // refresh every 2 s while a run is active, every 15 s otherwise (listing reads every run's events)
  let timer = null;
  const tick = async () => {
    const active = await refresh().catch(() => true);
    timer = setTimeout(tick, active ? 2000 : 15000);
  };
  await tick();
  return () => clearTimeout(timer);
}

async function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  const hash = location.hash || "#/runs";
  try {
    let m;
    if ((m = hash.match(/^#\/run\/([^/]+)$/))) cleanup = await runPage(app, decodeURIComponent(m[1]));
    else if ((m = hash.match(/^#\/compare\/(.+)$/))) cleanup = await comparePage(app, decodeURIComponent(m[1]).split(","));
    else cleanup = await runsPage();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) tokenForm(e.message);
    else app.innerHTML = errorBox(e);
  }
}

takeTokenFromFragment();
window.addEventListener("hashchange", route);
route();
