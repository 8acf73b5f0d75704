"""The errors of Dapr's APIs: a status, one of Dapr's error codes and a message, mapped to an
HTTP body `{errorCode, message}` or a gRPC status at the edge (http_api, grpc_api)."""

from __future__ import annotations

# gRPC status names (grpc.StatusCode members), kept as strings so this module needs no grpc.
INTERNAL = "INTERNAL"
INVALID_ARGUMENT = "INVALID_ARGUMENT"
ABORTED = "ABORTED"
NOT_FOUND = "NOT_FOUND"


class DaprError(Exception):
    def __init__(self, status: int, code: str, message: str, grpc_code: str = INTERNAL) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.grpc_code = grpc_code

    def body(self) -> dict[str, str]:
        return {"errorCode": self.code, "message": self.message}


class StateError(Exception):
    """A state store refused an operation (the API layer adds Dapr's code for the call)."""


class ETagMismatch(StateError):
    """The etag given is not the item's current one (or the item is gone, or a first-write
    found the key taken): Dapr's 409 / ABORTED."""


class ETagInvalid(StateError):
    """The etag given cannot be one of this store's: Dapr's 400 / INVALID_ARGUMENT."""


def malformed(message: str) -> DaprError:
    return DaprError(400, "ERR_MALFORMED_REQUEST", message, INVALID_ARGUMENT)


def store_not_found(name: str) -> DaprError:
    return DaprError(
        400, "ERR_STATE_STORE_NOT_FOUND", f"state store {name} is not found", INVALID_ARGUMENT
    )


def state_failure(code: str, message: str, error: StateError) -> DaprError:
    """A store's refusal as Dapr reports it for the call `code` (ERR_STATE_SAVE, ...)."""
    if isinstance(error, ETagMismatch):
        return DaprError(409, code, f"{message}: possible etag mismatch: {error}", ABORTED)
    if isinstance(error, ETagInvalid):
        return DaprError(400, code, f"{message}: invalid etag value: {error}", INVALID_ARGUMENT)
    return DaprError(500, code, f"{message}: {error}", INTERNAL)
