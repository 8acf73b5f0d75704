"""Dapr component files (`components/*.yaml`, `kind: Component`) -> the state stores and
pub/sub names faasbox serves. Without a file naming it, `statestore` is SQLite under the data
dir and `pubsub` is faasbox's own delivery to subscribed functions.

    apiVersion: dapr.io/v1alpha1
    kind: Component
    metadata: {name: statestore}
    spec:
      type: state.postgresql        # or state.sqlite
      version: v1
      metadata:
      - {name: connectionString, value: "host=localhost user=postgres dbname=dapr"}
      - {name: tableName, value: state}        # optional, default "state"
      - {name: keyPrefix, value: appid}        # appid (default), name, none, or a prefix
      - {name: connectionString, envRef: DATABASE_URL}   # or the value of a variable
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from faasbox.errors import ConfigError

STATE_SQLITE = "state.sqlite"
STATE_POSTGRESQL = "state.postgresql"
PUBSUB_TYPES = ("pubsub.in-memory", "pubsub.faasbox")
DEFAULT_STATE_STORE = "statestore"
DEFAULT_PUBSUB = "pubsub"
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Component:
    name: str
    type: str
    metadata: dict[str, str] = field(default_factory=dict)
    file: str = ""

    @property
    def is_state(self) -> bool:
        return self.type.startswith("state.")

    @property
    def is_pubsub(self) -> bool:
        return self.type.startswith("pubsub.")


def load_components(folders: list[Path]) -> list[Component]:
    """Every component in the folders' *.yaml / *.yml files (a file may hold several
    documents); files of other kinds (Dapr's Subscription, Configuration) are skipped."""
    found: dict[str, Component] = {}
    for folder in folders:
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            for component in _read(path):
                if component.name in found:
                    raise ConfigError(
                        str(path),
                        "metadata.name",
                        f"component {component.name!r} is already declared in "
                        f"{found[component.name].file}",
                    )
                found[component.name] = component
    return list(found.values())


def _read(path: Path) -> list[Component]:
    try:
        documents = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(str(path), "", f"cannot read this component file: {e}") from None
    components = []
    for doc in documents:
        if not isinstance(doc, dict) or doc.get("kind") != "Component":
            continue
        components.append(_component(path, doc))
    return components


def _component(path: Path, doc: dict[str, Any]) -> Component:
    where = str(path)
    name = (
        (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
    )
    if not isinstance(name, str) or not name:
        raise ConfigError(where, "metadata.name", "expected the component's name (a string)")
    spec = doc.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("type"), str):
        raise ConfigError(where, "spec.type", f"component {name!r}: expected spec.type")
    kind = spec["type"]
    if kind.startswith("state.") and kind not in (STATE_SQLITE, STATE_POSTGRESQL):
        raise ConfigError(
            where,
            "spec.type",
            f"component {name!r}: faasbox runs the state stores {STATE_SQLITE} and "
            f"{STATE_POSTGRESQL}, not {kind}",
        )
    if kind.startswith("pubsub.") and kind not in PUBSUB_TYPES:
        raise ConfigError(
            where,
            "spec.type",
            f"component {name!r}: faasbox delivers pub/sub itself ({', '.join(PUBSUB_TYPES)}), "
            f"not {kind}",
        )
    metadata: dict[str, str] = {}
    for index, entry in enumerate(spec.get("metadata") or []):
        key = f"spec.metadata[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(where, key, "expected {name: ..., value: ...}")
        if "envRef" in entry:
            variable = str(entry["envRef"])
            if variable not in os.environ:
                raise ConfigError(
                    where, key, f"{entry['name']}: the variable {variable} is not set"
                )
            metadata[entry["name"]] = os.environ[variable]
        else:
            metadata[entry["name"]] = str(entry.get("value", ""))
    table = metadata.get("tableName", "state")
    if not TABLE_NAME.match(table):
        raise ConfigError(where, "spec.metadata", f"tableName {table!r} is not a plain SQL name")
    if kind == STATE_POSTGRESQL and not metadata.get("connectionString"):
        raise ConfigError(
            where, "spec.metadata", f"component {name!r}: {kind} needs a connectionString"
        )
    return Component(name, kind, metadata, where)
