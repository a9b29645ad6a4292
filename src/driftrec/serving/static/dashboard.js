// The driftrec dashboard: plain modern JS, no build step. Everything it shows comes from the
// service's own JSON API (fetch, same origin); the API key lives in sessionStorage and goes out
// as X-API-Key on every call. User data is only ever inserted as text, never as HTML.
"use strict";

const KEY_STORAGE = "driftrec.apiKey";
const OVERVIEW_EVERY_MS = 5000;
const ONLINE_EVERY_MS = 15000; // the online metrics scan the stored impressions: less often
const PALETTE = [
  "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#86bcb6", "#d37295", "#a0cbe8",
];
const OTHER_COLOUR = "#cfd6df";
const PLOT_CONFIG = { displayModeBar: false, responsive: true };
const FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#334155" };

const state = {
  user: null,          // the user shown
  eventTypes: [],      // the served model's event types (from /overview)
  recs: null,          // the last answers, to tell what a posted event changed
  interests: null,
  timeline: null,
  newItems: new Set(), // items that entered the top 10 with the last posted event
  rankBefore: new Map(), // item -> rank before the last posted event
  topicColours: new Map(),
};

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ the API
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) || "";
}

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  const key = apiKey();
  if (key) headers["X-API-Key"] = key;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  if (response.status === 401 && options.quiet) throw new ApiError(401, "unauthorized");
  if (response.status === 401) {
    showBanner(
      key
        ? "The service refused this API key. Enter the key it was started with (DRIFTREC_API_KEY)."
        : "This service needs an API key: enter it in the field at the top right.",
      "auth",
    );
    $("api-key").focus();
    throw new ApiError(401, "unauthorized");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok && options.quiet) throw new ApiError(response.status, "failed");
  if (!response.ok) {
    const detail = Array.isArray(body?.detail)
      ? body.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ")
      : String(body?.detail ?? response.statusText);
    showBanner(`${options.method || "GET"} ${path.split("?")[0]} failed (${response.status}): ${detail}`, "error");
    throw new ApiError(response.status, detail);
  }
  return body;
}

const userPath = (user) => `/users/${encodeURIComponent(user)}`;

// ------------------------------------------------------------------ small helpers
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function showBanner(message, kind) {
  const banner = $("banner");
  banner.textContent = message;
  banner.className = `banner banner-${kind}`;
  banner.hidden = false;
}

function clearBanner(kind) {
  const banner = $("banner");
  if (!kind || banner.classList.contains(`banner-${kind}`)) banner.hidden = true;
}

const pct = (share) => `${(100 * share).toFixed(share < 0.1 ? 1 : 0)}%`;
const fixed = (x, digits = 2) => (x == null ? "–" : Number(x).toFixed(digits));
const when = (ts) => new Date(ts * 1000).toLocaleString(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
});

function duration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

function colourOf(topic) {
  // one colour per topic for the whole session: the timeline, the profile and the chips agree
  if (!state.topicColours.has(topic)) {
    state.topicColours.set(topic, PALETTE[state.topicColours.size % PALETTE.length]);
  }
  return state.topicColours.get(topic);
}

function baseLayout(extra = {}) {
  return {
    font: FONT,
    margin: { l: 48, r: 16, t: 8, b: 36 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    hovermode: "x unified",
    legend: { orientation: "h", y: -0.18, font: { size: 11 } },
    xaxis: { gridcolor: "#eef1f5", zeroline: false },
    yaxis: { gridcolor: "#eef1f5", zeroline: false },
    ...extra,
  };
}

// ------------------------------------------------------------------ overview (open, polled)
async function refreshOverview() {
  let view;
  try {
    view = await api("/overview?minutes=30");
  } catch {
    $("overview-age").textContent = "service unreachable";
    return;
  }
  if (!state.eventTypes.length) fillEventTypes(view.event_types);
  const minutes = view.minutes;
  const current = minutes[minutes.length - 1];
  $("t-events").textContent = current.events.toLocaleString();
  $("t-active").textContent = view.active_users.toLocaleString();
  $("t-rps").textContent = view.requests_per_second.toFixed(1);
  const lat = view.latency;
  $("t-latency").textContent = lat.p50_ms == null ? "no requests" : `${fixed(lat.p50_ms, 1)} / ${fixed(lat.p99_ms, 1)} ms`;
  $("t-items").textContent = view.items.toLocaleString();
  $("t-live").textContent = view.live_users.toLocaleString();
  $("t-store").textContent = view.store;
  $("t-uptime").textContent = duration(view.uptime_seconds);
  const badge = $("model-badge");
  badge.textContent = `${view.model} · ${view.model_version}`;
  badge.title = `model ${view.model}, version ${view.model_version}; event types: ${view.event_types.join(", ")}`;
  $("overview-age").textContent = `updated ${new Date().toLocaleTimeString()} · every ${OVERVIEW_EVERY_MS / 1000} s`;

  const x = minutes.map((m) => new Date(m.minute * 1000));
  Plotly.react("chart-minutes", [
    { type: "bar", name: "events", x, y: minutes.map((m) => m.events), marker: { color: "#4e79a7" },
      hovertemplate: "%{y} events<extra></extra>" },
    { type: "scatter", mode: "lines", name: "API requests", x, y: minutes.map((m) => m.requests),
      yaxis: "y2", line: { color: "#f28e2b", width: 1.5, shape: "spline" },
      hovertemplate: "%{y} requests<extra></extra>" },
  ], baseLayout({
    margin: { l: 36, r: 36, t: 6, b: 24 },
    showlegend: true,
    legend: { orientation: "h", x: 0, y: 1.18, font: { size: 11 } },
    xaxis: { gridcolor: "#eef1f5", tickformat: "%H:%M" },
    yaxis: { gridcolor: "#eef1f5", rangemode: "tozero", title: { text: "events / min", font: { size: 10 } } },
    yaxis2: { overlaying: "y", side: "right", rangemode: "tozero", showgrid: false },
  }), PLOT_CONFIG);
}

// ------------------------------------------------------------------ online metrics (key, polled)
async function refreshOnline() {
  let view;
  try {
    view = await api("/metrics/online?by=variant", { quiet: true });
  } catch (err) {
    $("online-age").textContent = err.status === 401 ? "needs the API key" : "unavailable";
    return;
  }
  $("online-age").textContent = `${view.impressions.toLocaleString()} impressions · ${view.unlinked_outcomes} unlinked outcomes · updated ${new Date().toLocaleTimeString()}`;
  const body = $("online-body");
  if (!view.groups.length) {
    body.replaceChildren(el("span", { class: "muted", text: "No impressions reported yet (POST /feedback/impressions)." }));
    return;
  }
  const verdicts = new Map(view.comparisons.map((c) => [c.treatment, c]));
  const head = el("tr", {}, ...["variant", "impressions", "users", "CTR", "conversion", "NDCG on clicks", "no outcome", "unlinked", "against the first"]
    .map((h) => el("th", { text: h })));
  const rows = view.groups.map((g) => {
    const c = verdicts.get(g.group);
    const versus = c == null ? "–" : c.verdict === "too small to decide" ? c.verdict
      : `${c.verdict} (${(100 * c.difference).toFixed(2)} pts, p ${c.p_value.toFixed(3)})`;
    return el("tr", { "data-variant": g.group },
      el("td", { text: g.group }),
      el("td", { text: g.impressions.toLocaleString() }),
      el("td", { text: g.users.toLocaleString() }),
      el("td", { text: g.ctr == null ? "–" : pct(g.ctr) }),
      el("td", { text: g.conversion_rate == null ? "–" : pct(g.conversion_rate) }),
      el("td", { text: fixed(g.ndcg_on_clicks, 3) }),
      el("td", { text: g.no_outcome.toLocaleString() }),
      el("td", { text: g.unlinked_outcomes.toLocaleString() }),
      el("td", { text: versus }));
  });
  body.replaceChildren(el("table", { class: "online-table" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

function fillEventTypes(types) {
  state.eventTypes = types;
  const select = $("event-type");
  select.replaceChildren(...types.filter((t) => t !== "search").map((t) => el("option", { value: t, text: t })));
  const preferred = ["click", "view", "interaction"].find((t) => types.includes(t));
  if (preferred) select.value = preferred;
}

// ------------------------------------------------------------------ user search
let suggestTimer = null;
let suggestActive = -1;

function suggest() {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(async () => {
    const q = $("user-search").value.trim();
    let found;
    try {
      found = await api(`/users?q=${encodeURIComponent(q)}&limit=20`);
    } catch {
      return;
    }
    if ($("user-search").value.trim() !== q) return; // typed on since
    const list = $("user-suggestions");
    suggestActive = -1;
    list.replaceChildren(...found.users.map((u) => el("li", {
      role: "option", "data-user": u.user, class: "suggestion",
      onmousedown: (event) => { event.preventDefault(); pickUser(u.user); },
    }, el("span", { text: u.user }), el("span", {
      class: "muted", text: [u.stored && "events stored", u.trained && "trained on"].filter(Boolean).join(" · "),
    }))));
    if (!found.users.length) {
      list.append(el("li", { class: "suggestion muted", text: found.pseudonymised
        ? "ids are pseudonymised: type a whole user id" : "no user starts with this" }));
    }
    list.hidden = false;
    $("user-search").setAttribute("aria-expanded", "true");
  }, 150);
}

function hideSuggestions() {
  $("user-suggestions").hidden = true;
  $("user-search").setAttribute("aria-expanded", "false");
}

function moveSuggestion(step) {
  const options = [...$("user-suggestions").querySelectorAll("li[data-user]")];
  if (!options.length) return;
  suggestActive = (suggestActive + step + options.length) % options.length;
  options.forEach((o, n) => o.classList.toggle("active", n === suggestActive));
  $("user-search").value = options[suggestActive].dataset.user;
}

async function pickUser(user) {
  hideSuggestions();
  $("user-search").value = user;
  if (!user) return;
  state.user = user;
  state.recs = state.interests = state.timeline = null;
  state.newItems = new Set();
  state.rankBefore = new Map();
  $("changes").hidden = true;
  history.replaceState(null, "", `#user=${encodeURIComponent(user)}`);
  await refreshUser();
}

// ------------------------------------------------------------------ the user's panels
async function refreshUser(before = null) {
  // ``before``: the answers before an event was posted, to mark what it changed
  const user = state.user;
  const base = userPath(user);
  const [recs, interests, timeline] = await Promise.all([
    api(`${base}/recommendations?k=10`),
    api(`${base}/interests?top=12`),
    api(`${base}/timeline?points=300&top=8`),
  ]);
  if (user !== state.user) return; // another user was picked meanwhile
  clearBanner();
  const was = before ? before.recs.items.map((i) => i.item) : [];
  state.newItems = new Set(before ? recs.items.map((i) => i.item).filter((i) => !was.includes(i)) : []);
  state.rankBefore = new Map(was.map((item, n) => [item, n]));
  Object.assign(state, { recs, interests, timeline });
  $("user-view").hidden = false;
  renderSummary(interests, recs);
  renderTimeline(timeline);
  renderProfile(interests);
  renderDrift(timeline, interests);
  renderRecs(recs);
  renderLists(interests);
}

function renderSummary(interests, recs) {
  const drift = interests.drift;
  const status = !drift ? el("span", { class: "pill", text: "no topics" })
    : drift.shift_detected ? el("span", { class: "pill pill-alert", text: "shift detected" })
      : el("span", { class: "pill pill-ok", text: "stable" });
  $("user-summary").replaceChildren(
    el("strong", { class: "user-id", text: interests.user }),
    el("span", {}, el("b", { id: "event-count", text: String(interests.events) }), " item events"),
    el("span", {}, el("b", { id: "search-count", text: String(interests.searches.length) }), " recent searches"),
    el("span", {}, "drift score ", el("b", { id: "drift-score", text: fixed(interests.drift_score) })),
    el("span", {}, "answers from ", el("b", { text: recs.source })),
    status,
  );
}

function topicsInOrder(timeline, interests) {
  // colours are handed out in a stable order: the timeline's topics, then the profile's
  for (const t of timeline.topics) colourOf(t);
  for (const t of [...interests.long_term, ...interests.short_term]) colourOf(t.topic);
}

function xOf(timeline) {
  return timeline.points.map((p) => p.event);
}

function shiftEvents(timeline) {
  // the position of each alarm's event on the events axis
  return timeline.shifts.map((ts) => timeline.points.find((p) => p.timestamp >= ts)?.event).filter((e) => e != null);
}

function shiftShapes(timeline, colour = "#e15759") {
  return shiftEvents(timeline).map((x) => ({
    type: "line", xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1,
    line: { color: colour, width: 1.5, dash: "dash" },
  }));
}

function renderTimeline(timeline) {
  topicsInOrder(timeline, state.interests);
  const x = xOf(timeline);
  const dates = timeline.points.map((p) => when(p.timestamp));
  if (!timeline.points.length) {
    Plotly.react("chart-timeline", [], baseLayout({
      annotations: [{ text: "no item events yet", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }],
    }), PLOT_CONFIG);
    return;
  }
  const traces = timeline.topics.map((topic, n) => ({
    type: "scatter", mode: "lines", stackgroup: "short", name: topic, x,
    y: timeline.points.map((p) => p.short_term[n]),
    line: { width: 0.5, color: colourOf(topic) }, fillcolor: colourOf(topic),
    customdata: dates, hovertemplate: `${topic}: %{y:.0%}<extra></extra>`,
  }));
  traces.push({
    type: "scatter", mode: "lines", stackgroup: "short", name: "other", x,
    y: timeline.points.map((p) => Math.max(0, 1 - p.short_term.reduce((a, b) => a + b, 0))),
    line: { width: 0.5, color: OTHER_COLOUR }, fillcolor: OTHER_COLOUR,
    customdata: dates, hovertemplate: "other: %{y:.0%}<br>%{customdata}<extra></extra>",
  });
  Plotly.react("chart-timeline", traces, baseLayout({
    shapes: shiftShapes(timeline),
    xaxis: { title: { text: "event (oldest first)", font: { size: 11 } }, gridcolor: "#eef1f5" },
    yaxis: { range: [0, 1], tickformat: ".0%", gridcolor: "#eef1f5" },
    legend: { orientation: "h", y: -0.22, font: { size: 11 } },
  }), PLOT_CONFIG);
}

function renderProfile(interests) {
  const shares = (list) => new Map(list.map((t) => [t.topic, t.share]));
  const long = shares(interests.long_term);
  const short = shares(interests.short_term);
  const topics = [...new Set([...interests.short_term, ...interests.long_term].map((t) => t.topic))]
    .sort((a, b) => (short.get(b) ?? 0) - (short.get(a) ?? 0) || (long.get(b) ?? 0) - (long.get(a) ?? 0))
    .slice(0, 10)
    .reverse(); // plotly draws the first category at the bottom
  if (!topics.length) {
    Plotly.react("chart-profile", [], baseLayout({
      annotations: [{ text: "no topics yet", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }],
    }), PLOT_CONFIG);
    return;
  }
  const colours = topics.map(colourOf);
  const bar = (name, values, opacity) => ({
    type: "bar", orientation: "h", name, y: topics, x: topics.map((t) => values.get(t) ?? 0),
    marker: { color: colours, opacity, line: { color: colours, width: 1 } },
    hovertemplate: `%{y} ${name}: %{x:.1%}<extra></extra>`,
  });
  Plotly.react("chart-profile", [bar("long-term", long, 0.35), bar("short-term", short, 1)], baseLayout({
    barmode: "group", bargap: 0.25, bargroupgap: 0.08, hovermode: "closest", showlegend: false,
    margin: { l: 110, r: 12, t: 8, b: 30 },
    xaxis: { tickformat: ".0%", gridcolor: "#eef1f5", rangemode: "tozero" },
    yaxis: { automargin: true },
  }), PLOT_CONFIG);
}

function renderDrift(timeline, interests) {
  const x = xOf(timeline);
  const dates = timeline.points.map((p) => when(p.timestamp));
  const threshold = interests.drift?.threshold;
  const alarms = new Set(shiftEvents(timeline));
  const marked = timeline.points.filter((p) => alarms.has(p.event));
  const traces = [
    { type: "scatter", mode: "lines", name: "drift score (JS, 0–1)", x, y: timeline.points.map((p) => p.drift_score),
      line: { color: "#4e79a7", width: 2 }, customdata: dates,
      hovertemplate: "drift score %{y:.3f}<br>%{customdata}<extra></extra>" },
    { type: "scatter", mode: "lines", name: "evidence (bits)", x, y: timeline.points.map((p) => p.evidence),
      yaxis: "y2", line: { color: "#9c755f", width: 1.2, dash: "dot" },
      hovertemplate: "evidence %{y:.1f} bits<extra></extra>" },
    { type: "scatter", mode: "markers", name: "drift alarm", x: marked.map((p) => p.event), y: marked.map((p) => p.drift_score),
      marker: { color: "#e15759", size: 10, symbol: "diamond", line: { color: "#fff", width: 1 } },
      hovertemplate: "alarm<extra></extra>" },
  ];
  const shapes = shiftShapes(timeline);
  if (threshold != null) {
    shapes.push({ type: "line", xref: "paper", yref: "y2", x0: 0, x1: 1, y0: threshold, y1: threshold,
      line: { color: "#9c755f", width: 1, dash: "dash" } });
  }
  Plotly.react("chart-drift", traces, baseLayout({
    shapes,
    xaxis: { title: { text: "event (oldest first)", font: { size: 11 } }, gridcolor: "#eef1f5" },
    yaxis: { title: { text: "drift score", font: { size: 11 } }, rangemode: "tozero", gridcolor: "#eef1f5" },
    yaxis2: { title: { text: "evidence (bits)", font: { size: 11 } }, overlaying: "y", side: "right",
      rangemode: "tozero", showgrid: false },
    margin: { l: 52, r: 52, t: 8, b: 36 },
  }), PLOT_CONFIG);

  const drift = interests.drift;
  const box = $("drift-status");
  if (!drift) {
    box.replaceChildren(el("p", { class: "muted", text: "The catalog has no topics: no drift detector." }));
    return;
  }
  const fill = Math.min(1, drift.evidence / drift.threshold);
  box.replaceChildren(
    el("div", { class: drift.shift_detected ? "verdict verdict-alert" : "verdict verdict-ok",
      text: drift.shift_detected ? "Shift detected" : "No recent shift" }),
    el("div", { class: "meter-label" }, el("span", { text: "evidence towards an alarm" }),
      el("b", { text: `${fixed(drift.evidence, 1)} / ${fixed(drift.threshold, 1)} bits` })),
    el("div", { class: "meter", role: "meter", "aria-valuemin": "0", "aria-valuemax": String(drift.threshold),
      "aria-valuenow": String(drift.evidence) },
    el("div", { class: fill >= 1 ? "meter-fill full" : "meter-fill", style: `width:${(100 * fill).toFixed(1)}%` })),
    el("dl", { class: "facts" },
      el("dt", { text: "drift score" }), el("dd", { text: fixed(interests.drift_score, 3) }),
      el("dt", { text: "last shift" }), el("dd", { text: drift.last_shift == null ? "none" : when(drift.last_shift) }),
      el("dt", { text: "events since" }), el("dd", { text: drift.events_since_shift == null ? "–" : String(drift.events_since_shift) }),
      el("dt", { text: "alarms held" }), el("dd", { text: String(drift.shifts.length) }),
      interests.gate == null ? null : el("dt", { text: "short-term gate" }),
      interests.gate == null ? null : el("dd", { text: fixed(interests.gate, 2) })),
  );
}

function renderRecs(recs) {
  $("recs-source").textContent = `· from ${recs.source}`;
  const top = Math.max(...recs.items.map((i) => i.score), 1e-9);
  const low = Math.min(...recs.items.map((i) => i.score), 0);
  const previous = state.rankBefore;
  const rows = recs.items.map((item, n) => {
    const moved = previous.has(item.item) ? previous.get(item.item) - n : null;
    const isNew = state.newItems.has(item.item);
    const row = el("tr", { "data-item": item.item, class: isNew ? "is-new" : "" },
      el("td", { class: "num rank" }, String(n + 1),
        moved ? el("span", { class: moved > 0 ? "move up" : "move down", text: moved > 0 ? `▲${moved}` : `▼${-moved}` }) : null),
      el("td", { class: "item" },
        el("div", { class: "title", text: item.title || item.item }),
        el("div", { class: "muted mono", text: item.item }),
        isNew ? el("span", { class: "badge-new", text: "new" }) : null),
      el("td", {}, ...item.categories.map((c) => el("span", { class: "chip", style: `--chip:${colourOf(c)}`, text: c }))),
      el("td", { class: "num" },
        el("div", { class: "score", text: fixed(item.score, 3) }),
        el("div", { class: "scorebar" }, el("div", { style: `width:${(100 * (item.score - low) / (top - low || 1)).toFixed(0)}%` }))),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "ghost why-button", "aria-expanded": "false", text: "why ▸",
          onclick: (event) => toggleWhy(event.currentTarget, item) }),
        el("button", { type: "button", class: "act", title: "post this event for the item",
          text: $("event-type").value || "click", onclick: () => postItem(item) })),
    );
    return row;
  });
  $("recs").tBodies[0].replaceChildren(...rows);
}

async function toggleWhy(button, item) {
  const row = button.closest("tr");
  const open = row.nextElementSibling?.classList.contains("why-row");
  if (open) {
    row.nextElementSibling.remove();
    button.textContent = "why ▸";
    button.setAttribute("aria-expanded", "false");
    return;
  }
  button.textContent = "why ▾";
  button.setAttribute("aria-expanded", "true");
  const cell = el("td", { colspan: "5" }, el("span", { class: "muted", text: "explaining…" }));
  row.after(el("tr", { class: "why-row" }, cell));
  let why;
  try {
    why = await api(`${userPath(state.user)}/recommendations/${encodeURIComponent(item.item)}/why`);
  } catch (err) {
    cell.replaceChildren(el("span", { class: "muted", text: `no explanation: ${err.message}` }));
    return;
  }
  const biggest = Math.max(...why.events.map((e) => Math.abs(e.contribution)), 1e-9);
  const events = why.events
    .slice()
    .sort((a, b) => Math.abs(b.contribution) - Math.abs(a.contribution))
    .slice(0, 8)
    .map((e) => el("li", { class: "why-event" },
      el("span", { class: "why-bar-wrap" }, el("span", {
        class: e.contribution >= 0 ? "why-bar pos" : "why-bar neg",
        style: `width:${(100 * Math.abs(e.contribution) / biggest).toFixed(0)}%`,
      })),
      el("span", { class: "mono why-value", text: `${e.contribution >= 0 ? "+" : ""}${fixed(e.contribution, 3)}` }),
      el("span", { text: `${e.event} · ${e.title || e.item || "search"}` }),
      el("span", { class: "muted", text: when(e.timestamp) })));
  const topics = why.topics.slice(0, 5).map((t) => el("span", { class: "chip", style: `--chip:${colourOf(t.topic)}`,
    text: `${t.topic} ${t.contribution >= 0 ? "+" : ""}${fixed(t.contribution, 3)}` }));
  cell.replaceChildren(el("div", { class: "why" },
    el("p", { class: "muted", text: `${why.method}: how much each of the ${why.explained_events} newest events raises “${item.title || item.item}”` }),
    events.length ? el("ul", { class: "plain-list" }, ...events) : el("p", { class: "muted", text: "no item events to explain with" }),
    topics.length ? el("div", { class: "why-topics" }, el("span", { class: "muted", text: "by topic " }), ...topics) : null,
    why.note ? el("p", { class: "muted", text: why.note }) : null));
}

function renderLists(interests) {
  const searches = interests.searches.map((s) => el("li", { text: `“${s}”` }));
  $("searches").replaceChildren(...(searches.length ? searches : [el("li", { class: "muted", text: "none yet" })]));
  const events = interests.influential_events.map((e) => el("li", {},
    el("span", { class: "mono", text: `${fixed(e.contribution, 3)} ` }),
    el("span", { text: `${e.event} · ${e.title || e.item}` })));
  $("influential").replaceChildren(...(events.length ? events : [el("li", { class: "muted", text: "none" })]));
}

// ------------------------------------------------------------------ posting events
async function postItem(item) {
  const event = $("event-type").value || "click";
  await postEvent({ user: state.user, item: item.item, event }, `${event} on “${item.title || item.item}”`);
}

async function postSearch(text) {
  const event = state.eventTypes.includes("search") ? "search" : ($("event-type").value || "interaction");
  await postEvent({ user: state.user, event, text }, `search “${text}”`);
}

async function postEvent(body, what) {
  if (!state.user) return;
  document.body.classList.add("busy");
  try {
    const answer = await api("/events", { method: "POST", body });
    if (answer.rejected.length) {
      showBanner(`The event was rejected: ${answer.rejected.map((r) => `${r.field}: ${r.reason}`).join("; ")}`, "error");
      return;
    }
    const before = { recs: state.recs, interests: state.interests, timeline: state.timeline };
    await refreshUser(before);
    showChanges(what, before);
    refreshOverview();
  } catch {
    // the banner says what failed
  } finally {
    document.body.classList.remove("busy");
  }
}

function topTopic(shares) {
  return shares.length ? shares.reduce((a, b) => (b.share > a.share ? b : a)) : null;
}

function showChanges(what, before) {
  const after = { recs: state.recs, interests: state.interests, timeline: state.timeline };
  const now = new Set(after.recs.items.map((i) => i.item));
  const left = before.recs.items.filter((i) => !now.has(i.item));
  const entered = state.newItems;

  const parts = [el("b", { text: `Posted ${what}` })];
  parts.push(el("span", { id: "change-events", text: `item events ${before.interests.events} → ${after.interests.events}` }));
  if (before.interests.searches.length !== after.interests.searches.length) {
    parts.push(el("span", { text: `recent searches ${before.interests.searches.length} → ${after.interests.searches.length}` }));
  }
  parts.push(el("span", { id: "change-top10", text: `top 10: ${entered.size} new, ${left.length} left` }));
  const topAfter = topTopic(after.interests.short_term);
  if (topAfter) {
    const share = (list, topic) => list.find((t) => t.topic === topic)?.share ?? 0;
    const from = share(before.interests.short_term, topAfter.topic);
    const delta = 100 * (topAfter.share - from);
    parts.push(el("span", {}, "top topic ",
      el("span", { class: "chip", style: `--chip:${colourOf(topAfter.topic)}`, text: topAfter.topic }),
      ` short-term ${pct(from)} → ${pct(topAfter.share)} `,
      el("b", { class: delta >= 0 ? "delta up" : "delta down", text: `(${delta >= 0 ? "+" : ""}${delta.toFixed(1)} pts)` })));
  }
  parts.push(el("span", { text: `drift score ${fixed(before.interests.drift_score)} → ${fixed(after.interests.drift_score)}` }));
  if (after.interests.drift?.shift_detected && !before.interests.drift?.shift_detected) {
    parts.push(el("span", { class: "pill pill-alert", text: "drift alarm raised" }));
  }
  const box = $("changes");
  box.replaceChildren(...parts);
  box.hidden = false;
  box.classList.remove("flash");
  void box.offsetWidth; // restart the highlight animation
  box.classList.add("flash");
}

// ------------------------------------------------------------------ wiring
function init() {
  $("api-key").value = apiKey();
  $("key-state").textContent = apiKey() ? "key set for this tab" : "";
  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
    $("key-state").textContent = key ? "key set for this tab" : "no key";
    clearBanner("auth");
    refreshOnline();
    if (state.user) await refreshUser().catch(() => {});
  });

  const search = $("user-search");
  search.addEventListener("input", suggest);
  search.addEventListener("focus", suggest);
  search.addEventListener("blur", () => setTimeout(hideSuggestions, 100));
  search.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown") { event.preventDefault(); moveSuggestion(1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); moveSuggestion(-1); }
    else if (event.key === "Escape") hideSuggestions();
  });
  $("user-form").addEventListener("submit", (event) => {
    event.preventDefault();
    pickUser(search.value.trim()).catch(() => {});
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("search-text").value.trim();
    if (text) postSearch(text).then(() => { $("search-text").value = ""; });
  });
  $("event-type").addEventListener("change", () => state.recs && renderRecs(state.recs));

  refreshOverview();
  refreshOnline();
  setInterval(() => { if (!document.hidden) refreshOverview(); }, OVERVIEW_EVERY_MS);
  setInterval(() => { if (!document.hidden) refreshOnline(); }, ONLINE_EVERY_MS);
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("user");
  if (fromHash) pickUser(fromHash).catch(() => {});
}

document.addEventListener("DOMContentLoaded", init);
