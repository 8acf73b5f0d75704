"""`faasbox package` and `faasbox layer build`: the zips a deploy uploads, made on their own.

`faasbox package [DIR]` writes into DIR/.serverless/ the zips `faasbox deploy` would upload
(the service's, each function packaged on its own, each layer's), as `serverless package`
does; any of them deploys with the AWS CLI too (`aws lambda create-function --zip-file
fileb://.serverless/<service>.zip`, `aws lambda publish-layer-version --zip-file ...`).
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from faasbox.cli.output import print_progress
from faasbox.errors import ConfigError, FaasboxError

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(error: FaasboxError) -> None:
    err.print(f"[bold red]Error:[/] {error}")
    raise SystemExit(2 if isinstance(error, ConfigError) else 1)


@click.command("package")
@click.argument("directory", default=".", type=click.Path(path_type=Path))
@click.option("--stage", default=None, help="The stage (${opt:stage}) to package for.")
@click.option("--region", default=None, help="The region (${opt:region}) to package for.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A ${param:KEY} value, over the file's params:; repeat for more.",
)
def package(
    directory: Path, stage: str | None, region: str | None, params: tuple[str, ...]
) -> None:
    """Write the zips a deploy of DIRECTORY would upload into its .serverless/ folder."""
    from faasbox.config import load_service
    from faasbox.dependencies import default_cache_dir, dependency_files
    from faasbox.registry.packaging import plan, write_packages

    options = {k: v for k, v in {"stage": stage, "region": region}.items() if v}
    values: dict[str, str] = {}
    for item in params:
        key, equals, text = item.partition("=")
        if not equals or not key.strip():
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint="--param")
        values[key.strip()] = text
    try:
        spec = load_service(directory, options, params=values)
        for warning in spec.warnings:
            err.print(f"[yellow]Warning:[/] {warning}")
        installed = dependency_files(spec, default_cache_dir(), print_progress)
        written = write_packages(spec, plan(spec, installed))
    except FaasboxError as e:
        _fail(e)
        return
    for path in written:
        out.print(f"  {path.relative_to(spec.root)}  ({path.stat().st_size} bytes)")
    out.print(f"Packaged [bold]{spec.name}[/] into {spec.root / '.serverless'}")


@click.group("layer")
def layer() -> None:
    """Build layers."""


@layer.command("build")
@click.option(
    "-r",
    "--requirements",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The requirements file to install into the layer's python/.",
)
@click.option(
    "-o",
    "--output",
    default="layer.zip",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The layer zip to write.",
)
def build(requirements: Path, output: Path) -> None:
    """Build a Python layer zip (python/...) from a requirements file, with pip."""
    from faasbox.registry.layer_build import build_python_layer

    try:
        count = build_python_layer(requirements, output, lambda line: err.print(line, markup=False))
    except FaasboxError as e:
        _fail(e)
        return
    out.print(f"Built [bold]{output}[/] ({count} files, {output.stat().st_size} bytes)")
