import humanize
import pydantic
import tabulate


def where(event, context):
    return {
        "pydantic": pydantic.VERSION,
        "pydantic_file": pydantic.__file__,
        "tabulate_file": tabulate.__file__,
        "size": humanize.naturalsize(3_000_000),
    }
