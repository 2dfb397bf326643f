// adq console: plain JavaScript, no build step, no CDN. The API key is read once from the URL fragment
// (#key=..., never the query string, which reaches logs) or the form, and kept in this tab's sessionStorage.
"use strict";

const $ = (sel) => document.querySelector(sel);
const jobs = new Map(); // id -> JobView
const blobs = new Map(); // url -> object URL (images need the key, so they are fetched, not linked)
let streamAbort = null;
let nowTimer = null;

function takeKeyFromFragment() {
  const match = location.hash.match(/(?:^#|&)key=([^&]+)/);
  if (match) {
    const offered = decodeURIComponent(match[1]);
    const stored = sessionStorage.getItem("adq-key");
    // A link can carry a key: it replaces this tab's own only when the person says so.
    if (!stored || stored === offered || confirm("This link carries another API key. Use it instead of yours?")) {
      sessionStorage.setItem("adq-key", offered);
    }
    history.replaceState(null, "", location.pathname + "#/jobs"); // the key leaves the address bar at once
  }
}

// A job id from the address bar names one job, nothing else: a UUID, encoded into every path it enters.
const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
function jobPath(id, rest = "") { return `/v1/jobs/${encodeURIComponent(id)}${rest}`; }

function headers() {
  const key = sessionStorage.getItem("adq-key");
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (res.status === 401) { showLogin("That key was refused."); throw new Error("unauthorized"); }
  if (!res.ok) {
    let detail = res.statusText;
    try { detail = (await res.json()).error || detail; } catch (e) { /* not JSON */ }
    throw new Error(`${res.status}: ${detail}`);
  }
  return res.json();
}

async function imageSrc(path) {
  if (!blobs.has(path)) {
    const res = await fetch(path, { headers: headers() });
    if (!res.ok) return "";
    blobs.set(path, URL.createObjectURL(await res.blob()));
  }
  return blobs.get(path);
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

const fmt = (x, digits = 3) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));

function latency(view) {
  const t = view.times || {};
  if (!t.created_at || !t.finished_at) return "–";
  return ((new Date(t.finished_at) - new Date(t.created_at)) / 1000).toFixed(2) + " s";
}

// A small scale: the score's dot beside tau's tick; a dot left of the tick went to the teacher.
function scoreScale(score, tau) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", "120"); svg.setAttribute("height", "16"); svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `score ${fmt(score)}, tau ${fmt(tau)}`);
  if (score === null || score === undefined) return svg;
  const lo = Math.min(score, tau ?? score) - 1, hi = Math.max(score, tau ?? score) + 1;
  const x = (v) => 4 + ((v - lo) / (hi - lo)) * 112;
  const add = (name, attrs) => { const n = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); svg.append(n); };
  add("line", { x1: 4, x2: 116, y1: 8, y2: 8, class: "axis" });
  if (tau !== null && tau !== undefined) add("line", { x1: x(tau), x2: x(tau), y1: 1, y2: 15, class: "tau" });
  add("circle", { cx: x(score), cy: 8, r: 4, class: tau !== null && score < tau ? "dot-teacher" : "dot-student" });
  return svg;
}

// ---- Jobs ------------------------------------------------------------------------------------------------------
function filters() {
  const f = new FormData($("#filters"));
  return { status: f.get("status"), preset: f.get("preset"), teacher: f.get("teacher"), since: f.get("since") };
}

function visible(view) {
  const f = filters();
  if (f.status && view.status !== f.status) return false;
  if (f.preset && view.preset !== f.preset) return false;
  if (f.teacher === "yes" && !view.teacher_used) return false;
  if (f.teacher === "no" && view.teacher_used) return false;
  if (f.since && view.times && view.times.created_at &&
      new Date(view.times.created_at) < new Date(Date.now() - Number(f.since) * 1000)) return false;
  return true;
}

async function thumbs(view) {
  const cell = el("td", { class: "thumbs" });
  for (const which of ["student", "final"]) {
    const key = which === "student" ? view.student_image_key : view.final_image_key;
    const img = el("img", { alt: key ? `${which} image: ${view.prompt}` : `no ${which} image yet`, width: 48, height: 48 });
    if (key && !view.expired) imageSrc(jobPath(view.id, `/thumbnail?which=${which}&side=128`)).then((s) => { img.src = s; });
    cell.append(img);
  }
  return cell;
}

async function renderJobs() {
  const body = $("#jobs tbody");
  const rows = [...jobs.values()].filter(visible)
    .sort((a, b) => (b.times.created_at || "").localeCompare(a.times.created_at || ""));
  const fresh = [];
  for (const v of rows.slice(0, 200)) {
    const tr = el("tr", { "data-job": v.id, "data-status": v.status });
    tr.append(
      el("td", {}, el("span", { class: `status ${v.status}`, text: v.status })),
      el("td", {}, el("a", { href: `#/job/${v.id}`, text: v.prompt.slice(0, 80) })),
      await thumbs(v),
      el("td", {}, scoreScale(v.student_score, v.tau)),
      el("td", { text: v.route_reason || (v.teacher_used ? `teacher (${v.strategy})` : v.teacher_used === false ? "student" : "–") }),
      el("td", { text: v.effective_k ?? v.k }),
      el("td", { text: v.total_steps ?? "–" }),
      el("td", { text: latency(v) }),
    );
    fresh.push(tr);
  }
  body.replaceChildren(...fresh);
  const presets = new Set([...jobs.values()].map((v) => v.preset));
  const select = $("#filters select[name=preset]");
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "", text: "any" }), ...[...presets].sort().map((p) => el("option", { text: p })));
  select.value = chosen;
}

async function upsert(id) {
  try { jobs.set(id, await api(jobPath(id))); } catch (e) { return; }
  if (current() === "jobs") renderJobs();
  if (current() === `job/${id}`) showJob(id);
}

// Server-Sent Events through fetch (EventSource cannot send the Authorization header).
async function follow(path, onEvent, signal) {
  const res = await fetch(path, { headers: { ...headers(), Accept: "text/event-stream" }, signal });
  if (!res.ok) throw new Error(`stream ${res.status}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      const event = { type: "message", data: "" };
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) event.type = line.slice(6).trim();
        else if (line.startsWith("data:")) event.data += line.slice(5).trim();
        else if (line.startsWith("id:")) event.id = line.slice(3).trim();
      }
      if (event.data) onEvent(event);
    }
  }
}

async function startJobs() {
  const since = filters().since;
  const after = since ? `&created_after=${new Date(Date.now() - since * 1000).toISOString()}` : "";
  const page = await api(`/v1/jobs?limit=200${after}`);
  page.jobs.forEach((v) => jobs.set(v.id, v));
  renderJobs();
  if (streamAbort) return;
  streamAbort = new AbortController();
  $("#live").textContent = "live: following /v1/events";
  follow("/v1/events", (e) => { if (e.type === "status") upsert(JSON.parse(e.data).job_id); }, streamAbort.signal)
    .catch(() => { $("#live").textContent = "stream closed; reload to reconnect"; streamAbort = null; });
}

// ---- One job ---------------------------------------------------------------------------------------------------
function record(target, pairs) {
  target.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v ?? "–" })]));
}

async function showJob(id) {
  const v = await api(jobPath(id));
  jobs.set(id, v);
  $("#job-title").textContent = `Job ${id}`;
  for (const which of ["student", "final"]) {
    const img = $(`#job-${which}`);
    const key = which === "student" ? v.student_image_key : v.final_image_key;
    img.alt = key ? `${which} image for “${v.prompt}”` : `no ${which} image yet`;
    img.src = key && !v.expired ? await imageSrc(jobPath(id, `/image?which=${which}`)) : "";
  }
  record($("#decision"), [
    ["status", v.status], ["prompt", v.prompt], ["preset", v.preset], ["score", fmt(v.student_score)],
    ["τ", fmt(v.tau)], ["τ from", v.tau_source], ["k (effective)", `${v.k} (${v.effective_k ?? "–"})`],
    ["policy", v.control_policy], ["route", v.route_reason], ["teacher", v.teacher_used ? `yes, ${v.strategy}` : "no"],
    ["steps", `${v.student_steps_run ?? "–"} student + ${v.teacher_steps_run ?? 0} teacher`], ["latency", latency(v)],
    ["error", v.error],
  ]);
  const w = v.webhook || {};
  record($("#webhook"), v.webhook_url ? [["url", v.webhook_url], ["attempts", w.attempts], ["last status", w.last_status],
    ["last error", w.last_error], ["delivered", w.delivered]] : [["webhook", "none asked for"]]);
  $("#cancel").disabled = ["succeeded", "failed", "cancelled"].includes(v.status);
  $("#retry").disabled = v.status !== "failed";
  $("#cancel").onclick = () => act(id, "cancel");
  $("#retry").onclick = () => act(id, "retry");
  const history = [];
  const ctrl = new AbortController();
  setTimeout(() => ctrl.abort(), 1500); // a running job's stream stays open: show what has happened so far
  await follow(jobPath(id, "/events"), (e) => {
    if (e.type === "status") { const d = JSON.parse(e.data); history.push(`${d.at || ""} ${d.status}`); }
  }, ctrl.signal).catch(() => {});
  $("#history").replaceChildren(...history.map((h) => el("li", { text: h })));
}

async function act(id, action) {
  try {
    const v = await api(jobPath(id, `/${action}`), { method: "POST" });
    $("#action-result").textContent = `${action}: now ${v.status}`;
  } catch (e) { $("#action-result").textContent = `${action} refused: ${e.message}`; }
  showJob(id);
}

// ---- Now -------------------------------------------------------------------------------------------------------
async function showNow() {
  const n = await api("/v1/console/now");
  $("#now-at").textContent = `as of ${new Date(n.at * 1000).toLocaleTimeString()} (refreshes every 2 s)`;
  $("#queues tbody").replaceChildren(...(n.queues === null
    ? [el("tr", {}, el("td", { colspan: 2, text: "queue depths need an operator's key" }))]
    : Object.entries(n.queues).map(([q, d]) => el("tr", {}, el("th", { scope: "row", text: q }), el("td", { text: d })))));
  const c = n.control;
  record($("#control"), c ? [["policy", c.policy], ["effective k", fmt(c.share, 1)], ["requested k", fmt(c.requested_k, 1)],
    ["predicted p95", c.predicted_p95_s === null ? "∞" : `${fmt(c.predicted_p95_s, 2)} s`],
    ["desired teacher replicas", c.desired_teacher_replicas]]
    : [["controller", n.queues === null ? "its state needs an operator's key" : "none running (each job's own k)"]]);
  const s = n.teacher_share;
  record($("#share"), [["window", `${s.window_s} s`], ["jobs finished", s.jobs], ["teacher took", s.teacher],
    ["share", s.share === null ? "–" : `${(s.share * 100).toFixed(1)} %`]]);
  $("#keys tbody").replaceChildren(...n.keys.map((k) => el("tr", {}, el("td", { text: k.key }), el("td", { text: k.k }),
    el("td", { text: k.n }), el("td", { text: fmt(k.live_tau) }), el("td", { text: fmt(k.calibrated_tau) }),
    el("td", { text: fmt(k.drift) }))));
}

// ---- Calibrations ----------------------------------------------------------------------------------------------
function curve(cal) {
  const ns = "http://www.w3.org/2000/svg";
  const W = 320, H = 180, P = 28;
  const values = Object.entries(cal.percentiles).map(([k, v]) => [Number(k), v]).sort((a, b) => a[0] - b[0]);
  const live = cal.live ? cal.live.quantiles.map((v, i) => [i * 5, v]) : [];
  const all = [...values, ...live].map((p) => p[1]);
  const lo = Math.min(...all), hi = Math.max(...all) + 1e-9;
  const x = (v) => P + ((v - lo) / (hi - lo)) * (W - 2 * P), y = (k) => H - P - (k / 100) * (H - 2 * P);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`); svg.setAttribute("width", W); svg.setAttribute("height", H);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `score distribution of ${cal.preset}; tau ${fmt(cal.tau)} at k=${cal.k}`);
  const add = (name, attrs, text) => { const n = document.createElementNS(ns, name);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); if (text) n.textContent = text; svg.append(n); };
  add("line", { x1: P, x2: W - P, y1: H - P, y2: H - P, class: "axis" });
  add("line", { x1: P, x2: P, y1: P, y2: H - P, class: "axis" });
  add("text", { x: P, y: H - 8 }, fmt(lo, 2)); add("text", { x: W - P - 24, y: H - 8 }, fmt(hi, 2));
  add("text", { x: 2, y: P + 4 }, "100"); add("text", { x: 8, y: H - P }, "0");
  add("polyline", { points: values.map(([k, v]) => `${x(v)},${y(k)}`).join(" "), class: "calib" });
  if (live.length) add("polyline", { points: live.map(([k, v]) => `${x(v)},${y(k)}`).join(" "), class: "live" });
  if (cal.tau !== null && cal.tau !== undefined) {
    add("line", { x1: x(cal.tau), x2: x(cal.tau), y1: P, y2: H - P, class: "tau" });
    add("text", { x: x(cal.tau) + 3, y: P + 10 }, `τ at k=${cal.k}`);
  }
  return svg;
}

async function showCalibrations() {
  const { calibrations } = await api("/v1/console/calibrations");
  $("#calibrations").replaceChildren(...calibrations.map((c) => {
    const s = c.settings || {};
    return el("div", { class: "card" }, el("h3", { text: `${c.preset} #${c.id}` }),
      el("p", { class: "muted", text: `${s.steps} steps, guidance ${s.guidance}, ${s.width}×${s.height}; ` +
        `${c.n_samples ?? "?"} samples; live: ${c.live ? c.live.n + " scores" : "none yet"}` }), curve(c));
  }));
}

// ---- Routing ---------------------------------------------------------------------------------------------------
function current() { return (location.hash.replace(/^#\/?/, "") || "jobs"); }

function showLogin(message) {
  document.querySelectorAll("main > section").forEach((s) => { s.hidden = s.id !== "view-login"; });
  $("#login-error").textContent = message || "";
  $("#key-input").focus();
}

async function route() {
  takeKeyFromFragment();
  const view = current();
  const name = view.startsWith("job/") ? "job" : view;
  document.querySelectorAll("main > section").forEach((s) => { s.hidden = s.id !== `view-${name}`; });
  document.querySelectorAll("nav a").forEach((a) => {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  $("#logout").hidden = !sessionStorage.getItem("adq-key");
  clearInterval(nowTimer);
  try {
    if (name === "jobs") await startJobs();
    else if (name === "job") {
      const id = view.slice(4);
      if (!JOB_ID.test(id)) throw new Error(`not a job id: ${id.slice(0, 60)}`);
      await showJob(id);
    }
    else if (name === "now") { await showNow(); nowTimer = setInterval(() => showNow().catch(() => {}), 2000); }
    else if (name === "calibrations") await showCalibrations();
  } catch (e) {
    if (e.message !== "unauthorized") $("#live").textContent = `error: ${e.message}`;
  }
}

$("#login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("adq-key", $("#key-input").value.trim());
  streamAbort = null;
  location.hash = "#/jobs";
  route();
});
$("#logout").addEventListener("click", () => { sessionStorage.removeItem("adq-key"); location.reload(); });
$("#filters").addEventListener("change", () => renderJobs());
window.addEventListener("hashchange", route);
route();
