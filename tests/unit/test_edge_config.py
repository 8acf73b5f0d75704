"""serverless.yml at the edge (issue 11): authorizers faasbox cannot run refuse the deploy,
control characters in environment values are refused, and YAML bombs get a clear error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from faasbox.config import load_service
from faasbox.errors import ConfigError
from faasbox.registry.models import checked_config


def refused(folder: Path, text: str) -> str:
    path = folder / "serverless.yml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_service(path, {}, {})
    message = str(caught.value)
    assert str(path) in message
    return message


@pytest.mark.parametrize(
    "event",
    [
        "http: {path: /items, method: get, authorizer: checkToken}",
        "http: {path: /items, method: get, authorizer: aws_iam}",
        "http: {path: /items, method: get, authorizer: {name: checkToken, type: request}}",
        "httpApi: {path: /items, method: GET, authorizer: {name: jwtAuth}}",
        "httpApi: {path: /items, method: GET, authorizer: {type: aws_iam}}",
    ],
)
def test_an_authorizer_refuses_the_deploy(tmp_path: Path, event: str) -> None:
    message = refused(
        tmp_path,
        f"""
        service: demo
        functions:
          items:
            handler: handler.items
            events:
              - {event}
        """,
    )
    kind = event.split(":")[0]
    assert f"functions.items.events[0].{kind}.authorizer" in message
    assert "function 'items'" in message and f"event {kind} GET /items" in message
    assert "does not support authorizers yet" in message


def test_provider_http_api_authorizers_refuse_the_deploy(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        """
        service: demo
        provider:
          httpApi:
            authorizers:
              jwtAuth: {type: jwt, identitySource: $request.header.Authorization}
        functions:
          items: {handler: handler.items, events: [{httpApi: GET /items}]}
        """,
    )
    assert "provider.httpApi.authorizers" in message and "jwtAuth" in message
    assert "does not support authorizers yet" in message


@pytest.mark.parametrize("value", ["a\\0b", "bell\\a", "esc\\e[0m", "del\\x7f"])
def test_control_characters_in_environment_values_are_refused(tmp_path: Path, value: str) -> None:
    message = refused(
        tmp_path,
        f"""
        service: demo
        functions:
          hello:
            handler: handler.hello
            environment:
              TOKEN: "{value}"
        """,
    )
    assert "functions.hello.environment.TOKEN" in message and "control character U+" in message


def test_line_breaks_and_tabs_in_environment_values_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text(
        "service: demo\nfunctions:\n  hello:\n    handler: handler.hello\n"
        '    environment:\n      PEM: "-----BEGIN-----\\n\\tabc\\r\\n-----END-----"\n'
    )
    spec = load_service(path, {}, {})
    assert spec.functions["hello"].environment["PEM"] == "-----BEGIN-----\n\tabc\r\n-----END-----"


def test_the_deploy_api_refuses_control_characters_too() -> None:
    with pytest.raises(ValueError, match="control character U\\+0000"):
        checked_config({"name": "f", "handler": "h.h", "environment": {"A": "x\0y"}})
