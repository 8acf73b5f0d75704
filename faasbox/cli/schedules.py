"""`faasbox schedules`: the schedule rules a running server fires, with their next fire time."""

from __future__ import annotations

import click
from rich.console import Console

from faasbox.cli.output import print_json, print_rows
from faasbox.errors import FaasboxError

out = Console(highlight=False, soft_wrap=True)


@click.command("schedules")
@click.option("-f", "--function", "function", default=None, help="Only this function's rules.")
@click.option("--json", "as_json", is_flag=True, help="Print the rules as JSON.")
@click.option("--url", envvar="FAASBOX_URL", default="http://127.0.0.1:8000", show_default=True)
def schedules(function: str | None, as_json: bool, url: str) -> None:
    """List the schedule rules (rate/cron) and when each fires next (UTC)."""
    from faasbox.cli.client import Client
    from faasbox.cli.main import _fail

    try:
        rules = Client(url).schedules()
    except FaasboxError as e:
        _fail(e)
        return
    if function:
        # The deployed name, or its serverless.yml key (names end in -KEY).
        rules = [
            r for r in rules if r["function"] == function or r["function"].endswith(f"-{function}")
        ]
    if as_json:
        print_json(rules)
        return
    rows = [
        [
            r["name"],
            r["function"],
            r["expression"],
            "enabled" if r["enabled"] else "disabled",
            r["nextFire"] or "-",
            r["lastFire"] or "-",
        ]
        for r in rules
    ]
    print_rows(out, ["rule", "function", "schedule", "state", "next fire", "last fire"], rows)
