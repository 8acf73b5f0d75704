from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir outside /tmp, so workers get their private /tmp as in production."""
    path = ROOT / "build" / "test-data" / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)
