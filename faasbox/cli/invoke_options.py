"""`faasbox invoke --context JSON --raw`, as `serverless invoke` takes them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click


def client_context_header(text: str | None) -> str | None:
    """--context as Lambda's X-Amz-Client-Context: base64 of a JSON object."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as e:
        raise click.BadParameter(f"expected a JSON object, got {text!r} ({e})") from None
    if not isinstance(value, dict):
        raise click.BadParameter(f"expected a JSON object, got {text!r}")
    return base64.b64encode(json.dumps(value).encode()).decode()


def raw_payload(data: str | None, path: Path | None) -> bytes:
    """--raw: the data as a JSON string, whatever it holds."""
    if data is not None and path is not None:
        raise click.UsageError("give either --data or --path, not both")
    text = path.read_text(encoding="utf-8", errors="replace") if path is not None else data or ""
    return json.dumps(text).encode()
