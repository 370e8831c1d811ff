"""The gateway's own CPU cost per request, Veche's and @apollo/gateway's, under wrk.

    .venv/bin/python gateway/bench/bench_wrk.py [--seconds 10] [--warmup 2] [--connections 16]

Three light subgraphs (light_subgraph.py, each its own process, answering
repeated fetches from memory) sit behind both gateways at once: Veche's
(`python -m veche_gateway`) and @apollo/gateway in Apollo Server on Node
(gateway/bench/apollo, `npm ci` when node_modules is missing). For each case
both gateways must first give the same response; then `wrk` (a C load
generator, not sharing an interpreter with anything measured) keeps 16
connections busy against one gateway at a time, after a warm-up, and the
gateway's CPU time (utime + stime from /proc/PID/stat) is read before and
after. Reported per case and gateway: req/s, gateway CPU ms per request, the
subgraphs' CPU ms per request beside it, and Veche / Apollo ratios.

Cases: one subgraph (a list of items), a two-subgraph entity join (the list,
then one batched `_entities` fetch for its owners), and a three-level chain
(items -> their owners -> the owners' teams). Loopback only; every phase is
bounded in time. Everything shares one machine, so req/s move with whatever
else runs; CPU per request is the figure to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from children import APOLLO, child, npm_ci

from veche_stack.processes import free_port
from veche_stack.testing import WRK_POST_LUA, cpu_seconds
from veche_stack.wrk import run_wrk

HERE = Path(__file__).parent
SUBGRAPHS = ("catalog", "people", "teams")

CASES = {
    "single": "query Single { items(first: 10) { id name price } }",
    "join": "query Join { items(first: 10) { id name owner { id name email } } }",
    "chain": "query Chain { items(first: 10) { id name owner { name team { title size } } } }",
}


def post(url: str, query: str, timeout: float = 10) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def wait_for(url: str, what: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{what} exited with {process.returncode}; see its log")
        try:
            if "data" in post(url, "{ __typename }", timeout=2):
                return
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}: {last!r}")


@dataclass
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]


@contextmanager
def started(
    name: str, command: list[str], env: dict[str, str], cwd: Path, logs: Path, url: str
) -> Iterator[Server]:
    with child(command, env, cwd, logs / f"{name}.log") as process:
        yield Server(name, url, process)


@dataclass
class Measured:
    case: str
    gateway: str
    requests: int
    seconds: float
    bad: int
    cpu: float  # the gateway's CPU seconds in the measured window
    subgraph_cpu: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / max(self.requests, 1)

    @property
    def subgraph_ms(self) -> float:
        return 1000 * self.subgraph_cpu / max(self.requests, 1)


def measure(
    case: str,
    gateway: Server,
    subgraphs: list[Server],
    script: Path,
    connections: int,
    seconds: float,
    warmup: float,
) -> Measured:
    if warmup > 0:
        run_wrk(gateway.url, script, connections, warmup)
    before = cpu_seconds(gateway.process.pid)
    before_sub = sum(cpu_seconds(s.process.pid) for s in subgraphs)
    run = run_wrk(gateway.url, script, connections, seconds)
    cpu = cpu_seconds(gateway.process.pid) - before
    subgraph_cpu = sum(cpu_seconds(s.process.pid) for s in subgraphs) - before_sub
    return Measured(
        case,
        gateway.name,
        run.requests,
        run.seconds,
        run.bad,
        cpu,
        subgraph_cpu,
        run.p50_ms,
        run.p99_ms,
    )


def table(results: list[Measured], connections: int, seconds: float) -> str:
    lines = [
        f"wrk, {connections} connections, {seconds:.0f} s per case after warm-up; CPU is the "
        "gateway process's utime+stime per request (subgraphs' beside it)",
        "",
        f"{'case':<7} {'gateway':<16} {'req/s':>7} {'CPU ms/req':>10} {'subgr ms/req':>12}"
        f" {'p50 ms':>7} {'p99 ms':>7} {'bad':>4}",
    ]
    by = {(r.case, r.gateway): r for r in results}
    for case in dict.fromkeys(r.case for r in results):
        for name in ("veche", "apollo"):
            r = by.get((case, name))
            if r is None:
                continue
            label = "Veche" if name == "veche" else "@apollo/gateway"
            lines.append(
                f"{case:<7} {label:<16} {r.rate:>7.0f} {r.cpu_ms:>10.2f} {r.subgraph_ms:>12.2f}"
                f" {r.p50_ms:>7.1f} {r.p99_ms:>7.1f} {r.bad:>4}"
            )
        if (case, "veche") in by and (case, "apollo") in by:
            v, a = by[(case, "veche")], by[(case, "apollo")]
            lines.append(
                f"{'':<7} {'Veche / Apollo':<16} {v.rate / a.rate:>7.2f} {v.cpu_ms / a.cpu_ms:>10.2f}"
            )
    return "\n".join(lines)


def run(seconds: float, warmup: float, connections: int, cases: list[str]) -> None:
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (Debian package wrk)")
    npm_ci()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        logs = Path(tmp)
        began = time.monotonic()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        subgraphs: list[Server] = []
        for name in SUBGRAPHS:
            port = free_port()
            url = f"http://127.0.0.1:{port}/graphql"
            command = [sys.executable, str(HERE / "light_subgraph.py"), name, str(port)]
            subgraphs.append(stack.enter_context(started(name, command, env, HERE, logs, url)))
        for server in subgraphs:
            wait_for(server.url, server.name, server.process)
        pairs = ",".join(f"{s.name}={s.url}" for s in subgraphs)

        port = free_port()
        veche_env = {
            **env,
            "SUBGRAPHS": pairs,
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "POLL_INTERVAL_SECONDS": "0",
        }
        veche = stack.enter_context(
            started(
                "veche",
                [sys.executable, "-m", "veche_gateway"],
                veche_env,
                HERE,
                logs,
                f"http://127.0.0.1:{port}/graphql",
            )
        )
        port = free_port()
        apollo_env = {
            **env,
            "SUBGRAPHS": pairs,
            "PORT": str(port),
            "NODE_ENV": "production",
            "APOLLO_TELEMETRY_DISABLED": "1",  # no metrics export, no cloud metadata probes
        }
        apollo = stack.enter_context(
            started(
                "apollo",
                ["node", "serve.mjs"],
                apollo_env,
                APOLLO,
                logs,
                f"http://127.0.0.1:{port}/",
            )
        )
        try:
            wait_for(veche.url, "Veche's gateway", veche.process)
            wait_for(apollo.url, "@apollo/gateway", apollo.process)
        except SystemExit:
            for name in ("veche", "apollo"):
                print((logs / f"{name}.log").read_text()[-3000:], file=sys.stderr)
            raise
        print(f"subgraphs and both gateways up in {time.monotonic() - began:.0f} s", flush=True)

        results: list[Measured] = []
        for case in cases:
            query = CASES[case]
            ours, theirs = post(veche.url, query), post(apollo.url, query)
            if ours != theirs or "errors" in ours:
                sys.exit(
                    f"{case}: the gateways answer differently:\n  veche  {ours}\n  apollo {theirs}"
                )
            if json.dumps(ours) != json.dumps(theirs):
                sys.exit(f"{case}: same values, different field order:\n  {ours}\n  {theirs}")
            script = logs / f"{case}.lua"
            script.write_text(WRK_POST_LUA.format(body=json.dumps(json.dumps({"query": query}))))
            for gateway in (veche, apollo):
                result = measure(case, gateway, subgraphs, script, connections, seconds, warmup)
                print(
                    f"  {case:<7} {gateway.name:<7} {result.rate:7.0f} req/s"
                    f" {result.cpu_ms:6.2f} ms CPU/req",
                    flush=True,
                )
                results.append(result)
    print()
    print(table(results, connections, seconds))
    if any(r.bad for r in results):
        sys.exit("some responses were not a clean 200 (see the bad column)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per case")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument(
        "--case", action="append", choices=list(CASES), help="run only these cases (repeatable)"
    )
    args = parser.parse_args()
    run(args.seconds, args.warmup, args.connections, args.case or list(CASES))


if __name__ == "__main__":
    main()
