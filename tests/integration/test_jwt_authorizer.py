"""JWT authorizers of httpApi routes (issue 11): tokens signed with a test RSA key the test
generates, checked by a real server against the key's JWKS (a jwksFile, and an issuer URL
served on loopback): allowed, expired, not yet valid, wrong audience, wrong issuer, bad
signature, missing scopes; the claims reach the function."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import RunningServer

SERVICE = Path(__file__).resolve().parent.parent / "services" / "authorizers"
ISSUER = "https://issuer.example.test/pool"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {"keys": [{**public, "kid": kid, "alg": "RS256", "use": "sig"}]}


KEY = new_key()
OTHER_KEY = new_key()


class Issuer:
    """An issuer's /.well-known/jwks.json on loopback."""

    def __init__(self, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status = 200 if self.path == "/.well-known/jwks.json" else 404
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    running = Issuer(jwks(KEY, "url-key"))
    yield running
    running.server.shutdown()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, issuer: Issuer) -> Iterator[RunningServer]:
    folder = tmp_path_factory.mktemp("jwt-service")
    shutil.copy(SERVICE / "echo.py", folder / "echo.py")
    (folder / "jwks.json").write_text(json.dumps(jwks(KEY, "file-key")))
    (folder / "serverless.yml").write_text(
        f"""
service: jwtsvc
provider:
  name: aws
  runtime: python3.11
  httpApi:
    authorizers:
      fileJwt:
        type: jwt
        identitySource: $request.header.Authorization
        issuerUrl: {ISSUER}
        audience: [my-client]
        jwksFile: jwks.json
      urlJwt:
        type: jwt
        issuerUrl: {issuer.url}
        audience: url-client
functions:
  echo:
    handler: echo.echo
    events:
      - httpApi: {{method: GET, path: /jwt, authorizer: {{name: fileJwt}}}}
      - httpApi: {{method: GET, path: /admin, authorizer: {{name: fileJwt, scopes: [admin]}}}}
      - httpApi: {{method: GET, path: /url, authorizer: urlJwt}}
"""
    )
    running = RunningServer([folder], tmp_path_factory.mktemp("data")).start()
    yield running
    assert running.stop() == 0, "".join(running.output)


def token(key: rsa.RSAPrivateKey = KEY, kid: str = "file-key", **claims: Any) -> dict[str, str]:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "my-client", "sub": "user-1", "iat": now, "exp": now + 600}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    encoded = jwt.encode(body, key, algorithm="RS256", headers={"kid": kid})
    return {"Authorization": f"Bearer {encoded}"}


def get(server: RunningServer, path: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers=headers, timeout=60)


def test_a_valid_token_reaches_the_function_with_its_claims(server: RunningServer) -> None:
    response = get(server, "/jwt", token(scope="read write", groups=["a", "b"]))
    assert response.status_code == 200, response.text
    found = response.json()["authorizer"]["jwt"]
    assert found["claims"]["sub"] == "user-1"
    assert found["claims"]["aud"] == "my-client"
    assert found["claims"]["groups"] == "[a b]"
    assert found["scopes"] == ["read", "write"]


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "missing"),
        (token(exp=int(time.time()) - 60), "expired"),
        (token(nbf=int(time.time()) + 600), "not valid yet"),
        (token(aud="someone-else"), "audience"),
        (token(iss="https://other.example.test"), "issuer"),
        (token(OTHER_KEY), "signature"),
        (token(kid="unknown"), "kid"),
        ({"Authorization": "Bearer not.a.jwt"}, "JWT"),
    ],
)
def test_a_bad_token_is_401(server: RunningServer, headers: dict[str, str], why: str) -> None:
    response = get(server, "/jwt", headers)
    assert response.status_code == 401, why
    assert response.json() == {"message": "Unauthorized"}


def test_a_route_with_scopes_needs_one_of_them(server: RunningServer) -> None:
    assert get(server, "/admin", token(scope="read")).status_code == 403
    assert get(server, "/admin", token(scope="read admin")).status_code == 200


def test_the_jwks_is_fetched_from_the_issuer_url(server: RunningServer, issuer: Issuer) -> None:
    headers = token(kid="url-key", iss=issuer.url, aud="url-client")
    response = get(server, "/url", headers)
    assert response.status_code == 200, response.text
    assert response.json()["authorizer"]["jwt"]["claims"]["iss"] == issuer.url
    forged = token(OTHER_KEY, kid="url-key", iss=issuer.url, aud="url-client")
    assert get(server, "/url", forged).status_code == 401
