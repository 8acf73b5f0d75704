// The Test tab: a JSON event editor, the function's saved test events (kept by the server,
// GET/PUT/DELETE /_faasbox/functions/NAME/test-events) and templates; Test invokes the
// function through Lambda's Invoke API and shows its result, its log and its REPORT line, or,
// invoked as Event, follows where that asynchronous invocation is until it is done.
import { ApiError, SignInNeeded, invokeFunction, management } from "./api.js";
import { askToSignIn } from "./account.js";
import { FINAL_STATES, describeAttempts, followInvocation, stateBadge } from "./async-invocations.js";
import { $, el, hideMessage, showMessage } from "./dom.js";
import { TEMPLATES, templateEvent } from "./event-templates.js";

const NAME = /^[A-Za-z0-9._-]{1,25}$/; // as the server (and the Lambda console) accept
// `following`: the Event invocation the tab shows ({requestId, history, final}); `round` tells
// a follow loop that it is no longer wanted (the tab was left, or another was sent).
// edited: the editor or the event menu was changed by hand since the tab was shown for this
// function (the saved events, when they load, then leave the editor alone).
const state = {
  fn: null,
  routes: [],
  saved: [],
  busy: false,
  shown: false,
  following: null,
  round: 0,
  edited: false,
};

const encoded = (name) => encodeURIComponent(name);

function fail(error) {
  if (error instanceof SignInNeeded) askToSignIn(error);
  else showMessage("event-error", error instanceof ApiError ? error.message : String(error));
}

function fillSelect(selected) {
  const select = $("event-select");
  select.replaceChildren();
  if (state.saved.length) {
    const group = el("optgroup");
    group.label = "Saved events";
    for (const event of state.saved) {
      const option = el("option", "", event.name);
      option.value = `saved:${event.name}`;
      group.append(option);
    }
    select.append(group);
  }
  const group = el("optgroup");
  group.label = "Templates";
  for (const template of TEMPLATES) {
    const option = el("option", "", template.title);
    option.value = `template:${template.id}`;
    group.append(option);
  }
  select.append(group);
  select.value = selected;
  if (!select.value) select.value = `template:${TEMPLATES[0].id}`;
}

// Put the chosen event (saved or a template) in the editor.
function choose(value) {
  hideMessage("event-error");
  const [kind, name] = [value.slice(0, value.indexOf(":")), value.slice(value.indexOf(":") + 1)];
  const saved = kind === "saved" ? state.saved.find((e) => e.name === name) : null;
  const event = saved ? saved.event : templateEvent(name, state.fn, state.routes);
  $("event-editor").value = JSON.stringify(event, null, 2);
  $("event-name").value = saved ? saved.name : "";
  $("delete-event").hidden = !saved;
}

async function loadSaved(selected) {
  const answer = await management("GET", `functions/${encoded(state.fn)}/test-events`);
  state.saved = answer.events || [];
  fillSelect(selected ?? $("event-select").value);
}

// The editor's JSON, or null after saying what is wrong with it.
function editorEvent() {
  const text = $("event-editor").value;
  try {
    JSON.parse(text);
    return text;
  } catch (error) {
    showMessage("event-error", `The event is not valid JSON: ${error.message}`);
    return null;
  }
}

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

async function test() {
  hideMessage("event-error");
  const payload = editorEvent();
  if (payload === null || state.busy) return;
  state.busy = true;
  $("test-button").disabled = true;
  $("test-button").textContent = "Testing...";
  try {
    if ($("invocation-type").value === "Event") {
      await testEvent(payload);
      return;
    }
    const result = await invokeFunction(state.fn, payload);
    $("test-async").hidden = true;
    state.following = null;
    state.round += 1;
    const failed = Boolean(result.functionError);
    const status = $("test-status");
    status.textContent = failed ? `Failed (${result.functionError})` : "Succeeded";
    status.className = `badge ${failed ? "bad" : "ok"}`;
    const request = $("test-request");
    request.replaceChildren();
    if (result.requestId) request.append("Request ", requestLink(result.requestId, "This invocation in the Invocations tab"));
    $("test-payload").textContent = pretty(result.payload);
    const lines = result.log.split("\n");
    $("test-report").textContent = lines.find((line) => line.startsWith("REPORT")) || "";
    $("test-log").textContent = result.log || "(no log)";
    $("test-result").hidden = false;
  } catch (error) {
    fail(error);
  } finally {
    state.busy = false;
    $("test-button").disabled = false;
    $("test-button").textContent = "Test";
  }
}

function requestLink(requestId, title) {
  const link = el("a", "request-link", requestId);
  link.href = `#fn/${encoded(state.fn)}/log/${encodeURIComponent(requestId)}`;
  link.title = title;
  return link;
}

function showAsyncStatus(status, history) {
  const badge = stateBadge(status.state);
  badge.id = "test-async-state";
  $("test-async-state").replaceWith(badge);
  $("test-async-history").textContent = `Seen: ${history.join(" → ")}`;
  const detail = $("test-async-detail");
  detail.replaceChildren(describeAttempts(status.attempts));
  if (status.lastError) detail.append(el("br"), `Last error: ${status.lastError}`);
  if (status.destination) detail.append(el("br"), `Record sent to ${status.destination}`);
}

// InvocationType Event: Lambda answers 202 once the event is queued; then the tab asks the
// management API where it is until it succeeded or failed (or the tab moved on).
async function testEvent(payload) {
  const fn = state.fn;
  const result = await invokeFunction(fn, payload, "Event");
  $("test-result").hidden = true;
  const requestId = result.requestId;
  const request = $("test-async-request");
  request.replaceChildren("Accepted (202), request ", requestLink(requestId, "Its runs in the Invocations tab"));
  showAsyncStatus({ state: "queued", attempts: 0 }, ["queued"]);
  $("test-async").hidden = false;
  follow(fn, requestId, ["queued"]);
}

function follow(fn, requestId, history) {
  const round = ++state.round;
  const wanted = () => state.shown && state.fn === fn && state.round === round;
  state.following = { requestId, history, final: false };
  const show = (status, seen) => {
    state.following = { requestId, history: seen.slice(), final: FINAL_STATES.has(status.state) };
    showAsyncStatus(status, seen);
  };
  followInvocation(requestId, show, wanted, history.slice()).catch((error) => {
    if (wanted()) fail(error);
  });
}

async function save() {
  hideMessage("event-error");
  const name = $("event-name").value.trim();
  if (!NAME.test(name)) {
    showMessage("event-error", "Name the event to save it: 1-25 letters, digits, dots, hyphens or underscores.");
    $("event-name").focus();
    return;
  }
  const payload = editorEvent();
  if (payload === null) return;
  try {
    await management("PUT", `functions/${encoded(state.fn)}/test-events/${encoded(name)}`, payload);
    await loadSaved(`saved:${name}`);
    choose(`saved:${name}`);
    $("test-note").textContent = `Saved "${name}".`;
  } catch (error) {
    fail(error);
  }
}

async function remove() {
  const name = $("event-name").value.trim();
  try {
    await management("DELETE", `functions/${encoded(state.fn)}/test-events/${encoded(name)}`);
    await loadSaved(`template:${TEMPLATES[0].id}`);
    choose($("event-select").value);
    $("test-note").textContent = `Deleted "${name}".`;
  } catch (error) {
    fail(error);
  }
}

// Show the tab for `fn` (its routes feed the API Gateway templates). Keeps the editor as it is
// when it is the same function.
export async function showTestTab(fn, routes) {
  const same = state.fn === fn.name;
  state.fn = fn.name;
  state.routes = routes;
  state.shown = true;
  if (same && state.following && !state.following.final) {
    follow(fn.name, state.following.requestId, state.following.history); // back on the tab
  }
  if (!same) {
    state.following = null;
    $("test-result").hidden = true;
    $("test-async").hidden = true;
    $("test-note").textContent = "";
    state.saved = [];
    state.edited = false;
    fillSelect(`template:${TEMPLATES[0].id}`);
    choose($("event-select").value);
  }
  try {
    const before = $("event-select").value;
    await loadSaved(before);
    if (!same && state.saved.length && !state.edited) {
      fillSelect(`saved:${state.saved[0].name}`);
      choose($("event-select").value);
    }
  } catch (error) {
    fail(error);
  }
}

// The tab is hidden: stop asking where its Event invocation is (showTestTab asks again).
export function hideTestTab() {
  state.shown = false;
  state.round += 1;
}

export function initTestTab() {
  $("event-select").addEventListener("change", (event) => {
    state.edited = true;
    choose(event.target.value);
  });
  $("event-editor").addEventListener("input", () => {
    state.edited = true;
  });
  $("test-button").addEventListener("click", test);
  $("save-event").addEventListener("click", save);
  $("delete-event").addEventListener("click", remove);
}
