"""`faasbox deploy function -f NAME`: deploy one function of a service (its code and
configuration) and leave the service's other functions as they are, as
`serverless deploy function` does; and the `deploy` group that also takes
`faasbox deploy [DIRECTORY]`, the whole service."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from faasbox.cli.endpoints import endpoint_lines
from faasbox.cli.output import print_progress
from faasbox.cli.service_options import load_one_service, service_options, url_option
from faasbox.errors import ConfigError, FaasboxError

if TYPE_CHECKING:
    from faasbox.config import ServiceSpec
    from faasbox.dependencies import Progress
    from faasbox.registry.models import FunctionConfig

out = Console(highlight=False, soft_wrap=True)
SERVICE_COMMAND = "service"  # `deploy [DIRECTORY]`, the default


class DeployGroup(click.Group):
    """`deploy function ...` runs that subcommand; anything else deploys a whole service."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # `deploy --help` alone is the group's help, which lists both forms.
        if args not in (["--help"], ["-h"]) and (not args or args[0] not in self.commands):
            args = [SERVICE_COMMAND, *args]
        return super().parse_args(ctx, args)


def deploy_states(result: dict[str, Any], existed: set[str]) -> list[tuple[str, str]]:
    """Each deployed function with what the deploy did to it: created, updated, unchanged."""
    states = []
    for fn in result["deployed"]:
        name = fn["name"]
        state = (
            "created"
            if name not in existed
            else ("updated" if name in result["changed"] else "unchanged")
        )
        states.append((name, state))
    return states


def upload_args(
    spec: ServiceSpec, only: str | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """The zips of a deploy of `spec` (of its function `only`), as `faasbox package` writes
    them: the shared package, the functions packaged on their own, the service's layers;
    its dependencies installed first (cached in the user's cache)."""
    from faasbox.dependencies import default_cache_dir, dependency_files
    from faasbox.registry.packaging import plan
    from faasbox.registry.service_layers import ServiceLayer

    installed = dependency_files(spec, default_cache_dir(), progress or print_progress)
    packages = plan(spec, installed)
    own = {
        name: src.zip_bytes()
        for name, src in packages.functions.items()
        if only is None or name == only
    }
    needs_shared = packages.service is not None and (only is None or only not in own)
    return {
        "code_zip": packages.service.zip_bytes() if needs_shared and packages.service else None,
        "packages": own,
        "layers": [
            (ServiceLayer.of(spec.layers[key]).to_dict(), src.zip_bytes())
            for key, src in packages.layers.items()
        ],
    }


def print_deploy_result(result: dict[str, Any], existed: set[str], url: str) -> None:
    for name, state in deploy_states(result, existed):
        out.print(f"  {name}: {state}", markup=False)
    for name in result["removed"]:
        out.print(f"  {name}: removed", markup=False)
    endpoints = endpoint_lines([fn["config"] for fn in result["deployed"]], url)
    if endpoints:
        out.print("endpoints:", markup=False)
        for line in endpoints:
            out.print(f"  {line}", markup=False)


def function_config(spec: ServiceSpec, function: str) -> FunctionConfig:
    from faasbox.registry.services import function_configs

    configs = function_configs(spec)
    found = next((c for c in configs if function in (c.key, c.name)), None)
    if found is None:
        raise ConfigError(
            str(spec.file),
            f"functions.{function}",
            "no such function; this service has " + ", ".join(str(c.key) for c in configs),
        )
    return found


@click.command("function")
@click.option("-f", "--function", "function", required=True, help="The function's key or name.")
@service_options
@click.option("--force", is_flag=True, help="Move a name or route another service owns.")
@url_option
def deploy_function(
    function: str,
    directory: Path,
    config: Path | None,
    stage: str | None,
    region: str | None,
    params: dict[str, str],
    force: bool,
    url: str,
) -> None:
    """Deploy one function of the service in DIRECTORY; its other functions stay as they are."""
    from faasbox.cli.client import Client
    from faasbox.cli.main import _fail

    try:
        spec = load_one_service(directory, config, stage, region, params)
        fn_config = function_config(spec, function)
        client = Client(url)
        existed = {fn["name"] for fn in client.functions()}
        # No service name: the deploy then removes none of the service's other functions.
        result = client.deploy(
            None, [fn_config.to_dict()], **upload_args(spec, only=fn_config.name), force=force
        )
    except FaasboxError as e:
        _fail(e)
        return
    print_deploy_result(result, existed, url)
    out.print(f"Deployed function [bold]{fn_config.name}[/] of {spec.name} ({spec.stage}) to {url}")
