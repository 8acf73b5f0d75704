"""Random ids made per request (request ids, trace ids): from the kernel's CSPRNG, as
`uuid.uuid4` and `secrets.token_hex` draw them, but read in blocks.

`str(uuid.uuid4())` is a `getrandom` syscall, a UUID object and its formatting: about 6 µs,
and a trace id's `token_hex` another 3 µs, on every request. One `os.urandom` of 4 KB serves
a few hundred ids; the bytes are as random, only fetched ahead. A forked child drops what its
parent fetched, so two processes never hand out the same bytes.
"""

from __future__ import annotations

import os

BLOCK = 4096


class _RandomBytes:
    def __init__(self) -> None:
        self._block = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        at = self._at
        if at + n > len(self._block):
            self._block, at = os.urandom(BLOCK), 0
        self._at = at + n
        return self._block[at : at + n]

    def reset(self) -> None:
        self._block, self._at = b"", 0


_random = _RandomBytes()
os.register_at_fork(after_in_child=_random.reset)


def random_hex(n_bytes: int) -> str:
    """`n_bytes` random bytes in hex, as `secrets.token_hex(n_bytes)`."""
    return _random.take(n_bytes).hex()


def uuid4() -> str:
    """A random (version 4) UUID in its canonical text, as `str(uuid.uuid4())`."""
    b = bytearray(_random.take(16))
    # The version nibble and the variant's two bits, as RFC 4122 sets them.
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
