import time


def hello(event, context):
    if event.get("rawPath") == "/linger":
        time.sleep(0.5)
    return {"message": "Hello"}
