"""The exec worker: how a runtime that cannot fork (Node.js) gets the same jail as Python.

A jailed spare of such a runtime is an ordinary spare forked from the base zygote, inside
its namespaces and skeleton root like any other. At BOOT it enters the function's jail
(jail.enter: code at /var/task, /tmp, network, limits, the function's uid/gid, no
capability, no new privileges) and then execs the runtime's start command (BOOT's `exec`,
e.g. node with its V8 flags and bootstrap.js) with the control socket's fd as its last
argument. The program inherits the jail: uid, namespaces, mounts, limits and no_new_privs
all survive an exec, and with an empty bounding set it cannot gain a capability back.

The server sends such a worker its BOOT frame twice: this module reads the first, and the
program it becomes reads the second from the same socket as if it had been spawned (frames
are read exactly, so the second one is still in the socket when the exec happens).

Node's own start (tens of milliseconds) is then on the cold start; without the jail,
spawned spares that wait for BOOT are kept instead (faasbox.execution.process.launcher).

Stdlib only: the zygote imports it.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from faasbox.execution.process import jail

NAME = "faasbox.execution.process.exec_worker"
EXIT_NO_JAIL = 71  # as the Python worker: never run a function outside its jail
EXIT_NO_PROGRAM = 72


def serve(ctrl: socket.socket, boot: dict[str, Any]) -> None:
    argv = [str(arg) for arg in boot.get("exec", ())]
    if not argv or not boot.get("jail"):
        sys.stderr.write("faasbox: an exec worker needs a jail and a command\n")
        os._exit(EXIT_NO_JAIL)
    try:
        jail.enter(boot["jail"])
    except OSError as e:
        sys.stderr.write(f"faasbox: cannot enter the jail: {e}\n")
        os._exit(EXIT_NO_JAIL)
    fd = ctrl.detach()  # the program owns it now
    os.set_inheritable(fd, True)
    try:
        os.chdir("/")
        os.execve(argv[0], [*argv, str(fd)], dict(os.environ))
    except OSError as e:
        sys.stderr.write(f"faasbox: cannot start {argv[0]}: {e}\n")
        os._exit(EXIT_NO_PROGRAM)
