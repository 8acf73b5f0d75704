"""What crosses the Ray executor's channel: an Outcome comes back as the host made it."""

from __future__ import annotations

import pytest

from faasbox.execution.api import Outcome
from faasbox.execution.ray.channel import outcome_body, outcome_header, outcome_of


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome("success", b'{"hello":"world"}', "hello from 42\n", 0.41, 31, True, 12.5),
        # An error object, and output that is not valid UTF-8 as the worker wrote it
        # (decoded with surrogates), an empty payload.
        Outcome("crash", b"", "half a character: \udcc3\n", 1000.0, 0),
        Outcome("timeout", b'{"errorType":"Sandbox.Timedout"}', "", 1001.2, 64, False, None),
        Outcome("success", bytes(range(256)) * 1000, "é" * 10, 5.0, 80, streamed=True),
    ],
)
def test_an_outcome_crosses_unchanged(outcome: Outcome) -> None:
    assert outcome_of(outcome_header(outcome), outcome_body(outcome)) == outcome
