// A function's asynchronous (Event) invocations, from the management API's
// GET /_faasbox/async/invocations?function=NAME: where each one is (queued, running, retrying,
// succeeded, failed), how many runs failed, the last error and where its record went. The
// Invocations panel lists them; the Test tab follows the one it just sent (followInvocation).
import { managementGet } from "./api.js";
import { el, formatDateTime } from "./dom.js";

export const FINAL_STATES = new Set(["succeeded", "failed"]);
const STATES = ["queued", "running", "retrying", "succeeded", "failed"];
const STATE_STYLE = { queued: "warm", running: "cold", retrying: "warn", succeeded: "ok", failed: "bad" };
const FOLLOW_MS = 1000; // how often the Test tab asks where its invocation is

const encoded = (name) => encodeURIComponent(name);

export function stateBadge(state) {
  return el("span", `badge state ${STATE_STYLE[state] || "warm"}`, state);
}

// "2 failed runs": `attempts` counts runs that ended in a function error or a timeout.
export function describeAttempts(attempts) {
  return attempts === 1 ? "1 failed run" : `${attempts} failed runs`;
}

export function loadAsyncInvocations(name, limit) {
  return managementGet(`async/invocations?function=${encoded(name)}&limit=${limit}`);
}

function row(invocation) {
  const item = el("li", "async-invocation");
  item.dataset.requestId = invocation.requestId;
  item.dataset.state = invocation.state;
  const when = el("time", "when", formatDateTime(invocation.createdAt));
  when.dateTime = new Date(invocation.createdAt * 1000).toISOString();
  const link = el("a", "request-link", invocation.requestId);
  link.href = `#fn/${encoded(invocation.function)}/log/${encoded(invocation.requestId)}`;
  link.title = "Its runs in the list above";
  const line = el("div", "async-line");
  line.append(
    when,
    stateBadge(invocation.state),
    el("span", "attempts muted small", describeAttempts(invocation.attempts)),
    el("span", "source muted small", `from ${invocation.source}`),
    link,
  );
  item.append(line);
  if (invocation.lastError) item.append(el("p", "last-error small", `Last error: ${invocation.lastError}`));
  if (invocation.destination) item.append(el("p", "destination small", `Record sent to ${invocation.destination}`));
  return item;
}

// Fill `list` and `counts` from an answer of loadAsyncInvocations.
export function renderAsyncInvocations(list, counts, answer) {
  const invocations = answer.invocations || [];
  list.replaceChildren(...invocations.map(row));
  if (!invocations.length) list.append(el("li", "muted small", "No asynchronous invocations in the last hour."));
  const known = answer.counts || {};
  const parts = STATES.filter((s) => known[s]).map((s) => `${known[s]} ${s}`);
  counts.textContent = parts.length ? parts.join(" · ") : "";
}

// Ask where invocation `requestId` is every second until it is final or `stillWanted()` says
// the page moved on; `show(status, history)` gets each answer and the states seen so far
// (starting with `history`).
export async function followInvocation(requestId, show, stillWanted, history = []) {
  for (;;) {
    const status = await managementGet(`async/invocations/${encoded(requestId)}`);
    if (!stillWanted()) return;
    if (history[history.length - 1] !== status.state) history.push(status.state);
    show(status, history);
    if (FINAL_STATES.has(status.state)) return;
    await new Promise((resolve) => setTimeout(resolve, FOLLOW_MS));
    if (!stillWanted()) return;
  }
}
