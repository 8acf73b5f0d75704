"""The Lambda control plane, as boto3 and `aws lambda` call it (botocore's lambda 2015-03-31).

| method, path under /2015-03-31/functions | operation                  | status |
|------------------------------------------|----------------------------|--------|
| POST   /                                 | CreateFunction             | 201    |
| GET    /                                 | ListFunctions              | 200    |
| GET    /{name}                           | GetFunction                | 200    |
| DELETE /{name}                           | DeleteFunction             | 204    |
| GET    /{name}/configuration             | GetFunctionConfiguration   | 200    |
| PUT    /{name}/configuration             | UpdateFunctionConfiguration| 200    |
| PUT    /{name}/code                      | UpdateFunctionCode         | 200    |
| POST   /{name}/versions                  | PublishVersion             | 201    |
| GET    /{name}/versions                  | ListVersionsByFunction     | 200    |
| GET    /{name}/code/{sha256}.zip         | (faasbox) GetFunction's Code.Location: the zip | 200 |

Invoke (`POST /{name}/invocations`) is faasbox.gateway.lambda_api's. Bad input gets AWS's error
types and messages (faasbox.gateway.lambda_requests checks the members): ValidationException,
InvalidParameterValueException, ResourceConflictException, PreconditionFailedException (a
stale RevisionId), RequestEntityTooLargeException. Nothing here runs on the invoke path: the
registry's snapshot and its on_change listeners (the gateway drains the workers of changed or
deleted functions) carry each change to the next invocation. CodeSha256 and CodeSize describe
the function's zip as Registry.package_of finds it (see faasbox.registry.code_store).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import math
import re
from typing import Any
from urllib.parse import parse_qs, quote

from faasbox.errors import (
    CodeTooLarge,
    DeployError,
    InvalidParameterValue,
    InvalidZip,
    ResourceConflict,
    ResourceNotFound,
    UnknownOperation,
)
from faasbox.execution.invoker import Invoker
from faasbox.gateway import lambda_requests as req
from faasbox.gateway.http import Headers, Scope, Send, header, respond, respond_json, send_file
from faasbox.gateway.layer_api import function_layers
from faasbox.lambda_ import log_format
from faasbox.lambda_.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S
from faasbox.registry import DeployedFunction, FunctionConfig, Registry, StoredCode
from faasbox.registry.code_store import UNZIP_FAILED, Package
from faasbox.registry.models import ACCOUNT_ID, LATEST, split_function_name

LIST_PAGE = 50
CREDENTIAL_REGION = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")
Body = dict[str, Any]


class ControlPlaneApi:
    def __init__(self, registry: Registry, invoker: Invoker) -> None:
        self.registry = registry
        self.invoker = invoker

    async def __call__(
        self, scope: Scope, send: Send, parts: list[str], request_id: str, body: bytes
    ) -> None:
        """Serve `/2015-03-31/functions/<parts...>`; `body` is read and authenticated."""
        method: str = scope["method"]
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
        headers: Headers = [(b"x-amzn-requestid", request_id.encode())]
        sub = parts[1] if len(parts) > 1 else None
        route = (method, len(parts), sub)
        if route == ("GET", 3, "code"):
            await self._download(send, parts[0], parts[2], headers)
            return
        if route == ("POST", 0, None):
            status, data = 201, await self._create(scope, body)
        elif route == ("GET", 0, None):
            status, data = 200, await self._list_functions(query)
        elif route == ("GET", 1, None):
            status, data = 200, await self._get_function(scope, parts[0], query)
        elif route == ("DELETE", 1, None):
            await self._delete(parts[0], query)
            await respond(send, 204, b"", None, headers)
            return
        elif route == ("GET", 2, "configuration"):
            fn = self._function(parts[0], req.qualifier(query))
            status, data = 200, await self._configuration(fn, qualified="Qualifier" in query)
        elif route == ("PUT", 2, "configuration"):
            status, data = 200, await self._update_configuration(parts[0], req.parse_body(body))
        elif route == ("PUT", 2, "code"):
            status, data = 200, await self._update_code(parts[0], body)
        elif route == ("POST", 2, "versions"):
            status, data = 201, await self._publish(parts[0], req.parse_body(body))
        elif route == ("GET", 2, "versions"):
            status, data = 200, await self._list_versions(parts[0], query)
        else:
            path = "/".join(["/2015-03-31/functions", *parts])
            raise UnknownOperation(f"faasbox does not serve {method} {path}")
        await respond_json(send, status, data, headers)

    # --- operations ---

    async def _create(self, scope: Scope, raw: bytes) -> Body:
        request = req.parse_body(raw)
        name = req.create_name(req.required(request, "FunctionName", str, "functionName"))
        role = req.checked_role(req.required(request, "Role", str, "role"))
        code_spec = req.required(request, "Code", dict, "code")
        if req.get(request, "PackageType", str) not in (None, "Zip"):
            raise InvalidParameterValue("faasbox runs Zip packages only (PackageType Image)")
        runtime = req.get(request, "Runtime", str)
        handler = req.get(request, "Handler", str)
        if not runtime or not handler:
            raise InvalidParameterValue(
                "Runtime and Handler are mandatory parameters for functions created with "
                "deployment packages."
            )
        config = req.configure(
            FunctionConfig(
                name=name,
                handler=handler,
                runtime=runtime,
                memory_size=DEFAULT_MEMORY_MB,
                timeout=float(DEFAULT_TIMEOUT_S),
                region=_region(scope),
                role=role,
            ),
            request,
        )
        if name in self.registry.snapshot.latest:
            raise ResourceConflict(f"Function already exist: {name}")
        zip_data = req.zip_file(code_spec, raw, "CreateFunction")
        code = await self._store(zip_data)
        fn = await asyncio.to_thread(self.registry.create, config, code)
        if req.get(request, "Publish", bool):
            fn = await asyncio.to_thread(self.registry.publish_version, fn.name)
        return await self._configuration(fn, qualified=False)

    async def _list_functions(self, query: dict[str, str]) -> Body:
        every = query.get("FunctionVersion")
        if every not in (None, "ALL"):
            raise req.constraint(
                every, "functionVersion", "Member must satisfy enum value set: [ALL]"
            )
        functions = self.registry.all()
        if every:
            functions = [v for f in functions for v in self.registry.versions_of(f.name)]
        page, marker = _page(functions, query)
        listed = await self._configurations(page, qualified=bool(every))
        for item in listed:  # ListFunctions answers without the state fields, as AWS's does
            for key in ("State", "LastUpdateStatus"):
                item.pop(key, None)
        return _with_marker({"Functions": listed}, marker)

    async def _get_function(self, scope: Scope, name: str, query: dict[str, str]) -> Body:
        fn = self._function(name, req.qualifier(query))
        package = await asyncio.to_thread(self.registry.package_of, fn)
        host = header(scope, b"host") or "{}:{}".format(*scope.get("server") or ("localhost", 80))
        location = (
            f"{scope.get('scheme', 'http')}://{host}/2015-03-31/functions/"
            f"{quote(fn.name, safe='')}/code/{package.sha256}.zip"
        )
        answer: Body = {
            "Configuration": _configuration(fn, package, qualified="Qualifier" in query),
            "Code": {"RepositoryType": "S3", "Location": location},
        }
        if fn.config.layers:
            answer["Configuration"]["Layers"] = await asyncio.to_thread(
                function_layers, self.registry, fn.config.layers
            )
        if fn.config.reserved_concurrency is not None:
            answer["Concurrency"] = {"ReservedConcurrentExecutions": fn.config.reserved_concurrency}
        return answer

    async def _delete(self, name: str, query: dict[str, str]) -> None:
        req.check_name(name)
        await asyncio.to_thread(self.registry.delete, name, req.qualifier(query))

    async def _update_configuration(self, name: str, request: Body) -> Body:
        fn = self._function(name, None, latest_only=True)
        config = req.configure(fn.config, request)
        updated = await asyncio.to_thread(
            self.registry.update_config,
            fn.name,
            config,
            expected_revision=req.get(request, "RevisionId", str),
        )
        return await self._configuration(updated, qualified=False)

    async def _update_code(self, name: str, raw: bytes) -> Body:
        request = req.parse_body(raw)
        fn = self._function(name, None, latest_only=True)
        req.check_architectures(request)
        zip_data = req.zip_file(request, raw, "UpdateFunctionCode")
        code = await self._store(zip_data)
        if req.get(request, "DryRun", bool):  # checked and stored, but not deployed
            dry = dataclasses.replace(fn, package_sha256=code.package_sha256)
            return await self._configuration(dry, qualified=False)
        updated = await asyncio.to_thread(
            self.registry.update_code,
            fn.name,
            code,
            expected_revision=req.get(request, "RevisionId", str),
        )
        if req.get(request, "Publish", bool):
            published = await asyncio.to_thread(self.registry.publish_version, updated.name)
            return await self._configuration(published, qualified=True)
        return await self._configuration(updated, qualified=False)

    async def _publish(self, name: str, request: Body) -> Body:
        fn = self._function(name, None, latest_only=True)
        description = req.get(request, "Description", str) or ""
        req.check_length(description, "description", 256)
        expected_sha = req.get(request, "CodeSha256", str)
        if expected_sha:
            current = (await asyncio.to_thread(self.registry.package_of, fn)).sha256_base64
            if expected_sha != current:
                raise InvalidParameterValue(
                    f"CodeSHA256 ({expected_sha}) is different from current CodeSHA256 in "
                    f"$LATEST ({current}). Please try again with the CodeSHA256 in $LATEST."
                )
        version = await asyncio.to_thread(
            self.registry.publish_version,
            fn.name,
            description,
            expected_revision=req.get(request, "RevisionId", str),
        )
        return await self._configuration(version, qualified=True)

    async def _list_versions(self, name: str, query: dict[str, str]) -> Body:
        fn = self._function(name, None, latest_only=True)
        page, marker = _page(self.registry.versions_of(fn.name), query)
        return _with_marker({"Versions": await self._configurations(page, qualified=True)}, marker)

    async def _download(self, send: Send, name: str, file: str, headers: Headers) -> None:
        fn = self._function(name, None)
        sha = file.removesuffix(".zip")
        for version in self.registry.versions_of(fn.name):
            package = await asyncio.to_thread(self.registry.package_of, version)
            if package.sha256 == sha:
                break
        else:
            raise ResourceNotFound(f"Function {fn.arn} has no code package {file}")
        await send_file(send, package.path, package.size, b"application/zip", headers)

    # --- helpers ---

    def _function(
        self, name: str, qualifier: str | None, latest_only: bool = False
    ) -> DeployedFunction:
        req.check_name(name)
        if latest_only and split_function_name(name)[1] not in (None, LATEST):
            raise InvalidParameterValue(
                f"Unsupported qualifier in {name}: this operation acts on $LATEST only"
            )
        return self.registry.get(name, qualifier)

    async def _store(self, zip_data: bytes) -> StoredCode:
        try:
            return await asyncio.to_thread(self.registry.store_zip, zip_data)
        except InvalidZip:
            raise InvalidParameterValue(UNZIP_FAILED) from None
        except (CodeTooLarge, DeployError) as e:
            raise InvalidParameterValue(str(e)) from None

    async def _configuration(self, fn: DeployedFunction, *, qualified: bool) -> Body:
        return (await self._configurations([fn], qualified=qualified))[0]

    async def _configurations(self, fns: list[DeployedFunction], *, qualified: bool) -> list[Body]:
        packages = await asyncio.to_thread(lambda: [self.registry.package_of(f) for f in fns])
        answers = [_configuration(f, p, qualified) for f, p in zip(fns, packages, strict=True)]
        for fn, answer in zip(fns, answers, strict=True):
            if fn.config.layers:  # as Lambda: no Layers member without layers
                answer["Layers"] = await asyncio.to_thread(
                    function_layers, self.registry, fn.config.layers
                )
        return answers


def _configuration(fn: DeployedFunction, package: Package, qualified: bool) -> Body:
    """A FunctionConfiguration as Lambda answers it; a published version's ARN is always
    qualified, $LATEST's when it was asked for by qualifier."""
    cfg = fn.config
    return {
        "FunctionName": cfg.name,
        "FunctionArn": fn.qualified_arn if qualified or fn.version != LATEST else fn.arn,
        "Runtime": cfg.runtime,
        "Role": cfg.role or _default_role(cfg),
        "Handler": cfg.handler,
        "CodeSize": package.size,
        "Description": cfg.description,
        "Timeout": math.ceil(cfg.timeout),
        "MemorySize": cfg.memory_size,
        "LastModified": fn.last_modified,
        "CodeSha256": package.sha256_base64,
        "Version": fn.version,
        "Environment": {"Variables": dict(cfg.environment)},
        "TracingConfig": {"Mode": cfg.tracing_mode},
        "RevisionId": fn.revision_id,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": [req.HOST_ARCHITECTURE],
        "EphemeralStorage": {"Size": cfg.ephemeral_storage},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": log_format.lambda_logging_config(cfg.logging_config, fn.log_group),
    }


def _default_role(cfg: FunctionConfig) -> str:
    # The role the Serverless Framework would have created for the service.
    if cfg.service:
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{cfg.service}-{cfg.stage}-{cfg.region}-lambdaRole"
    return f"arn:aws:iam::{ACCOUNT_ID}:role/faasbox"


def _page(functions: list[DeployedFunction], query: dict[str, str]) -> tuple[list[Any], str]:
    """One page of `functions` (ordered by name, then $LATEST and versions by number) after
    the opaque `Marker`, and the marker of the next page ("" on the last)."""
    raw_max = query.get("MaxItems")
    limit = LIST_PAGE
    if raw_max is not None:
        if not (raw_max.isascii() and raw_max.isdigit()):
            raise req.constraint(raw_max, "maxItems", "Member must be a number")
        limit = int(raw_max)
        req.check_range(limit, "maxItems", 1, 10000)
    ordered = sorted(functions, key=_sort_key)
    marker = query.get("Marker")
    if marker:
        after = _decode_marker(marker)
        ordered = [f for f in ordered if _sort_key(f) > after]
    page = ordered[:limit]
    return page, (_encode_marker(_sort_key(page[-1])) if len(ordered) > limit else "")


def _sort_key(fn: DeployedFunction) -> tuple[str, int]:
    return fn.name, -1 if fn.version == LATEST else int(fn.version)


def _encode_marker(key: tuple[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _decode_marker(marker: str) -> tuple[str, int]:
    try:
        name, rank = json.loads(base64.urlsafe_b64decode(marker.encode()))
        if isinstance(name, str) and isinstance(rank, int):
            return name, rank
    except (ValueError, TypeError, binascii.Error, RecursionError):
        pass
    raise InvalidParameterValue(
        f"Invalid Marker '{marker}': pass the NextMarker of a previous answer"
    )


def _with_marker(answer: Body, marker: str) -> Body:
    if marker:
        answer["NextMarker"] = marker
    return answer


def _region(scope: Scope) -> str:
    """The region the client signed for (its credential scope); us-east-1 unsigned."""
    match = CREDENTIAL_REGION.search(header(scope, b"authorization") or "")
    return match.group(1) if match else "us-east-1"
