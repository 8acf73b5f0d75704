// The page: views switched by the URL's hash: #try (default), #functions, and a function's
// page #fn/NAME/PANEL (#fn/NAME/log/REQUEST_ID opens one invocation's log).
// "Try it" sends an image to a function's API Gateway route and shows the answer and latency.
import { ApiError, credentials, managementGet, messageOf, request, serverFacts } from "./api.js";
import { initAccount } from "./account.js";
import { formatBytes } from "./dom.js";
import { hideFunctionPage, initFunctionPage, reloadFunctionPage, showFunctionPage } from "./function-page.js";
import { hideFunctionsView, initFunctionsView, reloadFunctionsView, showFunctionsView } from "./functions.js";
import { routeClaims, routesOf } from "./routes.js";
import { initTestTab } from "./test-tab.js";

// The image functions this page knows how to show. Each is offered only while a public POST
// route serves its path: the server says which (GET /ui/server.json, no signature needed).
const BUILT_IN = [
  { id: "grayscale", title: "Grayscale", note: "Python: OpenCV, Pillow", path: "/images/grayscale", kind: "image" },
  { id: "classify", title: "Classify", note: "Python: EfficientNet-Lite0, ONNX", path: "/images/classify", kind: "classes" },
  { id: "grayscale-wasm", title: "Grayscale (WebAssembly)", note: "C compiled to WebAssembly", path: "/wasm/grayscale", kind: "image" },
  { id: "classify-wasm", title: "Classify (WebAssembly)", note: "C + wasi-nn, ONNX", path: "/wasm/classify", kind: "classes" },
];
const FORMATS = "JPEG, PNG, GIF or WebP";

const $ = (id) => document.getElementById(id);
const state = {
  file: null,
  fileUrl: "",
  resultUrl: "",
  choices: [],
  selected: null,
  busy: false,
  maxBytes: Infinity, // the server's figure (server.json), once known
  owners: new Map(), // path -> function name, when the management API is readable
};

// --- views ---

// {view, name, panel, requestId} of the URL's hash.
export function parseHash(hash) {
  const parts = hash.replace(/^#/, "").split("/").map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  if (parts[0] === "functions") return { view: "functions" };
  if (parts[0] === "fn" && parts[1]) {
    if (parts[2] === "log") return { view: "function", name: parts[1], panel: "invocations", requestId: parts.slice(3).join("/") };
    return { view: "function", name: parts[1], panel: parts[2] || "test" };
  }
  return { view: "try" };
}

function showView() {
  const route = parseHash(location.hash);
  const tabView = route.view === "function" ? "functions" : route.view;
  $("view-try").hidden = route.view !== "try";
  $("view-functions").hidden = route.view !== "functions";
  $("view-function").hidden = route.view !== "function";
  if (route.view === "try") $("sign-in").hidden = true; // "Try it" needs no key
  for (const tab of document.querySelectorAll(".tabs a")) {
    if (tab.dataset.view === tabView) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  if (route.view === "functions") showFunctionsView();
  else hideFunctionsView();
  if (route.view === "function") showFunctionPage(route.name, route.panel, route.requestId);
  else hideFunctionPage();
}

function signedInOrOut() {
  reloadFunctionsView();
  reloadFunctionPage();
  discover();
}

// --- messages ---

function showMessage(text, kind = "error", link = null) {
  const box = $("try-message");
  box.textContent = text;
  if (link) {
    const a = document.createElement("a");
    a.href = link.href;
    a.textContent = link.text;
    box.append(" ", a);
  }
  box.className = `message ${kind}`;
  box.hidden = false;
}

function hideMessage() {
  $("try-message").hidden = true;
}

// --- the image ---

function setFile(file) {
  if (!file) return;
  // Refused here, before any upload: API Gateway would answer 413 after the whole body.
  if (file.size > state.maxBytes) {
    state.file = null;
    $("input-preview").hidden = true;
    $("input-icon").hidden = false;
    $("input-name").textContent = `${file.name} · ${formatBytes(file.size)}`;
    $("dropzone").classList.remove("has-file");
    showMessage(
      `${file.name} is ${formatBytes(file.size)}: too large to send. The largest file is about ` +
        `${formatBytes(state.maxBytes)} (${state.maxBytes.toLocaleString("en")} bytes), because ` +
        "API Gateway hands the function a binary body base64-encoded inside its event, and " +
        "an event may be at most 6 MB (Lambda's payload limit).",
    );
    updateRunButton();
    return;
  }
  state.file = file;
  if (state.fileUrl) URL.revokeObjectURL(state.fileUrl);
  state.fileUrl = URL.createObjectURL(file);
  const preview = $("input-preview");
  preview.hidden = !file.type.startsWith("image/");
  preview.src = preview.hidden ? "" : state.fileUrl;
  $("input-icon").hidden = !preview.hidden;
  $("input-name").textContent = `${file.name} · ${formatBytes(file.size)}`;
  $("dropzone").classList.add("has-file");
  hideMessage();
  updateRunButton();
}

async function useSample() {
  try {
    const response = await request("sample.jpg");
    if (!response.ok) throw new ApiError(`The sample photo could not be loaded (HTTP ${response.status}).`);
    const blob = await response.blob();
    setFile(new File([blob], "sample.jpg (Grace Hopper)", { type: "image/jpeg" }));
  } catch (error) {
    showMessage(error.message);
  }
}

function initImageInput() {
  const zone = $("dropzone");
  $("file-input").addEventListener("change", (event) => setFile(event.target.files[0]));
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (event) => {
      event.preventDefault();
      zone.classList.add("dragging");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, () => zone.classList.remove("dragging"));
  }
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) setFile(file);
    else showMessage(`Drop a file from your computer (an image: ${FORMATS}).`);
  });
  // A file dropped beside the zone must not make the browser leave the page for it.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
  $("sample-button").addEventListener("click", useSample);
}

// --- the functions to choose from ---

async function discover() {
  let choices = [];
  let source = "";
  try {
    const facts = await serverFacts(BUILT_IN.map((c) => c.path));
    state.maxBytes = facts.maxUploadBytes || Infinity;
    choices = BUILT_IN.filter((c) => facts.postRoutes.includes(c.path));
    source = "The image functions deployed on this server.";
  } catch (error) {
    // Unreachable: say so, and offer nothing (running anything would fail the same way).
    showMessage(error.message || String(error));
    $("function-choices").replaceChildren();
    $("run-button").hidden = true;
    return;
  }
  setChoices(choices, source);
  state.owners = new Map(); // a deploy or a sign-in may have changed who serves what
}

// The function behind a choice's route, for links to its log: readable with --no-auth or
// signed in (the management API's list), else null.
async function ownerOf(choice) {
  if (!state.owners.has(choice.path)) {
    try {
      if (!credentials() && (await serverFacts()).auth) return null;
      const routes = routesOf((await managementGet("functions")).functions || []);
      for (const c of state.choices) {
        const route = routes.find((r) => routeClaims(r, "POST", c.path));
        if (route) state.owners.set(c.path, route.function);
      }
    } catch {
      return null; // no link to the log; the result stands
    }
  }
  return state.owners.get(choice.path) || null;
}

// Where a person reads the log of `requestId` from the function behind `choice`.
async function logLink(choice, requestId) {
  const owner = await ownerOf(choice);
  if (!owner) return { href: "#functions", text: "See its log in the Functions view." };
  const href = `#fn/${encodeURIComponent(owner)}/` + (requestId ? `log/${encodeURIComponent(requestId)}` : "invocations");
  return { href, text: "See its log." };
}

function setChoices(choices, source) {
  state.choices = choices;
  if (!choices.includes(state.selected)) state.selected = choices[0] || null;
  const box = $("function-choices");
  box.replaceChildren();
  for (const choice of choices) {
    const label = document.createElement("label");
    label.className = "choice";
    label.dataset.function = choice.id;
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "function";
    input.value = choice.id;
    input.checked = choice === state.selected;
    input.addEventListener("change", () => {
      state.selected = choice;
      updateRunButton();
    });
    const title = document.createElement("span");
    title.className = "choice-title";
    title.textContent = choice.title;
    const note = document.createElement("span");
    note.className = "choice-meta";
    note.textContent = choice.note;
    const route = document.createElement("code");
    route.className = "choice-route";
    route.textContent = `POST ${choice.path}`;
    label.append(input, title, note, route);
    box.append(label);
  }
  if (!choices.length) {
    const empty = document.createElement("p");
    empty.className = "message warning";
    empty.textContent =
      "None of the image functions is deployed on this server. Deploy examples/image-service " +
      "or examples/wasm-grayscale (faasbox deploy DIR), then reload this page; any function " +
      "can be invoked with a JSON event from its Test tab in Functions.";
    box.append(empty);
  }
  // No choice, no Run button (and nothing to pick an image for).
  $("run-button").hidden = !choices.length;
  $("image-card").hidden = !choices.length;
  if (!choices.length) source = "";
  if (source !== undefined) $("functions-source").textContent = source;
  updateRunButton();
}

function updateRunButton() {
  const button = $("run-button");
  button.disabled = state.busy || !state.file || !state.selected;
  button.textContent = state.busy
    ? "Running..."
    : state.selected
      ? `Run ${state.selected.title[0].toLowerCase()}${state.selected.title.slice(1)}`
      : "Run";
}

// --- running one ---

// API Gateway's answers for a path or method no route claims.
function notDeployed(status, text) {
  return (
    (status === 404 && /"Not Found"/.test(text)) ||
    (status === 403 && /"Missing Authentication Token"/.test(text))
  );
}

async function run() {
  const choice = state.selected;
  const file = state.file;
  if (!choice || !file || state.busy) return;
  hideMessage();
  state.busy = true;
  updateRunButton();
  $("result").classList.add("stale");
  let response;
  let body;
  let elapsed;
  try {
    const started = performance.now();
    response = await request(choice.path, {
      method: "POST",
      body: file,
      headers: {
        "Content-Type": file.type || "application/octet-stream",
        Accept: choice.kind === "classes" ? "application/json" : "image/*",
      },
    });
    body = await response.blob();
    elapsed = performance.now() - started;
  } catch (error) {
    showMessage(error.message || String(error));
    $("result").hidden = true;
    return;
  } finally {
    state.busy = false;
    $("result").classList.remove("stale");
    updateRunButton();
  }
  if (!response.ok) {
    const text = await body.text();
    $("result").hidden = true;
    if (notDeployed(response.status, text)) {
      setChoices(state.choices.filter((c) => c !== choice));
      showMessage(
        `${choice.title} is not deployed on this server: POST ${choice.path} answered ` +
          `${response.status} ${messageOf(response.status, response.statusText, text)}. ` +
          "It was removed from the choices.",
        "warning",
      );
      return;
    }
    const message = messageOf(response.status, response.statusText, text);
    if (response.status >= 500) {
      const failedId = response.headers.get("x-amzn-requestid") || response.headers.get("apigw-requestid");
      showMessage(`${choice.title} failed: ${message} (HTTP ${response.status}).`, "error", await logLink(choice, failedId));
    } else {
      showMessage(`${choice.title} answered ${response.status}: ${message}`);
    }
    return;
  }
  try {
    if (choice.kind === "classes") await showClasses(body);
    else showImage(body);
  } catch (error) {
    $("result").hidden = true;
    showMessage(`${choice.title} answered, but: ${error.message}`);
    return;
  }
  const status = $("result-status");
  status.textContent = `${response.status} ${response.statusText || "OK"}`.trim();
  status.className = "badge ok";
  $("latency").textContent = `${Math.round(elapsed)} ms`;
  const requestId = response.headers.get("x-amzn-requestid") || response.headers.get("apigw-requestid");
  const meta = $("result-meta");
  meta.textContent = `${choice.title} · POST ${choice.path} · latency measured in this page`;
  if (requestId) {
    const link = document.createElement("a");
    link.className = "request-link";
    link.href = (await logLink(choice, requestId)).href;
    link.textContent = requestId;
    link.title = "Its log";
    meta.append(" · request ", link);
  }
  $("result").hidden = false;
}

function showImage(blob) {
  if (!blob.type.startsWith("image/")) {
    throw new Error(`its answer is not an image (Content-Type: ${blob.type || "none"}).`);
  }
  if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
  state.resultUrl = URL.createObjectURL(blob);
  $("original-image").src = state.fileUrl;
  $("result-image").src = state.resultUrl;
  $("result-caption").textContent = `${state.selected.title} · ${formatBytes(blob.size)}`;
  $("result-images").hidden = false;
  $("result-classes").hidden = true;
}

// --- classification answers ---

// Scores as fractions of 1: probabilities as they are, x/255 confidences scaled.
function fraction(value) {
  if (value === null || value === undefined) return null;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) return null;
  return n <= 1 ? n : Math.min(n / 255, 1);
}

function entry(item) {
  if (Array.isArray(item)) return { label: String(item[0]), score: fraction(item[1]) };
  const label = item.label ?? item.name ?? item.class ?? item.className ?? item.class_name;
  const score =
    item.probability ?? item.score ?? item.prob ?? item.confidence ?? item.p ?? item.value;
  return { label: String(label), score: fraction(score) };
}

// The top classes from the function's JSON: {label, confidence, top5: [{label, probability}]}
// and close variants; the sentence form ("X is detected with N/255 confidence") as a last resort.
export function parseClasses(text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    const match = /^(.*) is detected with (\d+)\/255 confidence/.exec(text.trim());
    if (!match) throw new Error("its answer is neither JSON nor a sentence this page can read.");
    const score = Number(match[2]) / 255;
    return { label: match[1], score, top: [{ label: match[1], score }] };
  }
  if (Array.isArray(data)) data = { top: data };
  const list =
    data.top5 ?? data.top ?? data.predictions ?? data.classes ?? data.results ?? data.labels ?? [];
  const top = (Array.isArray(list) ? list : []).map(entry).slice(0, 5);
  const label = data.label ?? data.class ?? data.prediction ?? (top[0] && top[0].label);
  if (label === undefined || label === null) throw new Error("its answer names no class.");
  // The top class's probability; else the answer's own score or its x/255 confidence.
  let score = top.length && top[0].label === String(label) ? top[0].score : null;
  if (score === null) score = fraction(data.probability ?? data.score ?? data.confidence);
  return { label: String(label), score, top: top.length ? top : [{ label: String(label), score }] };
}

async function showClasses(blob) {
  const { label, score, top } = parseClasses(await blob.text());
  $("class-label").textContent = label;
  $("class-confidence").textContent =
    score === null ? "" : `${(score * 100).toFixed(1)}% · ${Math.round(score * 255)}/255 confidence`;
  const bars = $("class-bars");
  bars.replaceChildren();
  for (const item of top) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "bar-label";
    name.textContent = item.label;
    const track = document.createElement("span");
    track.className = "bar-track";
    const fill = document.createElement("span");
    fill.className = "bar-fill";
    fill.style.width = `${Math.max(0.5, (item.score ?? 0) * 100)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = item.score === null ? "" : `${(item.score * 100).toFixed(1)}%`;
    li.append(name, track, value);
    bars.append(li);
  }
  $("result-images").hidden = true;
  $("result-classes").hidden = false;
}

// --- start ---

function init() {
  serverFacts(BUILT_IN.map((c) => c.path)).catch(() => {}); // first: the views share this answer
  initImageInput();
  initAccount(signedInOrOut);
  initFunctionsView();
  initFunctionPage();
  initTestTab();
  $("run-button").addEventListener("click", run);
  window.addEventListener("hashchange", showView);
  showView();
  discover();
}

init();
