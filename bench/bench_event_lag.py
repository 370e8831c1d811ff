"""Event lag from castVote to the voter's points credit, through the gateway.

    .venv/bin/python bench/bench_event_lag.py [--seconds 10] [--rates 50,200]

Runs users, polls and the gateway as `make run` does (embedded stores, the
machine's RabbitMQ), casts votes through the gateway at a steady rate, and
measures for every vote the time from the ballot's event (`occurred_at`,
written with the ballot) to the ledger entry that credits it in the users
service: outbox relay + broker + consumer. Prints p50/p95/p99/max per rate.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from veche_kit.mongo import connect
from veche_stack.ballots import VOTE, Ballot, ballots, registered_voters, signed_in_admin
from veche_stack.stack import SERVICES, Stack, StackConfig
from veche_stack.testing import GraphQLClient, percentile

VOTERS = 40


async def run(rates: list[int], seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = StackConfig.for_tests(Path(tmp))
        config.extra_env["VECHE_NAMESPACE"] = f"bench-{uuid.uuid4().hex[:8]}."
        # Every voter registers from this one machine.
        config.extra_env["USERS_REGISTRATIONS_PER_CLIENT"] = str(VOTERS * 2)
        stack = Stack(config)
        stack.services = [s for s in SERVICES if s.name in ("users", "polls")]
        await asyncio.to_thread(stack.start)
        try:
            await measure(stack, rates, seconds)
        finally:
            await asyncio.to_thread(stack.stop)


async def cast(ballot: Ballot, latencies: list[float]) -> None:
    began = time.perf_counter()
    body = await ballot.voter.post(VOTE, ballot.variables)
    latencies.append(time.perf_counter() - began)
    assert not body.get("errors"), body


async def measure(stack: Stack, rates: list[int], seconds: float) -> None:
    gateway = GraphQLClient(stack.url("gateway") if stack.gateway else stack.url("polls"))
    admin = await signed_in_admin(stack, gateway)
    voters = await registered_voters(gateway, VOTERS)
    users_db = connect(stack.store_url("users"))["veche_users"]
    polls_db = connect(stack.store_url("polls"))["veche_polls"]
    print(
        f"{'rate/s':>7} {'votes':>6} {'achieved/s':>10} {'vote p50 ms':>11} {'lag p50 ms':>10} "
        f"{'lag p95 ms':>10} {'lag p99 ms':>10} {'lag max ms':>10}"
    )
    for rate in rates:
        total = int(rate * seconds)
        cast_ballots = await ballots(admin, voters, total)
        poll_ids = list(dict.fromkeys(b.poll_id for b in cast_ballots))
        latencies: list[float] = []

        started = time.monotonic()
        tasks = []
        for i, ballot in enumerate(cast_ballots):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(cast(ballot, latencies)))
        await asyncio.gather(*tasks)
        achieved = total / (time.monotonic() - started)
        events = {
            d["envelope"]["id"]: d["envelope"]["occurred_at"]
            async for d in polls_db["ballots"].find({"poll_id": {"$in": poll_ids}}, {"envelope": 1})
        }
        credited: dict[str, Any] = {}
        deadline = time.monotonic() + 120
        while len(credited) < len(events) and time.monotonic() < deadline:
            credited = {
                d["source_event"]: d["at"]
                async for d in users_db["points_ledger"].find(
                    {"source_event": {"$in": list(events)}}
                )
            }
            await asyncio.sleep(0.5)

        lags = [
            (credited[e] - datetime.fromisoformat(t)).total_seconds() * 1000
            for e, t in events.items()
            if e in credited
        ]
        missing = len(events) - len(lags)
        print(
            f"{rate:>7} {total:>6} {achieved:>10.0f} {statistics.median(latencies) * 1000:>11.1f} "
            f"{percentile(lags, 0.5):>10.0f} {percentile(lags, 0.95):>10.0f} {percentile(lags, 0.99):>10.0f} "
            f"{max(lags):>10.0f}" + (f"  ({missing} not credited within 120 s)" if missing else "")
        )
    await gateway.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="50,200")
    args = parser.parse_args()
    asyncio.run(run([int(r) for r in args.rates.split(",")], args.seconds))


if __name__ == "__main__":
    main()
