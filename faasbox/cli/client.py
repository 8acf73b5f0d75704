"""The CLI's HTTP client for a running faasbox server (Lambda API and management API).

Requests are signed with AWS Signature Version 4 by the first credentials found, in order:
AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; the [faasbox] profile of
`<FAASBOX_HOME or ./.faasbox>/credentials` (what `faasbox serve` writes); the AWS_PROFILE (or
default) profile of AWS_SHARED_CREDENTIALS_FILE (or ~/.aws/credentials). With none, requests go
unsigned, which only a `--no-auth` server accepts.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from faasbox.errors import (
    FaasboxError,
    ResourceNotFound,
    ServerUnreachable,
    ServiceError,
)
from faasbox.gateway.sigv4 import sign_request
from faasbox.registry.access_keys import (
    CREDENTIALS_FILE,
    PROFILE,
    Credentials,
    read_credentials_file,
)

DEFAULT_HOME = ".faasbox"


@dataclass(frozen=True)
class FoundCredentials:
    credentials: Credentials
    source: str  # where they were found, for error messages


def find_credentials(environ: Mapping[str, str] | None = None) -> FoundCredentials | None:
    """The credentials the CLI signs with (see the module's docstring for the order)."""
    env = os.environ if environ is None else environ
    key_id = env.get("AWS_ACCESS_KEY_ID", "").strip()
    secret = env.get("AWS_SECRET_ACCESS_KEY", "").strip()
    if key_id and secret:
        return FoundCredentials(
            Credentials(key_id, secret), "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    path = Path(env.get("FAASBOX_HOME") or DEFAULT_HOME) / CREDENTIALS_FILE
    found = read_credentials_file(path, PROFILE)
    if found is not None:
        return FoundCredentials(found, f"{path} [{PROFILE}]")
    shared = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials").expanduser()
    profile = env.get("AWS_PROFILE") or "default"
    found = read_credentials_file(shared, profile)
    if found is not None:
        return FoundCredentials(found, f"{shared} [{profile}]")
    return None


class SigV4Auth(httpx.Auth):
    """Signs each httpx request as botocore signs a Lambda request."""

    requires_request_body = True

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path, _, query = request.url.raw_path.partition(b"?")
        request.headers.update(
            sign_request(
                self.credentials.access_key_id,
                self.credentials.secret_access_key,
                request.method,
                path,
                query,
                request.headers.multi_items(),
                request.content,
            )
        )
        yield request


@dataclass(frozen=True)
class InvokeResponse:
    status: int
    payload: bytes
    function_error: str | None
    log: str | None
    executed_version: str | None
    request_id: str | None


class Client:
    def __init__(
        self, url: str, timeout: float = 960.0, credentials: FoundCredentials | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.credentials = credentials or find_credentials()
        auth = SigV4Auth(self.credentials.credentials) if self.credentials else None
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, auth=auth, verify=_tls_context(self.url)
        )

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
            raise self._explain(_error_from(response))
        return response

    def _explain(self, error: FaasboxError) -> FaasboxError:
        """Auth errors say which credentials were used and where to get good ones."""
        kind = getattr(error, "aws_type", "")
        if not isinstance(error, ServiceError) or kind not in (
            "MissingAuthenticationTokenException",
            "IncompleteSignatureException",
            "UnrecognizedClientException",
            "InvalidSignatureException",
        ):
            return error
        message = error.message.split("\n\n", 1)[0]
        if self.credentials is None:
            message = (
                f"{self.url} requires signed requests and no credentials were found. Set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or FAASBOX_HOME to the server's "
                "data dir (for its credentials file); 'faasbox keys create' issues a key."
            )
        else:
            key_id, source = self.credentials.credentials.access_key_id, self.credentials.source
            message = f"{message} (access key {key_id} from {source})"
            if kind == "UnrecognizedClientException":
                message += (
                    "; the server does not know this key: use one that "
                    "'faasbox keys create' made on the server's data dir"
                )
        explained = ServiceError(message)
        explained.status, explained.aws_type = error.status, error.aws_type
        return explained

    def invoke(
        self,
        name: str,
        payload: bytes,
        *,
        invocation_type: str = "RequestResponse",
        log: bool = False,
        qualifier: str | None = None,
        client_context: str | None = None,
    ) -> InvokeResponse:
        headers = {"X-Amz-Invocation-Type": invocation_type, "content-type": "application/json"}
        if log:
            headers["X-Amz-Log-Type"] = "Tail"
        if client_context:
            headers["X-Amz-Client-Context"] = client_context  # base64 of the JSON, as boto3
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
        service: str | None,
        functions: list[dict[str, Any]],
        code_zip: bytes | None,
        api_keys: list[str | dict[str, Any]] | None = None,
        *,
        force: bool = False,
        packages: dict[str, bytes] | None = None,
        layers: list[tuple[dict[str, Any], bytes]] | None = None,
    ) -> Any:
        """`packages`: functions' own zips by name; `layers`: (description, zip) of each of
        the service's layers (faasbox.registry.service_layers.ServiceLayer.to_dict)."""

        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        body = {
            "service": service,
            "functions": functions,
            "code_zip": b64(code_zip) if code_zip is not None else None,
            "packages": {name: b64(data) for name, data in (packages or {}).items()},
            "layers": [{**layer, "zip": b64(data)} for layer, data in layers or []],
            "apiKeys": api_keys or [],
            "force": force,
        }
        return self._request("POST", "/_faasbox/deploy", json=body).json()

    def functions(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/_faasbox/functions").json()["functions"])

    def async_invocation(self, request_id: str) -> dict[str, Any]:
        """Where an async invocation is (faasbox.gateway.async_status_api)."""
        return dict(self._request("GET", f"/_faasbox/async/invocations/{request_id}").json())

    def async_invocations(self, function: str | None = None, limit: int = 20) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, **({"function": function} if function else {})}
        return dict(self._request("GET", "/_faasbox/async/invocations", params=params).json())

    def schedules(self) -> list[dict[str, Any]]:
        return list(self._request("GET", "/_faasbox/schedules").json()["schedules"])

    def remove(self, name: str) -> None:
        self._request("DELETE", f"/_faasbox/functions/{name}")

    def logs(
        self,
        name: str,
        since: int = 0,
        limit: int = 20,
        wait: float = 0,
        start_time: float | None = None,
        text: str | None = None,
    ) -> Any:
        """`start_time`: epoch seconds; `text`: only records whose log contains it."""
        params: dict[str, Any] = {"since": since, "limit": limit, "wait": wait}
        if start_time is not None:
            params["startTime"] = int(start_time * 1000)
        if text:
            params["filter"] = text
        return self._request(
            "GET",
            f"/_faasbox/functions/{name}/logs",
            params=params,
            timeout=wait + 10,
        ).json()


def _tls_context(url: str) -> ssl.SSLContext | bool:
    """httpx's default (certifi's CAs, loaded for every client: ~50 ms) for an https:// server;
    for a plain-http one, which no request reaches over TLS, a context that trusts no
    certificate: a TLS connection through it would fail verification, never go unverified."""
    if httpx.URL(url).scheme == "http":
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    return True


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
