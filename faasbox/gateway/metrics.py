"""GET /metrics: the invoker's metrics (faasbox.execution.metrics) in Prometheus's text format.

Signed like the management API (SigV4 with a faasbox access key), unless the server runs
with `--metrics-public` (a Prometheus scraper does not sign) or without auth.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from faasbox.execution.metrics import InvocationMetrics
from faasbox.gateway.http import Send, respond

PATH = "/metrics"


async def serve_metrics(send: Send, metrics: InvocationMetrics) -> None:
    await respond(send, 200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST.encode())
