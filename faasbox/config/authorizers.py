"""The authorizer of an `http` event, in Serverless Framework syntax, read into one shape.

`authorizer: fnName` or `{name, type: token|request, identitySource, resultTtlInSeconds,
identityValidationExpression}` name a Lambda authorizer function of the same service;
`authorizer: aws_iam` asks for a SigV4 signature. Anything else (a Cognito user pool, a
function ARN, an authorizer of an `httpApi` event) is refused: a route is never served
unprotected because its protection was not understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DEFAULT_TTL_S = 300
MAX_TTL_S = 3600  # API Gateway's own ceiling
DEFAULT_IDENTITY_SOURCE = "method.request.header.Authorization"
TOKEN = "token"
REQUEST = "request"
AWS_IAM = "aws_iam"

SUPPORTED = (
    "faasbox supports, on http events, 'authorizer: <function of this service>', "
    "'authorizer: {name, type: token|request, identitySource, resultTtlInSeconds, "
    "identityValidationExpression}' and 'authorizer: aws_iam'"
)
_SOURCE = re.compile(r"^method\.request\.(header|querystring|path)\.([^\s,]+)$")
_KEYS = {"name", "type", "identitySource", "resultTtlInSeconds", "identityValidationExpression"}


class UnsupportedAuthorizer(ValueError):
    """An authorizer faasbox cannot run; the message says what it supports."""


@dataclass(frozen=True)
class Authorizer:
    kind: str  # TOKEN, REQUEST or AWS_IAM
    function: str = ""  # the authorizer function's key in serverless.yml
    # (where, name): where is "header", "querystring" or "path".
    identity_sources: tuple[tuple[str, str], ...] = ()
    ttl_s: int = DEFAULT_TTL_S
    validation: str | None = None  # TOKEN: a regex the token must match


def rest_authorizer(value: Any) -> Authorizer:
    """The authorizer an `http` event's `authorizer:` asks for; UnsupportedAuthorizer if none
    faasbox can run."""
    if isinstance(value, str):
        if value.strip().lower() == AWS_IAM:
            return Authorizer(AWS_IAM)
        if value.startswith("arn:"):
            raise UnsupportedAuthorizer(
                f"an authorizer ARN ({value}) is not supported; {SUPPORTED}"
            )
        return _lambda(value.strip(), {})
    if not isinstance(value, dict):
        raise UnsupportedAuthorizer(f"expected a function name or a mapping; {SUPPORTED}")
    unknown = sorted(set(map(str, value)) - _KEYS)
    if unknown:
        raise UnsupportedAuthorizer(
            f"authorizer key(s) {', '.join(unknown)} are not supported; {SUPPORTED}"
        )
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        raise UnsupportedAuthorizer(f"an authorizer needs a function 'name'; {SUPPORTED}")
    if name.strip().lower() == AWS_IAM:
        return Authorizer(AWS_IAM)
    return _lambda(name.strip(), value)


def _lambda(name: str, spec: dict[str, Any]) -> Authorizer:
    if name.startswith("arn:") or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise UnsupportedAuthorizer(f"authorizer {name!r} is not a function name; {SUPPORTED}")
    kind = str(spec.get("type", TOKEN)).lower()
    if kind not in (TOKEN, REQUEST):
        raise UnsupportedAuthorizer(f"authorizer type {spec.get('type')!r}; {SUPPORTED}")
    ttl = spec.get("resultTtlInSeconds", DEFAULT_TTL_S)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL_S:
        raise UnsupportedAuthorizer(
            f"resultTtlInSeconds must be a whole number of seconds from 0 to {MAX_TTL_S}"
        )
    raw = spec.get("identitySource", DEFAULT_IDENTITY_SOURCE)
    if not isinstance(raw, str):
        raise UnsupportedAuthorizer("identitySource must be a string")
    sources: list[tuple[str, str]] = []
    for part in (p.strip() for p in raw.split(",")):
        found = _SOURCE.match(part)
        if found is None:
            raise UnsupportedAuthorizer(
                f"identitySource {part!r}: faasbox reads method.request.header.<name>, "
                "method.request.querystring.<name> and method.request.path.<name>"
            )
        where, key = found.groups()
        sources.append((where, key.lower() if where == "header" else key))
    if kind == TOKEN and (len(sources) != 1 or sources[0][0] != "header"):
        raise UnsupportedAuthorizer("a token authorizer's identitySource is one header")
    validation = spec.get("identityValidationExpression")
    if validation is not None:
        if not isinstance(validation, str):
            raise UnsupportedAuthorizer("identityValidationExpression must be a string")
        try:
            re.compile(validation)
        except re.error as e:
            raise UnsupportedAuthorizer(f"identityValidationExpression: {e}") from None
    return Authorizer(kind, name, tuple(sources), ttl, validation)


JWT = "jwt"
HTTP_API_SUPPORTED = (
    "faasbox supports provider.httpApi.authorizers of type request (a Lambda authorizer: "
    "functionName, identitySource, enableSimpleResponses, resultTtlInSeconds, "
    "payloadVersion '2.0') and type jwt (identitySource, issuerUrl, audience, and faasbox's "
    "jwksFile or jwksUrl), and httpApi events' 'authorizer: <name>' or '{name, scopes}'"
)
_JWT_KEYS = {"type", "identitySource", "issuerUrl", "audience", "jwksFile", "jwksUrl", "jwks"}
_HTTP_API_KEYS = {
    "type",
    "functionName",
    "identitySource",
    "enableSimpleResponses",
    "resultTtlInSeconds",
    "payloadVersion",
}
_HTTP_API_SOURCE = re.compile(r"^\$request\.(header|querystring)\.([^\s,]+)$")


@dataclass(frozen=True)
class HttpApiAuthorizer:
    """One of `provider.httpApi.authorizers`: a Lambda authorizer, payload format 2.0."""

    name: str
    function: str  # the authorizer function's key in serverless.yml ("" for JWT)
    identity_sources: tuple[tuple[str, str], ...] = ()
    ttl_s: int = DEFAULT_TTL_S  # only with identity sources, as API Gateway caches
    simple: bool = False  # enableSimpleResponses: {isAuthorized, context}
    kind: str = REQUEST  # or JWT
    # JWT: the token's issuer and audiences, where its keys are, the route's scopes
    issuer: str = ""
    audience: tuple[str, ...] = ()
    jwks_url: str = ""
    jwks: str = ""  # a JWKS document, as JSON (read from jwksFile at load time)
    scopes: tuple[str, ...] = ()


def http_api_authorizer(name: str, spec: Any) -> HttpApiAuthorizer:
    if not isinstance(spec, dict):
        raise UnsupportedAuthorizer(f"authorizer {name!r} must be a mapping; {HTTP_API_SUPPORTED}")
    kind = str(spec.get("type", "")).lower()
    if kind == JWT:
        return _jwt(name, spec)
    if kind != REQUEST:
        raise UnsupportedAuthorizer(
            f"authorizer {name!r} of type {spec.get('type')!r} is not supported; "
            f"{HTTP_API_SUPPORTED}"
        )
    unknown = sorted(set(map(str, spec)) - _HTTP_API_KEYS)
    if unknown:
        raise UnsupportedAuthorizer(
            f"authorizer {name!r}: key(s) {', '.join(unknown)} are not supported; "
            f"{HTTP_API_SUPPORTED}"
        )
    function = spec.get("functionName")
    if not isinstance(function, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", function):
        raise UnsupportedAuthorizer(
            f"authorizer {name!r} needs a functionName, a function of this service"
        )
    if str(spec.get("payloadVersion", "2.0")) != "2.0":
        raise UnsupportedAuthorizer(f"authorizer {name!r}: faasbox supports payloadVersion '2.0'")
    simple = spec.get("enableSimpleResponses", False)
    if not isinstance(simple, bool):
        raise UnsupportedAuthorizer(f"authorizer {name!r}: enableSimpleResponses is true or false")
    ttl = spec.get("resultTtlInSeconds", DEFAULT_TTL_S)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_TTL_S:
        raise UnsupportedAuthorizer(
            f"authorizer {name!r}: resultTtlInSeconds is a whole number from 0 to {MAX_TTL_S}"
        )
    raw = spec.get("identitySource", [])
    listed = [raw] if isinstance(raw, str) else raw
    if not isinstance(listed, list):
        raise UnsupportedAuthorizer(f"authorizer {name!r}: identitySource is a list")
    sources: list[tuple[str, str]] = []
    for part in listed:
        found = _HTTP_API_SOURCE.match(str(part).strip())
        if found is None:
            raise UnsupportedAuthorizer(
                f"authorizer {name!r}: identitySource {part!r}: faasbox reads "
                "$request.header.<name> and $request.querystring.<name>"
            )
        where, key = found.groups()
        sources.append((where, key.lower() if where == "header" else key))
    return HttpApiAuthorizer(name, function, tuple(sources), ttl, simple)


def _jwt(name: str, spec: dict[str, Any]) -> HttpApiAuthorizer:
    unknown = sorted(set(map(str, spec)) - _JWT_KEYS)
    if unknown:
        raise UnsupportedAuthorizer(
            f"authorizer {name!r}: key(s) {', '.join(unknown)} are not supported; "
            f"{HTTP_API_SUPPORTED}"
        )
    issuer = spec.get("issuerUrl")
    if not isinstance(issuer, str) or not issuer.startswith(("https://", "http://")):
        raise UnsupportedAuthorizer(f"authorizer {name!r} needs an issuerUrl (https://...)")
    audience = spec.get("audience")
    listed = [audience] if isinstance(audience, str) else audience
    if not isinstance(listed, list) or not listed or not all(isinstance(a, str) for a in listed):
        raise UnsupportedAuthorizer(f"authorizer {name!r} needs an audience (a list of strings)")
    raw = spec.get("identitySource", "$request.header.Authorization")
    found = _HTTP_API_SOURCE.match(str(raw).strip()) if isinstance(raw, str) else None
    if found is None or found.group(1) != "header":
        raise UnsupportedAuthorizer(
            f"authorizer {name!r}: a JWT's identitySource is one $request.header.<name>"
        )
    jwks = spec.get("jwks", "")
    if not isinstance(jwks, str):
        raise UnsupportedAuthorizer(f"authorizer {name!r}: jwks is a JWKS document as JSON")
    url = spec.get("jwksUrl") or (issuer.rstrip("/") + "/.well-known/jwks.json")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise UnsupportedAuthorizer(f"authorizer {name!r}: jwksUrl is an https:// URL")
    return HttpApiAuthorizer(
        name,
        "",
        (("header", found.group(2).lower()),),
        kind=JWT,
        issuer=issuer,
        audience=tuple(listed),
        jwks_url="" if jwks else url,
        jwks=jwks,
    )


def http_api_authorizers(value: Any) -> dict[str, HttpApiAuthorizer]:
    """`provider.httpApi.authorizers`, by name; UnsupportedAuthorizer for one faasbox cannot run."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UnsupportedAuthorizer(f"expected a mapping of authorizers; {HTTP_API_SUPPORTED}")
    return {str(name): http_api_authorizer(str(name), spec) for name, spec in value.items()}


def http_api_event_authorizer(value: Any) -> str:
    """The name an httpApi event's `authorizer:` refers to."""
    return http_api_event_authorizer_and_scopes(value)[0]


def http_api_event_authorizer_and_scopes(value: Any) -> tuple[str, tuple[str, ...]]:
    """The name an httpApi event's `authorizer:` refers to, and the scopes it requires."""
    if isinstance(value, str) and value.strip():
        return value.strip(), ()
    if isinstance(value, dict) and set(map(str, value)) <= {"name", "scopes"}:
        name = value.get("name")
        scopes = value.get("scopes") or []
        if isinstance(scopes, str):
            scopes = [scopes]
        if (
            isinstance(name, str)
            and name.strip()
            and isinstance(scopes, list)
            and all(isinstance(x, str) for x in scopes)
        ):
            return name.strip(), tuple(scopes)
    raise UnsupportedAuthorizer(
        f"an httpApi event's authorizer is a name or {{name}} of provider.httpApi.authorizers; "
        f"{HTTP_API_SUPPORTED}"
    )
