"""The proxy events' JSON (payload 1.0 and 2.0) written without building their dicts.

`encode_event(v2_event(...))` builds ~25 keys of dicts per request and `json.dumps` walks
them again. Most of it is the same for every request of a route (the keys, the route key, the
account and API ids, REST's resource id), so those parts are encoded once per route into a
skeleton, and a request fills in only its own values, each string encoded by the C function
`json.dumps` uses. The bytes are exactly `encode_event` of the dict that
faasbox.gateway.apigw_events builds from the same helpers (key order, `", "` and `": "`
separators, ASCII escapes, `null`s; tests/unit/test_apigw_json.py compares them over many
requests), so every runtime reads the event it read before.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from faasbox import fastjson
from faasbox.execution.body_beside import HttpEventParts
from faasbox.gateway.apigw_events import (
    RequestFacts,
    api_id,
    request_time,
    resource_id,
    v1_body,
    v1_identity,
    v1_multi_values,
    v2_body,
    v2_headers,
    v2_query,
)
from faasbox.gateway.routes import REST, Match, Route
from faasbox.registry.models import ACCOUNT_ID

_string: Callable[[str], str] = encode_basestring_ascii


_dumps = fastjson.dumps  # json.dumps's own C encoder, made once


def _string_or_null(value: str | None) -> str:
    return "null" if value is None else _string(value)


class _Skeleton:
    """A route's constant parts, encoded once."""

    __slots__ = ("context", "head", "route", "tail")

    def __init__(self, route: Route) -> None:
        self.route = route  # kept, so its id is not reused while cached
        context = f'"accountId": {_string(ACCOUNT_ID)}, "apiId": {_string(api_id(route.service))}'
        if route.kind == REST:
            self.head = f'{{"resource": {_string(route.path)}, "path": '
            self.context = (
                f', "stageVariables": null, "requestContext": {{{context}, "domainName": '
            )
            self.tail = (
                f', "resourceId": {_string(resource_id(route.path))}, '
                f'"resourcePath": {_string(route.path)}, "stage": '
            )
        else:
            key = _string(route.route_key)
            self.head = f'{{"version": "2.0", "routeKey": {key}, "rawPath": '
            self.context = f', "requestContext": {{{context}, "domainName": '
            self.tail = f', "routeKey": {key}, "stage": "$default", "time": '


_skeletons: dict[int, _Skeleton] = {}
SKELETONS_KEPT = 4096  # routes of deploys gone are dropped with the rest past this


def _skeleton(route: Route) -> _Skeleton:
    # By identity: hashing a Route (its dataclass fields) per request would cost more.
    skeleton = _skeletons.get(id(route))
    if skeleton is None or skeleton.route is not route:
        if len(_skeletons) >= SKELETONS_KEPT:
            _skeletons.clear()
        skeleton = _skeletons[id(route)] = _Skeleton(route)
    return skeleton


def _event_end(text: str | None, is_base64: bool, beside: bool) -> str:
    """The event's last keys: `body` (when there is one) and `isBase64Encoded`."""
    if beside:
        return "}"
    end = ', "isBase64Encoded": true}' if is_base64 else ', "isBase64Encoded": false}'
    return end if text is None else f', "body": {_string(text)}{end}'


def _finished(text: str, beside: bool, body: bytes) -> bytes | HttpEventParts:
    return HttpEventParts(text.encode(), body) if beside else text.encode()


def v2_event_json(
    facts: RequestFacts,
    match: Match,
    body: bytes,
    body_beside: bool = False,
    authorizer: dict[str, Any] | None = None,
) -> bytes | HttpEventParts:
    """`encode_event` of `v2_event(...)` with `requestContext.authorizer` set when given."""
    skeleton = _skeleton(match.route)
    headers, cookies = v2_headers(facts)
    text, is_base64, beside = v2_body(facts, body, body_beside)
    domain = facts.host.split(":", 1)[0]
    parts = [
        skeleton.head,
        _string(facts.raw_path),
        ', "rawQueryString": ',
        _string(facts.raw_query),
    ]
    if cookies:
        parts += (', "cookies": ', _dumps(cookies))
    parts += (', "headers": ', _dumps(headers))
    if facts.raw_query and (query := v2_query(facts)):
        parts += (', "queryStringParameters": ', _dumps(query))
    if match.path_parameters:
        parts += (', "pathParameters": ', _dumps(match.path_parameters))
    parts += (
        skeleton.context,
        _string(domain),
        ', "domainPrefix": ',
        _string(domain.split(".", 1)[0]),
        ', "http": {"method": ',
        _string(facts.method),
        ', "path": ',
        _string(facts.path),
        ', "protocol": ',
        _string(facts.protocol),
        ', "sourceIp": ',
        _string(facts.source_ip),
        ', "userAgent": ',
        _string(facts.header("user-agent") or ""),
        '}, "requestId": ',
        _string(facts.request_id),
        skeleton.tail,
        _string(request_time(facts.epoch)),
        ', "timeEpoch": ',
        str(int(facts.epoch * 1000)),
    )
    if authorizer is not None:
        parts += (', "authorizer": ', _dumps(authorizer))
    parts.append("}")
    parts.append(_event_end(text, is_base64, beside))
    return _finished("".join(parts), beside, body)


def v1_event_json(
    facts: RequestFacts,
    match: Match,
    stage: str,
    body: bytes,
    binary_media_types: list[str],
    api_key: str | None,
    body_beside: bool = False,
    authorizer: dict[str, Any] | None = None,
    identity: dict[str, Any] | None = None,
) -> bytes | HttpEventParts:
    """`encode_event` of `v1_event(...)` with `requestContext.authorizer` set and
    `requestContext.identity` updated with `identity` when given."""
    skeleton = _skeleton(match.route)
    multi_headers, multi_query = v1_multi_values(facts)
    text, is_base64, beside = v1_body(facts, body, binary_media_types, body_beside)
    domain = facts.host.split(":", 1)[0]
    method = _string(facts.method)
    request_id = _string(facts.request_id)
    if multi_query:
        query = _dumps({k: v[-1] for k, v in multi_query.items()})
        multi_query_json = _dumps(multi_query)
    else:
        query = multi_query_json = "null"
    if identity is None:
        identity_json = (
            '{"accessKey": null, "accountId": null, "apiKey": '
            f"{_string_or_null(api_key)}"
            ', "apiKeyId": null, "caller": null, "cognitoAuthenticationProvider": null, '
            '"cognitoAuthenticationType": null, "cognitoIdentityId": null, '
            '"cognitoIdentityPoolId": null, "principalOrgId": null, "sourceIp": '
            f"{_string(facts.source_ip)}"
            ', "user": null, "userAgent": '
            f'{_string_or_null(facts.header("user-agent"))}, "userArn": null}}'
        )
    else:
        fields = v1_identity(facts, api_key)
        fields.update(identity)
        identity_json = _dumps(fields)
    parts = [
        skeleton.head,
        _string(facts.path),
        ', "httpMethod": ',
        method,
        ', "headers": ',
        _dumps({k: v[-1] for k, v in multi_headers.items()}),
        ', "multiValueHeaders": ',
        _dumps(multi_headers),
        ', "queryStringParameters": ',
        query,
        ', "multiValueQueryStringParameters": ',
        multi_query_json,
        ', "pathParameters": ',
        _dumps(match.path_parameters) if match.path_parameters else "null",
        skeleton.context,
        _string(domain),
        ', "domainPrefix": ',
        _string(domain.split(".", 1)[0]),
        ', "extendedRequestId": ',
        request_id,
        ', "httpMethod": ',
        method,
        ', "identity": ',
        identity_json,
        ', "path": ',
        _string(f"/{stage}{facts.path}"),
        ', "protocol": ',
        _string(facts.protocol),
        ', "requestId": ',
        request_id,
        ', "requestTime": ',
        _string(request_time(facts.epoch)),
        ', "requestTimeEpoch": ',
        str(int(facts.epoch * 1000)),
        skeleton.tail,
        _string(stage),
    ]
    if authorizer is not None:
        parts += (', "authorizer": ', _dumps(authorizer))
    parts.append("}")
    if beside:
        parts.append("}")
    else:
        # payload 1.0 always has both keys, `body` null when empty
        parts += (', "body": ', _string_or_null(text), ', "isBase64Encoded": ')
        parts.append("true}" if is_base64 else "false}")
    return _finished("".join(parts), beside, body)
