"""What a function with layers sees: its layers' modules, programs, libraries and /opt."""

import json
import os
import shutil
import subprocess
import sys

import greeting  # from the service's own layer (python/)
import humanize  # from requirements.txt, installed at deploy
import shared_text  # from the layer referenced by ARN (python/lib/python3.x/site-packages)
import tabulate  # from requirements.txt, installed at deploy


def probe(event, context):
    opt = os.path.dirname(os.path.dirname(greeting.__file__))  # <opt>/python/greeting.py
    tool = shutil.which("greeting-tool")
    try:
        with open(os.path.join(opt, "written-by-the-function"), "w") as f:
            f.write("x")
        opt_writable = True
    except OSError:
        opt_writable = False
    answer = {
        "greeting": greeting.hello("layers"),
        "requirements": {
            "tabulate": tabulate.__version__,
            "humanize": humanize.naturalsize(3_000_000),
            "from": os.path.dirname(tabulate.__file__),
        },
        "shared": shared_text.TEXT,
        "opt": opt,
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
        "sys_path": sys.path,
        "tool": tool,
        "tool_output": subprocess.run([tool], capture_output=True, text=True).stdout
        if tool
        else None,
        "ld_library_path": os.environ.get("LD_LIBRARY_PATH", ""),
        "library_present": os.path.isfile(os.path.join(opt, "lib", "libgreeting.txt")),
        "opt_writable": opt_writable,
        "packaged_docs": os.path.exists(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "docs")),
        "packaged_layer": os.path.exists(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "layers")),
    }
    return {"statusCode": 200, "body": json.dumps(answer)} if "rawPath" in event else answer
