// Talking to the caramba REST API from the dashboard: the bearer token, JSON calls, and
// a server-sent-events reader built on fetch() (EventSource cannot send an
// Authorization header). The token arrives once in the URL fragment (#token=…, printed
// by `caramba serve`) and is kept in this origin's localStorage; it never goes into a URL
// the server sees.

const KEY = "caramba.api_token";

export function takeTokenFromFragment() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (m) {
    localStorage.setItem(KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + "#/runs");
  }
}

export function setToken(value) { localStorage.setItem(KEY, value.trim()); }

function headers(extra = {}) {
  const token = localStorage.getItem(KEY);
  return token ? { Authorization: `Bearer ${token}`, ...extra } : { ...extra };
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: headers(body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { message: text }; }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// An artifact as an object URL (images need the token, so no plain <img src>).
export async function blobUrl(path) {
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) throw new ApiError(res.status, null);
  return URL.createObjectURL(await res.blob());
}

// Follow a server-sent-events stream; onEvent(type, data, id) for every event. Resolves
// when the server ends the stream; reconnects (with the last id) if the connection drops
// before the server said "end".
export async function followEvents(path, onEvent, signal) {
  let lastId = null;
  let ended = false;
  while (!ended && !(signal && signal.aborted)) {
    const url = lastId ? `${path}?offset=${lastId}` : path;
    try {
      const res = await fetch(url, { headers: headers({ Accept: "text/event-stream" }), signal });
      if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value.replace(/\r\n?/g, "\n");
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let type = "message", data = "", id = null;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue; // keep-alive ping
            const i = line.indexOf(":");
            const field = i < 0 ? line : line.slice(0, i);
            const val = i < 0 ? "" : line.slice(i + 1).replace(/^ /, "");
            if (field === "event") type = val;
            else if (field === "data") data += (data ? "\n" : "") + val;
            else if (field === "id") id = val;
          }
          if (!data) continue;
          if (id) lastId = id;
          if (type === "end") ended = true;
          onEvent(type, JSON.parse(data), id);
        }
      }
    } catch (e) {
      if (signal && signal.aborted) return;
      if (e instanceof ApiError) throw e;
    }
    if (!ended) await new Promise((r) => setTimeout(r, 1000));
  }
}
