"""`faasbox async`: where asynchronous invocations are (queued, running, retrying,
succeeded, failed) and where their records went."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.table import Table

from faasbox.errors import FaasboxError

if TYPE_CHECKING:
    from faasbox.cli.client import Client

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
DEFAULT_URL = "http://127.0.0.1:8000"  # as faasbox.cli.main's

FINISHED = ("succeeded", "failed")
FOLLOW_POLL_S = 0.5


def describe(status: dict[str, Any]) -> str:
    """One line: state, attempts, error and destination."""
    text = f"{status['state']}"
    if status.get("attempts"):
        text += f" after {status['attempts']} failed attempt(s)"
    if status.get("lastError"):
        text += f" (last error: {status['lastError']})"
    if status.get("destination"):
        text += f"; sent to {status['destination']}"
    return text


def print_async_state(client: Client, request_id: str) -> None:
    """After `invoke -t Event`: where it is now, and how to follow it."""
    try:
        status = client.async_invocation(request_id)
    except FaasboxError:
        return  # an older server: the 202 said enough
    out.print(f"State: {describe(status)}  (follow: faasbox async {request_id} --wait)")


@click.command("async")
@click.argument("request_id", required=False)
@click.option("-f", "--function", "function", default=None, help="Only this function's.")
@click.option("-n", "--limit", default=20, show_default=True, help="How many invocations.")
@click.option("--wait", is_flag=True, help="With REQUEST_ID: follow it until it has finished.")
@click.option(
    "--url",
    envvar="FAASBOX_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The faasbox server to talk to.",
)
def async_command(
    request_id: str | None, function: str | None, limit: int, wait: bool, url: str
) -> None:
    """Show where async invocations are: one by REQUEST_ID, else the latest."""
    from faasbox.cli.client import Client

    client = Client(url)
    try:
        if request_id is None:
            _print_table(client.async_invocations(function, limit))
            return
        status = client.async_invocation(request_id)
        out.print(f"{request_id} {status['function']}: {describe(status)}")
        last = describe(status)
        while wait and status["state"] not in FINISHED:
            time.sleep(FOLLOW_POLL_S)
            status = client.async_invocation(request_id)
            if describe(status) != last:
                last = describe(status)
                out.print(f"{request_id} {status['function']}: {last}")
    except FaasboxError as e:
        err.print(f"[bold red]Error:[/] {e}")
        raise SystemExit(1) from None
    if status["state"] == "failed":
        raise SystemExit(1)


def _print_table(listing: dict[str, Any]) -> None:
    table = Table("request id", "function", "state", "attempts", "destination", "created")
    for item in listing["invocations"]:
        created = time.strftime("%H:%M:%S", time.localtime(item["createdAt"]))
        table.add_row(
            item["requestId"],
            item["function"],
            item["state"],
            str(item["attempts"]),
            item.get("destination") or "",
            created,
        )
    out.print(table)
    counts = ", ".join(f"{n} {state}" for state, n in sorted(listing["counts"].items()))
    out.print(counts or "no async invocations")
