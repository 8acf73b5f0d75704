"""The Lambda API's event invoke configs (botocore's lambda 2015-03-31, under /2019-09-25):

| method, path under /2019-09-25/functions | operation                        | status |
|------------------------------------------|----------------------------------|--------|
| PUT    /{name}/event-invoke-config       | PutFunctionEventInvokeConfig     | 200    |
| POST   /{name}/event-invoke-config       | UpdateFunctionEventInvokeConfig  | 200    |
| GET    /{name}/event-invoke-config       | GetFunctionEventInvokeConfig     | 200    |
| DELETE /{name}/event-invoke-config       | DeleteFunctionEventInvokeConfig  | 204    |
| GET    /{name}/event-invoke-config/list  | ListFunctionEventInvokeConfigs   | 200    |

Each takes `?Qualifier=` (a version; $LATEST when absent) but List, which lists them all.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote

from faasbox.errors import InvalidParameterValue, ResourceNotFound, UnknownOperation
from faasbox.events.invoke_config import AsyncConfig, InvokeConfigStore, apply_request
from faasbox.gateway import lambda_requests as req
from faasbox.gateway.http import Headers, Scope, Send, respond, respond_json
from faasbox.registry import Registry
from faasbox.registry.models import LATEST, DeployedFunction, split_function_name

PREFIX = "/2019-09-25/functions"
MAX_ITEMS = 50


class EventInvokeConfigApi:
    def __init__(self, registry: Registry, configs: InvokeConfigStore) -> None:
        self.registry = registry
        self.configs = configs

    async def __call__(
        self, scope: Scope, send: Send, rest: str, request_id: str, body: bytes
    ) -> None:
        """Serve `/2019-09-25/functions<rest>`; `body` is read and authenticated."""
        parts = [unquote(p) for p in rest.strip("/").split("/") if p]
        method: str = scope["method"]
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
        headers: Headers = [(b"x-amzn-requestid", request_id.encode())]
        route = (method, parts[1:])
        if len(parts) < 2 or parts[1] != "event-invoke-config":
            raise UnknownOperation(f"faasbox does not serve {method} {PREFIX}{rest}")
        if route == ("GET", ["event-invoke-config", "list"]):
            await respond_json(send, 200, self._list(parts[0], query), headers)
            return
        if len(parts) != 2:
            raise UnknownOperation(f"faasbox does not serve {method} {PREFIX}{rest}")
        fn, qualifier = self._function(parts[0], req.qualifier(query))
        arn = f"{fn.arn}:{qualifier or LATEST}"
        if method == "PUT":
            config = apply_request(None, req.parse_body(body))
            self.configs.put(fn.name, qualifier, config)
        elif method == "POST":
            config = apply_request(self._existing(fn, qualifier, arn), req.parse_body(body))
            self.configs.put(fn.name, qualifier, config)
        elif method == "GET":
            config = self._existing(fn, qualifier, arn)
        elif method == "DELETE":
            self._existing(fn, qualifier, arn)
            self.configs.delete(fn.name, qualifier)
            await respond(send, 204, b"", None, headers)
            return
        else:
            raise UnknownOperation(f"faasbox does not serve {method} {PREFIX}{rest}")
        await respond_json(send, 200, config.to_api(arn), headers)

    def _function(self, name: str, qualifier: str | None) -> tuple[DeployedFunction, str | None]:
        """The function and the qualifier the config is for (None: $LATEST)."""
        base, derived = split_function_name(name)
        if derived is not None and qualifier not in (None, derived):
            raise InvalidParameterValue(
                "The derived qualifier from the function name does not match the specified "
                "qualifier."
            )
        qualifier = qualifier or derived
        fn = self.registry.get(base, qualifier)
        return fn, None if qualifier in (None, LATEST) else qualifier

    def _existing(self, fn: DeployedFunction, qualifier: str | None, arn: str) -> AsyncConfig:
        config = self.configs.get(fn.name, qualifier)
        if config is None:
            raise ResourceNotFound(f"The function {arn} doesn't have an EventInvokeConfig")
        return config

    def _list(self, name: str, query: dict[str, str]) -> dict[str, Any]:
        fn = self.registry.get(split_function_name(name)[0])
        try:
            limit = int(query.get("MaxItems", MAX_ITEMS))
            start = int(query.get("Marker", "0"))
        except ValueError:
            raise InvalidParameterValue("MaxItems and Marker must be integers") from None
        if not 1 <= limit <= MAX_ITEMS or start < 0:
            raise InvalidParameterValue(f"MaxItems must be from 1 to {MAX_ITEMS}")
        configs = self.configs.list(fn.name)
        page = configs[start : start + limit]
        result: dict[str, Any] = {
            "FunctionEventInvokeConfigs": [c.to_api(f"{fn.arn}:{q}") for q, c in page]
        }
        if start + limit < len(configs):
            result["NextMarker"] = str(start + limit)
        return result
