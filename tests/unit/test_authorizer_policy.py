"""An authorizer's IAM policy, evaluated against a methodArn as API Gateway does: IAM
wildcards, lists, an explicit Deny over any Allow, and answers that are not valid."""

from __future__ import annotations

from typing import Any

import pytest

from faasbox.gateway.authorizers import Refused, _grant

ARN = "arn:aws:execute-api:us-east-1:000000000000:abc123/dev/GET/items/7"


def answer(*statements: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"principalId": "p", "policyDocument": {"Statement": list(statements)}, **extra}


def allows(policy: dict[str, Any]) -> bool | str:
    grant = _grant(policy)
    assert grant is not None
    try:
        grant.decide(ARN)
    except Refused as e:
        return e.response.status == 403 and (
            "explicit" if b"explicit" in e.response.body else False
        )
    return True


@pytest.mark.parametrize(
    "resource",
    [
        ARN,
        "arn:aws:execute-api:us-east-1:000000000000:abc123/*",
        "arn:aws:execute-api:*:*:*/*/GET/items/*",
        "arn:aws:execute-api:us-east-1:000000000000:abc123/dev/GET/items/?",
        ["arn:aws:execute-api:*:*:*/*/POST/*", "arn:aws:execute-api:*:*:*/dev/*/items/7"],
    ],
)
def test_an_allow_matches_with_wildcards(resource: Any) -> None:
    statement = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": resource}
    assert allows(answer(statement)) is True


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*/POST/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": ARN[:-1] + "??"},
    ],
)
def test_no_matching_allow_is_a_plain_403(statement: dict[str, Any]) -> None:
    assert allows(answer(statement)) is False


def test_an_explicit_deny_wins() -> None:
    allow = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "execute-api:*", "Resource": "*/GET/items/*"}
    assert allows(answer(allow, deny)) == "explicit"
    assert allows(answer(deny, allow)) == "explicit"


@pytest.mark.parametrize(
    "policy",
    [
        {"policyDocument": {"Statement": []}},
        {"principalId": "p"},
        answer({"Effect": "Maybe", "Action": "*", "Resource": "*"}),
        answer({"Effect": "Allow", "Resource": "*"}),
        answer({"Effect": "Allow", "Action": "*", "Resource": "*"}, context={"a": {"b": 1}}),
        "Allow",
    ],
)
def test_an_invalid_answer_is_none(policy: Any) -> None:
    assert _grant(policy) is None


def test_context_values_become_strings() -> None:
    grant = _grant(
        answer(
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            context={"n": 7, "ok": True, "s": "x", "f": 1.5},
        )
    )
    assert grant is not None
    assert grant.context == {"n": "7", "ok": "true", "s": "x", "f": "1.5"}
