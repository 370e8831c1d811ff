"""Many subscribers of one poll's results on one gateway while votes arrive.

    .venv/bin/python gateway/bench/bench_subscriptions.py [--subscribers 1000,10000]
        [--rate 50] [--seconds 20] [--interval-ms 500]

One stack (users, polls and the gateway as `make run` runs them: embedded
stores, the machine's RabbitMQ). For each N: a fresh poll; N subscribers of
`subscription { pollResults(pollId) { totalVotes } }`, one WebSocket each
(graphql-transport-ws), all in one client process of their own (this script's
`clients` mode: asyncio and `websockets`), so the gateway's CPU is not shared
with theirs in one interpreter; then votes cast through the gateway at `--rate`
per second for `--seconds` (voters from veche_stack.ballots, registered first).

Measured per N:
- update latency: from a vote's commit, taken as the moment its castVote
  response arrived (the commit happens before the response, so this proxy
  under-states latency by the response's way back, ~ms on loopback), to a
  subscriber receiving a totalVotes that includes it. Votes are ranked by that
  moment: the k-th vote is included once a subscriber sees totalVotes >= k
  (k votes were committed by then). One sample per (vote, subscriber); an update
  that came before the response counts as 0 ms. p50/p99/max.
- gateway RSS per subscriber: VmRSS of the gateway process (/proc) before the
  subscribers connect and once all have their first update.
- CPU per delivered update: utime + stime (/proc/PID/stat) of the gateway and of
  the polls service over the voting phase, divided by the updates the
  subscribers received in it.

Every subscriber uses the admin's token (a manager sees a poll's results
whether or not they voted): the gateway still opens one upstream subscription
per client subscription, as it does for N different users. The polls service
pushes a poll's update at most every `--interval-ms` (POLLS_LIVE_INTERVAL_MS;
the service's default is 500), which bounds latency from below.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from veche_stack.ballots import VOTE, open_poll, registered_voters, signed_in_admin
from veche_stack.stack import SERVICES, Stack, StackConfig
from veche_stack.testing import GraphQLClient, cpu_seconds, percentile

PROTOCOL = Subprotocol("graphql-transport-ws")
RESULTS = "subscription($p: ID!) { pollResults(pollId: $p) { totalVotes } }"
OPEN_AT_ONCE = 50  # subscribers connecting at the same time (the client process)
SETTLE_SECONDS = 5.0  # after the last vote, for the last updates to arrive
CONNECT_WAIT = 300.0


# ─────────────────────── the subscribers' process (`clients`) ───────────────────────


async def subscriber(
    url: str, token: str, poll_id: str, seen: list[tuple[float, int]], ready: asyncio.Event
) -> None:
    """One subscription; (arrival time, totalVotes) each time the count changes.
    `ready` is set at the first update, or when it failed before one."""
    try:
        await _subscription(url, token, poll_id, seen, ready)
    finally:
        ready.set()


async def _subscription(
    url: str, token: str, poll_id: str, seen: list[tuple[float, int]], ready: asyncio.Event
) -> None:
    async with connect(url, subprotocols=[PROTOCOL], max_queue=None, ping_interval=None) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(orjson.dumps(init).decode())
        await ws.recv()
        payload = {"query": RESULTS, "variables": {"p": poll_id}}
        await ws.send(orjson.dumps({"id": "1", "type": "subscribe", "payload": payload}).decode())
        async for raw in ws:
            now = time.time()
            message = orjson.loads(raw)
            if message.get("type") != "next":
                raise RuntimeError(f"subscription ended: {message}")
            total = message["payload"]["data"]["pollResults"]["totalVotes"]
            if not seen or seen[-1][1] != total:
                seen.append((now, total))
            ready.set()


async def clients(url: str, token: str, poll_id: str, count: int) -> list[Any]:
    """`count` subscribers; prints `ready` once each has its first update, and returns
    what they saw on SIGTERM."""
    seen: list[list[tuple[float, int]]] = [[] for _ in range(count)]
    readies = [asyncio.Event() for _ in range(count)]
    opening = asyncio.Semaphore(OPEN_AT_ONCE)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def one(i: int) -> None:
        async with opening:
            task = asyncio.create_task(subscriber(url, token, poll_id, seen[i], readies[i]))
            await readies[i].wait()
        await task

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    await asyncio.gather(*(r.wait() for r in readies))
    failed = [t for t in tasks if t.done()]
    if failed:
        print(f"failed: {len(failed)} subscribers, e.g. {failed[0].exception()!r}", flush=True)
    else:
        print("ready", flush=True)
    await stop.wait()
    for task in tasks:
        task.cancel()
    return seen


# ─────────────────────────────── the bench itself ───────────────────────────────


@dataclass
class Row:
    subscribers: int
    votes: int
    achieved_rate: float
    delivered: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    early: float  # share of samples whose update came before the vote's response
    rss_per_subscriber_kib: float
    gateway_cpu_us: float  # per delivered update
    polls_cpu_us: float


def _pid(stack: Stack, name: str) -> int:
    pid = stack.processes[name].pid
    if pid is None:
        sys.exit(f"{name} is not running")
    return pid


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def latencies(committed: list[float], seen: list[list[tuple[float, int]]]) -> list[float]:
    """Per (vote, subscriber): from the k-th commit to the first totalVotes >= k seen."""
    order = sorted(committed)
    out: list[float] = []
    for updates in seen:
        j = 0
        for k, at in enumerate(order, start=1):
            while j < len(updates) and updates[j][1] < k:
                j += 1
            if j == len(updates):
                break  # never seen: counted as missing by the caller
            out.append(updates[j][0] - at)
    return out


def start_clients(
    url: str, token: str, poll_id: str, count: int, out: Path
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "clients", url, token, poll_id, str(count), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != "ready":
        process.kill()
        sys.exit(f"the subscribers did not all subscribe: {line or process.wait()}")


async def measure_one(
    stack: Stack,
    admin: GraphQLClient,
    voters: list[GraphQLClient],
    count: int,
    rate: float,
    seconds: float,
) -> Row:
    poll_id, answers = await open_poll(admin, f"Живые итоги {count}")
    gateway_pid = _pid(stack, "gateway")
    polls_pid = _pid(stack, "polls")
    rss_before = rss_kib(gateway_pid)
    ws_url = stack.url("gateway").replace("http://", "ws://")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seen.json"
        assert admin.token is not None
        process = start_clients(ws_url, admin.token, poll_id, count, out)
        await asyncio.wait_for(asyncio.to_thread(wait_ready, process), CONNECT_WAIT)
        await asyncio.sleep(1.0)  # first updates sent; buffers settle
        rss_after = rss_kib(gateway_pid)
        cpu_before = cpu_seconds(gateway_pid), cpu_seconds(polls_pid)
        committed, achieved, failed = await cast_votes(voters, poll_id, answers, rate, seconds)
        await asyncio.sleep(SETTLE_SECONDS)
        cpu_after = cpu_seconds(gateway_pid), cpu_seconds(polls_pid)
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
        seen: list[list[tuple[float, int]]] = orjson.loads(await asyncio.to_thread(out.read_bytes))
    if failed:
        print(f"  N={count}: {len(failed)} votes refused, e.g. {failed[0]}", flush=True)
    samples = latencies(committed, seen)
    delivered = sum(len(s) - 1 for s in seen)  # the first update came before the votes
    missing = len(committed) * count - len(samples)
    if missing:
        print(f"  N={count}: {missing} (vote, subscriber) pairs never saw the vote", flush=True)
    clamped = [max(0.0, s) for s in samples]
    return Row(
        subscribers=count,
        votes=len(committed),
        achieved_rate=achieved,
        delivered=delivered,
        p50_ms=percentile(clamped, 0.5) * 1000,
        p99_ms=percentile(clamped, 0.99) * 1000,
        max_ms=max(clamped) * 1000,
        early=sum(1 for s in samples if s < 0) / len(samples),
        rss_per_subscriber_kib=(rss_after - rss_before) / count,
        gateway_cpu_us=(cpu_after[0] - cpu_before[0]) / max(1, delivered) * 1e6,
        polls_cpu_us=(cpu_after[1] - cpu_before[1]) / max(1, delivered) * 1e6,
    )


async def cast_votes(
    voters: list[GraphQLClient], poll_id: str, answers: Any, rate: float, seconds: float
) -> tuple[list[float], float, list[str]]:
    """Each voter votes once, `rate` a second: the moments the responses came, the
    rate achieved and the errors of the votes refused."""
    total = min(len(voters), int(rate * seconds))
    committed: list[float] = []
    failed: list[str] = []

    async def cast(voter: GraphQLClient) -> None:
        body = await voter.post(VOTE, {"p": poll_id, "a": answers})
        if body.get("errors"):
            failed.append(str(body["errors"][0].get("message")))
        else:
            committed.append(time.time())

    started = time.monotonic()
    tasks = []
    for i, voter in enumerate(voters[:total]):
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        tasks.append(asyncio.create_task(cast(voter)))
    await asyncio.gather(*tasks)
    return committed, total / (time.monotonic() - started), failed


def print_table(rows: list[Row], interval_ms: int) -> None:
    print(f"\npollResults subscribers on one gateway (POLLS_LIVE_INTERVAL_MS={interval_ms})")
    head = (
        f"{'subscribers':>11} {'votes':>6} {'votes/s':>7} {'updates':>9} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'early':>6} {'RSS KiB/sub':>11} "
        f"{'gw CPU us/upd':>13} {'polls CPU us/upd':>16}"
    )
    print(head)
    for r in rows:
        print(
            f"{r.subscribers:>11} {r.votes:>6} {r.achieved_rate:>7.1f} {r.delivered:>9} "
            f"{r.p50_ms:>7.0f} {r.p99_ms:>7.0f} {r.max_ms:>7.0f} {r.early:>6.1%} "
            f"{r.rss_per_subscriber_kib:>11.1f} {r.gateway_cpu_us:>13.0f} {r.polls_cpu_us:>16.0f}"
        )


async def run(counts: list[int], rate: float, seconds: float, interval_ms: int) -> None:
    votes = int(rate * seconds)
    with tempfile.TemporaryDirectory() as tmp:
        config = StackConfig.for_tests(Path(tmp))
        config.extra_env.update(
            {
                "VECHE_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}.",
                "USERS_REGISTRATIONS_PER_CLIENT": str(votes * 2),
                "USERS_ACCESS_TOKEN_MINUTES": "120",  # outlives the bench
                "POLLS_LIVE_INTERVAL_MS": str(interval_ms),
                "MAX_LIVE_CONNECTIONS_PER_CLIENT": str(max(counts) + 10),
                "LOG_LEVEL": "WARNING",
            }
        )
        stack = Stack(config)
        stack.services = [s for s in SERVICES if s.name in ("users", "polls")]
        await asyncio.to_thread(stack.start)
        try:
            gateway = GraphQLClient(stack.url("gateway"))
            admin = await signed_in_admin(stack, gateway)
            began = time.monotonic()
            voters = await registered_voters(gateway, votes)
            print(f"{votes} voters registered in {time.monotonic() - began:.0f} s", flush=True)
            rows = []
            for count in counts:
                # each N's votes go to its own poll: every voter votes once per poll
                rows.append(await measure_one(stack, admin, voters, count, rate, seconds))
                print_table(rows[-1:], interval_ms)
            print_table(rows, interval_ms)
            await gateway.aclose()
        finally:
            await asyncio.to_thread(stack.stop)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "clients":
        url, token, poll_id, count, out = sys.argv[2:7]
        seen = asyncio.run(clients(url, token, poll_id, int(count)))
        Path(out).write_bytes(orjson.dumps(seen))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", default="1000", help="comma-separated N, e.g. 1000,10000")
    parser.add_argument("--rate", type=float, default=50.0, help="votes per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--interval-ms", type=int, default=500, help="POLLS_LIVE_INTERVAL_MS (its default)"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.subscribers.split(",")]
    asyncio.run(run(counts, args.rate, args.seconds, args.interval_ms))


if __name__ == "__main__":
    main()
