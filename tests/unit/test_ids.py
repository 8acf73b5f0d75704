"""Request and trace ids drawn from blocks of random bytes: the shapes their readers parse,
never the same twice, and a forked child never repeats its parent's."""

from __future__ import annotations

import os
import uuid

from faasbox.lambda_ import ids, tracing


def test_request_ids_are_version_4_uuids_and_unique() -> None:
    made = [ids.uuid4() for _ in range(3 * ids.BLOCK // 16)]  # across several blocks
    for text in made:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text
    assert len(set(made)) == len(made)


def test_random_hex_is_as_token_hex() -> None:
    token = ids.random_hex(12)
    assert len(token) == 24 and int(token, 16) >= 0
    assert ids.random_hex(12) != token


def test_new_trace_ids_are_x_rays() -> None:
    trace = tracing.new_trace_id()
    assert tracing.trace_id_from(trace) == trace  # well-formed: kept as it is
    assert tracing.new_trace_id() != trace


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    ids.uuid4()  # the parent holds a block it has not used up
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, ids.uuid4().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert uuid.UUID(child).version == 4
    assert child != ids.uuid4()
