// statusflow dashboard: renders the snapshots of /api/stream (server-sent events), falling back
// to polling /api/snapshot. Every value is written with textContent: nothing from a topic is
// ever parsed as HTML.
//
// With tenants configured the data needs `Authorization: Bearer <token>`: a 401 shows the token
// form; the token is kept in this tab's sessionStorage and sent as a header on every request.
// EventSource cannot send headers, so with a token the stream is read with fetch (same
// server-sent events, parsed here); the token never goes into a URL.
"use strict";

// A cohort row: every message of the send cohort in attempted, then in one outcome or pending.
const COHORT = ["attempted", "delivered", "read", "failed", "pending", "expired"];
const COLORS = {
  queued: "#94a3b8", created: "#a78bfa", sent: "#3b82f6", delivered: "#10b981", read: "#0d9488", failed: "#ef4444",
  attempted: "#3b82f6", pending: "#94a3b8", expired: "#a78bfa",
  delivery_rate: "#10b981", read_rate: "#0d9488", failure_rate: "#ef4444", requests: "#3b82f6",
};
const SVG = "http://www.w3.org/2000/svg";
let latest = null;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") el.className = v;
    else if (k === "style") el.setAttribute("style", v);
    else el.setAttribute(k, String(v));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const child of children) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

const num = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
const pct = (r) => (r === null || r === undefined ? "–" : (r * 100).toFixed(1) + "%");
const ms = (v) => (v === undefined || v === null ? "–" : v >= 60000 ? (v / 60000).toFixed(1) + " min" : v >= 1000 ? (v / 1000).toFixed(1) + " s" : v + " ms");
const pad = (n) => String(n).padStart(2, "0");
function when(t) {
  const d = new Date(t);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
}
function shortWhen(t, withDate) {
  const d = new Date(t);
  const hm = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return withDate ? `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${hm}` : hm;
}

function replace(id, ...children) {
  const el = document.getElementById(id);
  el.replaceChildren(...children);
  return el;
}

// ---- key figures ---------------------------------------------------------------------------

function totals(rows) {
  const t = Object.fromEntries(COHORT.map((st) => [st, 0]));
  for (const row of rows) for (const st of COHORT) t[st] += row.counts[st];
  return t;
}

// Cohort rates (streams/domain/funnel.py): within [0, 1] because delivered and failed messages
// are attempted ones and read ones are delivered ones.
function ratesOf(c) {
  return {
    delivery_rate: c.attempted ? c.delivered / c.attempted : null,
    read_rate: c.delivered ? c.read / c.delivered : null,
    failure_rate: c.attempted ? c.failed / c.attempted : null,
  };
}

function kpi(key, label, value, shown, sub, tone) {
  return h("div", { class: `kpi ${tone || ""}`, "data-kpi": key, "data-value": value ?? "" },
    h("div", { class: "label" }, label), h("div", { class: "value" }, shown), h("div", { class: "sub" }, sub || ""));
}

function renderKpis(snap, rows) {
  const t = totals(rows);
  const r = ratesOf(t);
  const lag = snap.lag;
  const rec = snap.receiver;
  const firing = snap.alerts.firing.length;
  replace("kpis",
    kpi("attempted", "attempted", t.attempted, num(t.attempted), `${num(t.pending)} pending`),
    kpi("delivery_rate", "delivery rate", r.delivery_rate, pct(r.delivery_rate), `${num(t.delivered)} delivered`, "good"),
    kpi("read_rate", "read rate", r.read_rate, pct(r.read_rate), `${num(t.read)} read`),
    kpi("failure_rate", "failure rate", r.failure_rate, pct(r.failure_rate), `${num(t.failed)} failed`, t.failed ? "bad" : ""),
    kpi("dead_letters", "dead letters", snap.dead_letters.count, num(snap.dead_letters.count), "distinct webhooks", snap.dead_letters.count ? "bad" : ""),
    kpi("consumer_lag", "consumer lag", lag.error ? null : lag.total, lag.error ? "?" : num(lag.total), lag.error ? "not measured" : "records behind"),
    kpi("requests_rate", "receiver req/s", rec.rate, rec.rate === null ? "–" : rec.rate.toFixed(1), `${num(rec.total)} requests`),
    kpi("alerts_firing", "firing", firing, num(firing), `${num(snap.alerts.seen)} alerts seen`, firing ? "bad" : ""),
  );
  document.querySelector('[data-kpi="requests_rate"]').dataset.total = rec.total;
}

// ---- funnel --------------------------------------------------------------------------------

function funnelTable(id, rows, label, scopeAttr) {
  const table = document.getElementById(id);
  if (!rows.length) {
    table.replaceChildren(h("tbody", {}, h("tr", {}, h("td", { class: "empty" }, "no send cohorts yet"))));
    return;
  }
  const sm = (st) => (st === "expired" ? "hide-sm" : null); // rarely used; rates are in the key figures
  const head = h("tr", {}, h("th", {}, label), ...COHORT.map((st) => h("th", { class: sm(st) }, h("span", { class: "dot", style: `background:${COLORS[st]}` }), st)),
    h("th", { class: "hide-sm" }, "delivery"), h("th", { class: "hide-sm" }, "read"), h("th", { class: "hide-sm" }, "failure"));
  const rate = (name, value) => h("td", { class: "hide-sm", "data-rate": name, "data-value": value ?? "" }, pct(value));
  const body = rows.map((row) => {
    const top = Math.max(1, row.counts.attempted);
    return h("tr", { "data-scope": row[scopeAttr] },
      h("td", {}, row.label),
      ...COHORT.map((st) => h("td", { class: `n ${sm(st) || ""}`, "data-status": st, "data-value": row.counts[st] }, num(row.counts[st]),
        h("span", { class: "bar", style: `width:calc(${(100 * row.counts[st]) / top}% - 8px);background:${COLORS[st]}` }))),
      rate("delivery_rate", row.rates.delivery_rate), rate("read_rate", row.rates.read_rate), rate("failure_rate", row.rates.failure_rate));
  });
  table.replaceChildren(h("thead", {}, head), h("tbody", {}, body));
}

function renderFunnel(snap, scope) {
  const channels = snap.funnel.channels.filter((r) => scope === "all" || r.key === scope).map((r) => ({ ...r, label: r.key }));
  if (scope === "all" && channels.length > 1) {
    const t = totals(channels);
    channels.push({ key: "all", label: "all channels", counts: t, rates: ratesOf(t) });
  }
  funnelTable("funnel-channels", channels, "channel", "key");
  const campaigns = snap.funnel.campaigns
    .filter((r) => scope === "all" || `${r.provider}:${r.channel}` === scope)
    .map((r) => ({ ...r, label: `${r.campaign} (${r.provider}:${r.channel})` }));
  funnelTable("funnel-campaigns", campaigns, "campaign", "key");
  const totalRow = document.querySelector('#funnel-channels tr[data-scope="all"]');
  if (totalRow) totalRow.classList.add("total");
}

// ---- charts (inline SVG, categorical x: one slot per window that has data) -----------------

function chart(id, points, lines, opts) {
  const el = document.getElementById(id);
  if (!points.length) {
    el.replaceChildren(h("div", { class: "empty" }, opts.empty || "no data yet"));
    return;
  }
  const W = 600, H = opts.height || 220, L = 44, R = 10, T = 10, B = 26;
  const max = opts.max || Math.max(1, ...points.flatMap((p) => lines.map((l) => p[l.key] ?? 0)));
  const slot = (W - L - R) / points.length; // one slot per window, points in the middle of theirs
  const x = (i) => L + slot * (i + 0.5);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": opts.title || "chart" });
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    svg.append(s("line", { x1: L, x2: W - R, y1: y(max * f), y2: y(max * f), class: "axis" }));
    svg.append(s("text", { x: L - 6, y: y(max * f) + 4, "text-anchor": "end" }, opts.format(max * f)));
  }
  const step = Math.max(1, Math.ceil(points.length / 6));
  const days = new Set(points.map((p) => new Date(p.t).toISOString().slice(0, 10)));
  points.forEach((p, i) => {
    if (i % step === 0 || i === points.length - 1) {
      svg.append(s("text", { x: x(i), y: H - 8, "text-anchor": "middle" }, opts.label ? opts.label(p) : shortWhen(p.t, days.size > 1)));
    }
  });
  for (const line of lines) {
    const pts = points.map((p, i) => [i, p[line.key]]).filter(([, v]) => v !== null && v !== undefined);
    if (!pts.length) continue;
    if (opts.bars) {
      const bw = Math.max(2, Math.min(18, slot / (lines.length + 1)));
      const li = lines.indexOf(line);
      for (const [i, v] of pts) {
        svg.append(s("rect", { x: x(i) - (bw * lines.length) / 2 + li * bw, y: y(v), width: bw - 1, height: Math.max(0, y(0) - y(v)), fill: line.color },
          s("title", {}, `${line.name}: ${opts.format(v)}`)));
      }
    } else {
      svg.append(s("polyline", { points: pts.map(([i, v]) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: line.color, "stroke-width": 2 }));
      for (const [i, v] of pts) {
        svg.append(s("circle", { cx: x(i), cy: y(v), r: 3, fill: line.color }, s("title", {}, `${line.name}: ${opts.format(v)}`)));
      }
    }
  }
  const legend = h("div", { class: "legend" }, lines.map((l) => h("span", {}, h("span", { class: "dot", style: `background:${l.color}` }), l.name)));
  el.replaceChildren(svg, legend);
}

function renderCharts(snap, scope) {
  const cohorts = (snap.cohort_series[scope] || []).map((p) => ({ t: p.cohort_start, ...p }));
  document.getElementById("rates-scope").textContent = scope === "all" ? "all channels" : scope;
  chart("chart-rates", cohorts, [
    { key: "delivery_rate", name: "delivery (delivered / attempted)", color: COLORS.delivery_rate },
    { key: "read_rate", name: "read (read / delivered)", color: COLORS.read_rate },
    { key: "failure_rate", name: "failure (failed / attempted)", color: COLORS.failure_rate },
  ], { max: 1, format: (v) => Math.round(v * 100) + "%", title: "rates per send cohort", empty: "no send cohorts yet" });
  const series = (snap.series[scope] || []).map((p) => ({ t: p.window_start, ...p, ...p.counts }));
  chart("chart-counts", series, ["sent", "delivered", "read", "failed"].map((st) => ({ key: st, name: st, color: COLORS[st] })),
    { bars: true, format: (v) => num(v), title: "activity per window", empty: "no metric windows yet" });
  const t0 = snap.receiver.history.length ? snap.receiver.history[snap.receiver.history.length - 1].at : 0;
  const req = snap.receiver.history.map((p) => ({ t: p.at, requests: p.rate }));
  chart("chart-requests", req, [{ key: "requests", name: "requests/s (all receivers)", color: COLORS.requests }],
    { height: 150, format: (v) => v.toFixed(v < 10 ? 1 : 0), label: (p) => `${Math.round(p.t - t0)}s`, title: "receiver requests per second", empty: "no receiver scraped yet" });
}

// ---- tables --------------------------------------------------------------------------------

function table(id, head, rows, empty, opts) {
  const el = document.getElementById(id);
  if (!rows.length) {
    el.replaceChildren(h("tbody", {}, h("tr", {}, h("td", { class: "empty" }, empty))));
    return;
  }
  const cells = head.map((c) => (Array.isArray(c) ? h("th", { class: c[1] }, c[0]) : h("th", {}, c)));
  el.replaceChildren(h("thead", {}, opts && opts.groups ? opts.groups : null, h("tr", {}, cells)), h("tbody", {}, rows));
}

function renderLatency(snap, scope) {
  const rows = snap.latency.filter((r) => scope === "all" || r.key === scope).map((r) =>
    h("tr", { "data-scope": r.key }, h("td", {}, r.key),
      ...["p50", "p90", "p99"].map((q) => h("td", {}, ms(r.sent_to_delivered_ms[q]))),
      ...["p50", "p90", "p99"].map((q) => h("td", {}, ms(r.delivered_to_read_ms[q]))),
      h("td", { class: "hide-sm" }, shortWhen(r.window_start, true))));
  const groups = h("tr", {}, h("th", {}), h("th", { class: "group", colspan: 3 }, "sent → delivered"), h("th", { class: "group", colspan: 3 }, "delivered → read"), h("th", { class: "hide-sm" }));
  table("latency", ["channel", "p50", "p90", "p99", "p50", "p90", "p99", ["window (UTC)", "hide-sm"]], rows, "no latency measured yet", { groups });
}

function renderRequests(snap) {
  const rec = snap.receiver;
  const up = rec.targets.filter((t) => t.up).length;
  document.getElementById("receiver-targets").textContent = `${up}/${rec.targets.length} receivers answering`;
  const rows = Object.entries(rec.by_code).map(([code, v]) =>
    h("tr", { "data-code": code, "data-value": v.total }, h("td", {}, `HTTP ${code}`), h("td", {}, num(v.total)), h("td", {}, v.rate.toFixed(1) + "/s")));
  const providers = Object.entries(rec.by_provider).map(([p, v]) =>
    h("tr", { "data-provider": p }, h("td", {}, p), h("td", {}, num(v.total)), h("td", {}, v.rate.toFixed(1) + "/s")));
  table("requests", ["by code / provider", "requests", "rate"], [...rows, ...providers], "no requests counted yet");
}

function renderAlerts(snap, scope) {
  const a = snap.alerts;
  const summary = document.getElementById("alerts-summary");
  summary.textContent = `${num(a.seen)} distinct alerts seen · ${a.firing.length} firing`;
  summary.dataset.seen = a.seen;
  const match = (al) => scope === "all" || `${al.provider}:${al.channel}` === scope;
  replace("firing", ...(a.firing.filter(match).length ? [h("div", { class: "firing" }, a.firing.filter(match).map((al) =>
    h("span", { class: "pill", "data-firing": al.kind }, `${al.kind} · ${al.provider}:${al.channel} since ${when(al.occurred_at)}`)))] : []));
  const rows = a.latest.filter(match).slice(0, 25).map((al) =>
    h("tr", { "data-alert": al.alert_id, "data-kind": al.kind },
      h("td", { class: "l" }, when(al.occurred_at)), h("td", { class: "l" }, h("span", { class: `sev ${al.severity}` }, al.severity)),
      h("td", { class: "l hide-sm" }, al.kind), h("td", { class: "l hide-sm" }, `${al.provider}:${al.channel}`), h("td", { class: "text" }, al.detail)));
  table("alerts", [["event time (UTC)", "l"], ["severity", "l"], ["kind", "l hide-sm"], ["channel", "l hide-sm"], ["detail", "l"]], rows, "no alerts");
}

function renderLag(snap) {
  const lag = snap.lag;
  document.getElementById("lag-note").textContent = lag.error ? lag.error : `measured ${lag.updated_at ? new Date(lag.updated_at).toLocaleTimeString() : "–"}`;
  const rows = lag.rows.map((r) =>
    h("tr", { "data-group": r.group, "data-topic": r.topic, "data-value": r.lag }, h("td", {}, r.group), h("td", { class: "l" }, r.topic), h("td", {}, r.partitions), h("td", {}, num(r.lag))));
  for (const g of lag.idle_groups) rows.push(h("tr", { "data-group": g }, h("td", {}, g), h("td", { class: "l muted" }, "no commits yet"), h("td", {}, "–"), h("td", {}, "–")));
  table("lag", ["group", ["topic", "l"], "partitions", "lag"], rows, "no groups");
}

function renderDeadLetters(snap) {
  const d = snap.dead_letters;
  const rows = Object.entries(d.by_channel).map(([key, n]) => h("tr", { "data-scope": key, "data-value": n }, h("td", {}, key), h("td", {}, num(n)), h("td", {}, "")));
  for (const dl of d.latest.slice(0, 8)) rows.push(h("tr", {}, h("td", {}, dl.request_id), h("td", {}, when(dl.failed_at)), h("td", { class: "text" }, dl.reason)));
  table("dead-letters", ["channel / request", "count / when", ["reason", "l"]], rows, "no dead letters: every webhook was normalised");
}

// ---- wiring --------------------------------------------------------------------------------

function scopeChoices(snap) {
  const select = document.getElementById("scope");
  const keys = snap.funnel.channels.map((r) => r.key);
  const have = [...select.options].map((o) => o.value);
  if (keys.length + 1 !== have.length || keys.some((k, i) => have[i + 1] !== k)) {
    const current = select.value;
    select.replaceChildren(h("option", { value: "all" }, "all channels"), ...keys.map((k) => h("option", { value: k }, k)));
    select.value = keys.includes(current) ? current : "all";
  }
  return select.value;
}

function render(snap) {
  latest = snap;
  const scope = scopeChoices(snap);
  const rows = snap.funnel.channels.filter((r) => scope === "all" || r.key === scope);
  renderKpis(snap, rows);
  renderFunnel(snap, scope);
  renderCharts(snap, scope);
  renderLatency(snap, scope);
  renderRequests(snap);
  renderAlerts(snap, scope);
  renderLag(snap);
  renderDeadLetters(snap);
  document.body.dataset.generatedAt = snap.generated_at;
  document.getElementById("footer").textContent =
    `snapshot ${new Date(snap.generated_at).toLocaleString()} · read ${num(snap.records.funnel)} funnel, ${num(snap.records.metrics)} metric, ${num(snap.records.alerts)} alert and ${num(snap.records.dead_letters)} dead-letter records · cohorts, windows and alert times are event time (UTC)`;
}

function setLive(on, text) {
  const el = document.getElementById("live");
  el.className = `live ${on ? "on" : "off"}`;
  el.textContent = text;
}

// ---- access (tenants) -----------------------------------------------------------------------

const TOKEN_KEY = "statusflow.dashboard.token";
const token = () => sessionStorage.getItem(TOKEN_KEY);
const authHeaders = () => (token() ? { Authorization: `Bearer ${token()}` } : {});
let generation = 0; // bumped on sign-in/out: streams of an earlier token stop

function locked(note) {
  generation += 1;
  sessionStorage.removeItem(TOKEN_KEY); // a refused token is not tried again
  document.body.classList.add("locked");
  document.getElementById("login").hidden = false;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("login-note").textContent = note;
  setLive(false, "signed out");
  document.getElementById("token").focus();
}

function unlocked() {
  document.body.classList.remove("locked");
  document.getElementById("login").hidden = true;
  document.getElementById("sign-out").hidden = !token();
}

document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  sessionStorage.setItem(TOKEN_KEY, input.value.trim());
  input.value = "";
  connect();
});

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  latest = null;
  connect();
});

// ---- feeds ---------------------------------------------------------------------------------

async function poll() {
  try {
    const response = await fetch("/api/snapshot", { cache: "no-store", headers: authHeaders() });
    if (response.status === 401) return locked("The token was refused.");
    render(await response.json());
    setLive(true, "polling");
  } catch (err) {
    setLive(false, "offline");
  }
}

// Server-sent events over fetch: blocks end with a blank line; `event:`, `data:` and `retry:`
// lines are the ones the dashboard sends (comments, `:`, are heartbeats).
async function streamWithFetch(mine) {
  let retry = 2000;
  while (mine === generation) {
    try {
      const response = await fetch("/api/stream", { cache: "no-store", headers: authHeaders() });
      if (response.status === 401) return locked("The token was refused.");
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      while (mine === generation) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let name = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) name = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
            else if (line.startsWith("retry:")) retry = Number(line.slice(6)) || retry;
          }
          if (name === "snapshot" && data.length && mine === generation) {
            render(JSON.parse(data.join("\n")));
            setLive(true, "live");
          }
        }
      }
      reader.cancel().catch(() => {});
    } catch (err) {
      // the server went away or restarts: reconnect below, as EventSource would
    }
    if (mine !== generation) return;
    setLive(false, "reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, retry));
  }
}

async function connect() {
  const mine = ++generation;
  let response;
  try {
    response = await fetch("/api/snapshot", { cache: "no-store", headers: authHeaders() });
  } catch (err) {
    setLive(false, "offline");
    setTimeout(() => mine === generation && connect(), 3000);
    return;
  }
  if (response.status === 401) {
    const refused = token() !== null;
    return locked(refused ? "The token was refused." : "This deployment needs the token of a tenant or of the operator.");
  }
  unlocked();
  if (response.ok) render(await response.json());
  if (token()) {
    streamWithFetch(mine);
  } else if (!window.EventSource) {
    poll();
    setInterval(poll, 3000);
  } else {
    const source = new EventSource("/api/stream");
    source.addEventListener("snapshot", (event) => {
      render(JSON.parse(event.data));
      setLive(true, "live");
    });
    source.onerror = () => {
      setLive(false, "reconnecting…"); // EventSource retries by itself, but not past a 401:
      fetch("/api/snapshot", { cache: "no-store" }).then((response) => {
        if (response.status !== 401) return; // tenants were configured meanwhile (a reload)
        source.close();
        locked("This deployment needs the token of a tenant or of the operator.");
      }).catch(() => {});
    };
  }
}

document.getElementById("scope").addEventListener("change", () => latest && render(latest));
connect();
