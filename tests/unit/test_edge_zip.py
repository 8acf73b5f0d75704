"""Zip entries are counted from the central directory's bytes before zipfile parses it, so a
zip of many tiny entries cannot make the server hold them all (issue 11)."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from faasbox.errors import CodeTooLarge
from faasbox.registry.code_store import MAX_ZIP_ENTRIES, CodeStore, central_directory_entries


def many_entries(count: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for index in range(count):
            archive.writestr(f"f{index}", b"")
    return buf.getvalue()


def test_a_zip_over_the_entry_limit_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    data = many_entries(MAX_ZIP_ENTRIES + 1)  # past 65535: a zip64 end record
    with pytest.raises(CodeTooLarge, match=f"{MAX_ZIP_ENTRIES + 1} entries; the limit is"):
        CodeStore(tmp_path).put_zip(data)
    assert list(tmp_path.iterdir()) == []


def test_an_end_record_that_lies_about_the_count_does_not_matter() -> None:
    data = bytearray(many_entries(1000))
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 1, 1)  # "1 entry", while the directory holds 1000
    assert central_directory_entries(bytes(data)) == 1000
