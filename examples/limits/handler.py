"""Each handler fails in one way unless the event says {"behave": true}."""

import os
import signal
import time


def sleep_past_timeout(event, context):
    if event.get("behave"):
        return "awake"
    print("going to sleep for 30 seconds")
    time.sleep(30)
    return "unreachable"


def allocate_past_memory(event, context):
    if event.get("behave"):
        return "fed"
    limit_mb = int(context.memory_limit_in_mb)
    print(f"allocating past {limit_mb} MB")
    hoard = []
    for _ in range(limit_mb * 4):
        hoard.append(bytearray(1 << 20))  # bytearray touches every page
    return len(hoard)


def kill_own_process(event, context):
    if event.get("behave"):
        return "alive"
    print("killing myself")
    os.kill(os.getpid(), signal.SIGKILL)


class OddError(Exception):
    pass


def raise_error(event, context):
    if event.get("behave"):
        return "calm"
    raise OddError("something odd happened")
