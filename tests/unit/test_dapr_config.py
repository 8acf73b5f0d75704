"""Dapr's configuration: component files, and `dapr` events in serverless.yml (no I/O beyond
reading files; no server)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from faasbox.config import load_service
from faasbox.dapr.components import load_components
from faasbox.dapr.pubsub import RETRY, SUCCESS, envelope
from faasbox.errors import ConfigError

PG = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {name: orders}
spec:
  type: state.postgresql
  version: v1
  metadata:
  - {name: connectionString, envRef: ORDERS_DB}
  - {name: keyPrefix, value: none}
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata: {name: ignored}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_component_files_name_stores_and_read_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDERS_DB", "host=db user=app")
    write(tmp_path, "orders.yaml", PG)
    [component] = load_components([tmp_path])
    assert (component.name, component.type) == ("orders", "state.postgresql")
    assert component.metadata == {"connectionString": "host=db user=app", "keyPrefix": "none"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("kind: Component\nspec: {type: state.sqlite}\n", "metadata.name"),
        ("kind: Component\nmetadata: {name: s}\nspec: {type: state.redis}\n", "state.redis"),
        (
            "kind: Component\nmetadata: {name: s}\nspec: {type: state.postgresql}\n",
            "needs a connectionString",
        ),
        ("kind: Component\nmetadata: {name: s}\nspec: {type: pubsub.kafka}\n", "pubsub.kafka"),
        (
            "kind: Component\nmetadata: {name: s}\nspec:\n  type: state.sqlite\n"
            "  metadata: [{name: tableName, value: 'x; drop'}]\n",
            "tableName",
        ),
        (
            "kind: Component\nmetadata: {name: s}\nspec:\n  type: state.postgresql\n"
            "  metadata: [{name: connectionString, envRef: NOT_SET_ANYWHERE}]\n",
            "NOT_SET_ANYWHERE is not set",
        ),
        ("kind: Component\n  bad: [indent\n", "cannot read"),
    ],
)
def test_bad_component_files_say_what_is_wrong(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path, "c.yaml", text)
    with pytest.raises(ConfigError) as e:
        load_components([tmp_path])
    assert str(path) in str(e.value) and says in str(e.value)


def test_a_component_declared_twice_is_refused(tmp_path: Path) -> None:
    one = "kind: Component\nmetadata: {name: s}\nspec: {type: state.sqlite}\n"
    write(tmp_path, "a.yaml", one)
    write(tmp_path, "b.yml", one)
    with pytest.raises(ConfigError, match="already declared"):
        load_components([tmp_path])


def service(folder: Path, event: str) -> Path:
    return write(
        folder,
        "serverless.yml",
        f"service: s\nprovider: {{name: aws, runtime: python3.11}}\n"
        f"functions:\n  f:\n    handler: h.f\n    events:\n      - dapr: {event}\n",
    )


def test_dapr_events_are_kept_without_a_warning(tmp_path: Path) -> None:
    spec = load_service(service(tmp_path, "{pubsub: pubsub, topic: orders}"), {}, {})
    assert spec.functions["f"].events == [{"dapr": {"pubsub": "pubsub", "topic": "orders"}}]
    assert not [w for w in spec.warnings if "dapr" in w]


@pytest.mark.parametrize(
    "event", ["orders", "{pubsub: pubsub}", "{topic: ''}", "{topic: t, pubsub: 3}"]
)
def test_bad_dapr_events_are_refused(tmp_path: Path, event: str) -> None:
    with pytest.raises(ConfigError, match="dapr"):
        load_service(service(tmp_path, event), {}, {})


def test_cloudevent_envelopes() -> None:
    import json

    event = json.loads(envelope("app", "pubsub", "t", b'{"a": 1}', "application/json", False))
    assert event["specversion"] == "1.0" and event["data"] == {"a": 1}
    assert (event["topic"], event["pubsubname"], event["source"]) == ("t", "pubsub", "app")
    binary = json.loads(envelope("app", "p", "t", b"\xff\x00", "application/octet-stream", False))
    assert binary["data_base64"] == "/wA="
    assert envelope("app", "p", "t", b"raw bytes", "text/plain", True) == b"raw bytes"
    own = json.loads(
        envelope(
            "app", "p", "t", b'{"id": "x", "type": "mine"}', "application/cloudevents+json", False
        )
    )
    assert (own["id"], own["type"], own["topic"]) == ("x", "mine", "t")
    assert (SUCCESS, RETRY) == ("SUCCESS", "RETRY")
