"""The web page of ``hub serve``: plain server-rendered HTML and one small script (no build
step).  The overview lists the pipelines with state, lag, rates, snapshot progress and last
checkpoint; the detail view adds subtasks, checkpoint history, recent errors and the actions.
The script polls the JSON API every second and updates the cells in place; actions call the
API, with the token the user typed when the service asks for one (kept in the tab's
``sessionStorage`` only)."""
from __future__ import annotations

from collections.abc import Iterable
from html import escape


from hub.service.handle import PipelineHandle

_STYLE = """
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}
.state{font-weight:600}.RUNNING{color:#080}.FAILED{color:#b00}.PAUSED,.STOPPED{color:#a60}
.RESTARTING{color:#b60}.FINISHED{color:#06a}
button{margin-right:.5em}#message{color:#b00}
"""

_SCRIPT = """
const needsToken = %(needs_token)s;
const prev = {};
function fmt(v, digits) {
  if (v === null || v === undefined) return "-";
  if (typeof v === "number") return v.toLocaleString(undefined, {maximumFractionDigits: digits ?? 1});
  return String(v);
}
function set(id, value) { const el = document.getElementById(id); if (el) el.textContent = value; }
function rate(name, rows, now) {
  const p = prev[name]; prev[name] = {rows, now};
  if (!p || now <= p.now) return null;
  return (rows - p.rows) / ((now - p.now) / 1000);
}
function snapshot(s) {
  const g = s.gauges || {};
  if (g.snapshot_chunks_started === undefined) return "-";
  return fmt(g.snapshot_chunks_done, 0) + " / " + fmt(g.snapshot_chunks_started, 0) + " chunks";
}
function checkpoint(s) {
  const c = s.checkpoints.last;
  return c ? "#" + c.id + " " + fmt(c.age_s, 0) + "s ago (" + fmt(c.duration_s * 1000, 0) + " ms)" : "none yet";
}
function show(s) {
  const n = s.name, now = Date.now();
  const st = document.getElementById("state-" + n);
  if (st) { st.textContent = s.state; st.className = "state " + s.state; }
  set("lag-" + n, fmt(s.lag.event_time_lag_s, 1));
  set("in-" + n, fmt(s.rows_in, 0));
  set("out-" + n, fmt(s.rows_out, 0));
  const r = rate(n, s.rows_out, now);
  if (r !== null) set("rate-" + n, fmt(r, 0));
  set("snapshot-" + n, snapshot(s));
  set("checkpoint-" + n, checkpoint(s));
  set("error-" + n, s.last_error || "");
}
async function call(method, url) {
  const headers = {};
  let token = sessionStorage.getItem("hub-token");
  if (needsToken && !token) { token = prompt("HUB_TOKEN"); if (token) sessionStorage.setItem("hub-token", token); }
  if (token) headers["Authorization"] = "Bearer " + token;
  const r = await fetch(url, {method, headers});
  const msg = document.getElementById("message");
  if (!r.ok) {
    const body = await r.json().catch(() => ({message: r.statusText}));
    if (r.status === 401) sessionStorage.removeItem("hub-token");
    if (msg) msg.textContent = body.message;
  } else if (msg) { msg.textContent = ""; }
  refresh();
}
%(refresh)s
refresh();
setInterval(refresh, 1000);
"""

_REFRESH_ALL = """
async function refresh() {
  const r = await fetch("/pipelines?expand=status");
  if (!r.ok) return;
  const all = await r.json();
  for (const name in all) {
    if (!document.getElementById("row-" + name)) { location.reload(); return; }
    show(all[name]);
  }
}
"""

_REFRESH_ONE = """
async function refresh() {
  const r = await fetch("/pipelines/" + encodeURIComponent(%(name)s) + "/status");
  if (!r.ok) return;
  const s = await r.json();
  show(s);
  const rows = s.subtasks.map(t => "<tr><td>" + t.id + "</td><td>" + t.source + "</td><td>" + t.sink +
    "</td><td>" + fmt(t.rows_in, 0) + "</td><td>" + fmt(t.rows_out, 0) + "</td><td>" + t.queued + " / " +
    t.capacity + "</td><td>" + fmt(t.event_time_lag_s, 1) + "</td></tr>");
  document.getElementById("subtasks").innerHTML = rows.join("");
  document.getElementById("errors").replaceChildren(...s.errors.slice().reverse().map(e => {
    const li = document.createElement("li");
    li.textContent = new Date(e.at * 1000).toLocaleTimeString() + "  " + e.message;
    return li;
  }));
  const c = await fetch("/pipelines/" + encodeURIComponent(%(name)s) + "/checkpoints");
  if (!c.ok) return;
  const h = await c.json();
  document.getElementById("checkpoints").innerHTML = h.history.slice(0, 10).map(e =>
    "<tr><td>" + e.id + "</td><td>" + (e.completed_at ? new Date(e.completed_at * 1000).toLocaleTimeString() : "-") +
    "</td><td>" + (e.duration_s === null || e.duration_s === undefined ? "-" : fmt(e.duration_s * 1000, 0) + " ms") +
    "</td><td>" + fmt(e.size_bytes, 0) + "</td><td>" + (e.retained ? "yes" : "no") + "</td></tr>").join("");
}
"""

_COLUMNS = ("state", "lag (s)", "rows in", "rows out", "rows/s", "snapshot", "last checkpoint",
            "last error")


def _page(title: str, body: str, script: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body>{body}<script>{script}</script></body></html>")


def _row(p: PipelineHandle, link: bool) -> str:
    n = escape(p.name, quote=True)
    name = f"<a href='/ui/pipelines/{n}'>{n}</a>" if link else n
    state = p.current_state()
    cells = "".join(f"<td id='{field}-{n}'>-</td>" for field in
                    ("lag", "in", "out", "rate", "snapshot", "checkpoint", "error"))
    return (f"<tr id='row-{n}'><td>{name}</td><td id='state-{n}' class='state {state}'>"
            f"{state}</td>{cells}</tr>")


def _table(rows: Iterable[str]) -> str:
    head = "".join(f"<th>{c}</th>" for c in ("pipeline", *_COLUMNS))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _script(refresh: str, needs_token: bool) -> str:
    return _SCRIPT % {"needs_token": "true" if needs_token else "false", "refresh": refresh}


def overview(pipelines: list[PipelineHandle], needs_token: bool,
             broken: dict[str, str] | None = None) -> str:
    """The overview page: every pipeline, one row each; then those whose stored file does not
    load any more, with their first problem."""
    pipelines = sorted(pipelines, key=lambda p: p.name)
    body = "<h1>cdc-hub</h1>"
    body += _table(_row(p, True) for p in pipelines) if pipelines or broken else \
        "<p id='empty'>No pipelines yet: create one with  POST /pipelines  (a TOML body).</p>"
    if broken:
        items = "".join(f"<li id='broken-{escape(n, quote=True)}'><b>{escape(n)}</b>: "
                        f"{escape(text.splitlines()[0])}</li>" for n, text in sorted(broken.items()))
        body += f"<h2>Not loading</h2><ul>{items}</ul>"
    body += "<p><a href='/docs'>API</a> · <a href='/metrics'>metrics</a></p>"
    return _page("cdc-hub", body, _script(_REFRESH_ALL, needs_token))


def detail(p: PipelineHandle, needs_token: bool, actions: bool = True) -> str:
    """The detail page of one pipeline, with its actions (unless ``actions`` is False)."""
    n = escape(p.name, quote=True)
    url = f"/pipelines/{n}"
    buttons = "".join(
        f"<button id='{a}' onclick=\"call('{m}', '{url}/{a}')\">{a}</button>"
        for a, m in (("pause", "PUT"), ("resume", "PUT"), ("stop", "PUT"), ("restart", "POST"))
    ) if actions else ""
    body = (f"<p><a href='/'>all pipelines</a></p><h1>{n}</h1>"
            f"<p>{escape(p.spec.source_type)} &rarr; {escape(p.spec.sink_type)}, parallelism "
            f"{p.spec.parallelism}</p>{_table([_row(p, False)])}<p>{buttons}</p>"
            f"<p id='message'></p>"
            "<h2>Subtasks</h2><table><thead><tr><th>subtask</th><th>source</th><th>sink</th>"
            "<th>rows in</th><th>rows out</th><th>queue</th><th>lag (s)</th></tr></thead>"
            "<tbody id='subtasks'></tbody></table>"
            "<h2>Checkpoints</h2><table><thead><tr><th>id</th><th>completed</th>"
            "<th>duration</th><th>bytes</th><th>retained</th></tr></thead>"
            "<tbody id='checkpoints'></tbody></table>"
            "<h2>Recent errors</h2><ul id='errors'></ul>")
    refresh = _REFRESH_ONE % {"name": _js_string(p.name)}
    return _page(f"{p.name} - cdc-hub", body, _script(refresh, needs_token))


def _js_string(text: str) -> str:
    import json

    # a JSON string is a JS string; "</" can't end the script element early
    return json.dumps(text).replace("</", "<\\/")



