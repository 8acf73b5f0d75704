"""Writes a print line and logging records at three levels; answers what trace id it saw."""

import logging
import os
import time

logger = logging.getLogger("observe")


def handler(event, context):
    marker = (event or {}).get("marker") or (event or {}).get("rawQueryString", "")
    print(f"printed {marker}")
    logger.debug("debug %s", marker)
    logger.info("info %s", marker, extra={"order": 42})
    logger.warning("warning %s", marker)
    return {"traceId": os.environ.get("_X_AMZN_TRACE_ID"), "marker": marker}


def failing(event, context):
    try:
        raise ValueError("inner")
    except ValueError:
        logger.exception("caught it")
    raise RuntimeError("failed on purpose")


def slow(event, context):
    time.sleep(float((event or {}).get("seconds", 1)))
    return "slept"
