import os
import random
import sys
import threading
import time

import numpy

INIT_RANDOM = random.random()
INIT_NUMPY_RANDOM = float(numpy.random.random())
VERSION = "v1"
INSTANCE = os.urandom(8).hex()  # which worker answered (jailed pids repeat)


def heavy(event, context):
    return {
        "numpy": numpy.__version__,
        "numpy_file": numpy.__file__,
        "threads": threading.active_count(),
        "os_threads": len(os.listdir("/proc/self/task")),
        "cwd": os.getcwd(),
        "name": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "modules": sorted(m for m in sys.modules if m in ("PIL", "cv2", "onnxruntime")),
    }


def seeds(event, context):
    return {
        "random": INIT_RANDOM,
        "numpy": INIT_NUMPY_RANDOM,
        "pid": os.getpid(),
        "instance": INSTANCE,
    }


def slow(event, context):
    time.sleep(event.get("seconds", 0.3))
    return VERSION
