"""The limits of `faasbox serve` at the edge, their defaults, and the file descriptors they
must stay below (the protocol enforcing them is faasbox.gateway.edge; kept apart so the CLI
reads the defaults without importing the server)."""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

log = logging.getLogger("faasbox.gateway")

DEFAULT_MAX_CONNECTIONS = 10_000
# File descriptors kept for everything but client connections: workers' sockets and pipes,
# the registry, logs, code files.
FD_RESERVE = 2048


@dataclass(frozen=True)
class EdgeLimits:
    """Each limit of `faasbox serve`, with the default a public-facing server needs."""

    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_timeout_s: float = 30.0
    max_header_bytes: int = 64 * 1024
    max_header_line_bytes: int = 16 * 1024
    # None: DEFAULT_MAX_CONNECTIONS, or fewer when the file descriptor limit is lower.
    max_connections: int | None = None
    max_connections_per_client: int = 256

    def connection_cap(self, fd_limit: int) -> int:
        """The connection cap, kept below the file descriptor limit."""
        reserve = min(FD_RESERVE, fd_limit // 2)
        below_fds = max(1, fd_limit - reserve)
        wanted = self.max_connections or DEFAULT_MAX_CONNECTIONS
        if wanted > below_fds:
            log.warning(
                "at most %d connections: the file descriptor limit is %d (ulimit -n)",
                below_fds,
                fd_limit,
            )
        return min(wanted, below_fds)


def raise_fd_limit() -> int:
    """Raise the soft file descriptor limit to the hard one (a process may); returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY:
        return soft if soft != resource.RLIM_INFINITY else DEFAULT_MAX_CONNECTIONS * 2
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # a container may forbid it: keep the soft limit
            pass
    return soft
