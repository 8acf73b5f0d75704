"""The options of verbs that act on one service: DIRECTORY or --config FILE, --stage,
--region, --param (as `serverless info|remove|print` take them), and loading that service."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from faasbox.config import ServiceSpec

F = TypeVar("F", bound=Callable[..., Any])


def _params(ctx: click.Context, option: click.Parameter, values: tuple[str, ...]) -> Any:
    from faasbox.cli.main import _parse_params  # main imports this module's users

    return _parse_params(ctx, option, values)


def service_options(f: F) -> F:
    for decorator in reversed(
        [
            click.argument("directory", default=".", type=click.Path(path_type=Path)),
            click.option(
                "-c",
                "--config",
                "config",
                type=click.Path(path_type=Path),
                default=None,
                help="The service's serverless.yml (instead of DIRECTORY).",
            ),
            click.option("--stage", default=None, help="The stage (${opt:stage})."),
            click.option("--region", default=None, help="The region (${opt:region})."),
            click.option(
                "--param",
                "params",
                multiple=True,
                callback=_params,
                metavar="KEY=VALUE",
                help="A ${param:KEY} value, over the file's params:; repeat for more.",
            ),
        ]
    ):
        f = decorator(f)
    return f


def url_option(f: F) -> F:
    return click.option(
        "--url",
        envvar="FAASBOX_URL",
        default="http://127.0.0.1:8000",
        show_default=True,
        help="The faasbox server to talk to.",
    )(f)


def load_one_service(
    directory: Path,
    config: Path | None,
    stage: str | None,
    region: str | None,
    params: dict[str, str],
) -> ServiceSpec:
    """The one service of --config FILE, else of DIRECTORY (a usage error if it holds more)."""
    from faasbox.cli.main import _cli_options, _warn, find_services

    specs = find_services(config or directory, _cli_options(stage, region), params)
    if len(specs) != 1:
        names = ", ".join(s.name for s in specs)
        raise click.UsageError(
            f"{directory} holds {len(specs)} services ({names}); name one folder or serverless.yml"
        )
    _warn(specs[0])
    return specs[0]


def service_functions(
    functions: list[dict[str, Any]], service: str, stage: str
) -> list[dict[str, Any]]:
    """The deployed functions (as the management API lists them) of `service` in `stage`."""
    return [
        fn
        for fn in functions
        if fn["config"].get("service") == service and fn["config"].get("stage") == stage
    ]
