"""SigV4 canonicalization, signing and verification, checked against botocore's own signer."""

from __future__ import annotations

import calendar
import datetime
import hashlib
from collections.abc import Iterator
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from faasbox.errors import (
    AuthenticationError,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    UnrecognizedClient,
)
from faasbox.gateway.sigv4 import (
    MAX_CLOCK_SKEW_S,
    SigV4Authenticator,
    canonical_query,
    canonical_uri,
    sign_request,
)

KEY_ID = "AKIAFAASBOXTESTKEY01"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SIGNED_AT = datetime.datetime(2026, 3, 14, 15, 9, 26, tzinfo=datetime.UTC)
T0 = calendar.timegm(SIGNED_AT.timetuple())
URL = "http://127.0.0.1:8000"
INVOKE = f"{URL}/2015-03-31/functions/hello-dev-hello/invocations"


class Secrets:
    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets

    def secret_for(self, access_key_id: str) -> str | None:
        return self.secrets.get(access_key_id)


def authenticator(now: float = T0 + 1, secrets: dict[str, str] | None = None) -> SigV4Authenticator:
    return SigV4Authenticator(
        Secrets({KEY_ID: SECRET} if secrets is None else secrets), lambda: now
    )


@pytest.fixture(autouse=True)
def frozen_botocore_clock() -> Iterator[None]:
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT):
        yield


def botocore_signed(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    secret: str = SECRET,
    key_id: str = KEY_ID,
    service: str = "lambda",
    region: str = "us-east-1",
) -> AWSRequest:
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(BotoCredentials(key_id, secret), service, region).add_auth(request)
    return request


def scope_of(request: AWSRequest, **changes: Any) -> dict[str, Any]:
    """The ASGI scope a server gets for the request botocore signed, as urllib3 sends it."""
    parts = urlsplit(request.url)
    host = parts.netloc
    headers = [(b"host", host.encode())] + [
        (k.lower().encode(), v.encode("latin-1") if isinstance(v, str) else v)
        for k, v in request.headers.items()
    ]
    scope = {
        "type": "http",
        "method": request.method,
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "headers": headers,
    }
    scope.update(changes)
    return scope


def body_of(request: AWSRequest) -> bytes:
    data = request.body
    return data if isinstance(data, bytes) else (data or "").encode()


# --- canonicalization is botocore's ---


@pytest.mark.parametrize(
    "path",
    [
        "/2015-03-31/functions/hello/invocations",
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A0%3Afunction%3Ahi/invocations",
        "/a/./b/../c/",
        "//double//slashes",
        "/~user/with%20space/%E2%9C%93",
        "/",
        "",
    ],
)
def test_canonical_uri_matches_botocore(path: str) -> None:
    signer = SigV4Auth(BotoCredentials(KEY_ID, SECRET), "lambda", "us-east-1")
    assert canonical_uri(path.encode()) == signer._normalize_url_path(path)


def test_canonical_uri_encodes_the_encoded_path_again() -> None:
    assert canonical_uri(b"/functions/a%3Ab/invocations") == "/functions/a%253Ab/invocations"


@pytest.mark.parametrize(
    "query",
    ["", "Qualifier=%24LATEST", "b=2&a=1&a=0", "x=a%20b&y=%2F~-_.", "empty=&k=v"],
)
def test_canonical_query_matches_botocore_for_encoded_queries(query: str) -> None:
    signer = SigV4Auth(BotoCredentials(KEY_ID, SECRET), "lambda", "us-east-1")
    assert canonical_query(query.encode()) == signer._canonical_query_string_url(
        urlsplit(f"{URL}/?{query}")
    )


def test_canonical_query_reads_plus_as_a_space_as_the_gateway_does() -> None:
    assert canonical_query(b"q=a+b%2Bc") == "q=a%20b%2Bc"
    assert canonical_query(b"q=a+b") == canonical_query(b"q=a%20b")
    assert canonical_query(b"q=a+b") != canonical_query(b"q=a%2Bb")


def test_signing_matches_botocore_exactly() -> None:
    body = b'{"name": "boto"}'
    headers = {"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse"}
    url = (
        f"{URL}/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A0%3Afunction%3Ahi"
        "/invocations?Qualifier=%24LATEST"
    )
    theirs = botocore_signed("POST", url, body, headers)
    parts = urlsplit(url)
    ours = sign_request(
        KEY_ID,
        SECRET,
        "POST",
        parts.path.encode(),
        parts.query.encode(),
        [("Host", parts.netloc), *headers.items()],
        body,
        now=T0,
    )
    assert ours["X-Amz-Date"] == theirs.headers["X-Amz-Date"]
    assert ours["Authorization"] == theirs.headers["Authorization"]


# --- verification of botocore-signed requests ---


def test_botocore_signed_invoke_verifies() -> None:
    request = botocore_signed(
        "POST", INVOKE, b'{"name": "x"}', {"X-Amz-Invocation-Type": "RequestResponse"}
    )
    assert authenticator().verify(scope_of(request), body_of(request)) == KEY_ID


def test_arn_path_and_query_verify() -> None:
    url = (
        f"{URL}/2015-03-31/functions/"
        "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ahello/invocations"
        "?Qualifier=%24LATEST"
    )
    request = botocore_signed("POST", url, b"{}")
    assert authenticator().verify(scope_of(request), b"{}") == KEY_ID


def test_get_with_query_and_empty_body_verifies() -> None:
    request = botocore_signed("GET", f"{URL}/_faasbox/functions/hello/logs?since=0&limit=20")
    assert authenticator().verify(scope_of(request), b"") == KEY_ID


def test_header_values_are_trimmed_and_repeated_headers_joined() -> None:
    request = botocore_signed("POST", INVOKE, b"{}", {"X-Amz-Client-Context": "  a   b  "})
    assert authenticator().verify(scope_of(request), b"{}") == KEY_ID
    # Two header lines of one name are signed as their values joined by a comma.
    parts = urlsplit(INVOKE)
    signed = sign_request(
        KEY_ID,
        SECRET,
        "POST",
        parts.path.encode(),
        b"",
        [("host", parts.netloc), ("x-amz-extra", "1"), ("x-amz-extra", " 2 ")],
        b"{}",
        now=T0,
    )
    scope = {
        "method": "POST",
        "raw_path": parts.path.encode(),
        "path": parts.path,
        "query_string": b"",
        "headers": [
            (b"host", parts.netloc.encode()),
            (b"x-amz-extra", b"1"),
            (b"x-amz-extra", b"2"),
            *((k.lower().encode(), v.encode()) for k, v in signed.items()),
        ],
    }
    assert authenticator().verify(scope, b"{}") == KEY_ID


def test_unsigned_headers_may_be_added() -> None:
    request = botocore_signed("POST", INVOKE, b"{}")
    scope = scope_of(request)
    scope["headers"].append((b"x-forwarded-for", b"10.0.0.1"))
    assert authenticator().verify(scope, b"{}") == KEY_ID


def test_content_sha256_header_is_used_and_must_match_the_body() -> None:
    body = b'{"a": 1}'
    digest = hashlib.sha256(body).hexdigest()
    request = botocore_signed("POST", INVOKE, body, {"X-Amz-Content-SHA256": digest})
    assert authenticator().verify(scope_of(request), body) == KEY_ID
    with pytest.raises(InvalidSignature, match="x-amz-content-sha256"):
        authenticator().verify(scope_of(request), b'{"a": 2}')
    unsigned = botocore_signed("POST", INVOKE, body, {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    with pytest.raises(InvalidSignature, match="UNSIGNED-PAYLOAD is not accepted"):
        authenticator().verify(scope_of(unsigned), body)


# --- tampering ---


def signed_invoke() -> AWSRequest:
    return botocore_signed(
        "POST",
        INVOKE + "?Qualifier=1",
        b'{"amount": 10}',
        {"X-Amz-Log-Type": "Tail", "Content-Type": "application/json"},
    )


def test_tampered_body_is_refused() -> None:
    request = signed_invoke()
    with pytest.raises(InvalidSignature, match="does not match the signature you provided"):
        authenticator().verify(scope_of(request), b'{"amount": 10000}')


def test_tampered_signed_header_is_refused() -> None:
    request = signed_invoke()
    scope = scope_of(request)
    scope["headers"] = [(k, b"None" if k == b"x-amz-log-type" else v) for k, v in scope["headers"]]
    with pytest.raises(InvalidSignature):
        authenticator().verify(scope, body_of(request))


def test_removed_signed_header_is_refused() -> None:
    request = signed_invoke()
    scope = scope_of(request)
    scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"x-amz-log-type"]
    with pytest.raises(InvalidSignature, match="x-amz-log-type"):
        authenticator().verify(scope, body_of(request))


def test_tampered_path_is_refused() -> None:
    request = signed_invoke()
    path = "/2015-03-31/functions/other/invocations"
    with pytest.raises(InvalidSignature):
        authenticator().verify(
            scope_of(request, path=path, raw_path=path.encode()), body_of(request)
        )


def test_tampered_query_is_refused() -> None:
    request = signed_invoke()
    with pytest.raises(InvalidSignature):
        authenticator().verify(scope_of(request, query_string=b"Qualifier=2"), body_of(request))


def test_tampered_method_is_refused() -> None:
    request = signed_invoke()
    with pytest.raises(InvalidSignature):
        authenticator().verify(scope_of(request, method="PUT"), body_of(request))


def test_mismatch_message_shows_the_canonical_request_as_aws_does() -> None:
    request = signed_invoke()
    with pytest.raises(InvalidSignature) as info:
        authenticator().verify(scope_of(request), b"{}")
    message = info.value.message
    assert "The Canonical String for this request should have been\n'POST\n" in message
    assert "host;x-amz-date;x-amz-log-type" in message.replace("content-type;", "")
    assert "The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20260314T150926Z" in message


# --- keys ---


def test_wrong_secret_is_invalid_signature() -> None:
    request = botocore_signed("POST", INVOKE, b"{}", secret="not-the-secret")
    with pytest.raises(InvalidSignature) as info:
        authenticator().verify(scope_of(request), b"{}")
    assert info.value.status == 403
    assert info.value.aws_type == "InvalidSignatureException"


def test_unknown_key_is_unrecognized_client() -> None:
    request = botocore_signed("POST", INVOKE, b"{}", key_id="AKIANOTAKEYWEISSUED0")
    with pytest.raises(UnrecognizedClient) as info:
        authenticator().verify(scope_of(request), b"{}")
    assert info.value.message == "The security token included in the request is invalid."
    assert info.value.aws_type == "UnrecognizedClientException"
    assert info.value.status == 403


def test_signing_keys_are_cached_per_key_date_region_service() -> None:
    auth = authenticator()
    for body in (b"{}", b"[]", b"1"):
        request = botocore_signed("POST", INVOKE, body)
        auth.verify(scope_of(request), body)
    other_region = botocore_signed("POST", INVOKE, b"{}", region="eu-west-1")
    auth.verify(scope_of(other_region), b"{}")
    assert len(auth._signing_keys) == 2


# --- time ---


def test_expired_signature_is_refused_with_lambdas_message() -> None:
    request = botocore_signed("POST", INVOKE, b"{}")
    assert authenticator(now=T0 + MAX_CLOCK_SKEW_S).verify(scope_of(request), b"{}") == KEY_ID
    with pytest.raises(InvalidSignature) as info:
        authenticator(now=T0 + MAX_CLOCK_SKEW_S + 1).verify(scope_of(request), b"{}")
    assert info.value.message == (
        "Signature expired: 20260314T150926Z is now earlier than 20260314T150927Z "
        "(20260314T151427Z - 5 min.)"
    )


def test_future_signature_is_refused() -> None:
    request = botocore_signed("POST", INVOKE, b"{}")
    assert authenticator(now=T0 - MAX_CLOCK_SKEW_S).verify(scope_of(request), b"{}") == KEY_ID
    with pytest.raises(InvalidSignature) as info:
        authenticator(now=T0 - MAX_CLOCK_SKEW_S - 1).verify(scope_of(request), b"{}")
    assert info.value.message == (
        "Signature not yet current: 20260314T150926Z is still later than 20260314T150925Z "
        "(20260314T150425Z + 5 min.)"
    )


def test_clock_skew_is_awss_five_minutes() -> None:
    assert MAX_CLOCK_SKEW_S == 300


def test_credential_date_must_be_the_requests_date() -> None:
    request = botocore_signed("POST", INVOKE, b"{}")
    scope = scope_of(request)
    scope["headers"] = [
        (k, b"20260315T000000Z" if k == b"x-amz-date" else v) for k, v in scope["headers"]
    ]
    with pytest.raises(InvalidSignature, match="Date in Credential scope does not match"):
        authenticator().verify(scope, b"{}")


def test_malformed_date_is_incomplete_signature() -> None:
    request = botocore_signed("POST", INVOKE, b"{}")
    scope = scope_of(request)
    scope["headers"] = [
        (k, b"2026-03-14T15:09:26Z" if k == b"x-amz-date" else v) for k, v in scope["headers"]
    ]
    with pytest.raises(IncompleteSignature, match="ISO-8601 'basic format'"):
        authenticator().verify(scope, b"{}")


# --- what is not a signature ---


def test_no_authorization_is_missing_authentication_token() -> None:
    scope = {
        "method": "POST",
        "path": "/2015-03-31/functions/hello/invocations",
        "raw_path": b"/2015-03-31/functions/hello/invocations",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000")],
    }
    with pytest.raises(MissingAuthenticationToken) as info:
        authenticator().verify(scope, b"{}")
    assert info.value.message == "Missing Authentication Token"
    assert info.value.aws_type == "MissingAuthenticationTokenException"
    assert info.value.status == 403


def with_authorization(value: bytes, drop_date: bool = False) -> dict[str, Any]:
    request = botocore_signed("POST", INVOKE, b"{}")
    scope = scope_of(request)
    scope["headers"] = [
        (k, value if k == b"authorization" else v)
        for k, v in scope["headers"]
        if not (drop_date and k == b"x-amz-date")
    ]
    return scope


def test_other_schemes_are_refused() -> None:
    with pytest.raises(IncompleteSignature, match="accepts only AWS4-HMAC-SHA256"):
        authenticator().verify(with_authorization(b"Bearer abc.def"), b"{}")


def test_missing_parts_are_named() -> None:
    scope = with_authorization(
        f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20260314/us-east-1/lambda/aws4_request".encode(),
        drop_date=True,
    )
    with pytest.raises(IncompleteSignature) as info:
        authenticator().verify(scope, b"{}")
    assert info.value.message == (
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter. "
        "Authorization header requires existence of a 'X-Amz-Date' header."
    )


def test_host_and_date_must_be_signed() -> None:
    for signed, missing in (("x-amz-date", "'Host'"), ("host", "'X-Amz-Date'")):
        request = botocore_signed("POST", INVOKE, b"{}")
        auth = request.headers["Authorization"]
        tampered = auth.replace("SignedHeaders=host;x-amz-date", f"SignedHeaders={signed}")
        with pytest.raises(IncompleteSignature, match=missing):
            authenticator().verify(with_authorization(tampered.encode()), b"{}")


def test_credential_must_be_scoped_to_lambda() -> None:
    request = botocore_signed("POST", INVOKE, b"{}", service="s3")
    with pytest.raises(InvalidSignature, match="scoped to correct service: 'lambda'"):
        authenticator().verify(scope_of(request), b"{}")


def test_malformed_credential_is_incomplete_signature() -> None:
    scope = with_authorization(
        b"AWS4-HMAC-SHA256 Credential=AKIA/2026, SignedHeaders=host;x-amz-date, Signature=00"
    )
    with pytest.raises(IncompleteSignature, match="malformed"):
        authenticator().verify(scope, b"{}")


# --- presigned URLs ---


def presigned(url: str, expires: int = 60, secret: str = SECRET) -> AWSRequest:
    request = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(BotoCredentials(KEY_ID, secret), "lambda", "us-east-1", expires).add_auth(
        request
    )
    return request


def test_presigned_url_verifies_until_it_expires() -> None:
    request = presigned(f"{URL}/_faasbox/functions?x=1", expires=60)
    assert "X-Amz-Signature=" in request.url
    assert authenticator(now=T0 + 60).verify(scope_of(request), b"") == KEY_ID
    with pytest.raises(InvalidSignature, match="Signature expired"):
        authenticator(now=T0 + 61).verify(scope_of(request), b"")


def test_presigned_url_tampered_or_wrong_secret_is_refused() -> None:
    request = presigned(f"{URL}/_faasbox/functions?x=1")
    scope = scope_of(request)
    scope["query_string"] = scope["query_string"].replace(b"x=1", b"x=2")
    with pytest.raises(InvalidSignature):
        authenticator().verify(scope, b"")
    wrong = presigned(f"{URL}/_faasbox/functions", secret="nope")
    with pytest.raises(InvalidSignature):
        authenticator().verify(scope_of(wrong), b"")


def test_presigned_url_missing_parts_is_incomplete() -> None:
    scope = {
        "method": "GET",
        "path": "/_faasbox/functions",
        "raw_path": b"/_faasbox/functions",
        "query_string": b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00",
        "headers": [(b"host", b"127.0.0.1:8000")],
    }
    with pytest.raises(IncompleteSignature, match="X-Amz-Credential"):
        authenticator().verify(scope, b"")


# --- errors ---


def test_every_auth_error_is_a_403_service_error() -> None:
    for cls, name in (
        (MissingAuthenticationToken, "MissingAuthenticationTokenException"),
        (IncompleteSignature, "IncompleteSignatureException"),
        (UnrecognizedClient, "UnrecognizedClientException"),
        (InvalidSignature, "InvalidSignatureException"),
    ):
        error = cls("m")
        assert isinstance(error, AuthenticationError)
        assert (error.status, error.aws_type) == (403, name)


def test_sign_request_needs_a_host() -> None:
    with pytest.raises(ValueError, match="Host"):
        sign_request(KEY_ID, SECRET, "GET", b"/", b"", [], b"", now=T0)
