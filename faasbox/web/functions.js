// The Functions view: deployed functions, their recent invocations (status, duration, cold or
// warm, memory) and each invocation's log, from the management API. Refreshed every few
// seconds while the view is shown.
import {
  ApiError,
  SignInNeeded,
  clearCredentials,
  credentials,
  managementGet,
  saveCredentials,
} from "./api.js";
import { describeRoute, routesOf } from "./routes.js";

const $ = (id) => document.getElementById(id);
const RECENT = 10; // invocations shown per function
const REFRESH_MS = 5000;
let timer = null;
let visible = false;
let loading = null;
let onSignedInHook = () => {};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showMessage(text, kind = "error") {
  const box = $("functions-message");
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = false;
}

function hideMessage() {
  $("functions-message").hidden = true;
}

function showSignedIn() {
  const creds = credentials();
  $("signed-in").hidden = !creds;
  $("sign-out").hidden = !creds;
  if (creds) $("signed-in").textContent = `Signed in as ${creds.accessKeyId}`;
}

function showSignIn(reason) {
  $("sign-in").hidden = false;
  $("function-list").replaceChildren();
  if (reason) showMessage(reason, credentials() ? "error" : "info");
}

function formatTime(epochSeconds) {
  const date = new Date(epochSeconds * 1000);
  const sameDay = date.toDateString() === new Date().toDateString();
  const time = date.toLocaleTimeString([], {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  });
  return sameDay ? time : `${date.toLocaleDateString()} ${time}`;
}

function formatMs(ms) {
  if (ms === null || ms === undefined) return "";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

function invocationRow(record, openIds) {
  const item = el("details", `invocation status-${record.status}`);
  item.dataset.requestId = record.request_id;
  if (openIds.has(record.request_id)) item.open = true;
  const summary = el("summary");
  const start = el("span", `badge ${record.cold ? "cold" : "warm"}`, record.cold ? "cold" : "warm");
  if (record.cold && record.init_ms) {
    start.textContent += ` +${formatMs(record.init_ms)}`;
    start.title = `Cold start: ${formatMs(record.init_ms)} to start a worker and import the handler (Init Duration)`;
  } else if (!record.cold) {
    start.title = "Warm: a worker already running served it";
  }
  summary.append(
    el("time", "when", formatTime(record.started_at)),
    el("span", `badge status ${record.status === "success" ? "ok" : "bad"}`, record.status),
    el("span", "duration", formatMs(record.duration_ms)),
    start,
    el("span", "memory muted", record.max_memory_mb ? `${record.max_memory_mb} MB` : ""),
  );
  const log = el("pre", "log", record.log || "(no log)");
  item.append(summary, log);
  return item;
}

function functionCard(fn, records, openIds) {
  const card = el("article", "card fn-card");
  card.dataset.function = fn.name;
  const head = el("div", "fn-head");
  head.append(el("h2", "fn-name", fn.name));
  const config = fn.config || {};
  const facts = [config.runtime, config.memory_size && `${config.memory_size} MB`,
    config.timeout && `${config.timeout} s timeout`].filter(Boolean).join(" · ");
  head.append(el("span", "muted small", facts));
  card.append(head);
  const routes = routesOf([fn]);
  if (routes.length) {
    const list = el("p", "routes");
    for (const route of routes) list.append(el("code", "", describeRoute(route)));
    card.append(list);
  }
  const box = el("div", "invocations");
  if (records instanceof Error) {
    box.append(el("p", "message error", `Its invocations could not be read: ${records.message}`));
  } else if (!records.length) {
    box.append(el("p", "muted small", "No invocations yet."));
  } else {
    const head = el("div", "invocation-head");
    for (const name of ["Started", "Status", "Duration", "Cold / warm", "Max memory"]) {
      head.append(el("span", "", name));
    }
    box.append(head);
    for (const record of records.slice().reverse()) box.append(invocationRow(record, openIds));
  }
  card.append(box);
  return card;
}

async function load() {
  if (loading) return loading;
  loading = (async () => {
    try {
      const data = await managementGet("functions");
      const functions = (data.functions || []).slice().sort((a, b) => a.name.localeCompare(b.name));
      const logs = await Promise.all(
        functions.map((fn) =>
          managementGet(`functions/${encodeURIComponent(fn.name)}/logs?limit=${RECENT}`).then(
            (answer) => answer.records || [],
            (error) => error,
          ),
        ),
      );
      $("sign-in").hidden = true;
      hideMessage();
      showSignedIn();
      const openIds = new Set(
        Array.from(document.querySelectorAll("#function-list details[open]"), (d) => d.dataset.requestId),
      );
      const list = $("function-list");
      list.replaceChildren(...functions.map((fn, i) => functionCard(fn, logs[i], openIds)));
      if (!functions.length) {
        list.append(el("p", "message info", "No functions are deployed. Deploy a service with `faasbox deploy DIR`."));
      }
      return true;
    } catch (error) {
      if (error instanceof SignInNeeded) {
        const reason = credentials()
          ? `The server refused this access key: ${error.message}`
          : "This server needs an access key to show its functions.";
        if (credentials()) clearCredentials();
        showSignedIn();
        showSignIn(reason);
      } else {
        showMessage(error instanceof ApiError ? error.message : `Something went wrong: ${error}`);
      }
      return false;
    } finally {
      loading = null;
    }
  })();
  return loading;
}

function schedule() {
  clearTimeout(timer);
  if (!visible) return;
  timer = setTimeout(async () => {
    if (visible && document.visibilityState === "visible" && $("sign-in").hidden) await load();
    schedule();
  }, REFRESH_MS);
}

export function showFunctionsView() {
  visible = true;
  load();
  schedule();
}

export function hideFunctionsView() {
  visible = false;
  clearTimeout(timer);
}

export function initFunctionsView({ onSignedIn } = {}) {
  if (onSignedIn) onSignedInHook = onSignedIn;
  $("refresh-button").addEventListener("click", () => load());
  $("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    saveCredentials($("access-key-id").value, $("secret-access-key").value);
    $("secret-access-key").value = "";
    if (await load()) onSignedInHook();
  });
  $("sign-out").addEventListener("click", () => {
    clearCredentials();
    showSignedIn();
    showSignIn("Signed out. The access key was removed from this tab.");
    onSignedInHook();
  });
  showSignedIn();
}
