def hello(name):
    return f"hello from the greeting layer, {name}"
