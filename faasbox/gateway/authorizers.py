"""Lambda authorizers of REST (`http`) routes, as API Gateway runs them.

Before a protected route's function, the authorizer function of the same service is invoked
with API Gateway's TOKEN or REQUEST authorizer event. Its answer, `{principalId,
policyDocument, context}`, is cached per identity for the authorizer's TTL; the policy is
evaluated against each request's methodArn (so a cached policy that allows one route does not
allow another), an explicit Deny winning over any Allow. The answers API Gateway gives when
authorization fails are reproduced byte for byte. Routes without an authorizer never reach
this module.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from faasbox.config.authorizers import REQUEST, TOKEN, Authorizer, HttpApiAuthorizer
from faasbox.errors import TooManyRequests
from faasbox.execution.invoker import Invoker
from faasbox.gateway.apigw_events import HttpResponse, RequestFacts, api_id
from faasbox.gateway.routes import Match
from faasbox.registry.models import ACCOUNT_ID, DeployedFunction

Answer = tuple[int, dict[str, Any], str]
MAX_CACHED = 10_000  # identities remembered in all; the oldest is dropped beyond
UNAUTHORIZED = (401, {"message": "Unauthorized"}, "UnauthorizedException")
EXPLICIT_DENY = (
    403,
    {"Message": "User is not authorized to access this resource with an explicit deny"},
    "AccessDeniedException",
)
NOT_ALLOWED = (
    403,
    {"Message": "User is not authorized to access this resource"},
    "AccessDeniedException",
)
CONFIGURATION_ERROR = (500, {"message": None}, "AuthorizerConfigurationException")
# The HTTP API's answers (payload 2.0 authorizers): no error type header of their own.
V2_UNAUTHORIZED = (401, {"message": "Unauthorized"}, "")
V2_FORBIDDEN = (403, {"message": "Forbidden"}, "")
V2_ERROR = (500, {"message": "Internal Server Error"}, "")


class Refused(Exception):
    """Authorization failed: `response` is API Gateway's answer."""

    def __init__(self, answer: Answer, response: HttpResponse | None = None) -> None:
        status, body, error_type = answer
        super().__init__(error_type or status)
        headers = [("Content-Type", "application/json")]
        if error_type:
            headers.append(("x-amzn-ErrorType", error_type))
        self.response = response or HttpResponse(status, headers, json.dumps(body).encode())


@dataclass(frozen=True)
class Grant:
    """An authorizer's valid answer, as cached."""

    principal_id: str
    statements: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # effect, actions, res
    context: dict[str, str]
    raw_context: dict[str, Any]  # as the authorizer wrote it (the HTTP API keeps its types)

    def decide(
        self, method_arn: str, denied: Answer = EXPLICIT_DENY, none: Answer = NOT_ALLOWED
    ) -> None:
        allowed = False
        for effect, actions, resources in self.statements:
            if not any(_pattern(a, True).fullmatch("execute-api:Invoke") for a in actions):
                continue
            if not any(_pattern(r, False).fullmatch(method_arn) for r in resources):
                continue
            if effect == "deny":
                raise Refused(denied)
            allowed = True
        if not allowed:
            raise Refused(none)

    def request_context(self, latency_ms: int) -> dict[str, Any]:
        """What the route's function finds in `requestContext.authorizer`."""
        return {**self.context, "principalId": self.principal_id, "integrationLatency": latency_ms}


@lru_cache(maxsize=1024)
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters (slashes too), `?` one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile(body, re.IGNORECASE if ignore_case else 0)


def route_arn(fn: DeployedFunction, facts: RequestFacts) -> str:
    """An HTTP API's routeArn: its stage is `$default`."""
    return (
        f"arn:aws:execute-api:{fn.config.region}:{ACCOUNT_ID}:{api_id(fn.config.service)}"
        f"/$default/{facts.method}/{facts.path.lstrip('/')}"
    )


def method_arn(fn: DeployedFunction, facts: RequestFacts) -> str:
    stage = fn.config.stage or "dev"
    return (
        f"arn:aws:execute-api:{fn.config.region}:{ACCOUNT_ID}:{api_id(fn.config.service)}"
        f"/{stage}/{facts.method}/{facts.path.lstrip('/')}"
    )


class LambdaAuthorizers:
    def __init__(self, invoker: Invoker, max_cached: int = MAX_CACHED) -> None:
        self.invoker = invoker
        self.max_cached = max_cached
        # (expiry, a Grant or a simple response's (isAuthorized, context)), oldest first
        self._cache: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()

    def clear(self) -> None:
        """After a deploy: an authorizer's new code decides afresh."""
        self._cache.clear()

    async def authorize(
        self,
        authorizer: Authorizer,
        function: DeployedFunction | None,
        route_fn: DeployedFunction,
        facts: RequestFacts,
        match: Match,
        request_event: dict[str, Any],
    ) -> dict[str, Any]:
        """`requestContext.authorizer` for the route's function; raises Refused."""
        identity = self._identity(authorizer, facts, match)
        arn = method_arn(route_fn, facts)
        started = time.monotonic()
        key = (authorizer.function, route_fn.config.service, identity)
        cached = self._cache.get(key) if authorizer.ttl_s > 0 else None
        if cached is not None and cached[0] > started:
            self._cache.move_to_end(key)
            grant: Grant = cached[1]
        else:
            if function is None:
                raise Refused(CONFIGURATION_ERROR)
            grant = await self._invoke(authorizer, function, arn, facts, identity, request_event)
            if authorizer.ttl_s > 0:
                self._remember(key, started + authorizer.ttl_s, grant)
        grant.decide(arn)
        return grant.request_context(int((time.monotonic() - started) * 1000))

    async def authorize_v2(
        self,
        authorizer: HttpApiAuthorizer,
        function: DeployedFunction | None,
        route_fn: DeployedFunction,
        facts: RequestFacts,
        request_event: dict[str, Any],
    ) -> dict[str, Any]:
        """`requestContext.authorizer` of a payload 2.0 Lambda authorizer; raises Refused."""
        identity = self._identity_v2(authorizer, facts)
        arn = route_arn(route_fn, facts)
        now = time.monotonic()
        # API Gateway caches only what an identity source keys.
        cacheable = authorizer.ttl_s > 0 and bool(authorizer.identity_sources)
        key = ("v2", authorizer.function, route_fn.config.service, identity)
        cached = self._cache.get(key) if cacheable else None
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            answer = cached[1]
        else:
            if function is None:
                raise Refused(V2_ERROR)
            event = {
                **request_event,
                "type": "REQUEST",
                "routeArn": arn,
                "identitySource": list(identity),
            }
            event.pop("body", None)
            event.pop("isBase64Encoded", None)
            try:
                result = await self.invoker.invoke(
                    function, json.dumps(event).encode(), request_id=str(uuid.uuid4())
                )
            except TooManyRequests:
                raise Refused(V2_ERROR) from None
            if result.function_error is not None:
                raise Refused(V2_ERROR)
            try:
                answer = _v2_answer(json.loads(result.payload), authorizer.simple)
            except ValueError:
                answer = None
            if answer is None:
                self.invoker.logs.append_note(
                    function.name,
                    facts.request_id,
                    "API Gateway: the authorizer's response is invalid: expected "
                    + (
                        "{isAuthorized: true|false, context}"
                        if authorizer.simple
                        else "{principalId, policyDocument, context}"
                    ),
                )
                raise Refused(V2_ERROR)
            if cacheable:
                self._remember(key, now + authorizer.ttl_s, answer)
        if isinstance(answer, Grant):
            answer.decide(arn, V2_FORBIDDEN, V2_FORBIDDEN)
            return {"lambda": answer.raw_context, "principalId": answer.principal_id}
        allowed, context = answer
        if not allowed:
            raise Refused(V2_FORBIDDEN)
        return {"lambda": context}

    def _remember(self, key: tuple[Any, ...], expires: float, answer: Any) -> None:
        self._cache[key] = (expires, answer)
        self._cache.move_to_end(key)
        while len(self._cache) > self.max_cached:
            self._cache.popitem(last=False)

    @staticmethod
    def _identity_v2(authorizer: HttpApiAuthorizer, facts: RequestFacts) -> tuple[str, ...]:
        values: list[str] = []
        query: dict[str, str] | None = None
        for where, name in authorizer.identity_sources:
            if where == "header":
                value = facts.header(name)
            else:
                if query is None:
                    query = dict(parse_qsl(facts.raw_query, keep_blank_values=True))
                value = query.get(name)
            if not value:
                raise Refused(V2_UNAUTHORIZED)
            values.append(value)
        return tuple(values)

    @staticmethod
    def _identity(authorizer: Authorizer, facts: RequestFacts, match: Match) -> tuple[str, ...]:
        """The identity sources' values; a missing one is API Gateway's 401."""
        values: list[str] = []
        query: dict[str, str] | None = None
        for where, name in authorizer.identity_sources:
            value: str | None
            if where == "header":
                value = facts.header(name)
            elif where == "path":
                value = match.path_parameters.get(name)
            else:
                if query is None:
                    query = dict(parse_qsl(facts.raw_query, keep_blank_values=True))
                value = query.get(name)
            if not value:
                raise Refused(UNAUTHORIZED)
            values.append(value)
        validation = authorizer.validation if authorizer.kind == TOKEN else None
        if validation is not None and re.fullmatch(validation, values[0]) is None:
            raise Refused(UNAUTHORIZED)
        return tuple(values)

    async def _invoke(
        self,
        authorizer: Authorizer,
        function: DeployedFunction,
        arn: str,
        facts: RequestFacts,
        identity: tuple[str, ...],
        request_event: dict[str, Any],
    ) -> Grant:
        if authorizer.kind == REQUEST:
            event = {"type": "REQUEST", "methodArn": arn, **request_event}
            event.pop("body", None)
            event.pop("isBase64Encoded", None)
        else:
            event = {"type": "TOKEN", "authorizationToken": identity[0], "methodArn": arn}
        try:
            result = await self.invoker.invoke(
                function, json.dumps(event).encode(), request_id=str(uuid.uuid4())
            )
        except TooManyRequests:
            raise Refused(CONFIGURATION_ERROR) from None
        try:
            answer = json.loads(result.payload)
        except ValueError:
            answer = None
        if result.function_error is not None:
            # `raise Exception("Unauthorized")` (callback("Unauthorized") in Node.js) is the
            # documented way for an authorizer to answer 401.
            message = answer.get("errorMessage") if isinstance(answer, dict) else None
            raise Refused(UNAUTHORIZED if message == "Unauthorized" else CONFIGURATION_ERROR)
        grant = _grant(answer)
        if grant is None:
            self.invoker.logs.append_note(
                function.name,
                facts.request_id,
                "API Gateway: Execution failed due to configuration error: Invalid JSON in "
                "response: the authorizer must return principalId, a policyDocument with "
                "Statement(s) and a context of strings, numbers and booleans.",
            )
            raise Refused(CONFIGURATION_ERROR)
        return grant


def _strings(value: Any) -> tuple[str, ...] | None:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


def _grant(answer: Any) -> Grant | None:
    """An authorizer's answer checked as API Gateway checks it; None when invalid."""
    if not isinstance(answer, dict):
        return None
    principal = answer.get("principalId")
    policy = answer.get("policyDocument")
    if not isinstance(principal, str | int) or isinstance(principal, bool):
        return None
    if not isinstance(policy, dict):
        return None
    raw = policy.get("Statement")
    listed = [raw] if isinstance(raw, dict) else raw
    if not isinstance(listed, list) or not listed:
        return None
    statements = []
    for statement in listed:
        if not isinstance(statement, dict):
            return None
        effect = statement.get("Effect")
        actions = _strings(statement.get("Action"))
        resources = _strings(statement.get("Resource"))
        if not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
            return None
        if actions is None or resources is None:
            return None
        statements.append((effect.lower(), actions, resources))
    context: dict[str, str] = {}
    raw_context = answer.get("context") or {}
    if not isinstance(raw_context, dict):
        return None
    for name, value in raw_context.items():
        # REST APIs hand the function the context's values as strings.
        if isinstance(value, bool):
            context[str(name)] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            context[str(name)] = str(value)
        else:
            return None
    return Grant(str(principal), tuple(statements), context, dict(raw_context))


def _v2_answer(answer: Any, simple: bool) -> Grant | tuple[bool, dict[str, Any]] | None:
    """A payload 2.0 authorizer's answer; None when invalid."""
    if not simple:
        return _grant(answer)
    if not isinstance(answer, dict) or not isinstance(answer.get("isAuthorized"), bool):
        return None
    context = answer.get("context") or {}
    if not isinstance(context, dict):
        return None
    return answer["isAuthorized"], context
