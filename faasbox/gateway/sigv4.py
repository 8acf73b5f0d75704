"""AWS Signature Version 4: signing (the CLI) and verification (the gateway), on one
canonicalization that matches botocore's for the Lambda API.

A signed request carries

    Authorization: AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/REGION/lambda/aws4_request,
                   SignedHeaders=host;x-amz-date;..., Signature=<hex>
    X-Amz-Date: YYYYMMDDTHHMMSSZ

and the signature is HMAC-SHA256, under a key derived from "AWS4" + secret per date, region and
service, of a string that hashes the *canonical request*:

    METHOD
    canonical URI      the raw (percent-encoded) path, dot segments and empty segments
                       removed, percent-encoded once more (safe: "/" and "~"), as botocore does
    canonical query    every name=value decoded and re-encoded (safe: "-_.~"), sorted
    canonical headers  each signed header "name:value", values trimmed, inner spaces collapsed,
                       repeated headers joined by ","
    signed headers     as listed in the Authorization header
    payload hash       x-amz-content-sha256 if sent (it must then be the body's), else
                       SHA-256 of the body

Verification costs a few HMACs and a SHA-256 of the body: the signing key derived for a
(key, date, region, service) is cached, so a request pays one HMAC for its signature. Lambda's
error codes and messages are kept, so SDKs raise the ClientError they raise against AWS.
Presigned URLs (X-Amz-Algorithm, X-Amz-Credential, ... in the query) are accepted on the same
rules, valid from X-Amz-Date for X-Amz-Expires seconds.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, unquote_to_bytes

from faasbox.errors import (
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    UnrecognizedClient,
)

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
IAM_SERVICE = "execute-api"  # API Gateway's aws_iam routes
SERVICE = "lambda"  # every faasbox API is signed as Lambda's, as boto3 and the AWS CLI do
DEFAULT_REGION = "us-east-1"
# AWS refuses a request whose X-Amz-Date is more than 5 minutes away from its clock, either way
# ("Signature expired: ... (... - 5 min.)"); a request replayed later than that is refused.
MAX_CLOCK_SKEW_S = 300
MAX_PRESIGNED_EXPIRES_S = 7 * 24 * 3600  # AWS's limit for X-Amz-Expires
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
SIGNING_KEY_CACHE_SIZE = 1024
# x-amz-* headers that may travel unsigned: they inform, and change nothing that is answered
# (the AWS SDK for JavaScript never signs x-amz-user-agent).
UNSIGNED_ALLOWED = frozenset({"x-amz-user-agent"})

Headers = Sequence[tuple[str, str]]  # (name, value), in the order sent
HeaderMap = dict[str, list[str]]  # lowercase name -> its values, in the order received


# --- canonicalization (shared by signing and verification) ---


def remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 dot-segment removal plus AWS's collapsing of empty segments (botocore's)."""
    if not path:
        return b"/"
    out: list[bytes] = []
    for segment in path.split(b"/"):
        if not segment or segment == b".":
            continue
        if segment == b"..":
            if out:
                out.pop()
        else:
            out.append(segment)
    first = b"/" if path.startswith(b"/") else b""
    last = b"/" if path.endswith(b"/") and out else b""
    return first + b"/".join(out) + last


def canonical_uri(raw_path: bytes) -> str:
    """The path as sent on the wire (still percent-encoded), encoded once more."""
    return quote(remove_dot_segments(raw_path), safe="/~")


def canonical_query(raw_query: bytes, drop: str | None = None) -> str:
    """Each name and value decoded (form rules: "+" is a space, as the gateway reads them) and
    encoded strictly, sorted by name then value; `drop` leaves out one name (X-Amz-Signature)."""
    pairs: list[tuple[str, str]] = []
    for part in raw_query.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        key = quote(unquote_to_bytes(name.replace(b"+", b" ")), safe="-_.~")
        if key == drop:
            continue
        pairs.append((key, quote(unquote_to_bytes(value.replace(b"+", b" ")), safe="-_.~")))
    pairs.sort()
    return "&".join(f"{k}={v}" for k, v in pairs)


def trim(value: str) -> str:
    """Leading and trailing spaces removed, inner runs of spaces made one (botocore's Trimall)."""
    return " ".join(value.split())


def header_map(headers: Iterable[tuple[str, str]]) -> HeaderMap:
    found: HeaderMap = {}
    for name, value in headers:
        found.setdefault(name.lower(), []).append(value)
    return found


def canonical_headers(headers: HeaderMap, signed: Sequence[str]) -> str | None:
    """`name:value` lines for the signed headers, or None when one of them was not sent."""
    lines = []
    for name in signed:
        values = headers.get(name)
        if not values:
            return None
        lines.append(f"{name}:{','.join(trim(v) for v in values)}\n")
    return "".join(lines)


def canonical_request(
    method: str,
    uri: str,
    query: str,
    header_lines: str,
    signed_headers: str,
    payload_hash: str,
) -> str:
    return f"{method}\n{uri}\n{query}\n{header_lines}\n{signed_headers}\n{payload_hash}"


def string_to_sign(amz_date: str, credential_scope: str, request: str) -> str:
    digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{credential_scope}\n{digest}"


def derive_signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def signature(signing_key: bytes, to_sign: str) -> str:
    return hmac.new(signing_key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def amz_date(epoch: float) -> str:
    return time.strftime(AMZ_DATE_FORMAT, time.gmtime(epoch))


# --- signing (the CLI's requests) ---


def sign_request(
    access_key_id: str,
    secret: str,
    method: str,
    raw_path: bytes,
    raw_query: bytes,
    headers: Headers,
    body: bytes,
    *,
    region: str = DEFAULT_REGION,
    service: str = SERVICE,
    now: float | None = None,
) -> dict[str, str]:
    """The headers to add to a request so that it verifies: X-Amz-Date and Authorization.

    `headers` must hold the Host header the request will carry; host, content-type and every
    x-amz-* header are signed, as botocore signs a Lambda request.
    """
    date_time = amz_date(time.time() if now is None else now)
    present = header_map(headers)
    present.pop("authorization", None)
    present["x-amz-date"] = [date_time]
    names = sorted(k for k in present if k in ("host", "content-type") or k.startswith("x-amz-"))
    lines = canonical_headers(present, names)
    if "host" not in names or lines is None:
        raise ValueError("a request to sign needs its Host header")
    signed = ";".join(names)
    claimed = present.get("x-amz-content-sha256")
    payload = claimed[0].strip() if claimed else hashlib.sha256(body).hexdigest()
    request = canonical_request(
        method.upper(),
        canonical_uri(raw_path),
        canonical_query(raw_query),
        lines,
        signed,
        payload,
    )
    scope = f"{date_time[:8]}/{region}/{service}/{TERMINATOR}"
    key = derive_signing_key(secret, date_time[:8], region, service)
    sig = signature(key, string_to_sign(date_time, scope, request))
    return {
        "X-Amz-Date": date_time,
        "Authorization": (
            f"{ALGORITHM} Credential={access_key_id}/{scope}, "
            f"SignedHeaders={signed}, Signature={sig}"
        ),
    }


# --- verification (the gateway) ---


class SecretLookup(Protocol):
    """Where the verifier finds an access key's secret: None for a key faasbox did not issue."""

    def secret_for(self, access_key_id: str) -> str | None: ...


@dataclass(frozen=True)
class _Claim:
    """What a request says about its own signature, from its header or its query."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    amz_date: str
    signed_headers: str
    signature: str
    earliest: float  # the request is valid from ...
    latest: float  # ... until (epoch seconds)
    presigned: bool


@functools.lru_cache(maxsize=256)
def _parse_amz_date(value: str) -> float:
    """YYYYMMDDTHHMMSSZ as epoch seconds (by hand: time.strptime costs 15 us a call)."""
    fields = (value[0:4], value[4:6], value[6:8], value[9:11], value[11:13], value[13:15])
    if (
        len(value) == 16
        and value[8] == "T"
        and value[15] == "Z"
        and all(f.isascii() and f.isdigit() for f in fields)
    ):
        year, month, day, hour, minute, second = map(int, fields)
        if (
            year >= 1
            and 1 <= month <= 12
            and 1 <= day <= calendar.monthrange(year, month)[1]
            and hour < 24
            and minute < 60
            and second < 61
        ):
            return float(calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)))
    raise IncompleteSignature(
        f"Date must be in ISO-8601 'basic format'. Got '{value}'. "
        "See http://en.wikipedia.org/wiki/ISO_8601"
    )


@functools.lru_cache(maxsize=1024)
def _parse_credential(credential: str, expected: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise IncompleteSignature(
            f"Credential '{credential}' is malformed; it must be "
            "ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request."
        )
    access_key_id, date, region, service, terminator = parts
    if terminator != TERMINATOR:
        raise InvalidSignature(
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{terminator}'."
        )
    if service != expected:
        raise InvalidSignature(f"Credential should be scoped to correct service: '{expected}'. ")
    return access_key_id, date, region, service


@dataclass(frozen=True)
class Checked:
    """A request whose signature's claim holds up, before its body is read."""

    claim: _Claim
    secret: str
    headers: HeaderMap
    query: str
    lines: str


class SigV4Authenticator:
    """The gateway's Authenticator: `verify` returns the caller's access key id or raises."""

    def __init__(
        self,
        keys: SecretLookup,
        clock: Callable[[], float] = time.time,
        max_skew_s: float = MAX_CLOCK_SKEW_S,
        service: str = SERVICE,  # "execute-api" for API Gateway's aws_iam routes
    ) -> None:
        self.keys = keys
        self.service = service
        self.clock = clock
        self.max_skew_s = max_skew_s
        self._signing_keys: dict[tuple[str, str, str, str, str], bytes] = {}

    def verify(self, scope: Mapping[str, Any], body: bytes) -> str:
        return self.verify_body(scope, self.precheck(scope), body)

    def precheck(self, scope: Mapping[str, Any]) -> Checked:
        """Everything that needs no body: run before reading one, so an unsigned or
        unknown client never makes the server buffer a large body."""
        raw_headers: Iterable[tuple[bytes, bytes]] = scope["headers"]
        headers: HeaderMap = {}
        for k, v in raw_headers:
            headers.setdefault(k.decode("latin-1").lower(), []).append(v.decode("latin-1"))
        raw_query: bytes = scope.get("query_string") or b""
        authorization = headers.get("authorization")
        if authorization is not None and len(authorization) > 1:
            # Which one a proxy or a client library would take is anyone's guess: refuse.
            raise IncompleteSignature("A request must carry one Authorization header, not several.")
        if authorization is not None:
            claim = self._from_header(authorization[0], headers)
            query = canonical_query(raw_query)
        elif b"X-Amz-Signature=" in raw_query or b"X-Amz-Algorithm=" in raw_query:
            claim = self._from_query(raw_query)
            query = canonical_query(raw_query, drop="X-Amz-Signature")
        else:
            raise MissingAuthenticationToken("Missing Authentication Token")

        if claim.date != claim.amz_date[:8]:
            raise InvalidSignature(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                f"date from HTTP: '{claim.date}' != '{claim.amz_date[:8]}', "
                f"from '{claim.amz_date}'."
            )
        secret = self.keys.secret_for(claim.access_key_id)
        if secret is None:
            raise UnrecognizedClient("The security token included in the request is invalid.")
        self._check_time(claim)

        names = claim.signed_headers.split(";")
        if "host" not in names:
            raise IncompleteSignature(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
            )
        if not claim.presigned and "x-amz-date" not in names:
            raise IncompleteSignature(
                "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization."
            )
        unsigned = sorted(h for h in headers if h.startswith("x-amz-") and h not in names)
        unsigned = [h for h in unsigned if h not in UNSIGNED_ALLOWED]
        if unsigned:
            # X-Amz-Log-Type, X-Amz-Client-Context, ... change what a request does or answers:
            # added to a captured request, they must break it, not ride along.
            raise IncompleteSignature(
                f"'{unsigned[0]}' must be a 'SignedHeader' in the AWS Authorization: every "
                "x-amz-* header sent must be signed."
            )
        lines = canonical_headers(headers, names)
        if lines is None:
            missing = [n for n in names if n not in headers]
            raise InvalidSignature(
                f"The request is missing the header(s) it says it signed: {', '.join(missing)}."
            )
        return Checked(claim, secret, headers, query, lines)

    def verify_body(self, scope: Mapping[str, Any], checked: Checked, body: bytes) -> str:
        """The signature itself, over the body; returns the caller's access key id."""
        claim, secret, headers, query, lines = (
            checked.claim,
            checked.secret,
            checked.headers,
            checked.query,
            checked.lines,
        )
        request = canonical_request(
            str(scope["method"]).upper(),
            self._uri(scope),
            query,
            lines,
            claim.signed_headers,
            self._payload_hash(headers, body),
        )
        credential_scope = f"{claim.date}/{claim.region}/{claim.service}/{TERMINATOR}"
        to_sign = string_to_sign(claim.amz_date, credential_scope, request)
        key = self._signing_key(claim, secret)
        expected = signature(key, to_sign)
        if not hmac.compare_digest(expected.encode(), claim.signature.encode()):
            raise InvalidSignature(
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method. Consult the "
                "service documentation for details.\n\n"
                f"The Canonical String for this request should have been\n'{request}'\n\n"
                f"The String-to-Sign should have been\n'{to_sign}'\n"
            )
        return claim.access_key_id

    # --- the parts ---

    def _from_header(self, authorization: str, headers: HeaderMap) -> _Claim:
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme != ALGORITHM:
            raise IncompleteSignature(
                f"Unsupported Authorization scheme; faasbox accepts only {ALGORITHM} "
                "(AWS Signature Version 4)."
            )
        params: dict[str, str] = {}
        for item in rest.split(","):
            name, eq, value = item.strip().partition("=")
            if not eq:
                raise IncompleteSignature(
                    f"'{item.strip()}' not a valid key=value pair (missing equal-sign) in "
                    "Authorization header."
                )
            params[name] = value
        problems = [
            f"Authorization header requires '{name}' parameter."
            for name in ("Credential", "Signature", "SignedHeaders")
            if not params.get(name)
        ]
        date_value = headers.get("x-amz-date", [None])[0]
        if date_value is None:
            problems.append("Authorization header requires existence of a 'X-Amz-Date' header.")
        if problems:
            raise IncompleteSignature(" ".join(problems))
        assert date_value is not None
        access_key_id, date, region, service = _parse_credential(params["Credential"], self.service)
        moment = _parse_amz_date(date_value.strip())
        return _Claim(
            access_key_id,
            date,
            region,
            service,
            date_value.strip(),
            params["SignedHeaders"],
            params["Signature"],
            moment - self.max_skew_s,
            moment + self.max_skew_s,
            presigned=False,
        )

    def _from_query(self, raw_query: bytes) -> _Claim:
        params: dict[str, str] = {}
        for part in raw_query.split(b"&"):
            name, _, value = part.partition(b"=")
            if name.startswith(b"X-Amz-"):
                params[name.decode("latin-1")] = unquote_to_bytes(value).decode("latin-1")
        names = ("Algorithm", "Credential", "Date", "Expires", "SignedHeaders", "Signature")
        missing = [f"X-Amz-{n}" for n in names if not params.get(f"X-Amz-{n}")]
        if missing:
            raise IncompleteSignature(
                f"A presigned request requires the query parameters {', '.join(missing)}."
            )
        if params["X-Amz-Algorithm"] != ALGORITHM:
            raise IncompleteSignature(
                f"X-Amz-Algorithm must be {ALGORITHM}, not '{params['X-Amz-Algorithm']}'."
            )
        expires = params["X-Amz-Expires"]
        if not (expires.isascii() and expires.isdigit()) or not (
            1 <= int(expires) <= MAX_PRESIGNED_EXPIRES_S
        ):
            raise IncompleteSignature(
                f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGNED_EXPIRES_S}."
            )
        access_key_id, date, region, service = _parse_credential(
            params["X-Amz-Credential"], self.service
        )
        moment = _parse_amz_date(params["X-Amz-Date"])
        return _Claim(
            access_key_id,
            date,
            region,
            service,
            params["X-Amz-Date"],
            params["X-Amz-SignedHeaders"],
            params["X-Amz-Signature"],
            moment - self.max_skew_s,
            moment + int(expires),
            presigned=True,
        )

    def _check_time(self, claim: _Claim) -> None:
        now = self.clock()
        if now > claim.latest:
            window = claim.latest - _parse_amz_date(claim.amz_date)
            span = f"{window:g} sec." if claim.presigned else f"{window / 60:g} min."
            raise InvalidSignature(
                f"Signature expired: {claim.amz_date} is now earlier than "
                f"{amz_date(now - window)} ({amz_date(now)} - {span})"
            )
        if now < claim.earliest:
            raise InvalidSignature(
                f"Signature not yet current: {claim.amz_date} is still later than "
                f"{amz_date(now + self.max_skew_s)} ({amz_date(now)} + "
                f"{self.max_skew_s / 60:g} min.)"
            )

    @staticmethod
    def _uri(scope: Mapping[str, Any]) -> str:
        raw = scope.get("raw_path")
        if isinstance(raw, bytes) and raw:
            return canonical_uri(raw)
        # A server that does not give the raw path: re-encode the decoded one as clients do.
        return canonical_uri(quote(str(scope["path"]), safe="/~").encode())

    @staticmethod
    def _payload_hash(headers: HeaderMap, body: bytes) -> str:
        digest = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        values = headers.get("x-amz-content-sha256")
        if not values:
            return digest
        claimed = values[0].strip()
        if claimed.lower() != digest:
            if claimed.upper().startswith(("UNSIGNED-PAYLOAD", "STREAMING-")):
                raise InvalidSignature(
                    f"x-amz-content-sha256: {claimed} is not accepted; sign the SHA-256 of "
                    "the body."
                )
            raise InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
            )
        return claimed

    def _signing_key(self, claim: _Claim, secret: str) -> bytes:
        cache_key = (claim.access_key_id, secret, claim.date, claim.region, claim.service)
        key = self._signing_keys.get(cache_key)
        if key is None:
            if len(self._signing_keys) >= SIGNING_KEY_CACHE_SIZE:
                self._signing_keys.clear()
            key = derive_signing_key(secret, claim.date, claim.region, claim.service)
            self._signing_keys[cache_key] = key
        return key
