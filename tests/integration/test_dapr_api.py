"""Dapr's APIs on a real `faasbox serve`, once on each state store (the SQLite default, and a
component file pointing at a real PostgreSQL): the HTTP API checked with httpx against Dapr's
reference (status codes, ETag headers, error bodies), the gRPC API with the real `dapr` SDK
(DaprClient), service invocation between two services (one calling from inside a function,
with the SDK) and pub/sub delivered to subscribed functions."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._state import Concurrency, StateOptions

from tests.postgres import PostgresServer
from tests.support import ROOT, SERVICES, RunningServer, wait_until

APPS = SERVICES / "dapr-apps"
ENDPOINTS = re.compile(r"Dapr HTTP API on (http://\S+), gRPC API on (\S+)")
PG_COMPONENT = """\
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.postgresql
  version: v1
  metadata:
  - name: connectionString
    value: "{dsn}"
"""


@dataclass
class DaprServer:
    server: RunningServer
    store: str  # sqlite | postgresql
    http: str  # Dapr's HTTP API, http://host:port
    grpc: str  # host:port
    dsn: str = ""

    def state(self, key: str) -> str:
        return f"{self.http}/v1.0/state/statestore/{key}"

    def stored_keys(self) -> list[str]:
        """The keys as the database holds them."""
        if self.store == "sqlite":
            with sqlite3.connect(self.server.data_dir / "dapr-state.sqlite3") as db:
                return [row[0] for row in db.execute("SELECT key FROM state")]
        with psycopg.connect(self.dsn) as conn:
            return [row[0] for row in conn.execute("SELECT key FROM state")]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dapr(request: pytest.FixtureRequest) -> Iterator[DaprServer]:
    data_dir = ROOT / "build" / "test-data" / uuid.uuid4().hex[:12]
    data_dir.mkdir(parents=True)
    args = ["--dapr-http-port", "0", "--dapr-grpc-port", "0"]
    dsn = ""
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        dsn = postgres.database("dapr_api")
        components = data_dir / "components"
        components.mkdir()
        (components / "statestore.yaml").write_text(PG_COMPONENT.format(dsn=dsn))
        args += ["--dapr-components", str(components)]
    server = RunningServer([APPS], data_dir / "data", *args).start()
    try:
        found = ENDPOINTS.search("".join(server.output))
        assert found, "".join(server.output)
        with pytest.MonkeyPatch.context() as env:
            # What DaprClient reads, as `dapr run` would set it for an app.
            env.setenv("DAPR_HTTP_ENDPOINT", found.group(1))
            env.setenv("DAPR_GRPC_ENDPOINT", found.group(2))
            yield DaprServer(server, request.param, found.group(1), found.group(2), dsn)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"errorCode", "message"}, body
    return response.status_code, body["errorCode"]


# -- the HTTP API --------------------------------------------------------------------------


def test_health_and_metadata(dapr: DaprServer) -> None:
    assert httpx.get(f"{dapr.http}/v1.0/healthz").status_code == 204
    assert httpx.get(f"{dapr.http}/v1.0/healthz/outbound").status_code == 204
    meta = httpx.get(f"{dapr.http}/v1.0/metadata").json()
    assert meta["id"] == "faasbox"
    stores = {c["name"]: c["type"] for c in meta["components"]}
    assert stores["statestore"] == f"state.{dapr.store}"
    topics = {(s["pubsubname"], s["topic"]) for s in meta["subscriptions"]}
    assert ("pubsub", "orders") in topics


def test_http_state_save_get_etag_delete(dapr: DaprServer) -> None:
    url = f"{dapr.http}/v1.0/state/statestore"
    saved = httpx.post(url, json=[{"key": "h1", "value": {"n": 1}}])
    assert saved.status_code == 204
    got = httpx.get(dapr.state("h1"))
    assert got.status_code == 200 and got.json() == {"n": 1}
    etag = got.headers["etag"]
    # Dapr namespaces keys by app id.
    assert "faasbox||h1" in dapr.stored_keys()

    fresh = httpx.post(url, json=[{"key": "h1", "value": {"n": 2}, "etag": etag}])
    assert fresh.status_code == 204
    new_etag = httpx.get(dapr.state("h1")).headers["etag"]
    assert new_etag != etag
    stale = httpx.post(url, json=[{"key": "h1", "value": {"n": 3}, "etag": etag}])
    assert error(stale) == (409, "ERR_STATE_SAVE")
    bad = httpx.post(url, json=[{"key": "h1", "value": {"n": 3}, "etag": "no-such-etag"}])
    assert error(bad) == (400, "ERR_STATE_SAVE")
    first = httpx.post(
        url, json=[{"key": "h1", "value": 4, "options": {"concurrency": "first-write"}}]
    )
    assert error(first) == (409, "ERR_STATE_SAVE")

    assert error(httpx.delete(dapr.state("h1"), headers={"If-Match": etag})) == (
        409,
        "ERR_STATE_DELETE",
    )
    assert httpx.delete(dapr.state("h1"), headers={"If-Match": new_etag}).status_code == 204
    missing = httpx.get(dapr.state("h1"))
    assert missing.status_code == 204 and missing.content == b""


def test_http_state_errors(dapr: DaprServer) -> None:
    assert error(httpx.get(f"{dapr.http}/v1.0/state/nostore/k")) == (
        400,
        "ERR_STATE_STORE_NOT_FOUND",
    )
    assert error(httpx.post(f"{dapr.http}/v1.0/state/nostore", json=[])) == (
        400,
        "ERR_STATE_STORE_NOT_FOUND",
    )
    url = f"{dapr.http}/v1.0/state/statestore"
    assert error(httpx.post(url, content=b"{not json")) == (400, "ERR_MALFORMED_REQUEST")
    assert error(httpx.post(url, json={"key": "k"})) == (400, "ERR_MALFORMED_REQUEST")
    assert error(httpx.post(url, json=[{"value": 1}])) == (400, "ERR_MALFORMED_REQUEST")
    assert error(httpx.post(url, json=[{"key": "a||b", "value": 1}])) == (
        400,
        "ERR_MALFORMED_REQUEST",
    )
    ttl = [{"key": "k", "value": 1, "metadata": {"ttlInSeconds": "soon"}}]
    assert error(httpx.post(url, json=ttl)) == (400, "ERR_MALFORMED_REQUEST")


def test_http_bulk_transaction_and_ttl(dapr: DaprServer) -> None:
    url = f"{dapr.http}/v1.0/state/statestore"
    httpx.post(url, json=[{"key": "b1", "value": "one"}, {"key": "b2", "value": [2]}])
    bulk = httpx.post(f"{url}/bulk", json={"keys": ["b1", "b2", "b3"], "parallelism": 2})
    assert bulk.status_code == 200
    entries = {e["key"]: e for e in bulk.json()}
    assert entries["b1"]["data"] == "one" and entries["b2"]["data"] == [2]
    assert entries["b1"]["etag"]
    assert entries["b3"] == {"key": "b3"}

    stale = str(uuid.uuid4())
    failed = httpx.post(
        f"{url}/transaction",
        json={
            "operations": [
                {"operation": "upsert", "request": {"key": "t1", "value": 1}},
                {"operation": "delete", "request": {"key": "b1"}},
                {"operation": "upsert", "request": {"key": "b2", "value": 0, "etag": stale}},
            ]
        },
    )
    assert error(failed)[1] == "ERR_STATE_TRANSACTION"
    assert httpx.get(dapr.state("t1")).status_code == 204  # nothing of it happened
    assert httpx.get(dapr.state("b1")).status_code == 200
    done = httpx.post(
        f"{url}/transaction",
        json={
            "operations": [
                {"operation": "upsert", "request": {"key": "t1", "value": 1}},
                {"operation": "delete", "request": {"key": "b1"}},
            ]
        },
    )
    assert done.status_code == 204
    assert httpx.get(dapr.state("t1")).json() == 1
    assert httpx.get(dapr.state("b1")).status_code == 204

    kept = [{"key": "kept", "value": "x", "metadata": {"ttlInSeconds": "3600"}}]
    assert httpx.post(url, json=kept).status_code == 204
    got = httpx.get(dapr.state("kept"))
    assert got.status_code == 200 and "metadata.ttlexpiretime" in got.headers
    soon = [{"key": "ttl", "value": "x", "metadata": {"ttlInSeconds": "1"}}]
    assert httpx.post(url, json=soon).status_code == 204
    wait_until(lambda: httpx.get(dapr.state("ttl")).status_code == 204, 10, "the item to expire")


def test_http_service_invocation(dapr: DaprServer) -> None:
    created = httpx.post(
        f"{dapr.http}/v1.0/invoke/orders/method/orders", json={"id": 7, "item": "tea"}
    )
    assert created.status_code == 201 and created.json() == {"saved": 7}  # the callee's status
    got = httpx.get(f"{dapr.http}/v1.0/invoke/orders/method/orders/7")
    assert got.status_code == 200 and got.json() == {"id": 7, "item": "tea"}
    missing = httpx.get(f"{dapr.http}/v1.0/invoke/orders/method/orders/8")
    assert missing.status_code == 404 and missing.json() == {"error": "no such order"}
    by_header = httpx.get(f"{dapr.http}/orders/7", headers={"dapr-app-id": "orders"})
    assert by_header.json() == {"id": 7, "item": "tea"}
    # A path of another service is not the callee's.
    assert httpx.get(f"{dapr.http}/v1.0/invoke/orders/method/front/7").status_code == 404
    assert error(httpx.get(f"{dapr.http}/v1.0/invoke/nobody/method/x")) == (
        500,
        "ERR_DIRECT_INVOKE",
    )
    # From inside a function: front calls orders with the Dapr SDK.
    front = httpx.get(f"{dapr.server.url}/front/7", timeout=30)
    assert front.status_code == 200, front.text
    assert front.json() == {
        "via": "dapr-sdk",
        "order": {"id": 7, "item": "tea"},
        "state": {"id": 7, "item": "tea"},
    }


# -- the gRPC API, with the real Dapr SDK -------------------------------------------------


def test_sdk_save_get_state_with_etags_and_first_write(dapr: DaprServer) -> None:
    with DaprClient(address=dapr.grpc) as client:
        client.save_state("statestore", "s1", "first")
        got = client.get_state("statestore", "s1")
        assert got.data == b"first" and got.etag
        client.save_state("statestore", "s1", "second", etag=got.etag)
        with pytest.raises(DaprGrpcError) as stale:
            client.save_state("statestore", "s1", "third", etag=got.etag)
        assert stale.value.code().name == "ABORTED"
        with pytest.raises(DaprGrpcError) as taken:
            client.save_state(
                "statestore",
                "s1",
                "fourth",
                options=StateOptions(concurrency=Concurrency.first_write),
            )
        assert taken.value.code().name == "ABORTED"
        assert client.get_state("statestore", "s1").data == b"second"
        bulk = client.get_bulk_state("statestore", ["s1", "nope"]).items
        assert [(i.key, i.data) for i in bulk] == [("s1", b"second"), ("nope", b"")]
        with pytest.raises(DaprGrpcError) as unknown:
            client.get_state("nostore", "s1")
        assert "state store nostore is not found" in str(unknown.value)
    # What the gRPC API saved, the HTTP API reads.
    assert httpx.get(dapr.state("s1")).content == b"second"


def test_sdk_delete_state_and_transaction(dapr: DaprServer) -> None:
    with DaprClient(address=dapr.grpc) as client:
        client.save_state("statestore", "d1", json.dumps({"a": 1}))
        etag = client.get_state("statestore", "d1").etag
        with pytest.raises(DaprGrpcError):
            client.delete_state("statestore", "d1", etag=str(uuid.uuid4()))
        client.delete_state("statestore", "d1", etag=etag)
        assert client.get_state("statestore", "d1").data == b""

        client.save_state("statestore", "x1", "x")
        x_etag = client.get_state("statestore", "x1").etag
        with pytest.raises(DaprGrpcError):
            client.execute_state_transaction(
                "statestore",
                [
                    TransactionalStateOperation(key="x2", data="new"),
                    TransactionalStateOperation(
                        key="x1",
                        data="",
                        etag=str(uuid.uuid4()),
                        operation_type=TransactionOperationType.delete,
                    ),
                ],
            )
        assert client.get_state("statestore", "x2").data == b""  # all or nothing
        client.execute_state_transaction(
            "statestore",
            [
                TransactionalStateOperation(key="x2", data="new"),
                TransactionalStateOperation(
                    key="x1",
                    data="",
                    etag=x_etag,
                    operation_type=TransactionOperationType.delete,
                ),
            ],
        )
        assert client.get_state("statestore", "x2").data == b"new"
        assert client.get_state("statestore", "x1").data == b""


# The SDK warns that invoking over gRPC is deprecated in Dapr; faasbox still serves it.
@pytest.mark.filterwarnings("ignore:invoke_method with protocol gRPC:DeprecationWarning")
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_sdk_invoke_method(dapr: DaprServer, protocol: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("DAPR_API_METHOD_INVOCATION_PROTOCOL", protocol)
    with DaprClient(address=dapr.grpc) as client:
        created = client.invoke_method(
            "orders", "orders", data=json.dumps({"id": 9, "item": protocol}), http_verb="POST"
        )
        assert json.loads(created.data) == {"saved": 9}
        got = client.invoke_method("orders", "orders/9", http_verb="GET")
        assert json.loads(got.data) == {"id": 9, "item": protocol}


def test_publish_delivers_to_subscribers(dapr: DaprServer) -> None:
    def deliveries(key: str) -> list[Any]:
        response = httpx.get(dapr.state(key))
        return response.json() if response.status_code == 200 else []

    with DaprClient(address=dapr.grpc) as client:
        client.publish_event(
            "pubsub", "orders", json.dumps({"id": "ok"}), data_content_type="application/json"
        )
        client.publish_event(
            "pubsub",
            "orders",
            json.dumps({"id": "drop", "answer": "DROP"}),
            data_content_type="application/json",
        )
        with pytest.raises(DaprGrpcError) as unknown:
            client.publish_event("nopubsub", "orders", "x")
        assert "pubsub nopubsub not found" in str(unknown.value)
    retry = httpx.post(
        f"{dapr.http}/v1.0/publish/pubsub/orders", json={"id": "retry", "answer": "RETRY"}
    )
    assert retry.status_code == 204
    ok = wait_until(lambda: deliveries("deliveries-ok"), 30, "the event to be delivered")
    assert len(ok) == 1 and ok[0]["topic"] == "orders"
    # RETRY: delivered again, 3 times in all, then to the dead-letter topic's subscriber.
    dead = wait_until(lambda: deliveries("dead-retry"), 60, "the dead-lettered event")
    assert dead == [{"topic": "orders-dead", "pubsub": "pubsub"}]
    assert len(deliveries("deliveries-retry")) == 3
    # DROP: delivered once, never retried, never dead-lettered.
    assert len(deliveries("deliveries-drop")) == 1
    assert deliveries("dead-drop") == []
    assert error(httpx.post(f"{dapr.http}/v1.0/publish/nopubsub/t", json={})) == (
        400,
        "ERR_PUBSUB_NOT_FOUND",
    )


def test_http_state_query(dapr: DaprServer) -> None:
    people = [
        {"key": "q1", "value": {"person": {"org": "Dev Ops", "id": 1036}, "city": "Seattle"}},
        {"key": "q2", "value": {"person": {"org": "Finance", "id": 1071}, "city": "Sacramento"}},
        {"key": "q3", "value": {"person": {"org": "Dev Ops", "id": 1042}, "city": "Portland"}},
        {"key": "q4", "value": {"person": {"org": "Sales", "id": 1007}, "city": "Seattle"}},
    ]
    assert httpx.post(f"{dapr.http}/v1.0/state/statestore", json=people).status_code == 204
    url = f"{dapr.http}/v1.0-alpha1/state/statestore/query"
    query = {
        "filter": {
            "AND": [
                {"IN": {"person.org": ["Dev Ops", "Sales"]}},
                {"OR": [{"EQ": {"city": "Seattle"}}, {"EQ": {"city": "Portland"}}]},
            ]
        },
        "sort": [{"key": "person.id", "order": "DESC"}],
        "page": {"limit": 2},
    }
    first = httpx.post(url, json=query).json()
    assert [r["key"] for r in first["results"]] == ["q3", "q1"]
    assert first["results"][0]["data"]["city"] == "Portland" and first["results"][0]["etag"]
    query["page"] = {"limit": 2, "token": first["token"]}
    rest = httpx.post(url, json=query).json()
    assert [r["key"] for r in rest["results"]] == ["q4"] and "token" not in rest
    bad = httpx.post(url, json={"filter": {"LIKE": {"city": "S%"}}})
    assert error(bad) == (400, "ERR_MALFORMED_REQUEST")


@pytest.mark.filterwarnings("ignore:The State Store Query API is an Alpha version:UserWarning")
def test_sdk_query_state(dapr: DaprServer) -> None:
    httpx.post(
        f"{dapr.http}/v1.0/state/statestore",
        json=[{"key": f"sq{i}", "value": {"kind": "sdk-query", "n": i}} for i in range(5)],
    )
    query = {
        "filter": {"EQ": {"kind": "sdk-query"}},
        "sort": [{"key": "n", "order": "DESC"}],
        "page": {"limit": 3},
    }
    with DaprClient(address=dapr.grpc) as client:
        page = client.query_state("statestore", json.dumps(query))
        assert [r.key for r in page.results] == ["sq4", "sq3", "sq2"]
        assert json.loads(page.results[0].value) == {"kind": "sdk-query", "n": 4}
        query["page"] = {"limit": 3, "token": page.token}
        rest = client.query_state("statestore", json.dumps(query))
        assert [r.key for r in rest.results] == ["sq1", "sq0"] and not rest.token
