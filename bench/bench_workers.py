"""castVote through the gateway with 1 and then 2 workers per service, in one run.

    .venv/bin/python bench/bench_workers.py [--seconds 10] [--connections 16]

For each worker count, starts users, polls and the gateway as `make run` does with
`VECHE_WORKERS` set (embedded stores, the machine's RabbitMQ; the gateway given
every instance, `a|b`), registers voters, opens polls and lets `wrk` cast each
(voter, poll) ballot once through the gateway as fast as its connections go, with
the machinery of `bench_votes.py`. It waits until every accepted vote is credited
(summing the users instances' applied events), checks nothing was lost or doubled
(ballots stored = ledger credits, one per ballot), reads the CPU every process
spent, and prints votes/s, latency and CPU per vote for both, and the ratio of
the two rates. Skipped without `wrk` (Debian package wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from bench_votes import (
    APPLIED,
    QUIET_SECONDS,
    VOTERS,
    cpu_now,
    credited,
    idle_rates,
    lua_script,
    pids,
)

from veche_stack.ballots import Ballot, ballots, registered_voters, signed_in_admin
from veche_stack.stack import SERVICES, Stack, StackConfig
from veche_stack.testing import GraphQLClient
from veche_stack.wrk import WrkRun, run_wrk

USERS = next(s for s in SERVICES if s.name == "users")
BALLOTS_PER_SECOND = 300  # more than this machine casts: wrk never runs out


@dataclass(frozen=True)
class Result:
    workers: int
    run: WrkRun
    accepted: int
    cpu_ms_per_vote: float  # every process of the stack but RabbitMQ, net of idle

    @property
    def rate(self) -> float:
        return (self.run.requests - self.run.bad) / max(self.run.seconds, 1e-9)


async def applied_everywhere(stack: Stack) -> float:
    """Events applied by every users instance's consumer (their /metrics)."""
    total = 0.0
    async with httpx.AsyncClient(timeout=10) as http:
        for name in stack.instances(USERS):
            text = (await http.get(stack.url(name, "/metrics"))).text
            match = APPLIED.search(text)
            total += float(match.group(1)) if match else 0.0
    return total


async def settled(stack: Stack, before: float, at_least: int) -> None:
    """Until the users instances have applied `at_least` more events and then nothing
    more for QUIET_SECONDS, or 120 s."""
    deadline, last, quiet = time.monotonic() + 120, -1.0, 0
    while time.monotonic() < deadline and quiet < QUIET_SECONDS / 0.1:
        applied = await applied_everywhere(stack) - before
        quiet = quiet + 1 if applied >= at_least and applied == last else 0
        last = applied
        await asyncio.sleep(0.1)


async def saturated(
    stack: Stack, name: str, batch: list[Ballot], seconds: float, connections: int
) -> tuple[WrkRun, int, dict[str, float], float]:
    """One wrk run: its report, the ballots stored, CPU seconds by process, the window."""
    processes = pids(stack)
    script = Path(stack.config.data_dir) / f"{name}.lua"
    script.write_text(lua_script(batch, min(2, connections), 0))
    applied = await applied_everywhere(stack)
    before, began = cpu_now(processes), time.monotonic()
    run = await asyncio.to_thread(run_wrk, stack.url("gateway"), script, connections, seconds)
    await settled(stack, applied, run.requests - run.bad)
    window, after = time.monotonic() - began, cpu_now(processes)
    stored, credits, distinct = await credited(stack, list(dict.fromkeys(b.poll_id for b in batch)))
    answered = run.requests - run.bad
    if not (stored == credits == distinct and answered <= stored <= answered + connections):
        sys.exit(f"{name}: {answered} votes answered, {stored} ballots, {credits} credits")
    return run, stored, {n: after[n] - before[n] for n in processes}, window


async def measure(stack: Stack, workers: int, args: argparse.Namespace) -> Result:
    gateway = GraphQLClient(stack.url("gateway"))
    admin = await signed_in_admin(stack, gateway)
    voters = await registered_voters(gateway, VOTERS)
    warm = await ballots(admin, voters, BALLOTS_PER_SECOND * 3)
    batch = await ballots(admin, voters, int(BALLOTS_PER_SECOND * args.seconds * 1.2))
    await settled(stack, await applied_everywhere(stack), 0)  # the polls' notices told
    idle = await idle_rates(pids(stack))
    await saturated(stack, "warm-up", warm, 3, args.connections)
    run, stored, cpu, window = await saturated(
        stack, f"workers-{workers}", batch, args.seconds, args.connections
    )
    await gateway.aclose()
    net = sum(max(cpu[n] - idle[n] * window, 0.0) for n in cpu if n != "rabbitmq")
    return Result(workers, run, stored, 1000 * net / max(stored, 1))


async def with_workers(workers: int, args: argparse.Namespace) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        config = StackConfig.for_tests(Path(tmp))
        config.workers = workers
        config.extra_env["VECHE_NAMESPACE"] = f"bench-{uuid.uuid4().hex[:8]}."
        config.extra_env["USERS_REGISTRATIONS_PER_CLIENT"] = str(VOTERS * 2)
        config.extra_env["LOG_LEVEL"] = "WARNING"
        stack = Stack(config)
        stack.services = [s for s in SERVICES if s.name in ("users", "polls")]
        await asyncio.to_thread(stack.start)
        try:
            return await measure(stack, workers, args)
        finally:
            await asyncio.to_thread(stack.stop)


async def run(args: argparse.Namespace) -> None:
    results = [await with_workers(workers, args) for workers in (1, 2)]
    print(
        f"castVote through the gateway, saturated: wrk with {args.connections} connections, "
        f"{args.seconds:.0f} s; users and polls with 1, then 2 workers each (one gateway)\n"
    )
    print("| workers per service | votes | votes/s | p50 ms | p99 ms | bad | CPU ms/vote |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.workers} | {r.accepted} | {r.rate:.0f} | {r.run.p50_ms:.1f} "
            f"| {r.run.p99_ms:.1f} | {r.run.bad} | {r.cpu_ms_per_vote:.2f} |"
        )
    one, two = results
    print(f"\nratio votes/s 2 workers : 1 worker = {two.rate / max(one.rate, 1e-9):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("skipped: needs wrk (Debian package wrk)")
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
