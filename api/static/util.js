// Small DOM helpers shared by the dashboard pages (no framework).

export function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

export function num(v) {
  if (typeof v !== "number" || !Number.isFinite(v)) return esc(v ?? "");
  const a = Math.abs(v);
  if (Number.isInteger(v) && a < 1e9) return String(v);
  return a !== 0 && (a >= 1e6 || a < 1e-3) ? v.toExponential(3) : v.toPrecision(5).replace(/\.?0+$/, "");
}

export function stateBadge(state) { return `<span class="state state-${esc(state)}">${esc(state)}</span>`; }

export function when(ts) { return ts ? new Date(ts * 1000).toLocaleString() : ""; }

// A table from rows of objects: columns = the union of their keys (or the given ones).
export function table(rows, columns = null, id = "") {
  if (!rows.length) return `<p class="muted">none</p>`;
  const cols = columns || [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const head = cols.map((c) => `<th>${esc(c)}</th>`).join("");
  const body = rows.map((r) => `<tr>${cols.map((c) => `<td>${cell(r[c])}</td>`).join("")}</tr>`).join("");
  return `<table${id ? ` id="${esc(id)}"` : ""}><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function cell(v) {
  if (v && typeof v === "object") return `<code>${esc(JSON.stringify(v))}</code>`;
  if (typeof v === "boolean") return v ? "✔" : "✘";
  return num(v);
}

export function errorBox(e) {
  const body = e && e.body ? e.body : null;
  const fix = body && body.fix ? `\nfix: ${body.fix}` : "";
  return `<div class="card error">${esc(e.message || String(e))}${esc(fix)}</div>`;
}
