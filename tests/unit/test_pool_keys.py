"""Which pools a drain or a deleted version retires (faasbox.execution.process.pool), the
rule every executor follows: $LATEST's old revisions go, published versions stay."""

from __future__ import annotations

from pathlib import Path

from faasbox.execution.lanes import drained_keys, pool_key, version_keys
from faasbox.registry.models import LATEST, DeployedFunction, FunctionConfig


def function(name: str, version: str, revision: str) -> DeployedFunction:
    return DeployedFunction(
        config=FunctionConfig(name=name, handler="h.h"),
        version=version,
        code_sha256="x",
        code_dir=Path("/nonexistent"),
        code_size=0,
        last_modified="",
        revision_id=revision,
    )


KEYS = [
    ("f", LATEST, "r1"),  # $LATEST before the update
    ("f", LATEST, "r2"),  # $LATEST now
    ("f", "1", "r0"),  # a published version
    ("g", LATEST, "r9"),  # another function
]


def test_an_update_retires_latest_old_revisions_only() -> None:
    keep = function("f", LATEST, "r2")
    assert pool_key(keep) == ("f", LATEST, "r2")
    assert drained_keys(KEYS, "f", keep) == [("f", LATEST, "r1")]


def test_a_removed_function_retires_all_its_pools() -> None:
    assert drained_keys(KEYS, "f", None) == [
        ("f", LATEST, "r1"),
        ("f", LATEST, "r2"),
        ("f", "1", "r0"),
    ]


def test_a_deleted_version_retires_its_pools_only() -> None:
    assert version_keys(KEYS, "f", "1") == [("f", "1", "r0")]
    assert version_keys(KEYS, "g", "1") == []
