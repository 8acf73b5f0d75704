// The Functions view: one collapsed row per deployed function (name, runtime, memory, timeout,
// last invocation, errors in the last hour, a Test link), a search box, and each name a link
// to the function's page. Refreshed every few seconds while shown.
import { ApiError, SignInNeeded, managementGet } from "./api.js";
import { askToSignIn, hideSignIn, signInShown } from "./account.js";
import { $, el, formatAgo, formatDateTime, hideMessage, showMessage } from "./dom.js";

const REFRESH_MS = 5000;
let timer = null;
let visible = false;
let loading = null;
let shown = []; // [{fn, stats}] of the last load

// A function matches the search when every word is in its name, runtime or handler.
export function matches(fn, query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  const config = fn.config || {};
  const text = [fn.name, config.runtime, config.handler, config.service].filter(Boolean).join(" ").toLowerCase();
  return words.every((word) => text.includes(word));
}

function row({ fn, stats }) {
  const config = fn.config || {};
  const tr = el("tr", "fn-row");
  tr.dataset.function = fn.name;
  const name = el("td", "fn-name");
  const link = el("a", "", fn.name);
  link.href = `#fn/${encodeURIComponent(fn.name)}`;
  name.append(link);
  const last = el("td", "fn-last");
  if (stats && stats.lastInvocation) {
    const time = el("time", "", formatAgo(stats.lastInvocation));
    time.dateTime = new Date(stats.lastInvocation * 1000).toISOString();
    time.title = formatDateTime(stats.lastInvocation);
    last.append(time);
    if (stats.lastStatus && stats.lastStatus !== "success") {
      last.append(" ", el("span", "badge bad", stats.lastStatus));
    }
  } else {
    last.append(el("span", "muted", "never"));
  }
  const errors = stats ? stats.errors : 0;
  const errorCell = el("td", `fn-errors${errors ? " has-errors" : ""}`, String(errors));
  const test = el("td", "fn-actions");
  const invoke = el("a", "button-link", "Test");
  invoke.href = `#fn/${encodeURIComponent(fn.name)}/test`;
  invoke.title = `Invoke ${fn.name} with a JSON event`;
  test.append(invoke);
  const cells = [
    name,
    el("td", "fn-runtime", config.runtime || ""),
    el("td", "fn-memory", config.memory_size ? `${config.memory_size} MB` : ""),
    el("td", "fn-timeout", config.timeout ? `${config.timeout} s` : ""),
    last,
    errorCell,
    test,
  ];
  // The headers again, for the phone layout (each row a card, each cell labelled).
  const labels = ["Name", "Runtime", "Memory", "Timeout", "Last invocation", "Errors (1 h)", ""];
  cells.forEach((cell, i) => (cell.dataset.label = labels[i]));
  tr.append(...cells);
  return tr;
}

function render() {
  const query = $("function-search").value;
  const found = shown.filter(({ fn }) => matches(fn, query));
  $("function-rows").replaceChildren(...found.map(row));
  $("function-table").hidden = !found.length;
  const empty = $("functions-empty");
  empty.hidden = found.length > 0;
  if (!shown.length) empty.textContent = "No functions are deployed. Deploy a service with `faasbox deploy DIR`.";
  else if (!found.length) empty.textContent = `No function matches "${query}".`;
}

async function load() {
  if (loading) return loading;
  loading = (async () => {
    try {
      const [list, stats] = await Promise.all([managementGet("functions"), managementGet("stats?minutes=60")]);
      const byName = stats.functions || {};
      shown = (list.functions || [])
        .slice()
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((fn) => ({ fn, stats: byName[fn.name] }));
      hideSignIn();
      hideMessage("functions-message");
      render();
      return true;
    } catch (error) {
      $("function-table").hidden = true;
      if (error instanceof SignInNeeded) askToSignIn(error);
      else showMessage("functions-message", error instanceof ApiError ? error.message : `Something went wrong: ${error}`);
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
    if (visible && document.visibilityState === "visible" && !signInShown()) await load();
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

export function reloadFunctionsView() {
  if (visible) load();
}

export function initFunctionsView() {
  $("refresh-button").addEventListener("click", () => load());
  $("function-search").addEventListener("input", render);
}
