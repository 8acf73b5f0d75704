"""Dapr's gRPC API (`dapr.proto.runtime.v1.Dapr`, daprd's port 50001), from the protos the
`dapr` SDK ships: the state, invocation, pub/sub and metadata calls the SDKs make. The calls
faasbox does not serve answer UNIMPLEMENTED (the generated servicer's default)."""

from __future__ import annotations

import json
from typing import Any, NoReturn

import grpc
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import dapr_pb2_grpc, metadata_pb2, state_pb2
from google.protobuf import any_pb2, empty_pb2

from faasbox.dapr.errors import DaprError, malformed
from faasbox.dapr.sidecar import Sidecar
from faasbox.dapr.state import DeleteRequest, Operation, SetRequest

FIRST_WRITE = common_pb2.StateOptions.CONCURRENCY_FIRST_WRITE
VERBS = {v: k for k, v in common_pb2.HTTPExtension.Verb.items()}
# The callee's HTTP status as a gRPC status, as daprd maps it for a gRPC caller.
HTTP_TO_GRPC = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    409: grpc.StatusCode.ABORTED,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    501: grpc.StatusCode.UNIMPLEMENTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


async def start_grpc_server(sidecar: Sidecar, host: str, port: int) -> grpc.aio.Server:
    server = grpc.aio.server()
    dapr_pb2_grpc.add_DaprServicer_to_server(DaprServicer(sidecar), server)  # type: ignore[no-untyped-call]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    server.add_insecure_port(address)
    await server.start()
    return server


def _ttl(metadata: Any) -> int | None:
    value = metadata.get("ttlInSeconds")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise malformed(f"metadata.ttlInSeconds must be an integer, got {value!r}") from None


def _set_request(item: Any) -> SetRequest:
    etag = item.etag.value if item.HasField("etag") else None
    first_write = item.options.concurrency == FIRST_WRITE
    return SetRequest(item.key, bytes(item.value), etag or None, first_write, _ttl(item.metadata))


def _delete_request(key: str, etag: Any, options: Any, has_etag: bool) -> DeleteRequest:
    return DeleteRequest(
        key, (etag.value if has_etag else None) or None, options.concurrency == FIRST_WRITE
    )


class DaprServicer(dapr_pb2_grpc.DaprServicer):
    def __init__(self, sidecar: Sidecar) -> None:
        self.sidecar = sidecar

    async def _fail(self, context: Any, error: DaprError) -> NoReturn:
        await context.abort(grpc.StatusCode[error.grpc_code], error.message)
        raise AssertionError("abort raises")

    async def InvokeService(self, request: Any, context: Any) -> Any:
        message = request.message
        verb = VERBS.get(message.http_extension.verb, "NONE")
        method = "POST" if verb == "NONE" else verb
        headers = [(b"content-type", message.content_type.encode())] if message.content_type else []
        try:
            reply = await self.sidecar.invocation.invoke(
                request.id,
                method,
                message.method,
                message.http_extension.querystring.encode(),
                headers,
                message.data.value,
            )
        except DaprError as e:
            await self._fail(context, e)
        if reply.status >= 400:
            code = HTTP_TO_GRPC.get(reply.status, grpc.StatusCode.UNKNOWN)
            await context.abort(code, reply.body.decode("utf-8", "replace"))
        data = any_pb2.Any(value=reply.body)
        return common_pb2.InvokeResponse(
            data=data, content_type=reply.header(b"content-type") or "application/json"
        )

    async def GetState(self, request: Any, context: Any) -> Any:
        try:
            item = await self.sidecar.state.get(request.store_name, request.key)
        except DaprError as e:
            await self._fail(context, e)
        if item is None:
            return state_pb2.GetStateResponse()
        return state_pb2.GetStateResponse(data=item.value, etag=item.etag)

    async def GetBulkState(self, request: Any, context: Any) -> Any:
        try:
            found = await self.sidecar.state.bulk_get(request.store_name, list(request.keys))
        except DaprError as e:
            await self._fail(context, e)
        items = [
            state_pb2.BulkStateItem(key=key, data=item.value, etag=item.etag)
            if item is not None
            else state_pb2.BulkStateItem(key=key)
            for key, item in found
        ]
        return state_pb2.GetBulkStateResponse(items=items)

    async def SaveState(self, request: Any, context: Any) -> Any:
        try:
            requests = [_set_request(item) for item in request.states]
            await self.sidecar.state.save(request.store_name, requests)
        except DaprError as e:
            await self._fail(context, e)
        return empty_pb2.Empty()

    async def DeleteState(self, request: Any, context: Any) -> Any:
        try:
            delete = _delete_request(
                request.key, request.etag, request.options, request.HasField("etag")
            )
            await self.sidecar.state.delete(request.store_name, delete)
        except DaprError as e:
            await self._fail(context, e)
        return empty_pb2.Empty()

    async def DeleteBulkState(self, request: Any, context: Any) -> Any:
        try:
            deletes = [
                _delete_request(s.key, s.etag, s.options, s.HasField("etag"))
                for s in request.states
            ]
            await self.sidecar.state.delete_bulk(request.store_name, deletes)
        except DaprError as e:
            await self._fail(context, e)
        return empty_pb2.Empty()

    async def ExecuteStateTransaction(self, request: Any, context: Any) -> Any:
        try:
            operations: list[Operation] = []
            for op in request.operations:
                item = op.request
                if op.operationType == "upsert":
                    operations.append(_set_request(item))
                elif op.operationType == "delete":
                    operations.append(
                        _delete_request(item.key, item.etag, item.options, item.HasField("etag"))
                    )
                else:
                    raise DaprError(
                        400,
                        "ERR_NOT_SUPPORTED_STATE_OPERATION",
                        f"operation type {op.operationType} not supported (upsert or delete)",
                        "INVALID_ARGUMENT",
                    )
            await self.sidecar.state.transact(request.storeName, operations)
        except DaprError as e:
            await self._fail(context, e)
        return empty_pb2.Empty()

    async def QueryStateAlpha1(self, request: Any, context: Any) -> Any:
        try:
            try:
                body = json.loads(request.query)
            except ValueError as e:
                raise malformed(f"the query is not JSON: {e}") from None
            found = await self.sidecar.state.query(request.store_name, body)
        except DaprError as e:
            await self._fail(context, e)
        results = [
            state_pb2.QueryStateItem(
                key=r["key"], data=json.dumps(r["data"]).encode(), etag=r["etag"]
            )
            for r in found["results"]
        ]
        return state_pb2.QueryStateResponse(results=results, token=found.get("token", ""))

    async def PublishEvent(self, request: Any, context: Any) -> Any:
        raw = request.metadata.get("rawPayload", "false").lower() == "true"
        try:
            self.sidecar.pubsub.publish(
                request.pubsub_name,
                request.topic,
                bytes(request.data),
                request.data_content_type or "text/plain",
                raw,
            )
        except DaprError as e:
            await self._fail(context, e)
        return empty_pb2.Empty()

    async def GetMetadata(self, request: Any, context: Any) -> Any:
        meta = self.sidecar.metadata()
        return metadata_pb2.GetMetadataResponse(
            id=meta["id"],
            runtime_version=meta["runtimeVersion"],
            registered_components=[
                metadata_pb2.RegisteredComponents(
                    name=c["name"],
                    type=c["type"],
                    version=c["version"],
                    capabilities=c["capabilities"],
                )
                for c in meta["components"]
            ],
            extended_metadata=meta["extended"],
            subscriptions=[
                metadata_pb2.PubsubSubscription(
                    pubsub_name=s["pubsubname"],
                    topic=s["topic"],
                    dead_letter_topic=s["deadLetterTopic"],
                )
                for s in meta["subscriptions"]
            ],
        )
