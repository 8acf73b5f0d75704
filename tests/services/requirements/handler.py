import humanize
import pydantic
import tabulate


def versions(event, context):
    return {
        "pydantic": pydantic.VERSION,
        "pydantic_file": pydantic.__file__,
        "table": tabulate.tabulate([[1, 2]], headers=["a", "b"], tablefmt="plain"),
        "size": humanize.naturalsize(3_000_000),
    }
