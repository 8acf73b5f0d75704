"""faasbox against the emulator people use today: the same handler file (bench/functions/peers:
a JSON hello, and a Pillow grayscale of a 640x480 JPEG) served by `faasbox serve` and by
serverless-offline 13 (serverless 3), in interleaved rounds, wrk at 1 and 8 connections; beside
them the floor of any server that runs the handler in a second process (bench/bare_roundtrip.py,
bench/binary_floor.py), which says how far above serverless-offline a design can get at all.

    .venv/bin/python -m bench.peers                 # 3 rounds of 5 s; rewrites RESULTS.md's section
    .venv/bin/python -m bench.peers --rounds 1 --seconds 2

The peers are installed with npm into build/peers (not committed) on the first run.
serverless-offline runs the Python handler in its own warm `python3` process per function
(JSON lines over a pipe); the venv's python3 is first on its PATH, so it has Pillow.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import (
    FUNCTIONS,
    WRK_SCRIPT,
    BareServer,
    PlainLoad,
    faasbox_server,
    free_port,
    plain_client,
    tail_cell,
)
from bench.image import tree_cpu
from bench.results import machine, update_section

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "build" / "peers"
HANDLERS = FUNCTIONS / "peers"
SAMPLE = ROOT / "examples" / "image-service" / "sample.jpg"
PACKAGES = ["serverless@3", "serverless-offline@13"]
# serverless-offline passes a body base64-encoded only for these types (it decodes image/jpeg
# as UTF-8, mangling it); faasbox's HTTP API base64-encodes every non-text type.
IMAGE_TYPE = "application/octet-stream"
COMMAND = ".venv/bin/python -m bench.peers"


def install_peers() -> Path:
    """serverless + serverless-offline in build/peers, with the handler file beside them."""
    cli = PEERS / "node_modules" / "serverless" / "bin" / "serverless.js"
    if not (PEERS / "node_modules" / "serverless-offline").is_dir() or not cli.exists():
        if shutil.which("npm") is None or shutil.which("node") is None:
            raise SystemExit("bench.peers needs Node.js and npm: sudo apt-get install -y npm")
        PEERS.mkdir(parents=True, exist_ok=True)
        (PEERS / "package.json").write_text('{"name": "faasbox-peers", "private": true}\n')
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", *PACKAGES], cwd=PEERS, check=True
        )
    for name in ("app.py", "serverless.yml"):
        shutil.copy(HANDLERS / name, PEERS / name)
    return cli


class ServerlessOffline:
    def __init__(self, cli: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "SLS_TELEMETRY_DISABLED": "1",
            "SLS_NOTIFICATIONS_MODE": "off",
            "SLS_DEPRECATION_DISABLE": "*",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            ["node", str(cli), "offline", "start", "--host", "127.0.0.1",
             "--httpPort", str(self.port), "--lambdaPort", str(free_port()),
             "--noPrependStageInUrl"],
            cwd=PEERS, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serverless-offline exited:\n{self.output()}")
            try:
                httpx.get(f"{self.url}/hello", timeout=30)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError(f"serverless-offline did not start:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        os.killpg(self.proc.pid, 15)  # its own session: node and its python3 children
        self.proc.wait(10)
        self.log.close()


@dataclass(frozen=True)
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int
    cpu_us: float = 0.0  # CPU time of the server's process tree per request


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(
    url: str, connections: int, seconds: float, body: Path | None = None, server_pid: int = 0
) -> Load:
    """wrk --latency; with `body`, POSTs that file (as IMAGE_TYPE). Counts non-2xx and socket
    errors instead of failing on them: they are part of the comparison."""
    threads = min(connections, 2)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    env = dict(os.environ)
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        if body is not None:
            script.write(WRK_SCRIPT)
            script.flush()
            command += ["-s", script.name]
            env.update(BENCH_BODY=str(body), BENCH_CONTENT_TYPE=IMAGE_TYPE)
        cpu_before = tree_cpu(server_pid)[1] if server_pid else 0.0
        out = subprocess.run(
            [*command, url], capture_output=True, text=True, check=True, env=env
        ).stdout
        cpu = tree_cpu(server_pid)[1] - cpu_before if server_pid else 0.0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Load(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        p99_ms=_ms(re.search(r"\s99%\s+(\S+)", out).group(1)),  # type: ignore[union-attr]
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(map(int, errors.groups())) if errors else 0,
        cpu_us=cpu / max(requests, 1) * 1e6,
    )


def check_answers(url: str, image: bytes) -> None:
    """Both servers must really run the handler: its JSON, and a decodable grayscale JPEG."""
    from PIL import Image

    hello = httpx.get(f"{url}/hello", timeout=30)
    assert hello.json() == {"message": "Hello"}, (url, hello.status_code, hello.text[:300])
    gray = httpx.post(
        f"{url}/gray", content=image, headers={"Content-Type": IMAGE_TYPE}, timeout=30
    )
    assert gray.status_code == 200, (url, gray.status_code, gray.text[:300])
    try:
        decoded = Image.open(io.BytesIO(gray.content))
    except OSError as e:
        raise AssertionError(f"{url}/gray did not answer a JPEG: {gray.content[:200]!r}") from e
    assert (decoded.mode, decoded.size) == ("L", (640, 480)), (url, decoded.mode, decoded.size)


def sample_jpeg(path: Path) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.open(SAMPLE).convert("RGB").resize((640, 480), Image.Resampling.BILINEAR).save(
        out, "JPEG", quality=90
    )
    path.write_bytes(out.getvalue())
    return out.getvalue()


LOADS = [("hello", 1), ("hello", 8), ("gray", 1), ("gray", 8)]


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def cell(runs: list[Load]) -> str:
    rps = statistics.median(r.rps for r in runs)
    p50 = statistics.median(r.p50_ms for r in runs)
    p99s = sorted(r.p99_ms for r in runs)
    p99 = f"{p99s[0]:.1f}" if len(p99s) == 1 else f"{p99s[0]:.1f}-{p99s[-1]:.1f}"
    return f"{rps:,.0f} ({p50:.2f} / {p99} ms)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args(argv or [])
    cli = install_peers()
    image_file = Path(tempfile.mkstemp(suffix=".jpg")[1])
    image = sample_jpeg(image_file)
    started_load = load_average()
    ours = faasbox_server([HANDLERS], "--quiet")
    peer = ServerlessOffline(cli)
    # The floors: the least any server that runs the handler in a second process costs
    # (bench/bare_roundtrip.py for the hello, bench/binary_floor.py for the grayscale).
    floors = {"hello": BareServer("bare_roundtrip.py"), "gray": BareServer("binary_floor.py")}
    results: dict[tuple[str, int, str], list[Load]] = {}
    tails: dict[tuple[int, str], list[PlainLoad]] = {}
    try:
        check_answers(ours.url, image)
        try:
            check_answers(peer.url, image)
        except AssertionError:
            print(peer.output()[-3000:], file=sys.stderr)
            raise
        for name, floor in floors.items():  # its workers (8 at c=8) start on first use
            wrk(f"{floor.url}/{name}", 8, 3, image_file if name == "gray" else None)
        for _ in range(args.rounds):
            for name, connections in LOADS:
                posted = image_file if name == "gray" else None
                assert ours.proc is not None
                floor = floors[name]
                sides = (
                    ("faasbox", ours.url, ours.proc.pid),
                    ("sls", peer.url, peer.proc.pid),
                    ("floor", floor.url, floor.proc.pid),
                )
                for side, url, pid in sides:
                    target = f"{url}/{name}"
                    wrk(target, connections, 1, posted)  # warm up this load's workers
                    run = wrk(target, connections, args.seconds, posted, pid)
                    results.setdefault((name, connections, side), []).append(run)
                    print(name, connections, side, run, flush=True)
                    if posted is None and side != "floor":  # the tail, by its own clock
                        plain = plain_client(target, connections, args.seconds)
                        tails.setdefault((connections, side), []).append(plain)
                        print(name, connections, side, plain, flush=True)
    finally:
        ours.stop()
        peer.stop()
        for floor in floors.values():
            floor.stop()
        image_file.unlink()
    rows = []
    for name, connections in LOADS:
        f = results[(name, connections, "faasbox")]
        s = results[(name, connections, "sls")]
        fl = results[(name, connections, "floor")]
        rps_s = statistics.median(r.rps for r in s)
        ratio = statistics.median(r.rps for r in f) / rps_s
        floor_ratio = statistics.median(r.rps for r in fl) / rps_s
        bad_f = sum(r.non_2xx + r.errors for r in f)
        bad_s = sum(r.non_2xx + r.errors for r in s)
        cpu_f, cpu_s, cpu_fl = (statistics.median(r.cpu_us for r in x) for x in (f, s, fl))
        rows.append(
            f"| {name} c={connections} | {cell(f)} | {cell(s)} | {cell(fl)} | "
            f"**{ratio:.2f}x** | {floor_ratio:.2f}x | {cpu_f:,.0f} / {cpu_s:,.0f} / "
            f"{cpu_fl:,.0f} (**{cpu_s / cpu_f:.2f}x**, {cpu_s / cpu_fl:.2f}x) | "
            f"{bad_f} / {bad_s} |"
        )
    tail_rows = [
        f"| hello c={connections} | {tail_cell(tails[(connections, 'faasbox')])} | "
        f"{tail_cell(tails[(connections, 'sls')])} |"
        for connections in (1, 8)
    ]
    versions = {
        pkg: _version(pkg) for pkg in ("serverless", "serverless-offline")
    }  # what npm installed
    body = f"""Targets (issue 16): hello >= 3x serverless-offline's req/s at c=1 and c=8, p99 at c=8
<= 3x its own p50; grayscale >= 1.5x serverless-offline at c=8.

| load | faasbox req/s (p50 / p99) | serverless-offline req/s (p50 / p99) \
| floor req/s (p50 / p99) | faasbox / sls | floor / sls \
| server CPU µs/req, faasbox / sls / floor (sls / faasbox, sls / floor) \
| non-2xx + socket errors, faasbox / sls |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

The tail, timed by a client with its own clock around each request (`bench/closed_loop.c`,
the same connections and seconds right after each hello run; wrk's own p99 at c=8 counts
more time than a run has, docs/performance.md): p99/p50, the median of the rounds and their
range, and the median p50 / p99:

| load | faasbox p99/p50 | serverless-offline p99/p50 |
|---|---|---|
{chr(10).join(tail_rows)}

The same handler file (bench/functions/peers/app.py: `hello` returns a JSON hello; `gray`
decodes the posted 640x480 JPEG (sent as `{IMAGE_TYPE}`, base64 in the payload 2.0 event),
converts it to grayscale with Pillow and answers the JPEG base64-encoded) on `httpApi` routes,
served by `faasbox serve --quiet` (default worker limits) and by serverless-offline
{versions["serverless-offline"]} (serverless {versions["serverless"]}, its warm Python
process per function). Both answers are checked first (the JSON, a decodable 640x480
grayscale JPEG). The floor: the least a server that runs the handler in a second process
costs, nothing of a platform in it: for the hello bench/bare_roundtrip.py (uvicorn, one frame
each way to a warm Python process per connection), for the grayscale bench/binary_floor.py
(the image's bytes in one frame to such a process, which builds the handler's base64 event,
calls the same `gray` and decodes its answer). wrk `-t1 -c1` / `-t2 -c8`,
{args.rounds} rounds of {args.seconds:g} s, every load alternating the three servers, each after
a 1 s warm-up; req/s and p50 the median of the rounds, p99 (wrk's) the range over the rounds.
Server CPU µs/req: the CPU time of each server's process tree (faasbox: the gateway, its
zygotes and workers; serverless-offline: node and its Python processes) over the requests
wrk counted, median of the rounds: what the throughput ratio would be on cores that ran
nothing else, and far steadier than wall time on a machine shared with other work.
Load average (1 min) {started_load} at the start, {load_average()} at the end.
Machine: {machine()}.
Command: `{COMMAND}`"""
    update_section("Against serverless-offline", body)
    print(body)


def _version(package: str) -> str:
    import json

    manifest = PEERS / "node_modules" / package / "package.json"
    return str(json.loads(manifest.read_text())["version"])


if __name__ == "__main__":
    main(sys.argv[1:])
