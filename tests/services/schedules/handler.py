import json


def show(event, context):
    print("EVENT " + json.dumps(event, sort_keys=True))
    return event
