"""Reports the import environment it runs in, as a function author would look at it."""

import importlib
import sys

# What was imported before this module's own imports: the worker's doing, not the function's.
LOADED_AT_INIT = sorted(
    {m.partition(".")[0] for m in sys.modules if not m.startswith("_")}
    - set(sys.stdlib_module_names)
)


def _importable(name):
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def handler(event, context):
    import boto3
    import botocore

    return {
        "sys_path": sys.path,
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
        "importable": {n: _importable(n) for n in event.get("names", [])},
        "loaded_at_init": LOADED_AT_INIT,
    }
