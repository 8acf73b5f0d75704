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
