"""Lambda's layer API, as boto3 and `aws lambda` call it (botocore's lambda 2015-03-31 model,
whose layer operations live under /2018-10-31/layers).

| method, path under /2018-10-31/layers     | operation                         | status |
|-------------------------------------------|-----------------------------------|--------|
| GET    /                                  | ListLayers                        | 200    |
| GET    /?find=LayerVersion&Arn=ARN        | GetLayerVersionByArn              | 200    |
| POST   /{name}/versions                   | PublishLayerVersion (ZipFile)     | 201    |
| GET    /{name}/versions                   | ListLayerVersions                 | 200    |
| GET    /{name}/versions/{n}               | GetLayerVersion                   | 200    |
| DELETE /{name}/versions/{n}               | DeleteLayerVersion                | 204    |
| GET    /{name}/versions/{n}/content.zip   | (faasbox) Content.Location: the zip | 200  |

`{name}` is a layer's name or its (unversioned) ARN. Versions live in
faasbox.registry.layers; bad input gets AWS's error types, as on the function API.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs, quote

from faasbox.errors import (
    CodeTooLarge,
    DeployError,
    InvalidParameterValue,
    InvalidZip,
    UnknownOperation,
)
from faasbox.execution import runtimes
from faasbox.gateway import lambda_requests as req
from faasbox.gateway.http import Headers, Scope, Send, header, respond, respond_json, send_file
from faasbox.registry import Registry
from faasbox.registry.code_store import UNZIP_FAILED, Package
from faasbox.registry.layers import LayerMeta, LayerVersion, not_found

PREFIX = "/2018-10-31/layers"
LIST_PAGE = 50
NAME_PATTERN = (
    r"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+"
)
CREDENTIAL_REGION = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")
NEWEST = 10**12  # above any version number
MAX_RUNTIMES = 15  # CompatibleRuntimes, as Lambda caps it
Body = dict[str, Any]


class LayerApi:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.layers = registry.layers

    async def __call__(
        self, scope: Scope, send: Send, rest: str, request_id: str, body: bytes
    ) -> None:
        """Serve `/2018-10-31/layers/<rest>`; `body` is read and authenticated."""
        method: str = scope["method"]
        parts = [p for p in rest.strip("/").split("/") if p]
        query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode("latin-1")).items()}
        headers: Headers = [(b"x-amzn-requestid", request_id.encode())]
        shape = (method, len(parts), parts[1] if len(parts) > 1 else None)
        if shape == ("GET", 0, None) and query.get("find") == "LayerVersion":
            status, data = 200, self._get_by_arn(scope, query)
        elif shape == ("GET", 0, None):
            status, data = 200, self._list_layers(query)
        elif shape == ("POST", 2, "versions"):
            status, data = 201, await self._publish(scope, parts[0], body)
        elif shape == ("GET", 2, "versions"):
            status, data = 200, self._list_versions(parts[0], query)
        elif shape == ("GET", 3, "versions"):
            version = self.layers.get(_name(parts[0]), _number(parts[2]))
            status, data = 200, self._describe(scope, version)
        elif shape == ("DELETE", 3, "versions"):
            await asyncio.to_thread(self.layers.delete, _name(parts[0]), _number(parts[2]))
            await respond(send, 204, b"", None, headers)
            return
        elif shape == ("GET", 4, "versions") and parts[3] == "content.zip":
            version = self.layers.get(_name(parts[0]), _number(parts[2]))
            await self._download(send, version, headers)
            return
        else:
            raise UnknownOperation(f"faasbox does not serve {method} {PREFIX}/{rest.strip('/')}")
        await respond_json(send, status, data, headers)

    # --- operations ---

    async def _publish(self, scope: Scope, raw_name: str, raw: bytes) -> Body:
        name = _name(raw_name)
        request = req.parse_body(raw)
        content = req.required(request, "Content", dict, "content")
        description = req.get(request, "Description", str) or ""
        req.check_length(description, "description", 256)
        license_info = req.get(request, "LicenseInfo", str) or ""
        req.check_length(license_info, "licenseInfo", 512)
        compatible = _runtimes(req.get(request, "CompatibleRuntimes", list) or [])
        architectures = req.get(request, "CompatibleArchitectures", list) or []
        if any(a not in ("x86_64", "arm64") for a in architectures) or len(architectures) > 2:
            raise req.constraint(
                architectures,
                "compatibleArchitectures",
                "Member must satisfy enum value set: [x86_64, arm64]",
            )
        data = req.zip_file(content, raw, "PublishLayerVersion")
        try:
            code = await asyncio.to_thread(self.registry.store_zip, data)
        except InvalidZip:
            raise InvalidParameterValue(UNZIP_FAILED) from None
        except (CodeTooLarge, DeployError) as e:
            raise InvalidParameterValue(str(e)) from None
        meta = LayerMeta(description, tuple(compatible), license_info)
        version = await asyncio.to_thread(self.layers.publish, name, _region(scope), code, meta)
        return self._describe(scope, version)

    def _get_by_arn(self, scope: Scope, query: dict[str, str]) -> Body:
        arn = query.get("Arn")
        if not arn:
            raise req.constraint(None, "arn", "Member must not be null")
        try:
            version = self.layers.by_arn(arn)
        except InvalidParameterValue:
            if not re.fullmatch(NAME_PATTERN + r":[0-9]+", arn):
                raise req.constraint(
                    arn,
                    "arn",
                    "Member must satisfy regular expression pattern: "
                    "(arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}"
                    ":\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)",
                ) from None
            raise not_found() from None
        return self._describe(scope, version)

    def _list_layers(self, query: dict[str, str]) -> Body:
        runtime = query.get("CompatibleRuntime")
        found: list[LayerVersion] = []
        for latest in self.layers.latest_versions():
            matching = [
                v
                for v in self.layers.versions(latest.name)
                if runtime is None or runtime in v.compatible_runtimes
            ]
            if matching:
                found.append(matching[0])
        page, marker = _page(found, query, key=lambda v: v.name)
        layers = [
            {
                "LayerName": v.name,
                "LayerArn": v.layer_arn,
                "LatestMatchingVersion": _list_item(v),
            }
            for v in page
        ]
        return _with_marker({"Layers": layers}, marker)

    def _list_versions(self, raw_name: str, query: dict[str, str]) -> Body:
        name = _name(raw_name)
        runtime = query.get("CompatibleRuntime")
        versions = [
            v
            for v in self.layers.versions(name)
            if runtime is None or runtime in v.compatible_runtimes
        ]
        # Newest first; the key is a string that sorts that way.
        page, marker = _page(versions, query, key=lambda v: f"{NEWEST - v.version:013d}")
        return _with_marker({"LayerVersions": [_list_item(v) for v in page]}, marker)

    async def _download(self, send: Send, version: LayerVersion, headers: Headers) -> None:
        package = await asyncio.to_thread(self.package_of, version)
        await send_file(send, package.path, package.size, b"application/zip", headers)

    # --- helpers ---

    def package_of(self, version: LayerVersion) -> Package:
        return layer_package(self.registry, version)

    def _describe(self, scope: Scope, version: LayerVersion) -> Body:
        package = self.package_of(version)
        host = header(scope, b"host") or "{}:{}".format(*scope.get("server") or ("localhost", 80))
        location = (
            f"{scope.get('scheme', 'http')}://{host}{PREFIX}/{quote(version.name, safe='')}"
            f"/versions/{version.version}/content.zip"
        )
        return {
            "Content": {
                "Location": location,
                "CodeSha256": package.sha256_base64,
                "CodeSize": package.size,
            },
            "LayerArn": version.layer_arn,
            **_list_item(version),
        }


def layer_package(registry: Registry, version: LayerVersion) -> Package:
    """The zip a version was published as, else the canonical zip of its content (reads the
    disk: never on the invoke path)."""
    if version.package_sha256:
        uploaded = registry.packages.get(version.package_sha256)
        if uploaded is not None:
            return uploaded
    code_dir = registry.code.path_of(version.code_sha256)
    return registry.packages.for_code(version.code_sha256, code_dir)


def function_layers(registry: Registry, arns: list[str]) -> list[Body]:
    """A function configuration's `Layers`: each ARN with its zip's size."""
    found: list[Body] = []
    for arn in arns:
        try:
            size = layer_package(registry, registry.layers.by_arn(arn, include_deleted=True)).size
        except InvalidParameterValue:
            size = 0
        found.append({"Arn": arn, "CodeSize": size})
    return found


def _list_item(version: LayerVersion) -> Body:
    """A LayerVersionsListItem (the fields every answer about a version shares)."""
    return {
        "LayerVersionArn": version.arn,
        "Version": version.version,
        "Description": version.description,
        "CreatedDate": version.created_date,
        "CompatibleRuntimes": list(version.compatible_runtimes),
        "LicenseInfo": version.license_info,
        "CompatibleArchitectures": [req.HOST_ARCHITECTURE],
    }


def _name(raw: str) -> str:
    """A layer's name from its name or its ARN, checked as Lambda checks `LayerName`."""
    if len(raw) > 140 or not re.fullmatch(NAME_PATTERN, raw):
        raise req.constraint(
            raw, "layerName", f"Member must satisfy regular expression pattern: {NAME_PATTERN}"
        )
    return raw.rsplit(":", 1)[-1]


def _number(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()):
        raise req.constraint(raw, "versionNumber", "Member must be a number")
    return int(raw)


def _runtimes(values: list[Any]) -> list[str]:
    if len(values) > MAX_RUNTIMES:
        raise req.constraint(
            values,
            "compatibleRuntimes",
            f"Member must have length less than or equal to {MAX_RUNTIMES}",
        )
    for value in values:
        if not isinstance(value, str) or runtimes.lookup(value) is None:
            raise InvalidParameterValue(
                f"Value {value} at 'compatibleRuntimes' failed to satisfy constraint: Member "
                f"must satisfy enum value set: [{runtimes.enum_names()}]"
            )
    return list(values)


def _page(
    items: list[LayerVersion], query: dict[str, str], key: Any
) -> tuple[list[LayerVersion], str]:
    """One page after the opaque `Marker` (the key of the last item of the previous page)."""
    raw_max = query.get("MaxItems")
    limit = LIST_PAGE
    if raw_max is not None:
        if not (raw_max.isascii() and raw_max.isdigit()):
            raise req.constraint(raw_max, "maxItems", "Member must be a number")
        limit = int(raw_max)
        req.check_range(limit, "maxItems", 1, 50)
    ordered = sorted(items, key=key)
    marker = query.get("Marker")
    if marker:
        ordered = [v for v in ordered if key(v) > marker]
    page = ordered[:limit]
    return page, (key(page[-1]) if len(ordered) > limit else "")


def _with_marker(answer: Body, marker: str) -> Body:
    if marker:
        answer["NextMarker"] = marker
    return answer


def _region(scope: Scope) -> str:
    """The region the client signed for (its credential scope); us-east-1 unsigned."""
    match = CREDENTIAL_REGION.search(header(scope, b"authorization") or "")
    return match.group(1) if match else "us-east-1"
