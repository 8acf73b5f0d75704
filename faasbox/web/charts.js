// Charts of a function's last hour, per minute, as inline SVG (no library): bars for counts
// (invocations, errors), lines for durations (p50 and p99). From the management API's
// GET /_faasbox/functions/NAME/stats?minutes=60.
import { el, formatMs } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
// Drawn at the size shown (the viewBox is the box's width in CSS pixels), so that the labels
// keep their size on a phone instead of shrinking with the drawing.
let W = 600;
const H = 150;
const PAD = { top: 12, right: 8, bottom: 20, left: 44 };

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

// A "nice" top of the axis: 1, 2 or 5 times a power of ten, at least `max`.
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= max);
}

function frame(max, format, buckets) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  const bottom = H - PAD.bottom;
  root.append(
    svg("line", { x1: PAD.left, y1: bottom, x2: W - PAD.right, y2: bottom, class: "axis" }),
    svg("line", { x1: PAD.left, y1: PAD.top, x2: W - PAD.right, y2: PAD.top, class: "grid" }),
  );
  const label = (x, y, text, anchor) => {
    const t = svg("text", { x, y, "text-anchor": anchor, class: "tick" });
    t.textContent = text;
    return t;
  };
  const minutes = buckets.length;
  root.append(
    label(PAD.left - 4, PAD.top + 4, format(max), "end"),
    label(PAD.left - 4, bottom, "0", "end"),
    label(PAD.left, H - 4, `-${minutes} min`, "start"),
    label(W - PAD.right, H - 4, "now", "end"),
  );
  return root;
}

const x = (i, n) => PAD.left + ((W - PAD.left - PAD.right) * i) / n;
const y = (v, max) => H - PAD.bottom - ((H - PAD.top - PAD.bottom) * v) / max;

function barChart(buckets, key, className) {
  const max = niceMax(Math.max(...buckets.map((b) => b[key])));
  const root = frame(max, (v) => String(v), buckets);
  const n = buckets.length;
  buckets.forEach((bucket, i) => {
    if (!bucket[key]) return;
    const top = y(bucket[key], max);
    const bar = svg("rect", {
      x: x(i, n) + 0.5,
      y: top,
      width: Math.max(1, x(1, n) - x(0, n) - 1),
      height: H - PAD.bottom - top,
      class: `bar ${className}`,
      "data-value": bucket[key],
    });
    const tip = svg("title");
    tip.textContent = `${new Date(bucket.start * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: ${bucket[key]}`;
    bar.append(tip);
    root.append(bar);
  });
  return root;
}

function lineChart(buckets, series) {
  const values = buckets.flatMap((b) => series.map((s) => b[s.key])).filter((v) => v !== null);
  const max = niceMax(Math.max(0, ...values));
  const root = frame(max, formatMs, buckets);
  const n = buckets.length;
  for (const s of series) {
    // One path, broken where a minute had no invocation; a lone minute is a dot.
    let d = "";
    let open = false;
    buckets.forEach((bucket, i) => {
      const v = bucket[s.key];
      if (v === null) {
        open = false;
        return;
      }
      const px = x(i + 0.5, n).toFixed(1);
      const py = y(v, max).toFixed(1);
      d += `${open ? "L" : "M"}${px} ${py} `;
      open = true;
      root.append(svg("circle", { cx: px, cy: py, r: 2, class: `dot ${s.className}` }));
    });
    if (d) root.append(svg("path", { d: d.trim(), class: `line ${s.className}` }));
  }
  return root;
}

function chart(name, title, total, drawing, legend = []) {
  const figure = el("figure", "chart card");
  figure.dataset.chart = name;
  const caption = el("figcaption");
  caption.append(el("strong", "", title), " ", el("span", "muted small chart-total", total));
  for (const item of legend) caption.append(" ", el("span", `legend ${item.className}`, item.label));
  figure.append(caption, drawing);
  return figure;
}

export function renderCharts(box, buckets) {
  W = box.clientWidth ? Math.max(240, Math.round(box.clientWidth - 30)) : 600; // less the card padding
  const sum = (key) => buckets.reduce((n, b) => n + b[key], 0);
  const durations = buckets.map((b) => b.p99Ms).filter((v) => v !== null);
  box.replaceChildren(
    chart("invocations", "Invocations", `${sum("invocations")} in the hour`, barChart(buckets, "invocations", "invocations")),
    chart("errors", "Errors", `${sum("errors")} in the hour` + (sum("throttles") ? `, ${sum("throttles")} throttled` : ""), barChart(buckets, "errors", "errors")),
    chart(
      "duration",
      "Duration",
      durations.length ? `p99 up to ${formatMs(Math.max(...durations))}` : "no invocations",
      lineChart(buckets, [
        { key: "p50Ms", className: "p50" },
        { key: "p99Ms", className: "p99" },
      ]),
      [
        { label: "p50", className: "p50" },
        { label: "p99", className: "p99" },
      ],
    ),
  );
}
