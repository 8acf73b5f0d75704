"""API Gateway: the deployed functions' HTTP routes, as AWS's REST and HTTP APIs serve them.

Per request: match the compiled route table, answer CORS preflights, check the API key of a
private route, build the proxy event, invoke, and map the result back to HTTP. A function's
failure (an exception, a timeout, a malformed response) is API Gateway's 502, with the reason
appended to the function's log as API Gateway writes it to its execution log.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from faasbox.config.authorizers import AWS_IAM, JWT, REQUEST, HttpApiAuthorizer
from faasbox.errors import AuthenticationError, RequestTooLarge, TooManyRequests
from faasbox.execution.invoker import Invoker
from faasbox.gateway.apigw_events import (
    HttpResponse,
    MalformedResponse,
    RequestFacts,
    v1_event,
    v1_response,
    v2_event,
    v2_response,
)
from faasbox.gateway.apigw_json import v1_event_json, v2_event_json
from faasbox.gateway.authorizers import LambdaAuthorizers, Refused
from faasbox.gateway.http import Receive, Scope, Send, header, read_body, respond_json
from faasbox.gateway.routes import REST, Cors, Match, Route, RouteTable
from faasbox.gateway.sigv4 import Checked, SigV4Authenticator
from faasbox.lambda_.limits import SYNC_PAYLOAD_LIMIT
from faasbox.registry import Registry
from faasbox.registry.api_keys import ApiKeyStore
from faasbox.registry.models import ACCOUNT_ID, DeployedFunction

if TYPE_CHECKING:
    from faasbox.gateway.jwt_authorizer import JwtAuthorizers

log = logging.getLogger("faasbox.gateway")

# API Gateway's own answers, byte for byte.
NOT_FOUND = {"message": "Not Found"}
MISSING_TOKEN = {"message": "Missing Authentication Token"}
FORBIDDEN = {"message": "Forbidden"}
INTERNAL_ERROR = {"message": "Internal server error"}
TOO_MANY = {"message": "Too Many Requests"}
TOO_LARGE = {"message": "Request Entity Too Large"}


# The body's framing is the gateway's to set, as API Gateway does: a function's own
# Content-Length or Transfer-Encoding would repeat or contradict it.
FRAMING_HEADERS = frozenset({b"content-length", b"transfer-encoding"})


class ApiGateway:
    def __init__(
        self,
        registry: Registry,
        invoker: Invoker,
        api_keys: ApiKeyStore,
        iam: SigV4Authenticator | None = None,
    ) -> None:
        self.registry = registry
        self.iam = iam  # None (a server without access keys): every aws_iam route refuses
        self.invoker = invoker
        self.api_keys = api_keys
        self.authorizers = LambdaAuthorizers(invoker)
        # PyJWT and httpx take ~130 ms to import: only once a route has a JWT authorizer.
        self.jwt: JwtAuthorizers | None = None
        self.recompile()

    def recompile(self) -> None:
        """After a deploy: the new table replaces the old in one assignment."""
        functions = self.registry.all()
        self.table = RouteTable.compile(functions)
        # An authorizer is named by its key in its service's serverless.yml.
        self._by_key = {(f.config.service, f.config.key): f.name for f in functions}
        self.authorizers.clear()
        if self.jwt is not None:
            self.jwt.clear()
        elif any(_is_jwt(route.authorizer) for route in self.table.routes):
            from faasbox.gateway.jwt_authorizer import JwtAuthorizers

            self.jwt = JwtAuthorizers()

    def claims(self, method: str, path: str) -> bool:
        return self.table.match(method, path) is not None

    async def not_found(self, send: Send) -> None:
        if self.table.has_rest and not self.table.has_http_api:
            await respond_json(
                send,
                403,
                MISSING_TOKEN,
                [(b"x-amzn-errortype", b"MissingAuthenticationTokenException")],
            )
        else:
            await respond_json(send, 404, NOT_FOUND)

    async def __call__(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> bool:
        """Serve the request if a route claims it; False (nothing sent) otherwise."""
        table = self.table
        method: str = scope["method"]
        path: str = scope["path"]
        origin = header(scope, b"origin")
        if method == "OPTIONS" and header(scope, b"access-control-request-method"):
            cors = table.cors_for(path)
            if cors is not None:
                await self._preflight(send, cors, origin, table.methods_at(path))
                return True
        match = table.match(method, path)
        if match is None:
            return False
        route = match.route
        api_key = header(scope, b"x-api-key")
        if route.private and not self.api_keys.valid(route.service, api_key):
            await respond_json(send, 403, FORBIDDEN, [(b"x-amzn-errortype", b"ForbiddenException")])
            return True
        authorized: dict[str, Any] | None = None
        signed: Checked | None = None
        if route.authorizer is not None:
            try:
                if route.authorizer.kind == AWS_IAM:
                    signed = self._precheck(scope)  # before the body: unsigned ones never send it
                else:
                    authorized = await self._authorize(scope, match, request_id, api_key)
            except Refused as refused:
                await self._send(send, route, origin, request_id, refused.response)
                return True
        try:
            body = await read_body(scope, receive, SYNC_PAYLOAD_LIMIT, "")
        except RequestTooLarge:
            await respond_json(send, 413, TOO_LARGE)
            return True
        identity: dict[str, Any] | None = None
        if signed is not None:
            try:
                identity = self._caller(scope, signed, body)
            except Refused as refused:
                await self._send(send, route, origin, request_id, refused.response)
                return True
        response = await self._invoke(scope, match, body, request_id, api_key, authorized, identity)
        await self._send(send, route, origin, request_id, response)
        return True

    async def _send(
        self, send: Send, route: Route, origin: str | None, request_id: str, response: HttpResponse
    ) -> None:
        headers = [
            (name, v.encode("latin-1", "replace"))
            for k, v in response.headers
            if (name := k.lower().encode("latin-1")) not in FRAMING_HEADERS
        ]
        if route.cors is not None:
            headers.extend(_cors_headers(route.cors, origin, headers))
        id_header = b"x-amzn-requestid" if route.kind == REST else b"apigw-requestid"
        headers.append((id_header, request_id.encode()))
        headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def _precheck(self, scope: Scope) -> Checked:
        """An aws_iam route's signature, as far as it needs no body; raises Refused."""
        if self.iam is None:
            raise Refused((403, MISSING_TOKEN, "MissingAuthenticationTokenException"))
        try:
            return self.iam.precheck(scope)
        except AuthenticationError as e:
            raise Refused((403, {"message": str(e)}, e.aws_type)) from None

    def _caller(self, scope: Scope, checked: Checked, body: bytes) -> dict[str, Any]:
        """The signature over the body; `requestContext.identity` of the signer."""
        assert self.iam is not None
        try:
            key = self.iam.verify_body(scope, checked, body)
        except AuthenticationError as e:
            raise Refused((403, {"message": str(e)}, e.aws_type)) from None
        # faasbox's access keys belong to no IAM user: the key id names its holder.
        return {
            "accessKey": key,
            "accountId": ACCOUNT_ID,
            "caller": key,
            "user": key,
            "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/{key}",
        }

    async def _authorize(
        self, scope: Scope, match: Match, request_id: str, api_key: str | None
    ) -> dict[str, Any]:
        """The route's authorizer's `requestContext.authorizer`; raises Refused."""
        route = match.route
        assert route.authorizer is not None
        fn = self.registry.get(route.function)
        facts = RequestFacts.of(scope, request_id)
        name = self._by_key.get((route.service, route.authorizer.function))
        authorizer_fn = self.registry.get(name) if name is not None else None
        if _is_jwt(route.authorizer):
            assert self.jwt is not None and isinstance(route.authorizer, HttpApiAuthorizer)
            from faasbox.gateway.jwt_authorizer import JwtRefused

            try:
                return await self.jwt.authorize(route.authorizer, facts)
            except JwtRefused as e:
                raise Refused((0, {}, ""), e.response) from None
        if isinstance(route.authorizer, HttpApiAuthorizer):
            return await self.authorizers.authorize_v2(
                route.authorizer, authorizer_fn, fn, facts, v2_event(facts, match, b"")
            )
        request_event = (
            self._v1(fn, facts, match, b"", api_key) if route.authorizer.kind == REQUEST else {}
        )
        return await self.authorizers.authorize(
            route.authorizer, authorizer_fn, fn, facts, match, request_event
        )

    @staticmethod
    def _v1(
        fn: DeployedFunction,
        facts: RequestFacts,
        match: Match,
        body: bytes,
        api_key: str | None,
    ) -> dict[str, Any]:
        binary_types = list(fn.config.api_gateway.get("binaryMediaTypes") or [])
        return v1_event(
            facts,
            match,
            fn.config.stage or "dev",
            body,
            binary_types,
            api_key if match.route.private else None,
        )

    async def _invoke(
        self,
        scope: Scope,
        match: Match,
        body: bytes,
        request_id: str,
        api_key: str | None,
        authorized: dict[str, Any] | None,
        identity: dict[str, Any] | None = None,
    ) -> HttpResponse:
        route = match.route
        fn = self.registry.get(route.function)
        facts = RequestFacts.of(scope, request_id)
        # The event's JSON from the route's skeleton (faasbox.gateway.apigw_json); a binary
        # body travels beside it, base64 only where it must be (faasbox.execution.body_beside).
        if route.kind == REST:
            payload = v1_event_json(
                facts,
                match,
                fn.config.stage or "dev",
                body,
                list(fn.config.api_gateway.get("binaryMediaTypes") or []),
                api_key if route.private else None,
                True,
                authorized,
                identity,
            )
        else:
            payload = v2_event_json(facts, match, body, True, authorized)
        if (len(payload) if isinstance(payload, bytes) else payload.size) > SYNC_PAYLOAD_LIMIT:
            return _json_response(413, TOO_LARGE)
        try:
            result = await self.invoker.invoke(
                fn, payload, request_id=request_id, http_event=True, body_beside=True
            )
        except TooManyRequests:
            return _json_response(429, TOO_MANY)
        if result.function_error is not None:
            self.invoker.logs.append_note(
                fn.name,
                request_id,
                f"API Gateway: Lambda execution failed with status 200 due to customer function "
                f"error: {result.error_type}. Answered 502 Internal server error.",
            )
            return _json_response(502, INTERNAL_ERROR)
        try:
            if route.kind == REST:
                return v1_response(result.payload, result.http_body)
            return v2_response(result.payload, result.http_body)
        except MalformedResponse as e:
            self.invoker.logs.append_note(
                fn.name,
                request_id,
                f"API Gateway: Execution failed due to configuration error: Malformed Lambda "
                f"proxy response ({e}). Answered 502 Internal server error.",
            )
            return _json_response(502, INTERNAL_ERROR)

    async def _preflight(
        self, send: Send, cors: Cors, origin: str | None, methods: list[str]
    ) -> None:
        allowed = cors.allowed_origin(origin)
        headers: list[tuple[bytes, bytes]] = []
        if allowed is not None:
            allowed_methods = cors.methods or ("OPTIONS", *methods)
            headers += [
                (b"access-control-allow-origin", allowed.encode()),
                (b"access-control-allow-methods", ",".join(allowed_methods).encode()),
                (b"access-control-allow-headers", ",".join(cors.headers).encode()),
            ]
            if cors.allow_credentials:
                headers.append((b"access-control-allow-credentials", b"true"))
            if cors.max_age is not None:
                headers.append((b"access-control-max-age", str(cors.max_age).encode()))
            if allowed != "*":
                headers.append((b"vary", b"Origin"))
        headers.append((b"content-length", b"0"))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _is_jwt(authorizer: object) -> bool:
    return isinstance(authorizer, HttpApiAuthorizer) and authorizer.kind == JWT


def _json_response(status: int, body: dict[str, str]) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json")], json.dumps(body).encode())


def _cors_headers(
    cors: Cors, origin: str | None, existing: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    allowed = cors.allowed_origin(origin)
    names = {k for k, _ in existing}
    if allowed is None or b"access-control-allow-origin" in names:
        return []
    extra = [(b"access-control-allow-origin", allowed.encode())]
    if cors.allow_credentials:
        extra.append((b"access-control-allow-credentials", b"true"))
    if cors.expose_headers:
        extra.append((b"access-control-expose-headers", ",".join(cors.expose_headers).encode()))
    if allowed != "*":
        extra.append((b"vary", b"Origin"))
    return extra
