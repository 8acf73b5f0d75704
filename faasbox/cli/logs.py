"""`faasbox logs`: a function's invocation logs, with the Serverless Framework's flags.

    faasbox logs -f NAME [--tail] [--startTime 10m|2026-12-01T10:00|1764583200000]
                 [--filter TEXT] [-n N]

Each line is printed after the time of its invocation in UTC (START at its start, END and
REPORT at its end). `--filter` keeps the lines that contain TEXT (case-sensitive, as
CloudWatch's filter patterns for a plain term). `-n` is how many invocations are shown
first (0: none, with --tail only the new ones).
"""

from __future__ import annotations

import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console

from faasbox.errors import FaasboxError, ServerUnreachable

err = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_URL = "http://127.0.0.1:8000"
RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Epoch numbers below this are seconds (the Framework's example, 1469705761), above it ms.
EPOCH_MS_FROM = 10**11
TAIL_WAIT_S = 20.0


def parse_start_time(text: str, now: float | None = None) -> float:
    """`--startTime` as epoch seconds: `30s`/`10m`/`2h`/`3d`/`1w` ago, an ISO date or date
    and time (UTC unless it names a zone), or an epoch number (seconds or milliseconds)."""
    value = text.strip()
    now = time.time() if now is None else now
    relative = RELATIVE.match(value.lower())
    if relative:
        return now - float(relative.group(1)) * UNIT_SECONDS[relative.group(2)]
    if value.isdigit():
        number = int(value)
        return number / 1000 if number >= EPOCH_MS_FROM else float(number)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a time: use 30m, 2h, 3d (ago), an ISO date such as "
            "2026-12-01 or 2026-12-01T10:00:00Z, or epoch milliseconds",
            param_hint="--startTime",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def stamp(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def timestamped_lines(record: dict[str, Any], text: str | None) -> list[str]:
    """The record's log lines, each after its time; only those containing `text`."""
    # The handler ran after the INIT of a cold start (and any wait for a worker, unknown).
    started = float(record["started_at"]) + float(record.get("init_ms") or 0) / 1000
    ended = started + float(record["duration_ms"]) / 1000
    begin, end = stamp(started), stamp(ended)
    lines = []
    finished = False
    for line in record["log"].splitlines():
        if line.startswith(("END RequestId:", '{"time"')) and not finished:
            # END (or, in JSON, the platform records after the output) closes the invocation.
            finished = line.startswith("END") or '"platform.report"' in line
        if text and text not in line:
            continue
        at = end if finished or line.startswith("REPORT RequestId:") else begin
        lines.append(f"{at}\t{line}")
    return lines


@click.command()
@click.option("-f", "--function", "function", required=True, help="The function's name.")
@click.option("-t", "--tail", is_flag=True, help="Keep printing new logs as they come.")
@click.option(
    "--startTime",
    "--start-time",
    "start_time",
    default=None,
    metavar="WHEN",
    help="Only invocations since WHEN: 10m, 2h, 3d (ago), an ISO date or time, epoch ms.",
)
@click.option(
    "--filter", "text", default=None, metavar="TEXT", help="Only the lines containing TEXT."
)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many invocations to show first (0: none; with --tail, only new ones).",
)
@click.option(
    "--url",
    envvar="FAASBOX_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The faasbox server to talk to.",
)
def logs(
    function: str, tail: bool, start_time: str | None, text: str | None, limit: int, url: str
) -> None:
    """Show the logs of a function's recent invocations."""
    from faasbox.cli.client import Client

    since_time = None if start_time is None else parse_start_time(start_time)
    client = Client(url)
    try:
        page = client.logs(function, since=0, limit=max(limit, 1), start_time=since_time, text=text)
        records = page["records"][-limit:] if limit else []
        since = max([r["seq"] for r in page["records"]], default=0) if limit else page["lastSeq"]
        while True:
            for record in records:
                for line in timestamped_lines(record, text):
                    click.echo(line)  # as written: tabs kept (Rich would expand them)
                since = max(since, record["seq"])
            sys.stdout.flush()
            if not tail:
                return
            page = client.logs(
                function, since=since, limit=0, wait=TAIL_WAIT_S, start_time=since_time, text=text
            )
            records = page["records"]
    except FaasboxError as e:
        err.print(f"[bold red]Error:[/] {e}")
        sys.exit(3 if isinstance(e, ServerUnreachable) else 1)
    except KeyboardInterrupt:
        return
