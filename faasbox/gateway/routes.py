"""API Gateway routes: compiled once per deploy from the functions' `http`/`httpApi` events.

A route table is a segment trie. Matching walks it preferring, at each segment, a static name
over a `{param}` over a greedy `{proxy+}`, as API Gateway ranks them, and at the end an exact
method over ANY; it backtracks when a more specific branch has no route for the method.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faasbox.config.authorizers import (
    Authorizer,
    HttpApiAuthorizer,
    http_api_authorizers,
    http_api_event_authorizer_and_scopes,
    rest_authorizer,
)
from faasbox.config.events import authorizer_problem
from faasbox.errors import ResourceConflict
from faasbox.registry.models import DeployedFunction, FunctionConfig

log = logging.getLogger("faasbox.gateway")

REST = "rest"  # `http` events: REST API, payload format 1.0
HTTP_API = "http"  # `httpApi` events: HTTP API, payload format 2.0
ANY = "ANY"
RESERVED_PREFIXES = ("/2015-03-31/", "/_faasbox/", "/ui/")
RESERVED_PATHS = ("/ui", "/_faasbox", "/metrics")  # /metrics: faasbox.gateway.metrics

DEFAULT_CORS_HEADERS = (
    "Content-Type",
    "X-Amz-Date",
    "Authorization",
    "X-Api-Key",
    "X-Amz-Security-Token",
    "X-Amz-User-Agent",
    "X-Amzn-Trace-Id",
)


@dataclass(frozen=True)
class Cors:
    origins: tuple[str, ...] = ("*",)
    headers: tuple[str, ...] = DEFAULT_CORS_HEADERS
    methods: tuple[str, ...] = ()  # empty: the methods of the routes on the path
    allow_credentials: bool = False
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None

    def allowed_origin(self, origin: str | None) -> str | None:
        if "*" in self.origins:
            return origin if (self.allow_credentials and origin) else "*"
        return origin if origin in self.origins else None


@dataclass(frozen=True)
class Route:
    kind: str  # REST or HTTP_API
    method: str  # GET, POST, ..., or ANY
    path: str  # the template, e.g. /items/{id}; "$default" for the HTTP API catch-all
    function: str
    cors: Cors | None = None
    private: bool = False
    service: str | None = None
    event: int = -1  # its index in the function's events
    # None: no per-request authorization work at all
    authorizer: Authorizer | HttpApiAuthorizer | None = None

    @property
    def owner(self) -> str:
        """The function and its service, as a person reads them in an error."""
        return f"{self.function} (service {self.service or '(none: the Lambda API)'})"

    @functools.cached_property  # read by every event built for the route
    def route_key(self) -> str:
        if self.path == "$default":
            return "$default"
        return f"{self.method if self.method != ANY else 'ANY'} {self.path}"


@dataclass
class _Node:
    static: dict[str, _Node] = field(default_factory=dict)
    # The parameter's name, the node below, and the first route that named it.
    param: tuple[str, _Node, Route] | None = None
    greedy: tuple[str, dict[str, Route]] | None = None
    routes: dict[str, Route] = field(default_factory=dict)


@dataclass(frozen=True)
class Conflict:
    """A route that cannot be added: `taken` already holds its place."""

    route: Route
    taken: Route
    reason: str

    def describe(self) -> str:
        route, taken = self.route, self.taken
        held = f"{taken.route_key} of {taken.owner}"
        return f"{route.route_key} of {route.owner} {self.reason}: {held}"


@dataclass(slots=True)  # one per request: not frozen, whose __init__ costs more
class Match:
    route: Route
    path_parameters: dict[str, str]


class RouteTable:
    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._root = _Node()
        self._default: dict[str, Route] = {}
        self.routes: list[Route] = []
        self.has_rest = False
        self.has_http_api = False
        for route in routes:
            self._add(route)

    @classmethod
    def compile(cls, functions: Iterable[DeployedFunction]) -> RouteTable:
        routes: list[Route] = []
        for fn in sorted(functions, key=lambda f: f.name):
            routes.extend(routes_of(fn))
        return cls(routes)

    def _add(self, route: Route) -> None:
        conflict = self.add(route)
        if conflict is not None:
            log.warning("route %s", conflict.describe())

    def add(self, route: Route) -> Conflict | None:
        """Add a route, or say which route already holds its place (nothing is added then)."""
        if route.path == "$default":
            held = self._default.setdefault(route.method, route)
            if held is not route:
                return Conflict(route, held, "is already taken")
        else:
            node = self._root
            segments = split_path(route.path)
            for index, segment in enumerate(segments):
                if segment.startswith("{") and segment.endswith("+}"):
                    if index != len(segments) - 1:
                        log.warning("greedy %s must be last in %s", segment, route.path)
                        return None
                    name = segment[1:-2]
                    if node.greedy is None:
                        node.greedy = (name, {})
                    held = node.greedy[1].setdefault(route.method, route)
                    if held is not route:
                        return Conflict(route, held, "is already taken")
                    break
                if segment.startswith("{") and segment.endswith("}"):
                    name = segment[1:-1]
                    if node.param is None:
                        node.param = (name, _Node(), route)
                    elif node.param[0] != name:
                        held = node.param[2]
                        return Conflict(
                            route,
                            held,
                            f"names {{{name}}} where a route already names {{{node.param[0]}}}",
                        )
                    node = node.param[1]
                else:
                    node = node.static.setdefault(segment, _Node())
            else:
                held = node.routes.setdefault(route.method, route)
                if held is not route:
                    return Conflict(route, held, "is already taken")
        self.routes.append(route)
        self.has_rest |= route.kind == REST
        self.has_http_api |= route.kind == HTTP_API
        return None

    def match(self, method: str, path: str) -> Match | None:
        segments = split_path(path)
        found = self._walk(self._root, segments, 0, method, {})
        if found is None:
            route = self._default.get(method) or self._default.get(ANY)
            if route is not None:
                return Match(route, {})
        return found

    def _walk(
        self, node: _Node, segments: list[str], index: int, method: str, params: dict[str, str]
    ) -> Match | None:
        if index == len(segments):
            route = node.routes.get(method) or node.routes.get(ANY)
            return Match(route, params) if route else None
        segment = segments[index]
        child = node.static.get(segment)
        if child is not None:
            found = self._walk(child, segments, index + 1, method, params)
            if found:
                return found
        if node.param is not None:
            name, child, _ = node.param
            found = self._walk(child, segments, index + 1, method, {**params, name: segment})
            if found:
                return found
        if node.greedy is not None:
            name, routes = node.greedy
            route = routes.get(method) or routes.get(ANY)
            if route is not None:
                return Match(route, {**params, name: "/".join(segments[index:])})
        return None

    def methods_at(self, path: str) -> list[str]:
        """The methods routed at a path (for CORS preflight answers)."""
        found = [
            m
            for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
            if self.match(m, path) is not None
        ]
        return found

    def cors_for(self, path: str) -> Cors | None:
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            found = self.match(method, path)
            if found is not None and found.route.cors is not None:
                return found.route.cors
        return None


def claim_routes(
    others: Sequence[FunctionConfig], incoming: Sequence[FunctionConfig], force: bool
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Check a deploy's routes: against each other (a conflict inside one deploy is refused),
    and against the routes of `others`, the functions of other services. A route held by
    another service refuses the deploy naming both, unless `force`: then the holding events
    are dropped from their functions. Returns those functions' remaining events, by name, and
    what was moved, in words. Raises ResourceConflict."""
    service = next((c.service for c in incoming if c.service), None) or "(none)"
    own = RouteTable()
    mine: list[Route] = []
    for config in incoming:
        for route in routes_of_config(config):
            conflict = own.add(route)
            if conflict is not None:
                raise ResourceConflict(
                    f"Two routes of service {service} conflict: {conflict.describe()}. "
                    "Give each route one function."
                )
            mine.append(route)
    dropped: dict[str, set[int]] = {}
    moved: list[str] = []
    while True:
        table = RouteTable()
        for config in others:
            for route in routes_of_config(config):
                if route.event not in dropped.get(config.name, ()):
                    table.add(route)  # a conflict among them predates this deploy: kept
        conflicts = [c for c in (table.add(r) for r in mine) if c is not None]
        if not conflicts:
            break
        if not force:
            services = sorted({c.taken.service or "(none)" for c in conflicts})
            raise ResourceConflict(
                f"Service {service} cannot take routes of service {', '.join(services)}: "
                + "; ".join(c.describe() for c in conflicts)
                + ". Change the routes, remove them from the other service, or deploy with "
                "--force to move them to this one."
            )
        for c in conflicts:
            dropped.setdefault(c.taken.function, set()).add(c.taken.event)
            moved.append(f"route {c.taken.route_key} from {c.taken.owner}")
    remaining = {
        config.name: [e for i, e in enumerate(config.events) if i not in dropped[config.name]]
        for config in others
        if config.name in dropped
    }
    return remaining, moved


def split_path(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def normalize_path(path: str) -> str:
    return "/" + "/".join(split_path(path))


def _cors(value: Any) -> Cors | None:
    """Serverless' `cors: true` or a mapping (REST's or the HTTP API's key names)."""
    if not value:
        return None
    if value is True:
        return Cors()
    if not isinstance(value, dict):
        return Cors()

    def strings(*keys: str) -> tuple[str, ...] | None:
        for key in keys:
            got = value.get(key)
            if isinstance(got, str):
                return (got,)
            if isinstance(got, list):
                return tuple(str(x) for x in got)
        return None

    max_age = value.get("maxAge")
    return Cors(
        origins=strings("origins", "origin", "allowedOrigins") or ("*",),
        headers=strings("headers", "allowedHeaders") or DEFAULT_CORS_HEADERS,
        methods=tuple(m.upper() for m in strings("methods", "allowedMethods") or ()),
        allow_credentials=bool(value.get("allowCredentials", False)),
        expose_headers=strings("exposedResponseHeaders") or (),
        max_age=int(max_age) if isinstance(max_age, int) else None,
    )


def _method_and_path(spec: str) -> tuple[str, str]:
    method, _, path = spec.strip().partition(" ")
    return method.strip().upper(), path.strip()


def routes_of(fn: DeployedFunction) -> list[Route]:
    """The routes one function's events ask for; bad ones are logged and skipped."""
    return routes_of_config(fn.config)


def routes_of_config(config: FunctionConfig) -> list[Route]:
    api = config.api_gateway
    http_api_cors = _cors(api.get("httpApiCors"))
    routes: list[Route] = []
    for index, event in enumerate(config.events):
        try:
            route = _route(config, event, http_api_cors)
        except (AttributeError, TypeError, ValueError, StopIteration) as e:
            log.warning("%s: event %r cannot be routed (%s); skipped", config.name, event, e)
            continue
        if route is not None:
            routes.append(dataclasses.replace(route, event=index))
    return routes


def unsupported_authorizer(
    events: Iterable[dict[str, Any]], http_api_authorizers: Any = None
) -> str | None:
    """The first HTTP event whose authorizer faasbox cannot run: the event and why."""
    for event in events:
        for kind, body in event.items():
            if kind in ("http", "httpApi") and isinstance(body, dict) and "authorizer" in body:
                problem = authorizer_problem(kind, body, http_api_authorizers, check_names=True)
                if problem is not None:
                    method = str(body.get("method", "*")).upper()
                    return f"{kind} {method} {body.get('path', '')}".strip() + f": {problem}"
    return None


def _route(fn: FunctionConfig, event: dict[str, Any], http_api_cors: Cors | None) -> Route | None:
    """The route of one event; None for events that are not HTTP routes."""
    kind_key, body = next(iter(event.items()))
    authorizer: Authorizer | HttpApiAuthorizer | None = None
    known = fn.api_gateway.get("httpApiAuthorizers")
    if unsupported_authorizer([event], known) is not None:
        # Refused at deploy; a record from before that check is never served unprotected.
        log.warning("%s: route %s has an authorizer faasbox cannot run; skipped", fn.name, body)
        return None
    if kind_key == "http":
        kind = REST
        if isinstance(body, str):
            method, path = _method_and_path(body)
            cors, private = None, False
        else:
            method = str(body.get("method", "")).upper()
            path = str(body.get("path", ""))
            cors, private = _cors(body.get("cors")), bool(body.get("private", False))
            if body.get("authorizer") is not None:
                authorizer = rest_authorizer(body["authorizer"])
    elif kind_key == "httpApi":
        kind = HTTP_API
        private = False
        cors = http_api_cors
        if isinstance(body, str):
            if body.strip() == "*":
                method, path = ANY, "$default"
            else:
                method, path = _method_and_path(body)
        else:
            method = str(body.get("method", "*")).upper()
            path = str(body.get("path", "*"))
            if path == "*":
                path = "$default"
            if body.get("authorizer") is not None:
                name, scopes = http_api_event_authorizer_and_scopes(body["authorizer"])
                authorizer = dataclasses.replace(http_api_authorizers(known)[name], scopes=scopes)
        if method == "*":
            method = ANY
    else:
        return None
    if path != "$default":
        path = normalize_path(path)
        if path.startswith(RESERVED_PREFIXES) or path.rstrip("/") in RESERVED_PATHS:
            log.warning(
                "%s: route %s %s is under a reserved prefix; skipped", fn.name, method, path
            )
            return None
    return Route(kind, method, path, fn.name, cors, private, fn.service, authorizer=authorizer)
