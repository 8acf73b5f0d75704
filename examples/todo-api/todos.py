"""Todos in Dapr's state store, with the Dapr SDK: one key per todo, and an index of ids kept
consistent with the todos by transactions guarded by the index's etag (a concurrent writer
makes the transaction fail, and it is retried on the new index)."""

import json
import uuid

from dapr.clients import DaprClient
from dapr.clients.exceptions import DaprGrpcError
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._state import Concurrency, StateOptions

STORE = "statestore"
INDEX = "todo-ids"
ATTEMPTS = 50


def _response(status, body=None):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": "" if body is None else json.dumps(body),
    }


def _index(client):
    item = client.get_state(STORE, INDEX)
    return (json.loads(item.data) if item.data else []), item.etag


def _update_index(client, change, todo_ops):
    """Apply `todo_ops` and the index `change(ids)` in one transaction, retrying when another
    writer changed the index meanwhile."""
    for _ in range(ATTEMPTS):
        ids, etag = _index(client)
        index_op = TransactionalStateOperation(key=INDEX, data=json.dumps(change(ids)), etag=etag)
        try:
            client.execute_state_transaction(STORE, [*todo_ops, index_op])
            return
        except DaprGrpcError as e:
            if e.code().name != "ABORTED":
                raise
    raise RuntimeError("the todo index changed too often: try again")


def _first_write_index(client):
    """The index exists (an empty list) before anyone needs its etag."""
    try:
        options = StateOptions(concurrency=Concurrency.first_write)
        client.save_state(STORE, INDEX, "[]", options=options)
    except DaprGrpcError:
        pass  # someone created it first


def handle(event, context):
    method = event["requestContext"]["http"]["method"]
    todo_id = (event.get("pathParameters") or {}).get("id")
    with DaprClient() as client:
        if todo_id is None and method == "GET":
            ids, _ = _index(client)
            items = client.get_bulk_state(STORE, [f"todo-{i}" for i in ids]).items if ids else []
            return _response(200, [json.loads(i.data) for i in items if i.data])
        if todo_id is None and method == "POST":
            try:
                body = json.loads(event.get("body") or "")
                title = body["title"]
            except (ValueError, KeyError, TypeError):
                return _response(400, {"error": 'expected {"title": "..."}'})
            todo = {"id": uuid.uuid4().hex[:12], "title": str(title), "done": False}
            _first_write_index(client)
            op = TransactionalStateOperation(key=f"todo-{todo['id']}", data=json.dumps(todo))
            _update_index(client, lambda ids: [*ids, todo["id"]], [op])
            return _response(201, todo)
        item = client.get_state(STORE, f"todo-{todo_id}")
        if not item.data:
            return _response(404, {"error": f"no todo {todo_id}"})
        todo = json.loads(item.data)
        if method == "GET":
            return _response(200, todo)
        if method == "PUT":
            try:
                changes = json.loads(event.get("body") or "")
                assert isinstance(changes, dict)
            except (ValueError, AssertionError):
                return _response(400, {"error": "expected a JSON object of changes"})
            todo.update({k: changes[k] for k in ("title", "done") if k in changes})
            try:  # only over what we read: a concurrent update makes this a 409
                client.save_state(STORE, f"todo-{todo_id}", json.dumps(todo), etag=item.etag)
            except DaprGrpcError:
                return _response(409, {"error": "the todo changed meanwhile: read it again"})
            return _response(200, todo)
        op = TransactionalStateOperation(
            key=f"todo-{todo_id}", data="", operation_type=TransactionOperationType.delete
        )
        _update_index(client, lambda ids: [i for i in ids if i != todo_id], [op])
        return _response(204)
