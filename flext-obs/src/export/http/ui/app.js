// The /ui page: polls /ui/data (and /ui/health) once a second with If-None-Match, keeps a short
// history per function for rates and sparklines, and draws everything with DOM nodes and SVG
// (text only through textContent: the data holds error messages and attributes from the service).
"use strict";
(function () {
  const POLL_MS = 1000;
  const HISTORY = 60; // points per sparkline
  const SVG = "http://www.w3.org/2000/svg";
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const state = {
    etag: null, data: null, previous: null, history: new Map(), rows: [],
    sort: { key: "rate", dir: -1 }, selected: null, trace: null, paused: false, reads: 0, errors: [],
  };
  window.flextUi = state; // for tests and curious people: the page's state

  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) node.append(c);
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }
  const key = (f) => f.module + "::" + f.function;
  // Three significant digits at most, no trailing zeros: 1 µs, 2.5 µs, 10 ms, 1.25 s.
  const short = (x) => String(Number(x.toPrecision(3)));
  function seconds(s) {
    if (s === null || s === undefined || !isFinite(s)) return "–";
    if (s < 1e-3) return short(s * 1e6) + " µs";
    if (s < 1) return short(s * 1e3) + " ms";
    return short(s) + " s";
  }
  const pct = (x) => (x === null || x === undefined ? "–" : (x * 100).toFixed(x > 0.999 && x < 1 ? 2 : 1) + " %");

  function headers() {
    const h = { Accept: "application/json" };
    if (token) h.Authorization = "Bearer " + token;
    return h;
  }

  async function poll() {
    if (!state.paused) {
      try {
        const h = headers();
        if (state.etag) h["If-None-Match"] = state.etag;
        const response = await fetch("/ui/data", { headers: h, cache: "no-store" });
        const now = performance.now();
        if (response.status === 200) {
          state.etag = response.headers.get("ETag");
          const data = await response.json();
          update(data, now);
        } else if (response.status === 304 && state.data) {
          update(state.data, now);
        } else {
          status("the endpoint answered " + response.status + (response.status === 401 ? " (open /ui#token=<token>)" : ""));
        }
      } catch (err) {
        status("cannot reach the endpoint: " + err.message);
      }
      pollHealth();
    }
    setTimeout(poll, POLL_MS);
  }

  async function pollHealth() {
    try {
      const response = await fetch("/ui/health", { headers: headers(), cache: "no-store" });
      if (response.status === 401) return;
      drawHealth(await response.json());
    } catch (err) {
      drawHealth(null);
    }
  }

  function status(text) { $("updated").textContent = text; }

  // One read: rates from the previous read (browser clock), history, then every view.
  function update(data, now) {
    const before = state.previous;
    const rows = data.functions.map((f) => {
      const id = key(f);
      const prior = before && before.byKey.get(id);
      const dt = prior ? (now - before.at) / 1000 : 0;
      const calls = prior ? f.calls - prior.calls : 0;
      const rate = prior && dt > 0 ? Math.max(0, calls) / dt : 0;
      const count = f.duration_count;
      const meanNow = prior && count - prior.count > 0 ? (f.duration_sum - prior.sum) / (count - prior.count) : null;
      let h = state.history.get(id);
      if (!h) { h = []; state.history.set(id, h); }
      if (prior) { h.push(meanNow); if (h.length > HISTORY) h.shift(); }
      return Object.assign({}, f, {
        id, rate, errorPct: f.calls ? f.errors / f.calls : 0, count,
        objectiveRank: f.objective ? (f.objective.met ? 1 : 2) : 0,
      });
    });
    state.previous = { at: now, byKey: new Map(rows.map((r) => [r.id, { calls: r.calls, sum: r.duration_sum, count: r.count }])) };
    state.data = data;
    state.rows = rows;
    state.reads += 1;
    $("service").textContent = data.service;
    document.title = data.service + " – flext-obs";
    status("updated " + new Date().toLocaleTimeString() + (data.functions_left_out ? " (" + data.functions_left_out + " functions not shown)" : ""));
    if (state.selected === null && rows.length) state.selected = [...rows].sort((a, b) => b.calls - a.calls)[0].id;
    drawFunctions();
    drawHistogram();
    drawCallers(data.callers);
    drawTraces(data.traces);
    drawAlerts(data.alerts);
    drawLogs(data.logs);
  }

  function sortValue(row, k) {
    if (k === "objective") return row.objectiveRank;
    const v = row[k];
    return v === null || v === undefined ? -Infinity : v;
  }

  function drawFunctions() {
    const { key: k, dir } = state.sort;
    const rows = [...state.rows].sort((a, b) => {
      const x = sortValue(a, k), y = sortValue(b, k);
      if (typeof x === "string" || typeof y === "string") return dir * String(x).localeCompare(String(y));
      return dir * (x - y) || a.function.localeCompare(b.function);
    });
    for (const th of document.querySelectorAll("#functions th[aria-sort]")) {
      const b = th.querySelector("button");
      th.setAttribute("aria-sort", b && b.dataset.key === k ? (dir > 0 ? "ascending" : "descending") : "none");
    }
    const body = document.querySelector("#functions tbody");
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.id : null;
    body.replaceChildren(...rows.map((r) => {
      const objective = r.objective
        ? el("span", { class: r.objective.met ? "ok" : "bad", title: objectiveTitle(r.objective), text: r.objective.name + (r.objective.met ? " ✓ met" : " ✗ missed") })
        : el("span", { class: "muted", text: "–" });
      const tr = el("tr", { tabindex: 0, "data-id": r.id, class: r.id === state.selected ? "selected" : null, "aria-selected": r.id === state.selected ? "true" : "false" },
        el("td", {}, el("span", { class: "name", text: r.function }), el("span", { class: "module", text: r.module })),
        el("td", { class: "num rate", text: r.rate.toFixed(r.rate < 10 ? 2 : 1) }),
        el("td", { class: "num" + (r.errors ? " bad" : ""), text: pct(r.errorPct) }),
        el("td", { class: "num", text: seconds(r.p50) }),
        el("td", { class: "num", text: seconds(r.p90) }),
        el("td", { class: "num", text: seconds(r.p99) }),
        el("td", { class: "num", text: String(r.in_flight) }),
        el("td", {}, objective),
        el("td", {}, sparkline(state.history.get(r.id) || [])));
      return tr;
    }));
    $("functions-empty").hidden = rows.length > 0;
    if (focused) { const again = body.querySelector('tr[data-id="' + CSS.escape(focused) + '"]'); if (again) again.focus(); }
  }

  function objectiveTitle(o) {
    const parts = [];
    if (o.success_target !== null) parts.push("success " + pct(o.success) + " of target " + pct(o.success_target));
    if (o.latency_threshold !== null) parts.push(pct(o.latency) + " within " + seconds(o.latency_threshold) + ", target " + pct(o.latency_target));
    return parts.join("; ");
  }

  function sparkline(points) {
    const w = 120, h = 24;
    const s = svg("svg", { width: w, height: h, viewBox: "0 0 " + w + " " + h, class: "spark", "aria-hidden": "true" });
    const values = points.filter((p) => p !== null);
    if (values.length < 2) return s;
    const max = Math.max(...values) || 1;
    let d = "", step = w / (HISTORY - 1), x0 = w - step * (points.length - 1), pen = false;
    points.forEach((p, i) => {
      if (p === null) { pen = false; return; }
      const x = (x0 + i * step).toFixed(1), y = (h - 2 - (p / max) * (h - 4)).toFixed(1);
      d += (pen ? "L" : "M") + x + " " + y; pen = true;
    });
    s.append(svg("path", { d, fill: "none", stroke: "#2f6fdd", "stroke-width": 1.5 }));
    return s;
  }

  function drawHistogram() {
    const target = $("histogram");
    const row = state.rows.find((r) => r.id === state.selected);
    $("histogram-function").textContent = row ? "– " + row.function : "";
    if (!row || !row.buckets.length) { target.replaceChildren(el("p", { class: "empty", text: "Select a function." })); return; }
    const counts = row.buckets.map((b, i) => [b[0], b[1] - (i ? row.buckets[i - 1][1] : 0)]);
    const rest = Math.max(0, row.count - row.buckets[row.buckets.length - 1][1]);
    counts.push([Infinity, rest]);
    const w = 560, h = 180, left = 36, bottom = 34, bw = (w - left) / counts.length;
    const max = Math.max(1, ...counts.map((c) => c[1]));
    const s = svg("svg", { viewBox: "0 0 " + w + " " + h, "data-function": row.function });
    s.append(svg("text", { x: 2, y: 10 }, String(max)), svg("text", { x: 2, y: h - bottom }, "0"));
    counts.forEach(([le, n], i) => {
      const bh = (n / max) * (h - bottom - 12);
      const bar = svg("rect", { x: left + i * bw + 1, y: h - bottom - bh, width: Math.max(1, bw - 2), height: bh, fill: "#2f6fdd", class: "bucket" });
      bar.append(svg("title", {}, "≤ " + (le === Infinity ? "+Inf" : seconds(le)) + ": " + n + " calls"));
      s.append(bar);
      if (i % Math.ceil(counts.length / 10) === 0 || le === Infinity) {
        s.append(svg("text", { x: left + i * bw, y: h - bottom + 12, transform: "rotate(30 " + (left + i * bw) + " " + (h - bottom + 12) + ")" }, le === Infinity ? "+Inf" : seconds(le)));
      }
    });
    const o = row.objective;
    if (o && o.latency_threshold !== null) {
      const i = row.buckets.findIndex((b) => b[0] >= o.latency_threshold * (1 - 1e-9));
      if (i >= 0) {
        const x = left + (i + 1) * bw;
        s.append(svg("line", { x1: x, x2: x, y1: 8, y2: h - bottom, stroke: "#c53030", "stroke-dasharray": "4 3", class: "threshold" }),
          svg("text", { x: x + 3, y: 18, fill: "#c53030" }, "objective " + seconds(o.latency_threshold)));
      }
    }
    target.replaceChildren(s);
  }

  function drawCallers(edges) {
    const target = $("callers");
    if (!edges.length) { target.replaceChildren(el("p", { class: "empty", text: "No monitored function has called another yet." })); return; }
    const name = (f, m) => m + "::" + f;
    const label = (f) => f;
    const nodes = new Map();
    const node = (id, text) => { if (!nodes.has(id)) nodes.set(id, { id, text, depth: 0, into: 0 }); return nodes.get(id); };
    for (const e of edges) { node(name(e.caller_function, e.caller_module), label(e.caller_function)); node(name(e.function, e.module), label(e.function)).into += 1; }
    // Layers: a node sits one column right of its deepest caller (bounded: cycles stop at the node count).
    for (let round = 0; round < nodes.size; round++) {
      let moved = false;
      for (const e of edges) {
        const from = nodes.get(name(e.caller_function, e.caller_module)), to = nodes.get(name(e.function, e.module));
        if (from !== to && to.depth < from.depth + 1 && from.depth + 1 < nodes.size) { to.depth = from.depth + 1; moved = true; }
      }
      if (!moved) break;
    }
    const columns = [];
    for (const n of nodes.values()) { (columns[n.depth] = columns[n.depth] || []).push(n); }
    const colW = 170, rowH = 34, w = Math.max(360, columns.length * colW), h = Math.max(80, Math.max(...columns.map((c) => (c || []).length)) * rowH + 20);
    columns.forEach((c, d) => (c || []).forEach((n, i) => { n.x = 10 + d * colW; n.y = 16 + i * rowH; }));
    const s = svg("svg", { viewBox: "0 0 " + w + " " + h });
    const max = Math.max(...edges.map((e) => e.calls));
    for (const e of edges) {
      const a = nodes.get(name(e.caller_function, e.caller_module)), b = nodes.get(name(e.function, e.module));
      const line = svg("path", { d: "M" + (a.x + 130) + " " + (a.y + 8) + " C" + (a.x + 150) + " " + (a.y + 8) + " " + (b.x - 20) + " " + (b.y + 8) + " " + b.x + " " + (b.y + 8),
        fill: "none", stroke: "#8aa4c8", "stroke-width": 1 + 3 * (e.calls / max), class: "edge" });
      line.append(svg("title", {}, e.caller_function + " → " + e.function + ": " + e.calls + " calls"));
      s.append(line);
    }
    for (const n of nodes.values()) {
      const g = svg("g", { class: "node" });
      g.append(svg("rect", { x: n.x, y: n.y, width: 130, height: 18, rx: 3, fill: "#eaf1fd", stroke: "#2f6fdd" }),
        svg("text", { x: n.x + 4, y: n.y + 13, fill: "#1d232b" }, n.text.length > 24 ? n.text.slice(0, 23) + "…" : n.text));
      g.append(svg("title", {}, n.id));
      s.append(g);
    }
    target.replaceChildren(s);
  }

  function drawTraces(traces) {
    const list = $("trace-list");
    if (!traces.length) { list.replaceChildren(el("li", { class: "empty", text: "No span recorded yet." })); $("waterfall").replaceChildren(); return; }
    if (!state.trace || !traces.some((t) => t.trace_id === state.trace)) state.trace = traces[0].trace_id;
    list.replaceChildren(...traces.map((t) => {
      const root = t.spans.find((s) => !s.parent_span_id || !t.spans.some((o) => o.span_id === s.parent_span_id)) || t.spans[0];
      const failed = t.spans.some((s) => s.status === "error");
      const b = el("button", { type: "button", "data-trace": t.trace_id, "aria-current": t.trace_id === state.trace ? "true" : "false" },
        el("span", { class: failed ? "bad" : "", text: (failed ? "✗ " : "") + root.name }), el("span", { class: "module", text: t.spans.length + (t.spans.length === 1 ? " span · " : " spans · ") + new Date(t.start_ms).toLocaleTimeString() }));
      return el("li", {}, b);
    }));
    drawWaterfall(traces.find((t) => t.trace_id === state.trace));
  }

  function drawWaterfall(trace) {
    const ids = new Set(trace.spans.map((s) => s.span_id));
    const children = new Map();
    for (const s of trace.spans) {
      const parent = s.parent_span_id && ids.has(s.parent_span_id) ? s.parent_span_id : "";
      (children.get(parent) || children.set(parent, []).get(parent)).push(s);
    }
    const ordered = [];
    const visit = (parent, depth) => { for (const s of children.get(parent) || []) { if (ordered.length < 500) { ordered.push([s, depth]); visit(s.span_id, depth + 1); } } };
    visit("", 0);
    const end = Math.max(1, ...trace.spans.map((s) => s.offset_us + (s.duration_us || 0)));
    const rows = ordered.map(([s, depth]) => {
      const attrs = Object.entries(s.attributes).map(([k, v]) => k + "=" + v).join("\n");
      const title = s.name + " · " + (s.duration_us === null ? "pending" : seconds(s.duration_us / 1e6)) + " · " + s.status + (attrs ? "\n" + attrs : "");
      const bar = el("div", { class: "span-bar" + (s.status === "error" ? " error" : ""), title });
      bar.style.left = (100 * s.offset_us / end).toFixed(2) + "%";
      bar.style.width = (100 * (s.duration_us || 0) / end).toFixed(2) + "%";
      const nameCell = el("div", { class: "span-name" + (s.status === "error" ? " bad" : ""), title, text: s.name });
      nameCell.style.paddingLeft = (depth * 12) + "px";
      return el("div", { class: "span-row", "data-span": s.span_id, "data-status": s.status }, nameCell, el("div", { class: "span-track" }, bar));
    });
    $("waterfall").replaceChildren(el("p", { class: "hint", text: "trace " + trace.trace_id + " · " + seconds(end / 1e6) + (trace.spans_left_out ? " · " + trace.spans_left_out + " spans not shown" : "") }), ...rows);
  }

  function drawAlerts(alerts) {
    $("alerts").replaceChildren(...(alerts.length ? alerts.map((a) => el("li", { class: "alert" },
      el("span", { class: "sev " + (["low", "medium"].includes(a.severity) ? "warn" : "bad"), text: a.severity }),
      el("strong", { text: a.title }), document.createTextNode(" – " + a.message + (a.count > 1 ? " (×" + a.count + ")" : "")),
      el("span", { class: "module", text: new Date(a.timestamp).toLocaleTimeString() })))
      : [el("li", { class: "empty", text: "No alert." })]));
  }

  function drawHealth(report) {
    const pill = $("health-pill");
    if (!report || !report.components) { pill.className = "pill unknown"; pill.textContent = "health: unreachable"; return; }
    pill.className = "pill " + report.status;
    pill.textContent = "health: " + report.status;
    $("health").replaceChildren(...report.components.map((c) => el("li", {},
      el("span", { class: "sev " + (c.status === "healthy" ? "ok" : c.status === "degraded" ? "warn" : "bad"), text: c.status }),
      el("strong", { text: c.component }), document.createTextNode(c.message ? " – " + c.message : ""))));
  }

  function drawLogs(logs) {
    const rows = [...logs].reverse().map((l) => el("tr", {},
      el("td", { text: new Date(l.timestamp).toLocaleTimeString() }),
      el("td", { class: l.level === "error" || l.level === "critical" ? "bad" : l.level === "warning" ? "warn" : "", text: l.level }),
      el("td", { class: "msg", text: l.message }),
      el("td", { text: l.trace_id ? l.trace_id.slice(0, 16) + "…" : "" }),
      el("td", { text: l.correlation_id || "" })));
    document.querySelector("#logs tbody").replaceChildren(...rows);
    $("logs-empty").hidden = rows.length > 0;
  }

  function select(id) {
    state.selected = id;
    drawFunctions();
    drawHistogram();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelector("#functions thead").addEventListener("click", (event) => {
      const b = event.target.closest("button[data-key]");
      if (!b) return;
      const k = b.dataset.key;
      state.sort = { key: k, dir: state.sort.key === k ? -state.sort.dir : (k === "function" ? 1 : -1) };
      drawFunctions();
    });
    const body = document.querySelector("#functions tbody");
    body.addEventListener("click", (event) => { const tr = event.target.closest("tr[data-id]"); if (tr) { select(tr.dataset.id); } });
    body.addEventListener("keydown", (event) => {
      const tr = event.target.closest("tr[data-id]");
      if (!tr) return;
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(tr.dataset.id); body.querySelector('tr[data-id="' + CSS.escape(tr.dataset.id) + '"]').focus(); }
      else if (event.key === "ArrowDown" && tr.nextElementSibling) { event.preventDefault(); tr.nextElementSibling.focus(); }
      else if (event.key === "ArrowUp" && tr.previousElementSibling) { event.preventDefault(); tr.previousElementSibling.focus(); }
    });
    $("trace-list").addEventListener("click", (event) => {
      const b = event.target.closest("button[data-trace]");
      if (b && state.data) { state.trace = b.dataset.trace; drawTraces(state.data.traces); }
    });
    $("pause").addEventListener("click", (event) => {
      state.paused = !state.paused;
      event.target.setAttribute("aria-pressed", String(state.paused));
      event.target.textContent = state.paused ? "Resume" : "Pause";
    });
    window.addEventListener("error", (event) => state.errors.push(String(event.message)));
    poll();
  });
})();
