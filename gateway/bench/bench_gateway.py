"""The gateway's cost: the same queries straight to a subgraph, through Veche's
gateway, and through Apollo's @apollo/gateway, side by side.

    .venv/bin/python gateway/bench/bench_gateway.py [--seconds 8] [--clients 16] [--with-issues]

Runs the real users and polls services (and issues with --with-issues) with
their embedded stores and Veche's gateway as `make run` does
(`veche_stack.stack.Stack`, the machine's RabbitMQ), then @apollo/gateway in
Apollo Server on Node (gateway/bench/apollo, `npm ci` when node_modules is
missing) over the same subgraphs. A Python load generator (httpx, asyncio)
keeps a fixed number of clients busy for each case, after a short warm-up,
and prints throughput and p50/p99 latency per case with ratios. Loopback
only; every phase is bounded in time.

Everything shares one machine: the load generator, both gateways, the
services and their stores compete for the same cores, so the numbers compare
the cases with each other; they are not capacities.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from children import APOLLO, child, npm_ci

from veche_stack.processes import free_port
from veche_stack.stack import SERVICES, Stack, StackConfig

# one subgraph (users): reference data
SINGLE = "query Single { districts { id name } departments { id name } }"
# two subgraphs: polls, then one batched entity fetch from users
TWO = """query Two {
  polls(first: 10) {
    totalCount
    edges { node { id title status author { id displayName } department { id name } } }
  }
}"""
# three subgraphs: polls, then users and issues in parallel for the authors
THREE = """query Three {
  polls(first: 10) {
    edges { node { id title author { id displayName reportedIssues(first: 3) { totalCount } } } }
  }
}"""


@dataclass
class Case:
    name: str
    target: str  # "direct", "veche", "apollo"
    url: str
    query: str


@dataclass
class Result:
    case: Case
    requests: int
    errors: int
    seconds: float
    latencies: list[float]

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load(case: Case, clients: int, seconds: float, warmup: float) -> Result:
    """`clients` loops posting the query back to back; only the measured window counts."""
    body = json.dumps({"query": case.query}).encode()
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        start = time.perf_counter()
        measure_from = start + warmup
        end = measure_from + seconds

        async def client() -> None:
            nonlocal errors
            while (began := time.perf_counter()) < end:
                response = await http.post(case.url, content=body, headers=headers)
                done = time.perf_counter()
                failed = response.status_code != 200 or b'"errors"' in response.content
                if began >= measure_from:
                    latencies.append(done - began)
                    errors += failed

        await asyncio.gather(*(client() for _ in range(clients)))
    return Result(case, len(latencies), errors, seconds, latencies)


@contextmanager
def apollo_gateway(subgraphs: dict[str, str], logs: Path) -> Iterator[str]:
    npm_ci()
    port = free_port()
    env = {
        **os.environ,
        "SUBGRAPHS": ",".join(f"{name}={url}" for name, url in subgraphs.items()),
        "PORT": str(port),
        "NODE_ENV": "production",
        "APOLLO_TELEMETRY_DISABLED": "1",  # no metrics export, no cloud metadata probes
    }
    with child(["node", "serve.mjs"], env, APOLLO, logs / "apollo-gateway.log"):
        yield f"http://127.0.0.1:{port}/"


async def until(url: str, query: str, ok: Any, what: str, timeout: float = 60) -> dict[str, Any]:
    """Post `query` until `ok(body)` holds; fail after `timeout` seconds."""
    async with httpx.AsyncClient(timeout=10) as http:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                response = await http.post(url, json={"query": query})
                last = response.text
                body: dict[str, Any] = response.json()
                if ok(body):
                    return body
            except (httpx.HTTPError, ValueError) as exc:
                last = exc
            await asyncio.sleep(0.25)
    sys.exit(f"timed out waiting for {what}: {last!r}")


def table(results: list[Result], clients: int) -> str:
    by = {(r.case.name, r.case.target): r for r in results}
    lines = [
        f"{clients} clients, each case {results[0].seconds:.0f} s after warm-up; "
        "ratios: throughput vs the first row of each query (>1 faster), p50/p99 latency vs it (<1 faster)",
        "",
        f"{'query':<8} {'path':<24} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}"
        f" {'x req/s':>8} {'x p50':>6} {'x p99':>6}",
    ]
    labels = {
        "direct": "straight to the subgraph",
        "veche": "Veche gateway",
        "apollo": "@apollo/gateway",
    }
    for name in dict.fromkeys(r.case.name for r in results):
        rows = [by[(name, t)] for t in ("direct", "veche", "apollo") if (name, t) in by]
        base = rows[0]
        for r in rows:
            lines.append(
                f"{name:<8} {labels[r.case.target]:<24} {r.throughput:>8.0f} {r.percentile(0.5):>8.1f}"
                f" {r.percentile(0.99):>8.1f} {r.errors:>6}"
                f" {r.throughput / base.throughput:>8.2f} {r.percentile(0.5) / base.percentile(0.5):>6.2f}"
                f" {r.percentile(0.99) / base.percentile(0.99):>6.2f}"
            )
        if (name, "veche") in by and (name, "apollo") in by:
            v, a = by[(name, "veche")], by[(name, "apollo")]
            lines.append(
                f"{'':<8} {'Veche / Apollo':<24} {v.throughput / a.throughput:>8.2f}"
                f" {v.percentile(0.5) / a.percentile(0.5):>8.2f} {v.percentile(0.99) / a.percentile(0.99):>8.2f}"
            )
    return "\n".join(lines)


async def run(seconds: float, clients: int, warmup: float, with_issues: bool) -> None:
    names = ("users", "polls", "issues") if with_issues else ("users", "polls")
    with tempfile.TemporaryDirectory() as tmp:
        config = StackConfig.for_tests(Path(tmp))
        config.extra_env["VECHE_NAMESPACE"] = f"bench-{uuid.uuid4().hex[:8]}."
        stack = Stack(config)
        stack.services = [s for s in SERVICES if s.name in names]
        if len(stack.services) != len(names) or stack.gateway is None:
            sys.exit(f"needs {', '.join(names)} and the gateway installed")
        began = time.monotonic()
        await asyncio.to_thread(stack.start)
        try:
            subgraphs = {s.name: stack.url(s.name) for s in stack.services}
            with apollo_gateway(subgraphs, stack.logs) as apollo_url:
                veche_url = stack.url("gateway")
                # the demo polls appear once the admin's user.registered reaches polls
                await until(
                    veche_url,
                    "{ polls(first: 1) { totalCount } }",
                    lambda b: (b.get("data") or {}).get("polls", {}).get("totalCount", 0) > 0,
                    "the demo polls",
                )
                await until(apollo_url, "{ __typename }", lambda b: "data" in b, "@apollo/gateway")
                print(
                    f"stack and @apollo/gateway up in {time.monotonic() - began:.0f} s", flush=True
                )

                queries = {"single": SINGLE, "two": TWO}
                if with_issues:
                    queries["three"] = THREE
                cases: list[Case] = []
                for name, query in queries.items():
                    if name == "single":
                        cases.append(Case(name, "direct", stack.url("users"), query))
                    veche = await until(veche_url, query, lambda b: "data" in b, name)
                    apollo = await until(apollo_url, query, lambda b: "data" in b, name)
                    assert veche == apollo, f"{name}: the gateways answer differently"
                    assert "errors" not in veche, veche
                    cases.append(Case(name, "veche", veche_url, query))
                    cases.append(Case(name, "apollo", apollo_url, query))

                results = []
                for case in cases:
                    result = await load(case, clients, seconds, warmup)
                    print(
                        f"  {case.name:<7} {case.target:<7} {result.throughput:7.0f} req/s",
                        flush=True,
                    )
                    results.append(result)
        finally:
            await asyncio.to_thread(stack.stop)
    print()
    print(table(results, clients))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per case")
    parser.add_argument("--warmup", type=float, default=1.5, help="warm-up seconds per case")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument(
        "--with-issues", action="store_true", help="add issues and a three-subgraph query"
    )
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.clients, args.warmup, args.with_issues))


if __name__ == "__main__":
    main()
