"""castVote through the gateway, driven by wrk: CPU per vote over every process.

    .venv/bin/python bench/bench_votes.py [--seconds 15] [--paced 100] [--connections 16]

Runs users, polls and the gateway as `make run` does (embedded stores, the
machine's RabbitMQ), registers voters and opens polls, then lets `wrk` (a C
load generator, so no Python client shares the measured cores) cast each
(voter, poll) ballot once through the gateway:

- `saturated`: as fast as the connections go: the rate this machine gives;
- `paced`: about `--paced` votes/s (each connection waits between votes, wrk's
  `delay()`), for the latency at a given load.

After each phase it waits until the users service has credited every accepted
vote, then reads utime+stime from /proc for every process of the stack (the
gateway, polls, users and their two stores; RabbitMQ beside them), less what
they spend idle, and divides by the votes. It checks nothing was lost or doubled:
ballots stored = votes accepted = ledger credits, one per ballot.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from veche_kit.mongo import connect
from veche_stack.ballots import VOTE, Ballot, ballots, registered_voters, signed_in_admin
from veche_stack.stack import SERVICES, Stack, StackConfig
from veche_stack.testing import GraphQLClient, cpu_seconds
from veche_stack.wrk import WrkRun, run_wrk

VOTERS = 100
APPLIED = re.compile(r"^veche_events_applied_total (\S+)$", re.M)
STORE_COUNT = re.compile(
    r'^veche_store_command_duration_seconds_count\{command="(\w+)"\} (\S+)$', re.M
)
QUIET_SECONDS = 1.0
TARGET_CPU_MS = 10.0  # issue #18: CPU per vote over gateway, polls, users and their stores

# Each thread takes every `threads`-th ballot from its own offset; a ballot past
# the end counts bad (the phase was given more time than ballots).
LUA = """
local ffi = require("ffi")
ffi.cdef[[
  typedef struct {{ long tv_sec; long tv_nsec; }} timespec;
  int clock_gettime(int clk_id, timespec *tp);
]]
local now_ts = ffi.new("timespec")
local function now_ms()
  ffi.C.clock_gettime(1, now_ts)  -- CLOCK_MONOTONIC
  return tonumber(now_ts.tv_sec) * 1000 + tonumber(now_ts.tv_nsec) / 1e6
end
local requests = {{}}
local interval = {pace}
local due = nil
local threads = {{}}
local counter = 1
function setup(thread)
  table.insert(threads, thread)
  thread:set("offset", #threads)
end
function init(args)
  bad = 0
  local data = {ballots}
  local offset = tonumber(wrk.thread:get("offset"))
  for i = offset, #data, {threads} do
    local headers = {{["Content-Type"] = "application/json",
                     ["Authorization"] = "Bearer " .. data[i][1]}}
    table.insert(requests, wrk.format("POST", nil, headers, data[i][2]))
  end
end
function request()
  local r = requests[counter]
  counter = counter + 1
  if r == nil then r = requests[1] end
  return r
end
-- Paced: this thread's requests are due every `interval` ms, whatever the latency.
function delay()
  if interval == 0 then return 0 end
  local t = now_ms()
  due = (due or t) + interval
  return math.max(0, due - t)
end
function response(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"', 1, true) then bad = bad + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("bad") end
  io.write(string.format("BAD %d\\n", total))
end
"""


@dataclass(frozen=True)
class Phase:
    name: str
    run: WrkRun
    accepted: int  # ballots stored (and credited)
    cpu: dict[str, float]  # process -> CPU seconds net of idle, the phase's window
    credit_seconds: float  # from wrk's end to the last vote credited
    commands: dict[str, dict[str, float]]  # service -> MongoDB command -> per vote

    def per_vote_ms(self, names: list[str]) -> float:
        return 1000 * sum(self.cpu[n] for n in names) / max(self.accepted, 1)


def lua_script(batch: list[Ballot], threads: int, pace_ms: float) -> str:
    # json.dumps makes a string Lua reads back as it was (ASCII, \" and \\ escapes).
    rows = ",".join(
        f"{{{json.dumps(b.voter.token)},"
        f"{json.dumps(json.dumps({'query': VOTE, 'variables': b.variables}))}}}"
        for b in batch
    )
    return LUA.format(pace=pace_ms, ballots="{" + rows + "}", threads=threads)


async def events_applied(stack: Stack) -> float:
    """How many events the users service's consumer has applied (its /metrics)."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(stack.url("users", "/metrics"))).text
    match = APPLIED.search(text)
    return float(match.group(1)) if match else 0.0


async def settled(stack: Stack, before: float, at_least: int) -> None:
    """Waits until users has applied `at_least` more events and then nothing more for
    QUIET_SECONDS (the votes wrk left in flight), or 120 s. A cheap signal: the
    check by query (`credited`) runs after the CPU window, not in it."""
    deadline, last, quiet = time.monotonic() + 120, -1.0, 0
    while time.monotonic() < deadline and quiet < QUIET_SECONDS / 0.1:
        applied = await events_applied(stack) - before
        quiet = quiet + 1 if applied >= at_least and applied == last else 0
        last = applied
        await asyncio.sleep(0.1)


async def store_commands(stack: Stack, service: str) -> dict[str, float]:
    """The MongoDB commands a service has sent so far, by command (its /metrics)."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(stack.url(service, "/metrics"))).text
    counts: dict[str, float] = {}
    for match in STORE_COUNT.finditer(text):
        counts[match.group(1)] = float(match.group(2))
    return counts


async def commands_per_vote(
    stack: Stack, before: dict[str, dict[str, float]], votes: int
) -> dict[str, dict[str, float]]:
    per_vote = {}
    for service, counts in before.items():
        after = await store_commands(stack, service)
        per_vote[service] = {
            c: (n - counts.get(c, 0)) / max(votes, 1)
            for c, n in sorted(after.items())
            if n > counts.get(c, 0)
        }
    return per_vote


def broker_pid() -> int | None:
    found = subprocess.run(["pgrep", "-o", "beam.smp"], capture_output=True, text=True)
    return int(found.stdout.split()[0]) if found.returncode == 0 and found.stdout else None


def pids(stack: Stack) -> dict[str, int]:
    found = {n: p.popen.pid for n, p in stack.processes.items() if p.popen is not None}
    broker = broker_pid()
    if broker is not None:
        found["rabbitmq"] = broker
    return found


def cpu_now(processes: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in processes.items()}


async def idle_rates(processes: dict[str, int], seconds: float = 5) -> dict[str, float]:
    """CPU seconds per second each process spends with nothing asked of it."""
    before = cpu_now(processes)
    await asyncio.sleep(seconds)
    after = cpu_now(processes)
    return {n: (after[n] - before[n]) / seconds for n in processes}


async def credited(stack: Stack, poll_ids: list[str]) -> tuple[int, int, int]:
    """(ballots stored, ledger credits, distinct credited ballots) once every stored
    ballot is credited, or after 120 s."""
    polls_db = connect(stack.store_url("polls"))["veche_polls"]
    users_db = connect(stack.store_url("users"))["veche_users"]
    events = [
        d["envelope"]["id"]
        async for d in polls_db["ballots"].find({"poll_id": {"$in": poll_ids}}, {"envelope": 1})
    ]
    deadline = time.monotonic() + 120
    while True:
        credits = [
            d["source_event"]
            async for d in users_db["points_ledger"].find({"source_event": {"$in": events}})
        ]
        if len(set(credits)) >= len(events) or time.monotonic() > deadline:
            return len(events), len(credits), len(set(credits))
        await asyncio.sleep(0.2)


async def phase(
    stack: Stack,
    name: str,
    batch: list[Ballot],
    args: argparse.Namespace,
    pace_ms: float,
    idle: dict[str, float],
) -> Phase:
    processes = pids(stack)
    script = Path(stack.config.data_dir) / f"{name}.lua"
    script.write_text(lua_script(batch, min(2, args.connections), pace_ms))
    commands = {s: await store_commands(stack, s) for s in ("users", "polls")}
    applied = await events_applied(stack)
    before, began = cpu_now(processes), time.monotonic()
    run = await asyncio.to_thread(
        run_wrk, stack.url("gateway"), script, args.connections, args.seconds
    )
    finished = time.monotonic()
    await settled(stack, applied, run.requests - run.bad)
    window, after = time.monotonic() - began, cpu_now(processes)
    credit_seconds = max(time.monotonic() - finished - QUIET_SECONDS, 0.0)
    poll_ids = list(dict.fromkeys(b.poll_id for b in batch))
    stored, credits, distinct = await credited(stack, poll_ids)
    # wrk leaves up to one request per connection in flight at its end: the service
    # completes it, wrk does not count it.
    answered = run.requests - run.bad
    if not (stored == credits == distinct and answered <= stored <= answered + args.connections):
        sys.exit(f"{name}: {answered} votes answered, {stored} ballots, {credits} credits")
    cpu = {n: max(after[n] - before[n] - idle[n] * window, 0.0) for n in processes}
    per_vote = await commands_per_vote(stack, commands, stored)
    return Phase(name, run, stored, cpu, credit_seconds, per_vote)


def table(phases: list[Phase], names: list[str]) -> str:
    measured = [n for n in names if n != "rabbitmq"]
    lines = [
        f"| phase | votes | votes/s | p50 ms | p99 ms | bad | credited s after | {' | '.join(names)} "
        "| CPU ms/vote (all but RabbitMQ) |",
        "|" + "---|" * (len(names) + 8),
    ]
    for p in phases:
        each = " | ".join(f"{p.per_vote_ms([n]):.2f}" for n in names)
        lines.append(
            f"| {p.name} | {p.accepted} | {p.run.rate:.0f} | {p.run.p50_ms:.1f} "
            f"| {p.run.p99_ms:.1f} | {p.run.bad} | {p.credit_seconds:.1f} | {each} "
            f"| {p.per_vote_ms(measured):.2f} |"
        )
    for p in phases:
        for service, counts in p.commands.items():
            listed = ", ".join(f"{c} {n:.2f}" for c, n in counts.items())
            lines.append(f"\n{p.name}: {service}'s MongoDB commands per vote: {listed}")
    return "\n".join(lines)


async def measure(stack: Stack, args: argparse.Namespace) -> list[Phase]:
    gateway = GraphQLClient(stack.url("gateway"))
    admin = await signed_in_admin(stack, gateway)
    voters = await registered_voters(gateway, VOTERS)
    plans = [
        ("warm-up", 3, 0, args.connections),
        ("saturated", args.seconds, 0, args.connections),
        ("paced", args.seconds, 2000 / args.paced, args.connections),  # 2 wrk threads
    ]
    # Every poll first: each one published notifies all the voters (work that is not
    # a vote's), and that must be over before anything is measured.
    batches = []
    for _, seconds, pace_ms, _ in plans:
        rate = args.paced if pace_ms else 300  # more ballots than this machine casts
        batches.append(await ballots(admin, voters, int(rate * seconds * 1.2)))
    await settled(stack, await events_applied(stack), 0)
    idle = await idle_rates(pids(stack))
    phases = []
    for (name, seconds, pace_ms, connections), batch in zip(plans, batches, strict=True):
        run_args = argparse.Namespace(seconds=seconds, connections=connections)
        phases.append(await phase(stack, name, batch, run_args, pace_ms, idle))
    await gateway.aclose()
    return phases[1:]


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = StackConfig.for_tests(Path(tmp))
        config.extra_env["VECHE_NAMESPACE"] = f"bench-{uuid.uuid4().hex[:8]}."
        config.extra_env["USERS_REGISTRATIONS_PER_CLIENT"] = str(VOTERS * 2)
        config.extra_env["LOG_LEVEL"] = "WARNING"
        stack = Stack(config)
        stack.services = [s for s in SERVICES if s.name in ("users", "polls")]
        await asyncio.to_thread(stack.start)
        try:
            phases = await measure(stack, args)
            names = list(pids(stack))
        finally:
            await asyncio.to_thread(stack.stop)
    print(
        f"castVote through the gateway, wrk with {args.connections} connections, "
        f"{args.seconds:.0f} s per phase; CPU ms per accepted vote, net of idle, "
        f"until the users service credited it (target ≤ {TARGET_CPU_MS:.0f} ms)\n"
    )
    print(table(phases, names))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--paced", type=float, default=100.0, help="votes/s of the paced phase")
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("skipped: needs wrk (Debian package wrk)")
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
