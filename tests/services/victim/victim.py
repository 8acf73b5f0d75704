import os

MARKER = "victim-marker.txt"


def victim(event, context):
    with open(f"/tmp/{MARKER}", "w") as f:
        f.write("the victim's secret")
    return {"uid": os.getuid(), "task_root": os.environ["LAMBDA_TASK_ROOT"]}
