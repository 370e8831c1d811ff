"""The per-request CPU floor of a subgraph: what one request costs the service process.

    .venv/bin/python bench/bench_floor.py [--seconds 10] [--warmup 2] [--connections 16]
                                          [--py-spy DIR]

Starts its own SecantusDB and the polls service (`python -m veche_polls`, as
`make run` does, metrics on) as child processes, uses the RabbitMQ at AMQP_URL,
serves the token keys itself, and publishes 12 polls. Then `wrk` (a C load
generator in its own process, so no Python client shares the measured
interpreter) keeps the connections busy for each case after a warm-up, and the
service's CPU time (utime + stime from /proc/PID/stat) is read before and after.
Cases: `{ __typename }` (the floor every service shares: HTTP, middleware,
GraphQL pipeline) and one realistic anonymous read (`polls(first: 10)` with
its questions and options). Prints req/s and CPU ms per request, raw and net
of what the service's background loops (relay, folder, closer) spend idle;
CPU per request is the figure to compare, as rates move with whatever else runs.
With `--py-spy DIR`, each case's samples are written there as folded stacks
(`pip install py-spy`). Skips, saying why, without wrk or a broker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from veche_kit.auth import Principal
from veche_stack.broker import amqp_answers
from veche_stack.processes import Process, free_port
from veche_stack.stack import DEFAULT_AMQP_URL, mongo_url
from veche_stack.testing import WRK_POST_LUA, TokenMint, cpu_seconds, serve
from veche_stack.wrk import run_wrk

CASES = {
    "typename": "{ __typename }",
    "polls(first: 10)": (
        "query Polls { polls(first: 10) { totalCount pageInfo { hasNextPage endCursor } "
        "edges { cursor node { id title description status startsAt endsAt pointsReward "
        "acceptingVotes audience { districtIds verifiedOnly } "
        "questions { id text kind maxChoices options { id text } } } } } }"
    ),
}
CREATE = "mutation($input: CreatePollInput!) { createPoll(input: $input) { id } }"
PUBLISH = "mutation($id: ID!) { publishPoll(id: $id) { id } }"
QUESTIONS = [
    {"text": "Что построить?", "kind": "SINGLE_CHOICE", "options": ["Парк", "Парковку", "Школу"]},
    {"text": "Насколько срочно?", "kind": "SCALE", "scaleMin": 1, "scaleMax": 5},
]


@dataclass
class Measured:
    case: str
    requests: int
    seconds: float
    bad: int
    cpu: float
    idle: float  # the service's CPU seconds per second with no request (its background loops)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / max(self.requests, 1)

    @property
    def net_ms(self) -> float:
        """CPU per request less what the background loops spent meanwhile."""
        return 1000 * max(self.cpu - self.idle * self.seconds, 0.0) / max(self.requests, 1)


def _py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        sys.exit("--py-spy needs py-spy (pip install py-spy)")
    command = [spy, "record", "-p", str(pid), "-d", str(max(1, round(seconds))), "-r", "200"]
    return subprocess.Popen(
        [*command, "-f", "raw", "-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def idle_cpu(pid: int, seconds: float = 5) -> float:
    """The service's CPU seconds per second while nothing asks it anything."""
    before = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / seconds


async def measure(
    case: str, url: str, pid: int, args: argparse.Namespace, work: Path, idle: float
) -> Measured:
    script = work / f"{len(case)}.lua"
    body = json.dumps({"query": CASES[case]})
    script.write_text(WRK_POST_LUA.format(body=json.dumps(body)))
    await asyncio.to_thread(run_wrk, url, script, args.connections, args.warmup)
    spy = None
    if args.py_spy:
        name = re.sub(r"\W+", "_", case).strip("_")
        spy = _py_spy(pid, args.seconds, Path(args.py_spy) / f"{name}.txt")
    before = cpu_seconds(pid)
    run = await asyncio.to_thread(run_wrk, url, script, args.connections, args.seconds)
    cpu = cpu_seconds(pid) - before
    if spy is not None:
        spy.wait(timeout=60)
    return Measured(case, run.requests, run.seconds, run.bad, cpu, idle)


async def publish_polls(url: str, mint: TokenMint, count: int) -> None:
    official = Principal("o-floor", frozenset({"CITIZEN", "OFFICIAL"}), department_id="roads")
    headers = {"authorization": f"Bearer {mint.token(official)}"}
    async with httpx.AsyncClient(timeout=30, headers=headers) as http:
        for i in range(count):
            poll = {"title": f"Опрос {i}", "description": "Что важнее?", "questions": QUESTIONS}
            answer = await http.post(url, json={"query": CREATE, "variables": {"input": poll}})
            poll_id = answer.json()["data"]["createPoll"]["id"]
            answer = await http.post(url, json={"query": PUBLISH, "variables": {"id": poll_id}})
            assert answer.json()["data"]["publishPoll"]["id"] == poll_id, answer.text


def _processes(work: Path, amqp: str, jwks_base: str) -> tuple[Process, Process, int]:
    mongo_port, port = free_port(), free_port()
    mongo = Process(
        "mongo-floor",
        [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(mongo_port),
         "--storage-path", str(work / "mongo"), "--log-level", "WARNING"],
        work / "mongo.log",
    )  # fmt: skip
    environment = {
        "POLLS_PORT": str(port),
        "POLLS_MONGO_URL": mongo_url(mongo_port),
        "POLLS_MONGO_DB": "bench_floor",
        "AMQP_URL": amqp,
        "VECHE_NAMESPACE": f"floor-{uuid.uuid4().hex[:8]}.",
        "VECHE_JWKS_URL": f"{jwks_base}/.well-known/jwks.json",
        "VECHE_DATA_DIR": str(work),
        "LOG_LEVEL": "WARNING",
    }
    service = Process("polls-floor", [sys.executable, "-m", "veche_polls"], work / "polls.log", environment)  # fmt: skip
    mongo.start()
    mongo.wait_port(mongo_port)
    return mongo, service, port


def table(results: list[Measured], args: argparse.Namespace) -> str:
    lines = [
        f"wrk, {args.connections} connections, {args.seconds:.0f} s per case after "
        f"{args.warmup:.0f} s of warm-up; CPU is the polls process's utime+stime; net of "
        f"idle less its background loops ({1000 * results[0].idle:.1f} ms/s when idle)",
        "",
        f"| {'case':<18} | {'req/s':>7} | {'CPU ms/request':>14} | {'net of idle':>11} | bad |",
        f"|{'-' * 20}|{'-' * 9}|{'-' * 16}|{'-' * 13}|-----|",
    ]
    for r in results:
        lines.append(
            f"| {r.case:<18} | {r.rate:>7.0f} | {r.cpu_ms:>14.3f} | {r.net_ms:>11.3f} | {r.bad:>3} |"
        )
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    amqp = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    if shutil.which("wrk") is None or not amqp_answers(amqp):
        print(f"skipped: needs wrk (Debian package wrk) and a RabbitMQ at {amqp}")
        return
    work = Path(tempfile.mkdtemp(prefix="veche-bench-floor-"))
    mint = TokenMint()
    mongo: Process | None = None
    service: Process | None = None
    try:
        async with serve(mint.jwks_app()) as jwks_base:
            mongo, service, port = _processes(work, amqp, jwks_base)
            service.start()
            await asyncio.to_thread(service.wait_http, f"http://127.0.0.1:{port}/ready")
            url = f"http://127.0.0.1:{port}/graphql"
            await publish_polls(url, mint, 12)
            assert service.pid is not None
            idle = await idle_cpu(service.pid)
            results = [await measure(case, url, service.pid, args, work, idle) for case in CASES]
        print(table(results, args))
    finally:
        for process in (service, mongo):
            if process is not None:
                process.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--py-spy", metavar="DIR", help="write each case's profile here")
    asyncio.run(main(parser.parse_args()))
