"""`faasbox info`: a deployed service as the Serverless Framework's `info` shows it: service,
stage, region, its functions, endpoints and API keys."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from faasbox.cli.endpoints import endpoint_lines
from faasbox.cli.output import print_json
from faasbox.cli.service_options import (
    load_one_service,
    service_functions,
    service_options,
    url_option,
)
from faasbox.errors import FaasboxError, ResourceNotFound

out = Console(highlight=False, soft_wrap=True)


@click.command("info")
@service_options
@click.option("--json", "as_json", is_flag=True, help="Print the information as JSON.")
@url_option
def info(
    directory: Path,
    config: Path | None,
    stage: str | None,
    region: str | None,
    params: dict[str, str],
    as_json: bool,
    url: str,
) -> None:
    """Show a deployed service: stage, region, functions, endpoints and API keys."""
    from faasbox.cli.client import Client
    from faasbox.cli.main import _fail

    try:
        spec = load_one_service(directory, config, stage, region, params)
        deployed = service_functions(Client(url).functions(), spec.name, spec.stage)
        if not deployed:
            raise ResourceNotFound(
                f"Service {spec.name} (stage {spec.stage}) is not deployed on {url}; "
                "deploy it with 'faasbox deploy'"
            )
    except FaasboxError as e:
        _fail(e)
        return
    configs = [fn["config"] for fn in deployed]
    api_keys = sorted({k for c in configs for k in c.get("api_gateway", {}).get("apiKeys", [])})
    endpoints = endpoint_lines(configs, url)
    functions = {str(c.get("key") or c["name"]): str(c["name"]) for c in configs}
    if as_json:
        print_json(
            {
                "service": spec.name,
                "stage": spec.stage,
                "region": spec.region,
                "url": url,
                "apiKeys": api_keys,
                "endpoints": endpoints,
                "functions": functions,
            }
        )
        return
    out.print(f"service: {spec.name}\nstage: {spec.stage}\nregion: {spec.region}", markup=False)
    out.print("api keys:" + ("" if api_keys else " none"), markup=False)
    for name in api_keys:
        out.print(f"  {name} (its value was shown once, by the deploy that made it)", markup=False)
    out.print("endpoints:" + ("" if endpoints else " none"), markup=False)
    for line in endpoints:
        out.print(f"  {line}", markup=False)
    out.print("functions:", markup=False)
    for key, name in functions.items():
        out.print(f"  {key}: {name}", markup=False)
