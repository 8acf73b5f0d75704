"""faasbox's own management API, under /_faasbox/, used by the CLI and the UI.

- GET    /_faasbox/health                        liveness and a few counters
- GET    /_faasbox/functions                     deployed functions
- POST   /_faasbox/deploy                        {service, functions: [config], code_zip: base64,
                                                 packages: {function name: base64 zip of its
                                                 own}, layers: [{key, name, ..., zip: base64}],
                                                 force: moves names and routes of other services}
- DELETE /_faasbox/functions/{name}              remove a function
- GET    /_faasbox/functions/{name}/logs         ?since=SEQ&limit=N&wait=SECONDS
                                                 &startTime=EPOCH_MS&filter=TEXT
- GET    /_faasbox/functions/{name}              one function, with its live workers
- DELETE /_faasbox/functions/{name}/workers      stop its idle workers (the next call is cold)
- GET    /_faasbox/schedules                     schedule rules with their next fire times
- the console's stats and saved test events: faasbox/gateway/console_api.py
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
from typing import Any
from urllib.parse import parse_qs, unquote

from faasbox.errors import DeployError, InvalidParameterValue, InvalidRequestContent
from faasbox.events.scheduler import Scheduler
from faasbox.events.schedules import schedule_problem
from faasbox.execution.invoker import Invoker
from faasbox.execution.logs import InvocationRecord
from faasbox.gateway.console_api import ConsoleApi
from faasbox.gateway.http import Scope, Send, respond_json
from faasbox.gateway.routes import unsupported_authorizer
from faasbox.lambda_.limits import ZIPPED_CODE_LIMIT
from faasbox.registry import DeployedFunction, Registry
from faasbox.registry.api_keys import ApiKeyStore
from faasbox.registry.models import checked_config
from faasbox.registry.service_layers import ServiceLayer, publish_layers, with_layer_arns

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
    def __init__(
        self,
        registry: Registry,
        invoker: Invoker,
        api_keys: ApiKeyStore,
        schedules: Scheduler | None = None,
    ) -> None:
        self.registry = registry
        self.invoker = invoker
        self.api_keys = api_keys
        self.schedules = schedules
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
        elif parts == ["schedules"] and method == "GET" and self.schedules is not None:
            entries = [e.to_dict() for e in self.schedules.entries()]
            await respond_json(send, 200, {"schedules": entries})
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
            shared_zip = request.get("code_zip")
            code_zip = base64.b64decode(shared_zip, validate=True) if shared_zip else None
            own_zips = _decoded_zips(request.get("packages") or {})
            layer_zips = [
                (ServiceLayer.from_dict(item), base64.b64decode(item["zip"], validate=True))
                for item in request.get("layers") or []
            ]
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
            problem = schedule_problem(cfg.events)
            if problem is not None:
                raise InvalidParameterValue(f"Function {cfg.name}, {problem}")
        if code_zip is None and any(c.name not in own_zips for c in configs):
            raise InvalidParameterValue(
                "A deploy needs code_zip for the functions without their own"
            )
        try:
            code = {
                name: await asyncio.to_thread(self.registry.store_zip, data)
                for name, data in own_zips.items()
            }
            if code_zip is not None:
                shared = await asyncio.to_thread(self.registry.store_zip, code_zip)
                code.update({c.name: shared for c in configs if c.name not in code})
            layers = [
                (layer, await asyncio.to_thread(self.registry.store_zip, data))
                for layer, data in layer_zips
            ]
        except DeployError as e:
            raise InvalidParameterValue(str(e)) from None
        published = await asyncio.to_thread(
            publish_layers, self.registry, service, configs[0].region, layers
        )
        change = await asyncio.to_thread(
            self.registry.deploy,
            with_layer_arns(configs, published),
            code,
            replace_service=service,
            force=force,
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
                "layers": [{"key": k, "arn": v.arn} for k, v in published.items()],
                "apiKeys": [{"name": k.name, "value": k.value} for k in new_keys],
            },
        )

    async def _logs(self, scope: Scope, send: Send, name: str) -> None:
        fn = self.registry.get(name)
        query = parse_qs(scope["query_string"].decode("latin-1"))
        try:
            since = int(query.get("since", ["0"])[0])
            limit = int(query.get("limit", ["100"])[0])
            wait = float(query.get("wait", ["0"])[0])
            start_ms = query.get("startTime", [None])[0]
            start_time = None if start_ms is None else int(start_ms) / 1000
        except ValueError as e:
            raise InvalidParameterValue(f"Bad logs query: {e}") from None
        if not math.isfinite(wait) or wait < 0:  # float() takes "nan" and "inf"
            raise InvalidParameterValue("Bad logs query: wait must be 0 to 30 seconds")
        wait = min(wait, 30.0)  # a longer wait is cut to the most a poll lasts
        if limit < 0 or since < 0:
            raise InvalidParameterValue("Bad logs query: since and limit must be 0 or more")
        text = query.get("filter", [None])[0] or None
        logs = self.invoker.logs

        async def find() -> list[InvocationRecord]:
            if start_time is None and text is None:
                return logs.records(fn.name, since, limit)  # the newest, from memory
            # Older records than memory keeps are in the database: read it off the loop.
            return await asyncio.to_thread(
                logs.search, fn.name, since=since, start_time=start_time, text=text, limit=limit
            )

        seen = logs.last_seq(fn.name)
        records = await find()
        deadline = asyncio.get_running_loop().time() + wait
        while not records:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            # New records of any function wake us: look again when one of ours came.
            if logs.last_seq(fn.name) == seen:
                await logs.wait_for_new(remaining)
            if logs.last_seq(fn.name) != seen:
                seen = logs.last_seq(fn.name)
                records = await find()
        await respond_json(
            send,
            200,
            {
                "function": fn.name,
                "records": [r.to_dict() for r in records],
                "lastSeq": logs.last_seq(fn.name),
            },
        )


def _decoded_zips(packages: object) -> dict[str, bytes]:
    """A deploy's `packages`: each function's own zip, by name (base64 in the request)."""
    if not isinstance(packages, dict):
        raise ValueError("'packages' must map function names to base64 zips")
    return {str(name): base64.b64decode(data, validate=True) for name, data in packages.items()}
