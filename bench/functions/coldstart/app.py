import numpy
import PIL.Image


def handler(event, context):
    return {"numpy": numpy.__version__, "pillow": PIL.__version__}
