// AWS Signature Version 4 for the page's requests to faasbox's signed APIs.
//
// It follows AWS's "Create a signed AWS API request" (SigV4, header form) the way botocore
// signs a Lambda request, which is what faasbox/gateway/sigv4.py verifies:
//   canonical URI      the path as sent (already percent-encoded), dot and empty segments
//                      removed, percent-encoded once more except "/" and "~" (botocore does
//                      not "normalize" S3-style: Lambda paths are encoded twice)
//   canonical query    each name and value decoded ("+" is a space) and re-encoded strictly
//                      (unreserved: A-Z a-z 0-9 - _ . ~), sorted by name, then value
//   signed headers     host, x-amz-content-sha256, x-amz-date (the browser sets Host itself,
//                      to the URL's host[:port], which is what is signed)
//   payload hash       hex SHA-256 of the body (of "" for a GET), also sent as
//                      x-amz-content-sha256
//   scope              YYYYMMDD/us-east-1/lambda/aws4_request
// HMAC-SHA256 and SHA-256 come from WebCrypto (crypto.subtle). Browsers offer it only in a
// secure context (https, localhost, 127.0.0.1); a page opened over plain http from another
// host falls back to the small SHA-256 below, so signing works on an edge box on a LAN too.

const ALGORITHM = "AWS4-HMAC-SHA256";
export const REGION = "us-east-1";
export const SERVICE = "lambda";
const encoder = new TextEncoder();

const toBytes = (data) =>
  typeof data === "string" ? encoder.encode(data) : new Uint8Array(data ?? new Uint8Array(0));
const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

// --- SHA-256 and HMAC: WebCrypto, or a plain implementation (FIPS 180-4) without it ---

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

function sha256Plain(data) {
  const length = data.length;
  const padded = new Uint8Array(((length + 9 + 63) >> 6) << 6);
  padded.set(data);
  padded[length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(length / 0x20000000));
  view.setUint32(padded.length - 4, (length << 3) >>> 0);
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let offset = 0; offset < padded.length; offset += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(offset + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const t1 =
        (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      [hh, g, f, e, d, c, b, a] = [g, f, e, (d + t1) >>> 0, c, b, a, (t1 + t2) >>> 0];
    }
    [a, b, c, d, e, f, g, hh].forEach((v, i) => (h[i] = (h[i] + v) >>> 0));
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  h.forEach((v, i) => outView.setUint32(i * 4, v));
  return out;
}

function hmacPlain(key, data) {
  const padded = new Uint8Array(64);
  padded.set(key.length > 64 ? sha256Plain(key) : key);
  const inner = new Uint8Array(64 + data.length);
  const outer = new Uint8Array(64 + 32);
  for (let i = 0; i < 64; i++) {
    inner[i] = padded[i] ^ 0x36;
    outer[i] = padded[i] ^ 0x5c;
  }
  inner.set(data, 64);
  outer.set(sha256Plain(inner), 64);
  return sha256Plain(outer);
}

function subtle(options) {
  if (options && options.plain) return null;
  return globalThis.crypto && globalThis.crypto.subtle ? globalThis.crypto.subtle : null;
}

async function sha256(data, options) {
  const s = subtle(options);
  if (!s) return sha256Plain(toBytes(data));
  return new Uint8Array(await s.digest("SHA-256", toBytes(data)));
}

async function hmac(key, data, options) {
  const s = subtle(options);
  if (!s) return hmacPlain(toBytes(key), toBytes(data));
  const cryptoKey = await s.importKey("raw", toBytes(key), { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  return new Uint8Array(await s.sign("HMAC", cryptoKey, toBytes(data)));
}

// --- canonicalization ---

// Percent-encode `data` (a string, as UTF-8, or bytes), leaving the unreserved characters and
// those in `safe` as they are; hex digits upper-case, as AWS asks.
export function uriEncode(data, safe = "") {
  let out = "";
  for (const byte of toBytes(data)) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(ch) || safe.includes(ch)) out += ch;
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

// The bytes that %XX escapes stand for (other characters as their UTF-8), as Python's
// urllib.parse.unquote_to_bytes: re-encoding the bytes keeps invalid UTF-8 as it was sent.
function percentDecode(text) {
  const bytes = [];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...encoder.encode(text[i]));
    }
  }
  return new Uint8Array(bytes);
}

export function canonicalUri(rawPath) {
  const out = [];
  for (const segment of rawPath.split("/")) {
    if (!segment || segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  let path = (rawPath.startsWith("/") ? "/" : "") + out.join("/");
  if (rawPath.endsWith("/") && out.length) path += "/";
  return uriEncode(path || "/", "/~");
}

export function canonicalQuery(rawQuery) {
  const pairs = [];
  for (const part of rawQuery.replace(/^\?/, "").split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const name = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? "" : part.slice(eq + 1);
    const decode = (s) => uriEncode(percentDecode(s.replace(/\+/g, " ")));
    pairs.push([decode(name), decode(value)]);
  }
  pairs.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

export function amzDate(date) {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

// The headers to send with a request so that faasbox verifies it:
//   { "X-Amz-Date", "X-Amz-Content-Sha256", "Authorization" }.
// `url` is absolute or relative to the page; `body` a string, ArrayBuffer or Uint8Array.
// options.date (a Date) and options.plain (skip WebCrypto) exist for the tests.
// `headers`: other headers the request sends that must be signed too (faasbox, like AWS,
// refuses an unsigned x-amz-* header such as X-Amz-Log-Type).
export async function signRequest({ method, url, body, accessKeyId, secretAccessKey, headers: extra = {} }, options = {}) {
  const target = new URL(url, globalThis.location ? globalThis.location.href : undefined);
  const when = amzDate(options.date || new Date());
  const day = when.slice(0, 8);
  const payloadHash = hex(await sha256(body ?? "", options));
  const headers = [
    ["host", target.host],
    ["x-amz-content-sha256", payloadHash],
    ["x-amz-date", when],
    ...Object.entries(extra).map(([name, value]) => [name.toLowerCase(), String(value)]),
  ].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const signedHeaders = headers.map(([name]) => name).join(";");
  const request = [
    method.toUpperCase(),
    canonicalUri(target.pathname),
    canonicalQuery(target.search),
    headers.map(([name, value]) => `${name}:${value.trim().replace(/\s+/g, " ")}\n`).join(""),
    signedHeaders,
    payloadHash,
  ].join("\n");
  const scope = `${day}/${REGION}/${SERVICE}/aws4_request`;
  const toSign = [ALGORITHM, when, scope, hex(await sha256(request, options))].join("\n");
  let key = encoder.encode("AWS4" + secretAccessKey);
  for (const part of [day, REGION, SERVICE, "aws4_request"]) key = await hmac(key, part, options);
  const signature = hex(await hmac(key, toSign, options));
  return {
    "X-Amz-Date": when,
    "X-Amz-Content-Sha256": payloadHash,
    Authorization:
      `${ALGORITHM} Credential=${accessKeyId}/${scope}, ` +
      `SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
}
