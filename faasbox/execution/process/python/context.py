"""The `context` object a handler receives, with the attributes and methods of Lambda's."""

from __future__ import annotations

import time
from typing import Any


class CognitoIdentity:
    def __init__(self, data: dict[str, Any] | None) -> None:
        data = data or {}
        self.cognito_identity_id: str | None = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id: str | None = data.get("cognitoIdentityPoolId")


class ClientContext:
    def __init__(self, data: dict[str, Any]) -> None:
        self.client: dict[str, Any] | None = data.get("client")
        self.custom: dict[str, Any] | None = data.get("custom")
        self.env: dict[str, Any] | None = data.get("env")


class LambdaContext:
    """What awslambdaric passes as `context`; deadline is wall-clock epoch milliseconds."""

    def __init__(
        self,
        *,
        function_name: str,
        function_version: str,
        invoked_function_arn: str,
        memory_limit_in_mb: int,
        aws_request_id: str,
        log_group_name: str,
        log_stream_name: str,
        deadline_ms: int,
        identity: dict[str, Any] | None = None,
        client_context: dict[str, Any] | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn
        # Lambda gives this as a string; code that does int(...) on it must keep working.
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.aws_request_id = aws_request_id
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity = CognitoIdentity(identity)
        self.client_context = ClientContext(client_context) if client_context else None
        self.tenant_id = tenant_id
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, msg: str) -> None:
        import sys

        sys.stdout.write(msg)

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


_new = object.__new__


def for_invocation(
    function_name: str,
    function_version: str,
    invoked_function_arn: str,
    memory_limit_in_mb: str,
    aws_request_id: str,
    log_group_name: str,
    log_stream_name: str,
    deadline_ms: int,
    identity: dict[str, Any] | None,
    client_context: dict[str, Any] | None,
) -> LambdaContext:
    """`LambdaContext(...)` with the same attributes in the same order (`memory_limit_in_mb`
    already a string), built without keyword calls of two `__init__`s: the worker makes one
    per invocation, and a fresh one each time, so that nothing a handler sets on it lasts."""
    if identity:
        cognito = CognitoIdentity(identity)
    else:
        cognito = _new(CognitoIdentity)
        cognito.__dict__ = {"cognito_identity_id": None, "cognito_identity_pool_id": None}
    context = _new(LambdaContext)
    context.__dict__ = {
        "function_name": function_name,
        "function_version": function_version,
        "invoked_function_arn": invoked_function_arn,
        "memory_limit_in_mb": memory_limit_in_mb,
        "aws_request_id": aws_request_id,
        "log_group_name": log_group_name,
        "log_stream_name": log_stream_name,
        "identity": cognito,
        "client_context": ClientContext(client_context) if client_context else None,
        "tenant_id": None,
        "_deadline_ms": deadline_ms,
    }
    return context
