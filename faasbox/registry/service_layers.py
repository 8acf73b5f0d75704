"""A service's own layers at deploy: published (or reused when unchanged), and the layer keys
its functions name (`{Ref: <TitleCase>LambdaLayer}` in serverless.yml) replaced by the ARNs of
those versions, before the functions are deployed.

The in-process deploy and the management API's deploy both come here, so a layer declared in
serverless.yml gets the same version whichever deployed it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faasbox.config import LayerSpec
from faasbox.registry.code_store import StoredCode
from faasbox.registry.layers import LayerMeta, LayerVersion
from faasbox.registry.models import FunctionConfig
from faasbox.registry.registry import Registry


@dataclass(frozen=True)
class ServiceLayer:
    """A layer of serverless.yml as a deploy carries it (without its content)."""

    key: str
    name: str
    meta: LayerMeta
    retain: bool = False

    @classmethod
    def of(cls, spec: LayerSpec) -> ServiceLayer:
        meta = LayerMeta(
            spec.description or "", tuple(spec.compatible_runtimes), spec.license_info or ""
        )
        return cls(spec.key, spec.name, meta, spec.retain)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "description": self.meta.description,
            "compatibleRuntimes": list(self.meta.compatible_runtimes),
            "licenseInfo": self.meta.license_info,
            "retain": self.retain,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ServiceLayer:
        """From the management API's JSON; ValueError says what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("each layer must be an object")
        strings = ("key", "name", "description", "licenseInfo")
        if not all(isinstance(data.get(k, ""), str) for k in strings) or not data.get("key"):
            raise ValueError("a layer needs a key and a name, and string fields")
        runtimes = data.get("compatibleRuntimes", [])
        if not isinstance(runtimes, list) or not all(isinstance(r, str) for r in runtimes):
            raise ValueError("a layer's compatibleRuntimes must be a list of strings")
        if not isinstance(data.get("retain", False), bool):
            raise ValueError("a layer's retain must be true or false")
        meta = LayerMeta(data.get("description", ""), tuple(runtimes), data.get("licenseInfo", ""))
        return cls(data["key"], data.get("name") or data["key"], meta, data.get("retain", False))


def publish_layers(
    registry: Registry,
    service: str | None,
    region: str,
    layers: Sequence[tuple[ServiceLayer, StoredCode]],
) -> dict[str, LayerVersion]:
    """Each layer's version for this deploy, by key: the newest one when its content and
    metadata are unchanged, else a new one. Without `retain`, the versions it replaces are
    deleted, as CloudFormation replaces them (functions still using one keep it)."""
    published: dict[str, LayerVersion] = {}
    for layer, code in layers:
        earlier = registry.layers.versions(layer.name)
        version = registry.layers.publish(
            layer.name, region, code, layer.meta, service=service or "", reuse=True
        )
        if not layer.retain:
            for old in earlier:
                if old.version != version.version and old.service == (service or ""):
                    registry.layers.delete(old.name, old.version)
        published[layer.key] = version
    return published


def with_layer_arns(
    configs: Sequence[FunctionConfig], published: Mapping[str, LayerVersion]
) -> list[FunctionConfig]:
    """The configs with each layer key replaced by its version's ARN (ARNs stay as written)."""
    return [
        dataclasses.replace(
            cfg,
            layers=[published[x].arn if x in published else x for x in cfg.layers],
        )
        for cfg in configs
    ]
