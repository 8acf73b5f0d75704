"""Unit tests of faasbox.cli.self_command: the hints `serve` prints run faasbox as it was run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from faasbox.cli.self_command import self_command


def test_a_venv_script_not_on_path_is_named_by_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert self_command(".venv/bin/faasbox") == ".venv/bin/faasbox"  # as after `make run`


def test_the_faasbox_on_path_is_just_faasbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = tmp_path / "bin" / "faasbox"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    assert self_command(str(script)) == "faasbox"


def test_python_dash_m_is_named_with_its_interpreter() -> None:
    assert self_command("/x/faasbox/__main__.py") == f"{sys.executable} -m faasbox"
