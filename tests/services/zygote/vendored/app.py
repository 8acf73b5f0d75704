import numpy


def which(event, context):
    return {"version": numpy.__version__, "file": numpy.__file__}
