// Hand-drawn SVG line charts (no charting library, no CDN): a few series of (x, y)
// points, linear axes with "nice" ticks, a legend. `LineChart.update()` redraws from the
// series arrays, so a page appends points as events arrive and calls it again.

const NS = "http://www.w3.org/2000/svg";
export const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// About n round tick values covering [lo, hi].
export function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) { const d = Math.abs(lo) || 1; lo -= d * 0.5; hi += d * 0.5; }
  const raw = (hi - lo) / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return { ticks: out, lo: Math.min(lo, out[0]), hi: Math.max(hi, out[out.length - 1]) };
}

function fmt(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return +v.toPrecision(4) + "";
}

export class LineChart {
  // container: element to draw into; opts: {title, xLabel, yLabel}
  constructor(container, opts = {}) {
    this.opts = opts;
    this.emptyText = opts.emptyText || null; // shown while there are no points
    this.series = new Map(); // name -> [[x, y], ...]
    this.root = document.createElement("div");
    this.root.className = "chart card";
    this.root.innerHTML = `<div class="title"></div>`;
    this.root.querySelector(".title").textContent = opts.title || "";
    this.svg = el("svg", { viewBox: "0 0 600 260", role: "img" });
    this.root.appendChild(this.svg);
    container.appendChild(this.root);
    this.update();
  }

  add(name, x, y) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) return;
    if (!this.series.has(name)) this.series.set(name, []);
    this.series.get(name).push([x, y]);
  }

  set(name, points) { this.series.set(name, points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))); }

  pointCount() { let n = 0; for (const p of this.series.values()) n += p.length; return n; }

  update() {
    const svg = this.svg;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const W = 600, H = 260, L = 58, R = 12, T = 10, B = 34;
    const all = [...this.series.values()].flat();
    svg.setAttribute("data-points", String(all.length));
    if (!all.length) {
      svg.appendChild(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", fill: "#6b7380" }, this.emptyText || "waiting for data…"));
      return;
    }
    const xs = niceTicks(Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0])));
    const ys = niceTicks(Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1])));
    const sx = (x) => L + ((x - xs.lo) / (xs.hi - xs.lo)) * (W - L - R);
    const sy = (y) => H - B - ((y - ys.lo) / (ys.hi - ys.lo)) * (H - T - B);
    for (const t of ys.ticks) {
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), stroke: "#eceff3" }));
      svg.appendChild(el("text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7380" }, fmt(t)));
    }
    for (const t of xs.ticks) {
      svg.appendChild(el("text", { x: sx(t), y: H - B + 16, "text-anchor": "middle", "font-size": 11, fill: "#6b7380" }, fmt(t)));
    }
    svg.appendChild(el("line", { x1: L, x2: L, y1: T, y2: H - B, stroke: "#9aa3af" }));
    svg.appendChild(el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#9aa3af" }));
    if (this.opts.xLabel) svg.appendChild(el("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", "font-size": 11, fill: "#6b7380" }, this.opts.xLabel));
    let i = 0;
    for (const [name, pts] of this.series) {
      const color = COLORS[i % COLORS.length];
      const sorted = [...pts].sort((a, b) => a[0] - b[0]);
      const attrs = { fill: "none", stroke: color, "stroke-width": 1.8, "data-series": name,
                      points: sorted.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(" ") };
      svg.appendChild(el("polyline", attrs));
      if (sorted.length === 1) svg.appendChild(el("circle", { cx: sx(sorted[0][0]), cy: sy(sorted[0][1]), r: 3, fill: color }));
      const ly = T + 12 + i * 14;
      svg.appendChild(el("rect", { x: W - R - 130, y: ly - 8, width: 10, height: 3, fill: color }));
      svg.appendChild(el("text", { x: W - R - 115, y: ly - 4, "font-size": 11, fill: "#1d2430" }, name));
      i += 1;
    }
  }
}
