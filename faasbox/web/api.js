// Requests to faasbox from the page: the management API and Lambda's Invoke (signed when the
// server asks for it) and readable messages for every way a request can fail.
import { signRequest } from "./sigv4.js";

const KEY_ID = "faasbox.accessKeyId";
const SECRET = "faasbox.secretAccessKey";

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

// The server answered 403 and this tab has no access key (or a wrong one).
export class SignInNeeded extends ApiError {}

// sessionStorage only: the key is gone when the tab closes, and never leaves this origin.
export function credentials() {
  const accessKeyId = sessionStorage.getItem(KEY_ID);
  const secretAccessKey = sessionStorage.getItem(SECRET);
  return accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : null;
}

export function saveCredentials(accessKeyId, secretAccessKey) {
  sessionStorage.setItem(KEY_ID, accessKeyId.trim());
  sessionStorage.setItem(SECRET, secretAccessKey.trim());
}

export function clearCredentials() {
  sessionStorage.removeItem(KEY_ID);
  sessionStorage.removeItem(SECRET);
}

// A fetch whose network failure becomes a sentence a person can act on.
export async function request(url, init = {}) {
  try {
    return await fetch(url, init);
  } catch (error) {
    throw new ApiError(
      `Could not reach the faasbox server (${error.message || error}). ` +
        "Check that it is running and try again.",
    );
  }
}

// The message of an error answer: AWS's {"Message"}, API Gateway's {"message"}, a handler's
// {"errorMessage"} or {"error"}, or the text itself.
export function messageOf(status, statusText, text) {
  text = (text || "").trim();
  try {
    const data = JSON.parse(text);
    const found = data.Message || data.message || data.errorMessage || data.error || data.detail;
    if (typeof found === "string" && found) return found.split("\n\n")[0];
  } catch {
    // not JSON: use the text
  }
  if (text && text.length < 400 && !text.startsWith("<")) return text;
  return `HTTP ${status} ${statusText || ""}`.trim();
}

export async function errorMessage(response) {
  let text = "";
  try {
    text = await response.text();
  } catch {
    // the body could not be read: the status says enough
  }
  return messageOf(response.status, response.statusText, text);
}

// What the page must know before its first management request (GET /ui/server.json, public):
// whether the management API needs a signature, the largest file "Try it" can send, and which
// of the given POST paths a public route serves. Asked once per page load; knowing `auth` up
// front means the page never sends an unsigned request only to be refused with a 403.
let facts = null;
export function serverFacts(postPaths = []) {
  if (!facts) {
    const query = postPaths.map((p) => `post=${encodeURIComponent(p)}`).join("&");
    facts = request(`server.json${query ? "?" + query : ""}`).then(json, (error) => {
      facts = null; // unreachable now: ask again next time
      throw error;
    });
  }
  return facts;
}

// A request to a signed API: signed with this tab's key when the server asks for signatures,
// plain with --no-auth; SignInNeeded, with no request sent, when a key is needed and missing.
async function signedFetch(method, url, body = "", headers = {}) {
  const { auth } = await serverFacts();
  const creds = credentials();
  if (auth && !creds) throw new SignInNeeded("This server needs an access key.", 403);
  const amz = Object.fromEntries(Object.entries(headers).filter(([name]) => /^x-amz-/i.test(name)));
  const signature = auth ? await signRequest({ method, url, body, headers: amz, ...creds }) : {};
  const response = await request(url, {
    method,
    body: method === "GET" || method === "HEAD" ? undefined : body,
    headers: { ...headers, ...signature },
  });
  if (response.status === 403 && auth) {
    throw new SignInNeeded(await errorMessage(response), 403);
  }
  return response;
}

// A management API call (under /_faasbox/); its JSON answer, or ApiError with its message.
export async function management(method, path, body = "") {
  const url = "/_faasbox/" + path.replace(/^\//, "");
  const headers = { Accept: "application/json" };
  if (body) headers["Content-Type"] = "application/json";
  return json(await signedFetch(method, url, body, headers));
}

export function managementGet(path) {
  return management("GET", path);
}

// Lambda's Invoke: RequestResponse with the tail of the log (what the Test tab shows), or
// Event (answered 202 with only the request id once the event is queued).
export async function invokeFunction(name, payload, invocationType = "RequestResponse") {
  const url = `/2015-03-31/functions/${encodeURIComponent(name)}/invocations`;
  const headers = { "Content-Type": "application/json", "X-Amz-Invocation-Type": invocationType };
  if (invocationType === "RequestResponse") headers["X-Amz-Log-Type"] = "Tail";
  const response = await signedFetch("POST", url, payload, headers);
  const text = await response.text();
  if (!response.ok) throw new ApiError(messageOf(response.status, response.statusText, text), response.status);
  const tail = response.headers.get("x-amz-log-result");
  return {
    status: response.status,
    requestId: response.headers.get("x-amzn-requestid") || "",
    functionError: response.headers.get("x-amz-function-error") || "",
    version: response.headers.get("x-amz-executed-version") || "",
    payload: text,
    log: tail ? decodeBase64(tail) : "",
  };
}

function decodeBase64(text) {
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

async function json(response) {
  if (!response.ok) throw new ApiError(await errorMessage(response), response.status);
  try {
    return await response.json();
  } catch {
    throw new ApiError(`The server's answer was not JSON (HTTP ${response.status}).`, response.status);
  }
}
