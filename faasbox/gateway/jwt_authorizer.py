"""JWT authorizers of HTTP API (`httpApi`) routes, as API Gateway checks a token.

The identity source's value (a leading `Bearer ` dropped) must be a JWT signed by a key of the
issuer's JWKS (the `kid` names it), unexpired (`exp`), valid already (`nbf`), of the
configured issuer (`iss`) and of one of the audiences (`aud`, or `client_id` when the token
has no `aud`); a route with `scopes` needs one of them in the token's `scope`/`scp`. PyJWT
does the cryptography. A JWKS is the authorizer's embedded `jwks` (faasbox's `jwksFile`) or
fetched from its URL with a timeout and cached.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

import httpx
import jwt

from faasbox.config.authorizers import HttpApiAuthorizer
from faasbox.gateway.apigw_events import HttpResponse, RequestFacts

JWKS_TTL_S = 3600.0
JWKS_TIMEOUT_S = 5.0
MAX_JWKS = 64  # issuers' key sets remembered
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]


class JwtRefused(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        body = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Internal Server Error")
        headers = [("Content-Type", "application/json")]
        if status == 401:
            headers.append(
                (
                    "www-authenticate",
                    f'Bearer error="invalid_token" error_description="{description}"',
                )
            )
        elif status == 403:
            headers.append(("www-authenticate", 'Bearer error="insufficient_scope"'))
        self.response = HttpResponse(status, headers, json.dumps({"message": body}).encode())


class JwtAuthorizers:
    def __init__(self, timeout_s: float = JWKS_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self._sets: OrderedDict[str, tuple[float, jwt.PyJWKSet]] = OrderedDict()

    def clear(self) -> None:
        self._sets.clear()

    async def authorize(self, authorizer: HttpApiAuthorizer, facts: RequestFacts) -> dict[str, Any]:
        """`requestContext.authorizer` ({"jwt": {claims, scopes}}); raises JwtRefused."""
        value = facts.header(authorizer.identity_sources[0][1])
        if not value:
            raise JwtRefused(401, "the token is missing")
        token = value[7:].strip() if value[:7].lower() == "bearer " else value.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise JwtRefused(401, "the token is not a JWT") from None
        keys = await self._keys(authorizer)
        kid = header.get("kid")
        key = next((k for k in keys.keys if kid is None or k.key_id == kid), None)
        if key is None:
            raise JwtRefused(401, "the token's kid is not in the issuer's keys")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[a for a in ALGORITHMS if key.algorithm_name in (None, a)],
                issuer=authorizer.issuer,
                options={"verify_aud": False, "require": ["exp", "iss"]},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            raise JwtRefused(401, "the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise JwtRefused(401, "the token is not valid yet") from None
        except jwt.InvalidIssuerError:
            raise JwtRefused(401, "the token does not have a valid issuer") from None
        except jwt.PyJWTError as e:
            raise JwtRefused(401, f"the token is invalid: {e}") from None
        audiences = claims.get("aud", claims.get("client_id"))
        listed = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(listed, list) or not set(map(str, listed)) & set(authorizer.audience):
            raise JwtRefused(401, "the token does not have a valid audience")
        raw_scopes = claims.get("scope", claims.get("scp", ""))
        granted = raw_scopes.split() if isinstance(raw_scopes, str) else list(raw_scopes or [])
        if authorizer.scopes and not set(authorizer.scopes) & set(map(str, granted)):
            raise JwtRefused(403, "insufficient scope")
        return {
            "jwt": {
                "claims": {k: _claim(v) for k, v in claims.items()},
                "scopes": [str(s) for s in granted] or None,
            }
        }

    async def _keys(self, authorizer: HttpApiAuthorizer) -> jwt.PyJWKSet:
        source = authorizer.jwks or authorizer.jwks_url
        now = time.monotonic()
        cached = self._sets.get(source)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            if authorizer.jwks:
                document = json.loads(authorizer.jwks)
            else:
                async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                    response = await client.get(authorizer.jwks_url)
                    response.raise_for_status()
                    document = response.json()
            keys = jwt.PyJWKSet.from_dict(document)
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as e:
            raise JwtRefused(500, f"the issuer's keys cannot be read: {e}") from None
        self._sets[source] = (now + JWKS_TTL_S, keys)
        while len(self._sets) > MAX_JWKS:
            self._sets.popitem(last=False)
        return keys


def _claim(value: Any) -> str:
    """API Gateway hands claims over as strings; a list as `[a b]`."""
    if isinstance(value, list):
        return "[" + " ".join(map(str, value)) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)
