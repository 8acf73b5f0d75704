"""The CLI's HTTP client for a running faasbox server (Lambda API and management API)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import httpx

from faasbox.errors import (
    FaasboxError,
    ResourceNotFound,
    ServerUnreachable,
    ServiceError,
)


@dataclass(frozen=True)
class InvokeResponse:
    status: int
    payload: bytes
    function_error: str | None
    log: str | None
    executed_version: str | None
    request_id: str | None


class Client:
    def __init__(self, url: str, timeout: float = 960.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ServerUnreachable(
                f"No faasbox server at {self.url}. Start one with 'faasbox serve' "
                "(or 'make run'), or point --url / FAASBOX_URL at it."
            ) from None
        except httpx.HTTPError as e:
            raise ServerUnreachable(f"Request to {self.url} failed: {e}") from None
        if response.status_code >= 400:
            raise _error_from(response)
        return response

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        invocation_type: str = "RequestResponse",
        log: bool = False,
        qualifier: str | None = None,
    ) -> InvokeResponse:
        headers = {"X-Amz-Invocation-Type": invocation_type, "content-type": "application/json"}
        if log:
            headers["X-Amz-Log-Type"] = "Tail"
        params = {"Qualifier": qualifier} if qualifier else None
        response = self._request(
            "POST",
            f"/2015-03-31/functions/{name}/invocations",
            content=payload,
            headers=headers,
            params=params,
        )
        log_result = response.headers.get("x-amz-log-result")
        return InvokeResponse(
            status=response.status_code,
            payload=response.content,
            function_error=response.headers.get("x-amz-function-error"),
            log=base64.b64decode(log_result).decode("utf-8", "replace") if log_result else None,
            executed_version=response.headers.get("x-amz-executed-version"),
            request_id=response.headers.get("x-amzn-requestid"),
        )

    def deploy(
        self,
        service: str,
        functions: list[dict[str, Any]],
        code_zip: bytes,
        api_keys: list[str | dict[str, Any]] | None = None,
    ) -> Any:
        body = {
            "service": service,
            "functions": functions,
            "code_zip": base64.b64encode(code_zip).decode(),
            "apiKeys": api_keys or [],
        }
        return self._request("POST", "/_faasbox/deploy", json=body).json()

    def functions(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/_faasbox/functions").json()["functions"])

    def remove(self, name: str) -> None:
        self._request("DELETE", f"/_faasbox/functions/{name}")

    def logs(self, name: str, since: int = 0, limit: int = 20, wait: float = 0) -> Any:
        return self._request(
            "GET",
            f"/_faasbox/functions/{name}/logs",
            params={"since": since, "limit": limit, "wait": wait},
            timeout=wait + 10,
        ).json()


def _error_from(response: httpx.Response) -> FaasboxError:
    try:
        body = response.json()
        message = body.get("Message") or body.get("message") or response.text
    except (json.JSONDecodeError, AttributeError):
        message = response.text or response.reason_phrase
    error_type = response.headers.get("x-amzn-errortype", "")
    if response.status_code == 404 and error_type.startswith("ResourceNotFound"):
        return ResourceNotFound(message)
    error = ServiceError(message)
    error.status = response.status_code
    error.aws_type = error_type or f"HTTP {response.status_code}"
    return error
