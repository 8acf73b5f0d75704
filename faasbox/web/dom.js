// Small helpers the views share: elements and the formats of times, durations and sizes.

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// A date and time a person reads at a glance: the time today, the date and time otherwise.
export function formatTime(epochSeconds) {
  const date = new Date(epochSeconds * 1000);
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  if (date.toDateString() === new Date().toDateString()) return time;
  return `${date.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" })} ${time}`;
}

// Always with the date (the invocations list and the function's facts).
export function formatDateTime(epochSeconds) {
  const date = new Date(epochSeconds * 1000);
  const day = date.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" });
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  return `${day} ${time}`;
}

// "3 s ago", "5 min ago": how long since, for the list of functions.
export function formatAgo(epochSeconds, now = Date.now() / 1000) {
  const seconds = Math.max(0, Math.round(now - epochSeconds));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return formatDateTime(epochSeconds);
}

export function formatMs(ms) {
  if (ms === null || ms === undefined) return "";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function showMessage(id, text, kind = "error") {
  const box = $(id);
  box.textContent = text;
  box.className = `message ${kind}`;
  box.hidden = false;
  return box;
}

export function hideMessage(id) {
  $(id).hidden = true;
}
