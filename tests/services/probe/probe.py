"""Handlers that report what the worker gives them."""

import ctypes
import logging
import os
import resource
import sys
import tempfile
import time

INIT_PID = os.getpid()
# Which worker answered: a jailed worker's pid is that of its own namespace (2 in each).
INSTANCE = os.urandom(8).hex()
_calls = 0


def echo(event, context):
    return event


def inspect(event, context):
    with open(os.path.join(tempfile.gettempdir(), "probe.txt"), "w") as f:
        f.write("written")
    tmp_listing = sorted(os.listdir("/tmp"))
    return {
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "tmpdir": tempfile.gettempdir(),
        "tmp_listing": tmp_listing,
        "pid": os.getpid(),
        "init_pid": INIT_PID,
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
            "identity": context.identity.cognito_identity_id,
            "client_context": context.client_context.custom if context.client_context else None,
        },
    }


def output(event, context):
    print("from print")
    sys.stderr.write("from stderr\n")
    os.write(1, b"from fd 1\n")
    ctypes.CDLL(None).puts(b"from C puts")
    logging.getLogger().warning("from logging")
    if (event or {}).get("pause"):
        # All of it into the pipe, and a pause: the server's reader takes it from the pipe
        # before the result is sent.
        ctypes.CDLL(None).fflush(None)
        time.sleep(event["pause"])
    return "done"


def unserializable(event, context):
    return {"a set": {1, 2}}


def slow(event, context):
    time.sleep(event.get("seconds", 1))
    return os.getpid()


def counter(event, context):
    global _calls
    _calls += 1
    return {"calls": _calls, "pid": os.getpid(), "instance": INSTANCE}


def heap(event, context):
    """Minor page faults taken while 8 blocks of 512 KB are written, then all freed: what an
    invocation that needs a few MB (an image's pixels) pays for that memory."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [b"\x01" * (512 << 10) for _ in range(8)]
    del blocks
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def segfault(event, context):
    if event.get("behave"):
        return "fine"
    ctypes.string_at(0)


def exits(event, context):
    if event.get("behave"):
        return "fine"
    os._exit(3)


def framed(event, context):
    """A response that sets its own framing headers (as WSGI adapters often do)."""
    body = "framed by the function"
    return {
        "statusCode": 200,
        "headers": {"Content-Length": str(len(body) + 10), "Transfer-Encoding": "chunked"},
        "body": body,
    }
