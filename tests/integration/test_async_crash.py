"""kill -9 loses no accepted event: at random moments while 50 events are queued or running,
the server is killed, restarted, and every event that got its 202 runs; only an event that
was running at the kill may run twice."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path
from typing import Any

from tests.async_support import Collector
from tests.support import SERVICES, RunningServer, lambda_client, wait_until

RECORDER = "asynctest-dev-recorder"  # reservedConcurrency: 2
EVENTS = 50
TRIALS = 5


class Sender(threading.Thread):
    """Sends the trial's events one by one, noting those accepted (202), until the server
    stops answering."""

    def __init__(self, aws: Any, collector: Collector, first: int) -> None:
        super().__init__(daemon=True)
        self.aws, self.collector, self.first = aws, collector, first
        self.accepted: list[int] = []

    def run(self) -> None:
        for n in range(self.first, self.first + EVENTS):
            event = {"collector": self.collector.url, "n": n, "sleep": 0.02}
            try:
                response = self.aws.invoke(
                    FunctionName=RECORDER, InvocationType="Event", Payload=json.dumps(event)
                )
            except Exception:  # the server was killed: this one was not accepted
                return
            if response["StatusCode"] == 202:
                self.accepted.append(n)


def test_sigkill_at_random_moments_loses_no_accepted_event(data_dir: Path) -> None:
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    collector = Collector()
    accepted: list[int] = []
    allowed_duplicates = 0
    server = RunningServer([SERVICES / "async"], data_dir).start()
    try:
        for trial in range(TRIALS):
            aws = lambda_client(server.url, server.credentials)
            sender = Sender(aws, collector, trial * 1000)
            ran_before = len(collector.snapshot())
            # The moment: after some events are accepted (sending), or after some ran.
            if rng.random() < 0.5:
                k = rng.randrange(0, EVENTS)
                sender.start()
                wait_until(lambda s=sender, k=k: len(s.accepted) >= k, 60, f"{k} events accepted")
            else:
                k = rng.randrange(0, EVENTS // 2)
                sender.start()
                wait_until(
                    lambda b=ran_before, k=k: len(collector.snapshot()) - b >= k,
                    60,
                    f"{k} events run",
                )
            assert server.proc is not None
            server.proc.kill()
            server.proc.wait()
            sender.join(timeout=60)
            accepted += sender.accepted
            # At most reservedConcurrency (2) events were running at the kill.
            allowed_duplicates += 2
            server = RunningServer([SERVICES / "async"], data_dir).start()

        wait_until(
            lambda: set(accepted) <= set(collector.runs_of("n")),
            240,
            "every accepted event to run after the restarts",
        )
        runs = collector.runs_of("n")
        missing = set(accepted) - set(runs)
        assert not missing, f"seed {seed}: accepted events never ran: {sorted(missing)}"
        # Each kill can repeat only the runs it interrupted (an event running at two kills
        # runs three times, as it would on Lambda).
        duplicated = {n: c for n, c in runs.items() if c > 1}
        extra_runs = sum(c - 1 for c in duplicated.values())
        assert extra_runs <= allowed_duplicates, (
            f"seed {seed}: more runs repeated than were running at the kills: {duplicated}"
        )
    finally:
        server.stop()
        collector.close()
