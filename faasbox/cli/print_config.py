"""`faasbox print`: the service's serverless.yml with its variables resolved, as
`serverless print` shows it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from faasbox.cli.service_options import load_one_service, service_options
from faasbox.errors import FaasboxError


@click.command("print")
@service_options
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
)
def print_config(
    directory: Path,
    config: Path | None,
    stage: str | None,
    region: str | None,
    params: dict[str, str],
    output_format: str,
) -> None:
    """Print the resolved serverless.yml (variables such as ${sls:stage} filled in)."""
    import yaml

    from faasbox.cli.main import _fail

    try:
        spec = load_one_service(directory, config, stage, region, params)
    except FaasboxError as e:
        _fail(e)
        return
    if output_format == "json":
        sys.stdout.write(json.dumps(spec.raw, indent=2, default=str) + "\n")
    else:
        sys.stdout.write(yaml.safe_dump(spec.raw, sort_keys=False, allow_unicode=True))
