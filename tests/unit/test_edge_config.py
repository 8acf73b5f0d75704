"""serverless.yml at the edge (issue 11): authorizers faasbox cannot run refuse the deploy,
naming the event and what faasbox supports;
control characters in environment values are refused, and YAML bombs get a clear error."""

from __future__ import annotations

import textwrap
import time
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
    ("event", "expected"),
    [
        (
            "http: {path: /items, method: get, authorizer: "
            "'arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_abc'}",
            "an authorizer ARN",
        ),
        (
            "http: {path: /items, method: get, authorizer: "
            "{type: COGNITO_USER_POOLS, authorizerId: abc}}",
            "authorizer key(s) authorizerId are not supported",
        ),
        (
            "http: {path: /items, method: get, authorizer: {name: auth, type: cognito}}",
            "authorizer type 'cognito'",
        ),
        (
            "http: {path: /items, method: get, authorizer: "
            "{name: auth, identitySource: context.x}}",
            "identitySource 'context.x'",
        ),
        (
            "httpApi: {path: /items, method: GET, authorizer: {name: jwtAuth}}",
            "authorizer 'jwtAuth' is not one of provider.httpApi.authorizers (none)",
        ),
        (
            "httpApi: {path: /items, method: GET, authorizer: {type: aws_iam}}",
            "an httpApi event's authorizer is a name or {name} of provider.httpApi.authorizers",
        ),
    ],
)
def test_an_authorizer_faasbox_cannot_run_refuses_the_deploy(
    tmp_path: Path, event: str, expected: str
) -> None:
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
    assert expected in message
    if "identitySource" not in event and "jwtAuth" not in event:
        assert "faasbox supports" in message


def test_an_authorizer_must_be_a_function_of_the_service(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        """
        service: demo
        functions:
          items:
            handler: handler.items
            events: [{http: {path: /items, method: get, authorizer: checkToken}}]
        """,
    )
    assert "functions.items.events[0].http.authorizer" in message
    assert "'checkToken' is not a function of this service; its functions are items" in message


def test_a_jwks_file_is_embedded_in_the_deploy(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text('{"keys": []}')
    path = tmp_path / "serverless.yml"
    path.write_text(
        textwrap.dedent(
            """
            service: demo
            provider:
              httpApi:
                authorizers:
                  j: {type: jwt, issuerUrl: "https://i.test", audience: [a], jwksFile: keys.json}
            functions:
              items: {handler: handler.items, events: [{httpApi: GET /items}]}
            """
        ),
        encoding="utf-8",
    )
    authorizer = load_service(path, {}, {}).http_api["authorizers"]["j"]
    assert authorizer["jwks"] == '{"keys": []}' and "jwksFile" not in authorizer
    (tmp_path / "keys.json").write_text("not json")
    with pytest.raises(ConfigError, match="jwksFile: cannot read a JWKS"):
        load_service(path, {}, {})


@pytest.mark.parametrize(
    "authorizer",
    ["auth", "aws_iam", "{name: auth, type: request, identitySource: method.request.path.id}"],
)
def test_the_authorizers_faasbox_runs_deploy(tmp_path: Path, authorizer: str) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text(
        textwrap.dedent(
            f"""
            service: demo
            functions:
              auth: {{handler: handler.auth}}
              items:
                handler: handler.items
                events:
                  - http:
                      path: "/items/{{id}}"
                      method: get
                      authorizer: {authorizer}
            """
        ),
        encoding="utf-8",
    )
    service = load_service(path, {}, {})
    assert "authorizer" in service.functions["items"].events[0]["http"]


def test_provider_http_api_authorizers_refuse_the_deploy(tmp_path: Path) -> None:
    message = refused(
        tmp_path,
        """
        service: demo
        provider:
          httpApi:
            authorizers:
              jwtAuth: {type: cognito, identitySource: $request.header.Authorization}
        functions:
          items: {handler: handler.items, events: [{httpApi: GET /items}]}
        """,
    )
    assert "provider.httpApi.authorizers" in message and "jwtAuth" in message
    assert "of type 'cognito' is not supported; faasbox supports" in message


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


def billion_laughs() -> str:
    lines = ["service: demo", "functions: {hello: {handler: handler.hello}}"]
    lines.append('a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]')
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (billion_laughs(), 7, "the aliases expand to more than 10000 nodes"),
        (
            "service: demo\nfunctions: {hello: {handler: h.h}}\nx: " + "[" * 10_000 + "]" * 10_000,
            3,
            "nested deeper than 64 levels",
        ),
        (
            "service: demo\nfunctions: {hello: {handler: h.h}}\nx:\n"
            + "".join("  " * i + "- \n" for i in range(1, 200)),
            67,
            "nested deeper than 64 levels",
        ),
        ("service: demo\nfunctions: {hello: {handler: h.h}}\nx: &a [1, *a]\n", 3, "contains it"),
    ],
)
def test_yaml_bombs_get_a_clear_error_fast(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_service(path, {}, {})
    assert time.monotonic() - started < 2
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid YAML at line {line}, column ")
    assert expected in message


def test_anchors_used_as_people_use_them_still_load(tmp_path: Path) -> None:
    functions = "".join(
        f"  f{i}:\n    handler: handler.f\n    environment: *common\n" for i in range(200)
    )
    path = tmp_path / "serverless.yml"
    path.write_text(
        "service: demo\ncustom:\n  common: &common {A: '1', B: '2', C: '3'}\n"
        f"functions:\n{functions}"
    )
    spec = load_service(path, {}, {})
    assert spec.functions["f199"].environment == {"A": "1", "B": "2", "C": "3"}


def test_a_file_over_one_megabyte_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text("service: demo\ncustom:\n" + "".join(f"  k{i}: {i}\n" for i in range(120_000)))
    with pytest.raises(ConfigError, match="larger than 1024 KB"):
        load_service(path, {}, {})


def test_an_included_json_file_is_bounded_too(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    path = tmp_path / "serverless.yml"
    path.write_text(
        "service: demo\ncustom: ${file(./deep.json)}\nfunctions: {hello: {handler: h.h}}\n"
    )
    with pytest.raises(ConfigError, match="nested deeper than 64 levels"):
        load_service(path, {}, {})
