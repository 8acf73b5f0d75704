// A function's page (#fn/NAME/PANEL): its facts, and four panels: Test (test-tab.js),
// Invocations (with dates, filterable by status, each with its log; #fn/NAME/log/REQUEST_ID
// opens one; then its asynchronous invocations, async-invocations.js), Monitor (charts.js)
// and Configuration (settings, routes and schedules).
import { ApiError, SignInNeeded, managementGet } from "./api.js";
import { askToSignIn, hideSignIn, signInShown } from "./account.js";
import { loadAsyncInvocations, renderAsyncInvocations } from "./async-invocations.js";
import { renderCharts } from "./charts.js";
import { $, el, formatDateTime, formatMs, hideMessage, showMessage } from "./dom.js";
import { describeRoute, routesOf } from "./routes.js";
import { hideTestTab, showTestTab } from "./test-tab.js";

export const PANELS = ["test", "invocations", "monitor", "config"];
const RECENT = 100; // invocations read for the list
const RECENT_ASYNC = 50; // asynchronous invocations read for their list
const REFRESH_MS = 5000;
const view = { name: null, panel: "test", requestId: null, fn: null, records: [] };
let timer = null;
let visible = false;

const encoded = (name) => encodeURIComponent(name);

function fail(error) {
  if (error instanceof SignInNeeded) askToSignIn(error);
  else showMessage("function-message", error instanceof ApiError ? error.message : `Something went wrong: ${error}`);
}

// --- invocations ---

function invocationRow(record, open) {
  const item = el("details", `invocation status-${record.status}`);
  item.dataset.requestId = record.request_id;
  item.dataset.status = record.status;
  item.open = open;
  const summary = el("summary");
  const start = el("span", `badge ${record.cold ? "cold" : "warm"}`, record.cold ? "cold" : "warm");
  if (record.cold && record.init_ms) {
    start.textContent += ` +${formatMs(record.init_ms)}`;
    start.title = `Cold start: ${formatMs(record.init_ms)} to start a worker and import the handler (Init Duration)`;
  }
  const when = el("time", "when", formatDateTime(record.started_at));
  when.dateTime = new Date(record.started_at * 1000).toISOString();
  const link = el("a", "request-link", record.request_id);
  link.href = `#fn/${encoded(record.function)}/log/${encoded(record.request_id)}`;
  summary.append(
    when,
    el("span", `badge status ${record.status === "success" ? "ok" : "bad"}`, record.status),
    el("span", "duration", formatMs(record.duration_ms)),
    start,
    el("span", "memory muted", record.max_memory_mb ? `${record.max_memory_mb} MB` : ""),
    link,
  );
  item.append(summary, el("pre", "log", record.log || "(no log)"));
  return item;
}

function renderInvocations() {
  const status = $("status-filter").value;
  const open = new Set(Array.from(document.querySelectorAll("#invocation-list details[open]"), (d) => d.dataset.requestId));
  if (view.requestId) open.add(view.requestId);
  const newest = view.records.slice().reverse();
  const shown = newest.filter((r) => !status || r.status === status);
  const list = $("invocation-list");
  list.replaceChildren(...shown.map((r) => invocationRow(r, open.has(r.request_id))));
  if (!shown.length) {
    list.append(el("p", "muted small", view.records.length ? `No ${status} invocation among the newest ${view.records.length}.` : "No invocations yet."));
  }
  $("invocation-count").textContent = `${shown.length} of the newest ${view.records.length}`;
}

// #fn/NAME/log/ID: that invocation, open, in view (once: a refresh does not scroll again).
function revealRequest() {
  const id = view.requestId;
  if (!id) return;
  let row = document.querySelector(`#invocation-list details[data-request-id="${CSS.escape(id)}"]`);
  if (!row && view.records.some((r) => r.request_id === id)) {
    $("status-filter").value = "";
    renderInvocations();
    row = document.querySelector(`#invocation-list details[data-request-id="${CSS.escape(id)}"]`);
  }
  if (row) {
    row.open = true;
    row.classList.add("highlight");
    row.scrollIntoView({ block: "center" });
  } else {
    showMessage("function-message", `Request ${id} is not among the ${view.records.length} newest invocations of ${view.name} this server keeps.`, "warning");
  }
  view.requestId = null;
}

async function loadInvocations() {
  const [answer, queued] = await Promise.all([
    managementGet(`functions/${encoded(view.name)}/logs?limit=${RECENT}`),
    loadAsyncInvocations(view.name, RECENT_ASYNC),
  ]);
  view.records = answer.records || [];
  renderInvocations();
  renderAsyncInvocations($("async-list"), $("async-counts"), queued);
  revealRequest();
}

// --- configuration ---

function renderConfig(fn) {
  const config = fn.config || {};
  const facts = [
    ["Runtime", config.runtime],
    ["Handler", config.handler],
    ["Memory", config.memory_size && `${config.memory_size} MB`],
    ["Timeout", config.timeout && `${config.timeout} s`],
    ["Service", config.service],
    ["Version", fn.version],
    ["ARN", fn.arn],
    ["Code size", fn.codeSize !== undefined && `${fn.codeSize} bytes`],
    ["Code SHA-256", fn.codeSha256],
    ["Last modified", fn.lastModified],
    ["Warm workers", fn.workers && String(fn.workers.length)],
  ];
  const env = config.environment || {};
  for (const name of Object.keys(env).sort()) facts.push([`Environment: ${name}`, String(env[name])]);
  const dl = $("fn-config");
  dl.replaceChildren();
  for (const [term, value] of facts) {
    if (value === undefined || value === null || value === false || value === "") continue;
    dl.append(el("dt", "", term), el("dd", "", value));
  }
  const routes = routesOf([fn]);
  const box = $("fn-routes");
  box.replaceChildren(...routes.map((r) => el("code", "", describeRoute(r) + (r.private ? " (API key)" : ""))));
  if (!routes.length) box.append(el("p", "muted small", "No HTTP routes: invoke it with the Test tab or the Lambda API."));
}

// The function's schedule rules (GET /_faasbox/schedules lists every function's).
async function loadSchedules() {
  const answer = await managementGet("schedules");
  const rules = (answer.schedules || []).filter((s) => s.function === view.name);
  const box = $("fn-schedules");
  if (!rules.length) {
    box.replaceChildren(el("p", "muted small", "No schedule events."));
    return;
  }
  const table = el("table", "schedule-table");
  const head = el("tr");
  for (const title of ["Rule", "Expression", "Next fire", "Last fire"]) head.append(el("th", "", title));
  table.append(el("thead"), el("tbody"));
  table.tHead.append(head);
  for (const rule of rules) {
    const tr = el("tr");
    tr.dataset.rule = rule.name;
    const next = rule.enabled ? (rule.nextFire ? formatDateTime(Date.parse(rule.nextFire) / 1000) : "none") : "disabled";
    const last = rule.lastFire ? formatDateTime(Date.parse(rule.lastFire) / 1000) : "never";
    tr.append(
      el("td", "rule-name", rule.name),
      el("td", "rule-expression", rule.expression),
      el("td", "rule-next", next),
      el("td", "rule-last", last),
    );
    if (rule.nextFire) tr.querySelector(".rule-next").title = rule.nextFire;
    if (rule.lastFire) tr.querySelector(".rule-last").title = rule.lastFire;
    table.tBodies[0].append(tr);
  }
  box.replaceChildren(table);
}

// --- the page ---

function showPanel(panel) {
  for (const name of PANELS) {
    $(`panel-${name}`).hidden = name !== panel;
    const tab = $(`subtab-${name}`);
    tab.href = `#fn/${encoded(view.name)}/${name}`;
    if (name === panel) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
}

async function refreshPanel() {
  if (view.panel === "invocations") await loadInvocations();
  else if (view.panel === "config") await loadSchedules();
  else if (view.panel === "monitor") {
    const stats = await managementGet(`functions/${encoded(view.name)}/stats?minutes=60`);
    renderCharts($("charts"), stats.buckets || []);
  }
}

async function load() {
  try {
    const fn = await managementGet(`functions/${encoded(view.name)}`);
    view.fn = fn;
    hideSignIn();
    const config = fn.config || {};
    $("fn-title").textContent = fn.name;
    $("fn-facts").textContent = [config.runtime, config.memory_size && `${config.memory_size} MB`, config.timeout && `${config.timeout} s timeout`]
      .filter(Boolean)
      .join(" · ");
    renderConfig(fn);
    if (view.panel === "test") await showTestTab(fn, routesOf([fn]));
    else await refreshPanel();
  } catch (error) {
    fail(error);
  }
}

function schedule() {
  clearTimeout(timer);
  if (!visible) return;
  timer = setTimeout(async () => {
    if (visible && document.visibilityState === "visible" && !signInShown() && view.panel !== "test") {
      try {
        await refreshPanel();
      } catch (error) {
        fail(error);
      }
    }
    schedule();
  }, REFRESH_MS);
}

// Show #fn/NAME/PANEL (or #fn/NAME/log/REQUEST_ID).
export function showFunctionPage(name, panel, requestId) {
  if (view.name !== name) {
    view.records = [];
    $("invocation-list").replaceChildren();
    $("async-list").replaceChildren();
    $("async-counts").textContent = "";
    $("fn-schedules").replaceChildren();
    $("charts").replaceChildren();
    $("fn-title").textContent = name;
    $("fn-facts").textContent = "";
    $("status-filter").value = "";
  }
  view.name = name;
  view.panel = requestId ? "invocations" : PANELS.includes(panel) ? panel : "test";
  view.requestId = requestId || null;
  if (view.panel !== "test") hideTestTab();
  hideMessage("function-message");
  visible = true;
  showPanel(view.panel);
  load();
  schedule();
}

export function hideFunctionPage() {
  visible = false;
  hideTestTab();
  clearTimeout(timer);
}

export function reloadFunctionPage() {
  if (visible) load();
}

export function initFunctionPage() {
  $("status-filter").addEventListener("change", renderInvocations);
}
