"""Checking a function's ``events:``: the shapes of ``http`` and ``httpApi``, which faasbox
routes; other event types are kept with a warning until faasbox triggers them."""

from __future__ import annotations

from typing import Any

from faasbox.config.authorizers import (
    UnsupportedAuthorizer,
    http_api_event_authorizer,
    rest_authorizer,
)
from faasbox.config.authorizers import http_api_authorizers as http_api_authorizers_of
from faasbox.config.fields import Context, mapping, show
from faasbox.config.keypath import KeyPath
from faasbox.config.queues import check_sqs_event
from faasbox.config.schedules import check_schedule

ROUTED_EVENTS = ("http", "httpApi")
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})


def check_events(ctx: Context, value: object, path: KeyPath) -> list[dict[str, Any]]:
    """The events as written (shallow copies), after checking their shapes."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.error(
            path, f"expected a list of events (- httpApi: GET /hello), got {show(value)}"
        )
    events: list[dict[str, Any]] = []
    for index, entry in enumerate(value):
        where = (*path, index)
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ctx.error(
                where,
                "expected a mapping with exactly one event type, e.g. "
                f"'- httpApi: GET /hello', got {show(entry)}",
            )
        kind, body = next(iter(mapping(ctx, entry, where, "an event").items()))
        if kind == "http":
            _check_http(ctx, body, (*where, kind))
        elif kind == "httpApi":
            _check_http_api(ctx, body, (*where, kind))
        elif kind == "sqs":
            check_sqs_event(ctx, body, (*where, kind))
        elif kind == "schedule":
            check_schedule(ctx, body, (*where, kind))
        elif kind == "dapr":
            _check_dapr(ctx, body, (*where, kind))
        else:
            ctx.warn(
                (*where, kind),
                f"faasbox does not route {kind!r} events yet; the function is only invoked "
                "through HTTP events and the Lambda API",
            )
        if kind in ROUTED_EVENTS and isinstance(body, dict) and "authorizer" in body:
            problem = authorizer_problem(kind, body)
            if problem is not None:
                raise ctx.error(
                    (*where, kind, "authorizer"),
                    f"function {path[1]!r}, event {kind} {describe_event(body)}: {problem}",
                )
        events.append(dict(entry))
    return events


def authorizer_problem(
    kind: str, body: dict[str, Any], http_api_authorizers: Any = None, check_names: bool = False
) -> str | None:
    """Why an event's authorizer cannot be run (None: faasbox runs it). `check_names`: also
    that an httpApi event's authorizer is one of `http_api_authorizers`."""
    try:
        if kind == "http":
            rest_authorizer(body["authorizer"])
        else:
            name = http_api_event_authorizer(body["authorizer"])
            if check_names:
                known = http_api_authorizers_of(http_api_authorizers)
                if name not in known:
                    return (
                        f"authorizer {name!r} is not one of provider.httpApi.authorizers "
                        f"({', '.join(sorted(known)) or 'none'})"
                    )
    except UnsupportedAuthorizer as e:
        return str(e)
    return None


def _check_http(ctx: Context, body: object, path: KeyPath) -> None:
    """API Gateway REST API: ``GET hello/{id}`` or ``{path, method, cors, private}``."""
    if isinstance(body, str):
        parts = body.split()
        if len(parts) != 2 or parts[0].upper() not in HTTP_METHODS:
            raise ctx.error(path, f"expected 'METHOD path' (e.g. 'GET /hello'), got {body!r}")
        return
    event = mapping(ctx, body, path, "'METHOD path' or a mapping with path and method")
    for key in ("path", "method"):
        if not isinstance(event.get(key), str):
            raise ctx.error((*path, key), f"expected a string, got {show(event.get(key))}")
    if event["method"].upper() not in HTTP_METHODS:
        raise ctx.error((*path, "method"), _method_expectation(event["method"], any_star=False))
    if "cors" in event and not isinstance(event["cors"], bool | dict):
        raise ctx.error((*path, "cors"), f"expected true or a mapping, got {show(event['cors'])}")
    if "private" in event and not isinstance(event["private"], bool):
        raise ctx.error((*path, "private"), f"expected true or false, got {show(event['private'])}")


def _check_http_api(ctx: Context, body: object, path: KeyPath) -> None:
    """API Gateway HTTP API: ``*``, ``GET /hello`` or ``{method, path}`` (method may be ``*``)."""
    if isinstance(body, str):
        if body == "*":
            return
        parts = body.split()
        if (
            len(parts) != 2
            or parts[0].upper() not in {*HTTP_METHODS, "*"}
            or not parts[1].startswith("/")
        ):
            raise ctx.error(
                path, f"expected '*' or 'METHOD /path' (e.g. 'GET /hello'), got {body!r}"
            )
        return
    event = mapping(ctx, body, path, "'*', 'METHOD /path' or a mapping with method and path")
    route = event.get("path")
    if not isinstance(route, str) or not route.startswith("/"):
        raise ctx.error((*path, "path"), f"expected a path starting with /, got {show(route)}")
    method = event.get("method", "*")
    if not isinstance(method, str) or method.upper() not in {*HTTP_METHODS, "*"}:
        raise ctx.error((*path, "method"), _method_expectation(method, any_star=True))


def _check_dapr(ctx: Context, body: object, path: KeyPath) -> None:
    """A Dapr pub/sub subscription: ``{pubsub: pubsub, topic: orders, deadLetterTopic: ...}``
    (faasbox.dapr.pubsub delivers it)."""
    event = mapping(ctx, body, path, "a mapping with topic (and pubsub, deadLetterTopic)")
    for key in ("topic", "pubsub", "deadLetterTopic"):
        value = event.get(key)
        if (key == "topic" or value is not None) and (not isinstance(value, str) or not value):
            raise ctx.error((*path, key), f"expected a name, got {show(value)}")


def describe_event(body: dict[str, Any]) -> str:
    method = str(body.get("method", "*")).upper()
    return f"{method} {body.get('path', '')}".strip()


def _method_expectation(method: object, *, any_star: bool) -> str:
    methods = ", ".join(sorted(HTTP_METHODS)) + (" or *" if any_star else "")
    return f"expected one of {methods}, got {show(method)}"
