"""Tables and JSON for list verbs: a rich table on a terminal; plain aligned columns, never
truncated, when the output is piped; JSON with --json."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def print_progress(line: str) -> None:
    """A line of a dependency install (pip's, npm's), as it runs, dimmed on stdout."""
    Console(highlight=False, soft_wrap=True).print(
        f"  {line}", style="dim", markup=False, highlight=False
    )


def print_rows(
    console: Console, headers: Sequence[str], rows: Sequence[Sequence[str]], title: str = ""
) -> None:
    if console.is_terminal:
        table = Table(*headers, title=title or None)
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    # Piped: whole values in columns a program can split on runs of spaces.
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for line in [headers, *rows]:
        text = "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True))
        sys.stdout.write(text.rstrip() + "\n")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
