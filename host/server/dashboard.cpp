#include "server/dashboard.hpp"

namespace tailgate::server {

namespace {

// The whole page. Everything is built with textContent / createElement (no
// innerHTML with data), so deployment and group names cannot inject markup.
constexpr std::string_view kPage = R"TGUI(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Tailgate dashboard</title>
<style>
:root { --bg:#f6f7f9; --card:#fff; --fg:#1d2330; --muted:#667085; --line:#e3e6eb;
        --ok:#1a7f37; --okbg:#dafbe1; --cool:#b42318; --coolbg:#fee4e2; --half:#9a6700; --halfbg:#fff4c2; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--fg); }
header { display:flex; align-items:center; gap:16px; padding:12px 20px; background:#111827; color:#f9fafb; }
header h1 { font-size:18px; margin:0; font-weight:600; }
header .sp { flex:1; }
header select { font:inherit; }
#status { font-size:12px; color:#d1d5db; }
#status.err { color:#fca5a5; }
main { padding:16px 20px; display:grid; gap:16px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px; overflow-x:auto; }
h2 { font-size:15px; margin:0 0 8px; }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
th, td { padding:5px 8px; border-bottom:1px solid var(--line); text-align:right; white-space:nowrap; }
th { font-weight:600; color:var(--muted); font-size:12px; }
th:first-child, td:first-child, td.l, th.l { text-align:left; }
th[colspan] { text-align:center; border-bottom:1px solid var(--line); }
tr.sub th { font-weight:500; font-size:11px; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
.healthy { color:var(--ok); background:var(--okbg); }
.cooling { color:var(--cool); background:var(--coolbg); }
.half_open { color:var(--half); background:var(--halfbg); }
.unknown { color:var(--muted); background:var(--line); }
.note { color:var(--muted); font-size:12px; margin:6px 0 0; }
.grid2 { display:grid; grid-template-columns: 2fr 1fr; gap:16px; }
@media (max-width: 1000px) { .grid2 { grid-template-columns: 1fr; } }
#chart svg { width:100%; height:260px; display:block; }
#legend { display:flex; flex-wrap:wrap; gap:12px; font-size:12px; color:var(--muted); margin-top:4px; }
#legend span.k { display:inline-block; width:18px; height:0; border-top:2px solid; vertical-align:middle; margin-right:4px; }
#events { list-style:none; margin:0; padding:0; max-height:260px; overflow-y:auto; font-size:13px; }
#events li { padding:4px 0; border-bottom:1px solid var(--line); }
#events time { color:var(--muted); margin-right:8px; font-variant-numeric:tabular-nums; }
.empty { color:var(--muted); font-style:italic; }
</style>
</head>
<body>
<header>
  <h1>Tailgate</h1>
  <label>window <select id="window"><option value="5m">5 min</option><option value="1h">1 h</option></select></label>
  <span class="sp"></span>
  <span id="control" title="config revision, last reload or admin change, drained deployments"></span>
  <form id="login" hidden><input type="password" id="key" placeholder="master key" autocomplete="current-password">
    <button type="submit">Sign in</button></form>
  <span id="status">loading&hellip;</span>
</header>
<main>
  <section>
    <h2>Deployments</h2>
    <table id="deployments">
      <thead>
        <tr><th rowspan="2">deployment</th><th rowspan="2" class="l">model group</th><th rowspan="2" class="l">state</th>
            <th rowspan="2">attempts</th><th rowspan="2">success rate</th><th rowspan="2">cooldowns</th><th rowspan="2">race wins</th>
            <th colspan="3">TTFT ms</th><th colspan="3">total ms (successes)</th></tr>
        <tr class="sub"><th>p50</th><th>p95</th><th>p99</th><th>p50</th><th>p95</th><th>p99</th></tr>
      </thead>
      <tbody></tbody>
    </table>
  </section>
  <section>
    <h2>Model groups</h2>
    <table id="groups">
      <thead>
        <tr><th rowspan="2">model group</th><th rowspan="2">requests</th><th colspan="3">client latency ms</th>
            <th colspan="3">client TTFT ms</th><th rowspan="2">hedge trigger</th><th rowspan="2">hedge wins</th>
            <th rowspan="2">extra load</th><th rowspan="2">races</th><th colspan="6">hedged / raced requests</th></tr>
        <tr class="sub"><th>p50</th><th>p95</th><th>p99</th><th>p50</th><th>p95</th><th>p99</th>
            <th>client p99</th><th>primary p99 (uncensored)</th><th>uncensored</th><th>censored</th>
            <th>shadow-sampled</th><th>primary alone p99 (shadow)</th></tr>
      </thead>
      <tbody></tbody>
    </table>
    <p class="note">"With vs without": for hedged or raced requests the client p99 (with the strategy) is shown next to
      the primary attempt's p99 <em>only where the primary finished first</em> (uncensored). When the primary lost it was
      cancelled and only a lower bound of its latency is known, so those requests are counted as censored and no
      "without" latency is invented for them: with many censored primaries the uncensored p99 understates what the
      client would have waited. With <code>shadow_sample_rate</code> set, a sample of lost primaries runs to completion
      off the client's path: "primary alone p99 (shadow)" is then the measured "without" tail.</p>
  </section>
  <section id="spend">
    <h2>Spend <span class="note">(USD; keys by the first 16 hex digits of their hash, or key_alias with
      general_settings.metrics_key_alias)</span> <span id="db" class="badge unknown">database</span></h2>
    <div class="grid2">
      <table id="spend-keys">
        <thead><tr><th class="l">key</th><th>spend (current period)</th><th>budget left</th></tr></thead>
        <tbody><tr><td class="empty" colspan="3">no key has spent yet</td></tr></tbody>
      </table>
      <table id="spend-deployments">
        <thead><tr><th class="l">model group</th><th class="l">deployment</th><th>spend</th><th>losers (est.)</th></tr></thead>
        <tbody><tr><td class="empty" colspan="4">nothing yet</td></tr></tbody>
      </table>
    </div>
  </section>
  <div class="grid2">
    <section id="chart">
      <h2>Client latency over time <span class="note">(window quantiles at each poll, last 100 polls)</span></h2>
      <svg id="chart-svg" viewBox="0 0 800 260" preserveAspectRatio="none" role="img" aria-label="client latency chart"></svg>
      <div id="legend"></div>
    </section>
    <section>
      <h2>Cooldown events <span class="note">(seen by this page)</span></h2>
      <ul id="events"><li class="empty">none yet</li></ul>
    </section>
  </div>
</main>
<script>
"use strict";
(function () {
  const POLL_MS = 3000, MAX_POINTS = 100;
  const COLORS = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#4b5563"];
  const QS = ["p50", "p95", "p99"], DASH = { p50: "", p95: "6 3", p99: "2 3" };
  const history = [];           // {t, groups: {name: {p50,p95,p99}}}
  const groupColor = {};
  let lastStates = null;        // deployment -> state
  let lastCooldowns = null;     // deployment -> tailgate_cooldowns_total
  let lastDoc = null;
  const events = [];
  const winSel = document.getElementById("window");

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function ms(v) { return v === null || v === undefined ? "\u2013" : (v >= 100 ? Math.round(v) : v.toFixed(1)); }
  function pct(v) { return v === null || v === undefined ? "\u2013" : (100 * v).toFixed(1) + " %"; }
  function cell(tr, text, field, cls) {
    const td = el("td", field ? { "data-field": field } : null, text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }
  function colorOf(g) {
    if (!(g in groupColor)) groupColor[g] = COLORS[Object.keys(groupColor).length % COLORS.length];
    return groupColor[g];
  }

  // Prometheus text: tailgate_deployment_state{deployment="x",state="cooling"} 1
  function parseLabels(s) {
    const out = {}, re = /(\w+)="((?:[^"\\]|\\.)*)"/g;
    let m;
    while ((m = re.exec(s)) !== null)
      out[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    return out;
  }
  function parseMetrics(text) {
    const states = {}, cooldowns = {}, keys = {}, spend = {};
    let dbUp = null;
    for (const line of text.split("\n")) {
      let k = /^tailgate_key_(spend|budget_remaining)_usd\{(.*)\}\s+(\S+)/.exec(line);
      if (k) {
        const l = parseLabels(k[2]);
        const name = l.key_alias || l.key;
        keys[name] = keys[name] || {};
        keys[name][k[1]] = Number(k[3]);
        continue;
      }
      k = /^tailgate_spend_usd_total\{(.*)\}\s+(\S+)/.exec(line);
      if (k) {
        const l = parseLabels(k[1]);
        const id = l.model_group + "\u0000" + l.deployment;
        spend[id] = spend[id] || { group: l.model_group, deployment: l.deployment, winner: 0, other: 0 };
        spend[id][l.kind === "winner" ? "winner" : "other"] += Number(k[2]);
        continue;
      }
      k = /^tailgate_database_up\{.*\}\s+(\S+)/.exec(line);
      if (k) dbUp = Number(k[1]) === 1;
      let m = /^tailgate_deployment_state\{(.*)\}\s+(\S+)/.exec(line);
      if (m) {
        const l = parseLabels(m[1]);
        if (Number(m[2]) === 1) states[l.deployment] = l.state;
        continue;
      }
      m = /^tailgate_cooldowns_total\{(.*)\}\s+(\S+)/.exec(line);
      if (m) cooldowns[parseLabels(m[1]).deployment] = Number(m[2]);
    }
    return { states, cooldowns, keys, spend, dbUp };
  }

  function usd(v) { return v === undefined ? "\u2013" : "$" + (v >= 1 ? v.toFixed(2) : v.toPrecision(3)); }
  function renderSpend(m) {
    const db = document.getElementById("db");
    db.textContent = m.dbUp === false ? "database unavailable" : "database connected";
    db.className = "badge " + (m.dbUp === false ? "cooling" : "healthy");
    const kb = document.querySelector("#spend-keys tbody");
    const names = Object.keys(m.keys).sort((a, b) => (m.keys[b].spend || 0) - (m.keys[a].spend || 0));
    if (names.length) kb.replaceChildren();
    for (const n of names.slice(0, 50)) {
      const tr = el("tr", { "data-spend-key": n });
      cell(tr, n, "key", "l");
      cell(tr, usd(m.keys[n].spend), "spend");
      cell(tr, usd(m.keys[n].budget_remaining), "remaining");
      kb.appendChild(tr);
    }
    const db2 = document.querySelector("#spend-deployments tbody");
    const rows = Object.values(m.spend);
    if (rows.length) db2.replaceChildren();
    for (const r of rows) {
      const tr = el("tr", { "data-spend-dep": r.deployment });
      cell(tr, r.group, "group", "l");
      cell(tr, r.deployment, "deployment", "l");
      cell(tr, usd(r.winner), "spend");
      cell(tr, usd(r.other), "losers");
      db2.appendChild(tr);
    }
  }

  function stateBadge(s) {
    const name = s === "half_open" ? "half-open" : (s || "unknown");
    return el("span", { class: "badge " + (s || "unknown") }, name);
  }

  function renderDeployments(w, states) {
    const tb = document.querySelector("#deployments tbody");
    tb.replaceChildren();
    for (const d of w.deployments) {
      const tr = el("tr", { "data-dep": d.deployment });
      cell(tr, d.deployment, "name");
      cell(tr, d.model_group, "group", "l");
      const st = cell(tr, null, "state", "l");
      st.appendChild(stateBadge(states ? states[d.deployment] : null));
      cell(tr, d.attempts, "attempts");
      cell(tr, pct(d.success_rate), "success_rate");
      cell(tr, d.cooldowns, "cooldowns");
      cell(tr, d.race_wins, "race_wins");
      for (const q of QS) cell(tr, ms(d.ttft_ms[q]), "ttft_" + q);
      for (const q of QS) cell(tr, ms(d.total_ms[q]), "total_" + q);
      tb.appendChild(tr);
    }
  }

  function renderGroups(w) {
    const tb = document.querySelector("#groups tbody");
    tb.replaceChildren();
    for (const name of Object.keys(w.model_groups)) {
      const g = w.model_groups[name], p = g.primary_on_hedged_or_raced;
      const tr = el("tr", { "data-group": name });
      const first = cell(tr, null, "name");
      const key = el("span", { class: "k" });
      key.style.cssText = "display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px;background:" + colorOf(name);
      first.append(key, document.createTextNode(name));
      cell(tr, g.requests, "requests");
      for (const q of QS) cell(tr, ms(g.latency_ms[q]), "latency_" + q);
      for (const q of QS) cell(tr, ms(g.ttft_ms[q]), "ttft_" + q);
      cell(tr, pct(g.hedging.trigger_rate) + " (" + g.hedging.hedged + ")", "hedge_trigger");
      cell(tr, pct(g.hedging.win_rate) + " (" + g.hedging.hedge_wins + ")", "hedge_win");
      cell(tr, pct(g.extra_load), "extra_load");
      cell(tr, g.races.count, "races");
      cell(tr, ms(p.client_latency_ms.p99), "hr_client_p99");
      cell(tr, ms(p.uncensored_latency_ms.p99), "primary_p99");
      cell(tr, p.uncensored, "uncensored");
      cell(tr, p.censored, "censored");
      cell(tr, p.shadow_sampled ?? 0, "shadow_sampled");
      cell(tr, p.shadow_primary_latency_ms ? ms(p.shadow_primary_latency_ms.p99) : ms(null), "shadow_p99");
      tb.appendChild(tr);
    }
  }

  const SVGNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function renderChart() {
    const root = document.getElementById("chart-svg");
    root.replaceChildren();
    const W = 800, H = 260, L = 48, R = 10, T = 10, B = 24;
    let max = 0;
    const groups = new Set();
    for (const h of history)
      for (const g in h.groups) {
        groups.add(g);
        for (const q of QS) if (h.groups[g][q] !== null) max = Math.max(max, h.groups[g][q]);
      }
    if (max <= 0) max = 1;
    const mag = Math.pow(10, Math.floor(Math.log10(max)));
    const top = Math.ceil(max / mag) * mag;
    const x = (i) => L + (history.length <= 1 ? 0 : (i * (W - L - R)) / (history.length - 1));
    const y = (v) => T + (H - T - B) * (1 - v / top);
    for (let k = 0; k <= 4; ++k) {
      const v = (top * k) / 4;
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e3e6eb" }));
      const t = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#667085" });
      t.textContent = (v >= 10 ? Math.round(v) : v.toFixed(1)) + "";
      root.appendChild(t);
    }
    const xl = svg("text", { x: W - R, y: H - 6, "text-anchor": "end", "font-size": 11, fill: "#667085" });
    xl.textContent = history.length ? "ms; " + history.length + " polls, every " + POLL_MS / 1000 + " s" : "no data yet";
    root.appendChild(xl);
    for (const g of groups) {
      for (const q of QS) {
        let d = "", pen = false, pts = [];
        history.forEach((h, i) => {
          const v = h.groups[g] ? h.groups[g][q] : null;
          if (v === null || v === undefined) { pen = false; return; }
          d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1) + " ";
          pen = true;
          pts.push([x(i), y(v)]);
        });
        if (!d) continue;
        const path = svg("path", { d: d, fill: "none", stroke: colorOf(g), "stroke-width": q === "p50" ? 2 : 1.5,
                                   "data-series": g + ":" + q });
        if (DASH[q]) path.setAttribute("stroke-dasharray", DASH[q]);
        root.appendChild(path);
        if (pts.length === 1)  // a lone point is invisible as a path
          root.appendChild(svg("circle", { cx: pts[0][0], cy: pts[0][1], r: 2.5, fill: colorOf(g) }));
      }
    }
    const legend = document.getElementById("legend");
    legend.replaceChildren();
    for (const g of groups) {
      for (const q of QS) {
        const s = el("span");
        const k = el("span", { class: "k" });
        k.style.borderTopColor = colorOf(g);
        if (q !== "p50") k.style.borderTopStyle = q === "p95" ? "dashed" : "dotted";
        s.append(k, document.createTextNode(g + " " + q));
        legend.appendChild(s);
      }
    }
  }

  function addEvent(text) {
    events.unshift({ t: new Date(), text: text });
    if (events.length > 200) events.pop();
    const ul = document.getElementById("events");
    ul.replaceChildren();
    for (const e of events) {
      const li = el("li", { "data-event": "" });
      li.append(el("time", { datetime: e.t.toISOString() }, e.t.toLocaleTimeString()), document.createTextNode(e.text));
      ul.appendChild(li);
    }
  }
  function detectEvents(m) {
    if (lastStates) {
      for (const dep in m.states) {
        const from = lastStates[dep], to = m.states[dep];
        const more = (m.cooldowns[dep] || 0) - ((lastCooldowns && lastCooldowns[dep]) || 0);
        if (from && from !== to) {
          addEvent(dep + ": " + from.replace("_", "-") + " \u2192 " + to.replace("_", "-") +
                   (more > 1 ? " (" + more + " cooldowns since last poll)" : ""));
        } else if (more > 0) {
          addEvent(dep + ": " + more + " cooldown" + (more > 1 ? "s" : "") + " between polls (now " + to.replace("_", "-") + ")");
        }
      }
    }
    lastStates = m.states;
    lastCooldowns = m.cooldowns;
  }

  function setStatus(text, err) {
    const s = document.getElementById("status");
    s.textContent = text;
    s.className = err ? "err" : "";
  }

  // Relative to where /ui is served (works behind a path-prefixing proxy).
  const BASE = location.pathname.replace(/\/ui\/?$/, "") + "/";
  // The master key, typed into the login form: kept for this tab only, sent as a header (never in a URL).
  let KEY = sessionStorage.getItem("tailgate-key") || "";
  const login = document.getElementById("login");
  login.addEventListener("submit", (ev) => {
    ev.preventDefault();
    KEY = document.getElementById("key").value;
    sessionStorage.setItem("tailgate-key", KEY);
    login.hidden = true;
    clearTimeout(timer);
    poll();
  });
  async function getText(path) {
    const headers = KEY ? { Authorization: "Bearer " + KEY } : {};
    const r = await fetch(BASE + path, { cache: "no-store", credentials: "same-origin", headers });
    if (r.status === 401) {
      login.hidden = false;
      throw new Error("sign in with the master key");
    }
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.text();
  }
  // Revision, last change and drained deployments (the admin API: needs the key).
  async function pollControl() {
    if (!KEY) return;
    try {
      const s = JSON.parse(await getText("admin/status"));
      document.getElementById("control").textContent = "revision " + s.revision + " · last change: " +
        s.last_result.slice(0, 80) + " · drained: " + (s.drained.length ? s.drained.join(", ") : "none");
    } catch (e) { /* the admin API is optional for the page */ }
  }

  let states = null;
  function render() {
    if (!lastDoc) return;
    const w = lastDoc.windows[winSel.value];
    renderDeployments(w, states);
    renderGroups(w);
    renderChart();
  }

  async function poll() {
    try {
      const [statsText, metricsText] = await Promise.all([getText("stats/strategies"), getText("metrics")]);
      pollControl();
      lastDoc = JSON.parse(statsText);
      const m = parseMetrics(metricsText);
      states = m.states;
      detectEvents(m);
      renderSpend(m);
      const point = { t: Date.now(), groups: {} };
      const w5 = lastDoc.windows["5m"];
      for (const g in w5.model_groups) {
        const l = w5.model_groups[g].latency_ms;
        point.groups[g] = { p50: l.p50, p95: l.p95, p99: l.p99 };
      }
      history.push(point);
      if (history.length > MAX_POINTS) history.shift();
      render();
      setStatus("updated " + new Date().toLocaleTimeString());
      document.body.setAttribute("data-polls", String((Number(document.body.getAttribute("data-polls")) || 0) + 1));
    } catch (e) {
      setStatus(String(e.message || e), true);
    } finally {
      timer = setTimeout(poll, POLL_MS);
    }
  }
  let timer = null;
  winSel.addEventListener("change", render);
  poll();
})();
</script>
</body>
</html>
)TGUI";

}  // namespace

std::string_view dashboard_html() noexcept { return kPage; }

}  // namespace tailgate::server
