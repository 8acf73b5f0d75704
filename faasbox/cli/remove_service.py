"""`faasbox remove`: remove a whole deployed service (every function of it in its stage), as
`serverless remove` does. `faasbox rm NAME` removes one function."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from faasbox.cli.service_options import (
    load_one_service,
    service_functions,
    service_options,
    url_option,
)
from faasbox.errors import FaasboxError, ResourceNotFound

out = Console(highlight=False, soft_wrap=True)


@click.command("remove")
@service_options
@url_option
def remove_service(
    directory: Path,
    config: Path | None,
    stage: str | None,
    region: str | None,
    params: dict[str, str],
    url: str,
) -> None:
    """Remove the service in DIRECTORY (all its functions, routes and schedules)."""
    from faasbox.cli.client import Client
    from faasbox.cli.main import _fail

    try:
        spec = load_one_service(directory, config, stage, region, params)
        client = Client(url)
        deployed = service_functions(client.functions(), spec.name, spec.stage)
        if not deployed:
            raise ResourceNotFound(
                f"Service {spec.name} (stage {spec.stage}) is not deployed on {url}: "
                "nothing to remove"
            )
        for fn in deployed:
            client.remove(fn["name"])
            out.print(f"  {fn['name']}: removed", markup=False)
    except FaasboxError as e:
        _fail(e)
        return
    out.print(f"Removed [bold]{spec.name}[/] ({spec.stage}) from {url}")
