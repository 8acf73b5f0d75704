"""The Lambda control plane (CreateFunction, GetFunction, ...): not yet served."""

from __future__ import annotations

from faasbox.gateway.http import Scope, Send, respond_json
from faasbox.registry import Registry
from faasbox.runtime.invoker import Invoker


class ControlPlaneApi:
    def __init__(self, registry: Registry, invoker: Invoker) -> None:
        self.registry = registry
        self.invoker = invoker

    async def __call__(
        self, scope: Scope, send: Send, parts: list[str], request_id: str, body: bytes
    ) -> None:
        """Serve `/2015-03-31/functions/<parts...>`; `body` is read and authenticated."""
        await respond_json(send, 404, {"message": "Not Found"})
