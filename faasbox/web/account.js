// Signing in: one form for every view that reads the management API. The key is kept in the
// tab's sessionStorage (api.js); a view that meets SignInNeeded calls askToSignIn, and after a
// successful sign-in the page calls back whoever asked (to load again).
import { clearCredentials, credentials, saveCredentials } from "./api.js";
import { $ } from "./dom.js";

let onChange = () => {};

export function showSignedIn() {
  const creds = credentials();
  $("signed-in").hidden = !creds;
  $("sign-out").hidden = !creds;
  if (creds) $("signed-in").textContent = `Signed in as ${creds.accessKeyId}`;
}

// Show the form, saying why; a key the server refused is forgotten.
export function askToSignIn(error) {
  const refused = Boolean(credentials());
  if (!refused && !$("sign-in").hidden) return; // already asking (after "Signed out", say)
  if (refused) clearCredentials();
  $("sign-in-reason").textContent = refused
    ? `The server refused this access key: ${error.message}`
    : "This server needs an access key to show its functions.";
  $("sign-in-reason").className = `message ${refused ? "error" : "info"}`;
  $("sign-in").hidden = false;
  showSignedIn();
}

export function hideSignIn() {
  $("sign-in").hidden = true;
}

export function signInShown() {
  return !$("sign-in").hidden;
}

// `changed` runs after signing in or out: the page reloads what the current view shows.
export function initAccount(changed) {
  onChange = changed;
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    saveCredentials($("access-key-id").value, $("secret-access-key").value);
    $("secret-access-key").value = "";
    hideSignIn();
    showSignedIn();
    onChange();
  });
  $("sign-out").addEventListener("click", () => {
    clearCredentials();
    showSignedIn();
    $("sign-in-reason").textContent = "Signed out. The access key was removed from this tab.";
    $("sign-in-reason").className = "message info";
    $("sign-in").hidden = false;
    onChange();
  });
  showSignedIn();
}
