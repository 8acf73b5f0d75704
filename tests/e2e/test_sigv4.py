"""The page's SigV4 module (faasbox/web/sigv4.js) signs as faasbox's verifier expects."""

from __future__ import annotations

import calendar
import hashlib
from urllib.parse import urlsplit

import pytest

from faasbox.gateway.sigv4 import sign_request

pytestmark = pytest.mark.e2e

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WHEN = "2026-03-04T05:06:07Z"

SIGN_IN_PAGE = """async ([url, method, body, when, keyId, secret]) => {
  const { signRequest } = await import("/ui/sigv4.js");
  const request = { method, url, body, accessKeyId: keyId, secretAccessKey: secret };
  const date = new Date(when);
  return [
    await signRequest(request, { date }),               // WebCrypto
    await signRequest(request, { date, plain: true }),  // the fallback without it
  ];
}"""


@pytest.mark.parametrize(
    ("path", "method", "body"),
    [
        ("/_faasbox/functions", "GET", ""),
        ("/_faasbox/functions/image-service-dev-grayscale/logs?since=3&limit=10", "GET", ""),
        ("/_faasbox/functions/my%20fn~x/logs?z=%E2%9C%93&a=b+c&a=&q=(1)*!", "GET", ""),
        ("/_faasbox/deploy", "POST", '{"service": "s", "note": "' + "\u00e9x" * 90 + '"}'),
    ],
)
def test_the_page_signs_as_the_server_verifies(open_server, new_page, path, method, body) -> None:  # type: ignore[no-untyped-def]
    page = new_page(open_server)
    page.goto("/ui/")
    url = open_server.url + path
    in_page = page.evaluate(SIGN_IN_PAGE, [url, method, body, WHEN, KEY_ID, SECRET])

    parts = urlsplit(url)
    payload = body.encode()
    payload_hash = hashlib.sha256(payload).hexdigest()
    expected = sign_request(
        KEY_ID,
        SECRET,
        method,
        parts.path.encode(),
        parts.query.encode(),
        [("host", parts.netloc), ("x-amz-content-sha256", payload_hash)],
        payload,
        now=calendar.timegm((2026, 3, 4, 5, 6, 7, 0, 0, 0)),
    )
    for headers in in_page:
        assert headers["X-Amz-Content-Sha256"] == payload_hash
        assert headers["X-Amz-Date"] == expected["X-Amz-Date"] == "20260304T050607Z"
        assert headers["Authorization"] == expected["Authorization"]


SIGN_WITH_HEADERS = """async ([url, body, when, keyId, secret]) => {
  const { signRequest } = await import("/ui/sigv4.js");
  const request = { method: "POST", url, body, accessKeyId: keyId, secretAccessKey: secret,
                    headers: { "X-Amz-Log-Type": "Tail" } };
  const date = new Date(when);
  return [await signRequest(request, { date }), await signRequest(request, { date, plain: true })];
}"""


def test_the_page_signs_the_x_amz_headers_it_sends(open_server, new_page) -> None:  # type: ignore[no-untyped-def]
    # The Test tab's Invoke sends X-Amz-Log-Type, which must be among the signed headers.
    page = new_page(open_server)
    page.goto("/ui/")
    url = open_server.url + "/2015-03-31/functions/console-dev-echo/invocations"
    body = '{"a": 1}'
    in_page = page.evaluate(SIGN_WITH_HEADERS, [url, body, WHEN, KEY_ID, SECRET])
    parts = urlsplit(url)
    payload_hash = hashlib.sha256(body.encode()).hexdigest()
    expected = sign_request(
        KEY_ID,
        SECRET,
        "POST",
        parts.path.encode(),
        b"",
        [
            ("host", parts.netloc),
            ("x-amz-content-sha256", payload_hash),
            ("x-amz-log-type", "Tail"),
        ],
        body.encode(),
        now=calendar.timegm((2026, 3, 4, 5, 6, 7, 0, 0, 0)),
    )
    assert "x-amz-log-type" in expected["Authorization"]
    for headers in in_page:
        assert headers["Authorization"] == expected["Authorization"]
