"""faasbox's own management API, under /_faasbox/, used by the CLI and the UI.

- GET    /_faasbox/health                        liveness and a few counters
- GET    /_faasbox/functions                     deployed functions
- POST   /_faasbox/deploy                        {service, functions: [config], code_zip: base64,
                                                 force: moves names and routes of other services}
- DELETE /_faasbox/functions/{name}              remove a function
- GET    /_faasbox/functions/{name}/logs         ?since=SEQ&limit=N&wait=SECONDS
- GET    /_faasbox/functions/{name}              one function, with its live workers
- DELETE /_faasbox/functions/{name}/workers      stop its idle workers (the next call is cold)
- the console's stats and saved test events: faasbox/gateway/console_api.py
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any
from urllib.parse import parse_qs, unquote

from faasbox.errors import DeployError, InvalidParameterValue, InvalidRequestContent
from faasbox.execution.invoker import Invoker
from faasbox.gateway.console_api import ConsoleApi
from faasbox.gateway.http import Scope, Send, respond_json
from faasbox.gateway.routes import unsupported_authorizer
from faasbox.lambda_.limits import ZIPPED_CODE_LIMIT
from faasbox.registry import DeployedFunction, Registry
from faasbox.registry.api_keys import ApiKeyStore
from faasbox.registry.models import checked_config

DEPLOY_BODY_LIMIT = ZIPPED_CODE_LIMIT * 4 // 3 + (1 << 20)  # base64 of the zip, plus JSON


def describe(fn: DeployedFunction) -> dict[str, Any]:
    return {
        "name": fn.name,
        "version": fn.version,
        "arn": fn.arn,
        "codeSha256": fn.code_sha256,
        "codeSize": fn.code_size,
        "lastModified": fn.last_modified,
        "revisionId": fn.revision_id,
        "config": fn.config.to_dict(),
    }


class ManagementApi:
    def __init__(self, registry: Registry, invoker: Invoker, api_keys: ApiKeyStore) -> None:
        self.registry = registry
        self.invoker = invoker
        self.api_keys = api_keys
        self.console = ConsoleApi(registry, invoker)  # the web console's endpoints

    async def __call__(self, scope: Scope, send: Send, path: str, body: bytes) -> None:
        """Serve one request; `body` was read (and authenticated) by the gateway."""
        method = scope["method"]
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        if await self.console(scope, send, parts, body):
            return
        if parts == ["health"] and method == "GET":
            await respond_json(
                send,
                200,
                {"status": "ok", "functions": len(self.registry.all()), **self.invoker.stats()},
            )
        elif parts == ["functions"] and method == "GET":
            await respond_json(send, 200, {"functions": [describe(f) for f in self.registry.all()]})
        elif parts == ["deploy"] and method == "POST":
            await self._deploy(send, body)
        elif len(parts) == 2 and parts[0] == "functions" and method == "GET":
            fn = self.registry.get(parts[1])
            workers = [w.to_dict() for w in self.invoker.workers(fn.name)]
            await respond_json(send, 200, {**describe(fn), "workers": workers})
        elif parts[2:] == ["workers"] and parts[0] == "functions" and method == "DELETE":
            fn = self.registry.get(parts[1])
            stopped = self.invoker.stop_idle(fn.name)
            await respond_json(send, 200, {"function": fn.name, "stopped": stopped})
        elif len(parts) == 2 and parts[0] == "functions" and method == "DELETE":
            await asyncio.to_thread(self.registry.delete, parts[1])
            await respond_json(send, 200, {"deleted": parts[1]})
        elif len(parts) == 3 and parts[0] == "functions" and parts[2] == "logs":
            await self._logs(scope, send, parts[1])
        else:
            await respond_json(send, 404, {"message": f"No management route {method} /{path}"})

    async def _deploy(self, send: Send, body: bytes) -> None:
        try:
            request = json.loads(body)
            if not isinstance(request, dict) or not isinstance(request.get("functions"), list):
                raise ValueError("expected an object with a 'functions' list")
            configs = [checked_config(c) for c in request["functions"]]
            code_zip = base64.b64decode(request["code_zip"], validate=True)
            service = request.get("service")
            if service is not None and not isinstance(service, str):
                raise ValueError("'service' must be a string")
            api_keys = list(request.get("apiKeys") or [])
            force = request.get("force", False)
            if not isinstance(force, bool):
                raise ValueError("'force' must be true or false")
        except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as e:
            raise InvalidRequestContent(f"Malformed deploy request: {e}") from None
        if not configs:
            raise InvalidParameterValue("A deploy needs at least one function")
        for cfg in configs:
            event = unsupported_authorizer(cfg.events, cfg.api_gateway.get("httpApiAuthorizers"))
            if event is not None:
                raise InvalidParameterValue(f"Function {cfg.name}, event {event}")
        try:
            code = await asyncio.to_thread(self.registry.store_zip, code_zip)
        except DeployError as e:
            raise InvalidParameterValue(str(e)) from None
        change = await asyncio.to_thread(
            self.registry.deploy, configs, code, replace_service=service, force=force
        )
        # After the deploy: a refused one (another service's names or routes) creates no keys.
        new_keys = (
            await asyncio.to_thread(self.api_keys.ensure, service, api_keys) if service else []
        )
        await respond_json(
            send,
            200,
            {
                "deployed": [describe(f) for f in change.deployed],
                "changed": change.changed,
                "removed": change.removed,
                "moved": change.moved,
                "apiKeys": [{"name": k.name, "value": k.value} for k in new_keys],
            },
        )

    async def _logs(self, scope: Scope, send: Send, name: str) -> None:
        fn = self.registry.get(name)
        query = parse_qs(scope["query_string"].decode("latin-1"))
        try:
            since = int(query.get("since", ["0"])[0])
            limit = int(query.get("limit", ["100"])[0])
            wait = min(float(query.get("wait", ["0"])[0]), 30.0)
        except ValueError as e:
            raise InvalidParameterValue(f"Bad logs query: {e}") from None
        records = self.invoker.logs.records(fn.name, since, limit)
        if not records and wait > 0:
            await self.invoker.logs.wait_for_new(wait)
            records = self.invoker.logs.records(fn.name, since, limit)
        await respond_json(
            send, 200, {"function": fn.name, "records": [r.to_dict() for r in records]}
        )
