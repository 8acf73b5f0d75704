import os

VERSION = 1


def echo(event, context):
    custom = context.client_context.custom if context.client_context else None
    return {"event": event, "custom": custom, "version": VERSION, "stage": os.environ["STAGE_NAME"]}
