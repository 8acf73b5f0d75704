// Requests to faasbox from the page: the management API (signed when the server asks for it)
// and readable messages for every way a request can fail.
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

let authRequired = false; // set once the server has answered an unsigned request with 403

// GET a management API path (under /_faasbox/) and return its JSON. Unsigned first, as a
// server started with --no-auth accepts; signed with the tab's key after a 403.
export async function managementGet(path) {
  const url = "/_faasbox/" + path.replace(/^\//, "");
  const creds = credentials();
  if (!authRequired || !creds) {
    const response = await request(url, { headers: { Accept: "application/json" } });
    if (response.status !== 403) return json(response);
    authRequired = true;
    if (!creds) throw new SignInNeeded(await errorMessage(response), 403);
  }
  const headers = await signRequest({ method: "GET", url, body: "", ...creds });
  const response = await request(url, { headers: { ...headers, Accept: "application/json" } });
  if (response.status === 403) {
    throw new SignInNeeded(await errorMessage(response), 403);
  }
  return json(response);
}

async function json(response) {
  if (!response.ok) throw new ApiError(await errorMessage(response), response.status);
  try {
    return await response.json();
  } catch {
    throw new ApiError(`The server's answer was not JSON (HTTP ${response.status}).`, response.status);
  }
}
