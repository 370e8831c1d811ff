"""Many subscribers of one poll's results on one gateway while votes arrive.

    .venv/bin/python gateway/bench/bench_subscriptions.py [--subscribers 1000,10000]
        [--rate 50] [--seconds 20] [--interval-ms 500] [--unshared]

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
- CPU per delivered update: utime + stime (/proc/PID/stat) of the gateway, the
  polls service and its store (the SecantusDB process) over the voting phase
  and the settling after it, less what the same number of votes cost with no
  subscribers (a first phase, printed), divided by the updates the subscribers
  received. `sockets/sub`: the gateway's open sockets per subscriber (2 = the
  client's and an upstream one each).
- `direct p50/p99`: the same latency for one more subscriber connected straight
  to the polls service (no gateway): the floor the service's own pipeline sets
  (outbox relay, broker, the fold into the counters, the push interval).

Every subscriber uses the admin's token (a manager sees a poll's results
whether or not they voted), so by default their subscriptions are identical and
the gateway shares one upstream subscription among them (shared.py: same
document, variables and token). `--unshared` turns that off
(SHARED_SUBSCRIPTION_FIELDS empty): one upstream subscription per client
subscription, which is what N different users get, since pollResults depends
on the viewer and is never shared between users. The polls service pushes a
poll's update at most every `--interval-ms` (POLLS_LIVE_INTERVAL_MS, its
default 500), which bounds latency from below.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
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
    """One subscription; (arrival time, totalVotes) of each update.
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
            seen.append((now, total))
            ready.set()


async def clients(
    url: str, direct_url: str, token: str, poll_id: str, count: int
) -> dict[str, Any]:
    """`count` subscribers through `url`, and one more straight to the polls service at
    `direct_url` (the last); prints `ready` once each has its first update, and returns
    what they saw, and why any ended early, on SIGTERM."""
    seen: list[list[tuple[float, int]]] = [[] for _ in range(count + 1)]
    readies = [asyncio.Event() for _ in range(count + 1)]
    opening = asyncio.Semaphore(OPEN_AT_ONCE)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def one(i: int) -> None:
        async with opening:
            to = url if i < count else direct_url
            task = asyncio.create_task(subscriber(to, token, poll_id, seen[i], readies[i]))
            await readies[i].wait()
        await task

    tasks = [asyncio.create_task(one(i)) for i in range(count + 1)]
    await asyncio.gather(*(r.wait() for r in readies))
    failed = [t for t in tasks if t.done()]
    if failed:
        print(f"failed: {len(failed)} subscribers, e.g. {failed[0].exception()!r}", flush=True)
    else:
        print("ready", flush=True)
    await stop.wait()
    ended = [repr(t.exception()) for t in tasks if t.done() and t.exception() is not None]
    for task in tasks:
        task.cancel()
    return {"seen": seen, "ended": ended}


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
    direct_p50_ms: float  # one subscriber straight to the polls service, no gateway
    direct_p99_ms: float
    rss_per_subscriber_kib: float
    sockets_per_subscriber: float  # the gateway's: the client's and the upstream one
    gateway_cpu_us: float  # per delivered update
    polls_cpu_us: float
    store_cpu_us: float


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
    urls: tuple[str, str], token: str, poll_id: str, count: int, out: Path
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "clients", *urls, token, poll_id, str(count), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_ready(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if line != "ready":
        process.kill()
        sys.exit(f"the subscribers did not all subscribe: {line or process.wait()}")


@dataclass
class Voting:
    """One voting phase: the votes' response moments, the rate achieved, the refusals
    and the CPU seconds the gateway and polls spent meanwhile (and in the settling)."""

    committed: list[float]
    achieved: float
    failed: list[str]
    gateway_cpu: float
    polls_cpu: float
    store_cpu: float  # the polls service's embedded store (SecantusDB)

    @property
    def cast(self) -> int:
        return len(self.committed) + len(self.failed)


async def voting(
    stack: Stack, voters: list[GraphQLClient], rate: float, seconds: float, poll: Any
) -> Voting:
    pids = [_pid(stack, name) for name in ("gateway", "polls", "mongo-polls")]
    before = [cpu_seconds(pid) for pid in pids]
    committed, achieved, failed = await cast_votes(voters, poll[0], poll[1], rate, seconds)
    await asyncio.sleep(SETTLE_SECONDS)
    used = [cpu_seconds(pid) - was for pid, was in zip(pids, before, strict=True)]
    return Voting(committed, achieved, failed, *used)


def sockets(pid: int) -> int:
    """The process's open sockets (each client WebSocket, each upstream one, ...)."""
    found = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            found += os.readlink(fd).startswith("socket:")
    return found


async def measure_one(
    stack: Stack,
    admin: GraphQLClient,
    voters: list[GraphQLClient],
    count: int,
    args: argparse.Namespace,
    baseline: Voting,
) -> Row:
    poll = await open_poll(admin, f"Живые итоги {count}")
    gateway_pid = _pid(stack, "gateway")
    rss_before, sockets_before = rss_kib(gateway_pid), sockets(gateway_pid)
    ws_url = stack.url("gateway").replace("http://", "ws://")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "seen.json"
        assert admin.token is not None
        direct = stack.url("polls").replace("http://", "ws://")
        process = start_clients((ws_url, direct), admin.token, poll[0], count, out)
        try:
            await asyncio.wait_for(asyncio.to_thread(wait_ready, process), CONNECT_WAIT)
            await asyncio.sleep(1.0)  # first updates sent; buffers settle
            rss_after, sockets_after = rss_kib(gateway_pid), sockets(gateway_pid)
            phase = await voting(stack, voters, args.rate, args.seconds, poll)
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 60)
        finally:
            if process.poll() is None:
                process.kill()
        saw = orjson.loads(await asyncio.to_thread(out.read_bytes))
    seen: list[list[tuple[float, int]]] = saw["seen"]
    own = [max(0.0, s) for s in latencies(phase.committed, [seen.pop()])]  # polls alone
    own = own or [float("nan")]
    if saw["ended"]:
        print(f"  N={count}: {len(saw['ended'])} subscriptions ended, e.g. {saw['ended'][0]}")
    if phase.failed:
        print(f"  N={count}: {len(phase.failed)} votes refused, e.g. {phase.failed[0]}", flush=True)
    samples = latencies(phase.committed, seen)
    delivered = sum(len(s) - 1 for s in seen)  # the first update came before the votes
    missing = len(phase.committed) * count - len(samples)
    if missing:
        print(f"  N={count}: {missing} (vote, subscriber) pairs never saw the vote", flush=True)
    clamped = [max(0.0, s) for s in samples] or [float("nan")]
    # the votes' own cost (the baseline's, per vote) taken out: what the updates cost
    votes_gateway = baseline.gateway_cpu / baseline.cast * phase.cast
    votes_polls = baseline.polls_cpu / baseline.cast * phase.cast
    votes_store = baseline.store_cpu / baseline.cast * phase.cast
    return Row(
        subscribers=count,
        votes=len(phase.committed),
        achieved_rate=phase.achieved,
        delivered=delivered,
        p50_ms=percentile(clamped, 0.5) * 1000,
        p99_ms=percentile(clamped, 0.99) * 1000,
        max_ms=max(clamped) * 1000,
        early=sum(1 for s in samples if s < 0) / max(1, len(samples)),
        direct_p50_ms=percentile(own, 0.5) * 1000,
        direct_p99_ms=percentile(own, 0.99) * 1000,
        rss_per_subscriber_kib=(rss_after - rss_before) / count,
        sockets_per_subscriber=(sockets_after - sockets_before) / count,
        gateway_cpu_us=max(0.0, phase.gateway_cpu - votes_gateway) / max(1, delivered) * 1e6,
        polls_cpu_us=max(0.0, phase.polls_cpu - votes_polls) / max(1, delivered) * 1e6,
        store_cpu_us=max(0.0, phase.store_cpu - votes_store) / max(1, delivered) * 1e6,
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
        try:
            body = await voter.post(VOTE, {"p": poll_id, "a": answers})
        except httpx.HTTPError as exc:  # e.g. every pooled connection waiting on polls
            failed.append(repr(exc))
            return
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


def print_table(rows: list[Row], args: argparse.Namespace, baseline: Voting) -> None:
    print(
        f"\npollResults subscribers on one gateway: votes at {args.rate:.0f}/s for"
        f" {args.seconds:.0f} s, POLLS_LIVE_INTERVAL_MS={args.interval_ms},"
        f" {'one upstream per client' if args.unshared else 'one shared upstream'}; the votes alone"
        f" cost gateway {baseline.gateway_cpu / baseline.cast * 1e3:.1f} ms, polls"
        f" {baseline.polls_cpu / baseline.cast * 1e3:.1f} ms and its store"
        f" {baseline.store_cpu / baseline.cast * 1e3:.1f} ms CPU each (taken out below)"
    )
    print(
        f"{'subscribers':>11} {'votes ok':>8} {'votes/s':>7} {'updates':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'max ms':>7} {'early':>6} {'direct p50/p99':>14} "
        f"{'RSS KiB/sub':>11} {'sockets/sub':>11} "
        f"{'gw CPU us/upd':>13} {'polls CPU us/upd':>16} {'store CPU us/upd':>16}"
    )
    for r in rows:
        print(
            f"{r.subscribers:>11} {r.votes:>8} {r.achieved_rate:>7.1f} {r.delivered:>8} "
            f"{r.p50_ms:>7.0f} {r.p99_ms:>7.0f} {r.max_ms:>7.0f} {r.early:>6.1%} "
            f"{f'{r.direct_p50_ms:.0f}/{r.direct_p99_ms:.0f}':>14} "
            f"{r.rss_per_subscriber_kib:>11.1f} {r.sockets_per_subscriber:>11.1f} "
            f"{r.gateway_cpu_us:>13.0f} {r.polls_cpu_us:>16.0f} {r.store_cpu_us:>16.0f}",
            flush=True,
        )


async def run(counts: list[int], args: argparse.Namespace) -> None:
    votes = int(args.rate * args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        config = StackConfig.for_tests(Path(tmp))
        config.extra_env.update(
            {
                "VECHE_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}.",
                "USERS_REGISTRATIONS_PER_CLIENT": str(votes * 2),
                "USERS_ACCESS_TOKEN_MINUTES": "120",  # outlives the bench
                "POLLS_LIVE_INTERVAL_MS": str(args.interval_ms),
                "MAX_LIVE_CONNECTIONS_PER_CLIENT": str(max(counts) + 10),
                **({"SHARED_SUBSCRIPTION_FIELDS": ""} if args.unshared else {}),
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
            # each phase's votes go to a poll of its own: every voter votes once per poll
            baseline = await voting(
                stack, voters, args.rate, args.seconds, await open_poll(admin, "Без подписчиков")
            )
            rows = []
            for count in counts:
                rows.append(await measure_one(stack, admin, voters, count, args, baseline))
                print_table(rows[-1:], args, baseline)
            print_table(rows, args, baseline)
            await gateway.aclose()
        finally:
            await asyncio.to_thread(stack.stop)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "clients":
        url, direct_url, token, poll_id, count, out = sys.argv[2:8]
        saw = asyncio.run(clients(url, direct_url, token, poll_id, int(count)))
        Path(out).write_bytes(orjson.dumps(saw))
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
    parser.add_argument(
        "--unshared", action="store_true", help="one upstream subscription per client"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.subscribers.split(",")]
    asyncio.run(run(counts, args))


if __name__ == "__main__":
    main()
