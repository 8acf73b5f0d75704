"""`faasbox serve`'s access log: one line per request on stdout, timestamped (off with --quiet).

The gateway writes each line to the `faasbox.access` logger (faasbox.gateway.observe); this
prints them plainly, without the colours and wrapping of the CLI's other messages.
"""

from __future__ import annotations

import logging
import sys
import time


class _UtcFormatter(logging.Formatter):
    converter = staticmethod(time.gmtime)

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03dZ %(message)s", "%Y-%m-%dT%H:%M:%S")


def print_access_log() -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_UtcFormatter())
    logger = logging.getLogger("faasbox.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # not through the CLI's warning handler on stderr
