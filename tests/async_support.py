"""The collector of the async tests: a small HTTP server on loopback that functions under
test POST a report to for each run (functions reach it through their event's `collector`)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Collector:
    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self.received_at: list[float] = []  # time.monotonic() of each report
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                doc = json.loads(self.rfile.read(length))
                with collector._lock:
                    collector.reports.append(doc)
                    collector.received_at.append(time.monotonic())
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.reports)

    def runs_of(self, key: str) -> dict[Any, int]:
        """How many reports each value of `key` (an event's `n`) has."""
        counts: dict[Any, int] = {}
        for report in self.snapshot():
            if key in report:
                counts[report[key]] = counts.get(report[key], 0) + 1
        return counts

    def records(self) -> list[dict[str, Any]]:
        """The destination records a sink reported."""
        return [r["record"] for r in self.snapshot() if "record" in r]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
