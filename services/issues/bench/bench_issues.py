"""Issues benchmark: reportIssue throughput, and `issues(filter: {near})` latency with
100,000 issues in the store.

    python services/issues/bench/bench_issues.py [--reports 600] [--clients 16]
        [--issues 100000] [--queries 30] [--lists]

Starts its own SecantusDB server and the issues service (`python -m veche_issues`)
as child processes, uses the RabbitMQ at AMQP_URL, and serves the token keys
itself. The 100,000 issues are seeded straight into the store (with every index
the service declares). Prints a small table. Not a test: numbers depend on the
machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from veche_issues import domain, store
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.mongo import connect, new_id
from veche_kit.reference import CATEGORIES, DISTRICTS
from veche_stack.broker import amqp_answers
from veche_stack.processes import Process, free_port
from veche_stack.stack import DEFAULT_AMQP_URL, mongo_url
from veche_stack.testing import TokenMint, percentile, run_concurrently, serve

REPORT = """mutation($input: ReportIssueInput!) { reportIssue(input: $input) { id } }"""
NEAR = """query($filter: IssueFilter!) { issues(filter: $filter, first: 20) {
  totalCount edges { node { id title status location { lat lon } } } } }"""
LIST = """query($filter: IssueFilter) { issues(filter: $filter, first: 20) {
  totalCount edges { node { id title status } } } }"""
# Kaluga and its surroundings: about 20 km by 20 km.
CENTRE = (54.5293, 36.2754)
SPAN = (0.09, 0.155)
WORDS = ["Яма", "Фонарь", "Мусор", "Дерево", "Лавочка", "Остановка", "Дорога", "Ёлка", "Двор"]


def random_point(rng: random.Random) -> tuple[float, float]:
    return (
        CENTRE[0] + rng.uniform(-SPAN[0], SPAN[0]),
        CENTRE[1] + rng.uniform(-SPAN[1], SPAN[1]),
    )


def seeded_issue(rng: random.Random, number: int) -> dict[str, Any]:
    lat, lon = random_point(rng)
    category = rng.choice(CATEGORIES)
    title = f"{rng.choice(WORDS)} №{number}"
    status = rng.choice(["NEW", "ACCEPTED", "IN_PROGRESS", "RESOLVED", "CLOSED"])
    now = utcnow()
    return {
        "_id": new_id(),
        "kind": "PROBLEM",
        "title": title,
        "description": "Сгенерировано для замера.",
        "category": category.id,
        "department_id": category.department_id,
        "address": None,
        "district_id": rng.choice(DISTRICTS).id,
        "photos": [],
        "status": status,
        "reporter_id": f"bench-{rng.randrange(5000)}",
        "solver_id": None,
        "supporters_count": 0,
        "support_threshold": None,
        "due_at": None,
        "history": [],
        "search_terms": domain.search_terms(title, "Сгенерировано для замера."),
        "location": domain.geo_point(lat, lon),
        "geo_cells": domain.geo_cells(lat, lon),
        "created_at": now,
        "updated_at": now,
    }


@dataclass
class Bench:
    """What every measurement needs: the options, one HTTP client, and the result table."""

    args: argparse.Namespace
    rng: random.Random
    http: httpx.AsyncClient
    url: str
    rows: list[tuple[str, str]]

    async def post(self, query: str, variables: dict[str, Any], token: str | None = None) -> float:
        """Seconds one GraphQL call took; it must answer without errors."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.perf_counter()
        response = await self.http.post(
            self.url, json={"query": query, "variables": variables}, headers=headers
        )
        elapsed = time.perf_counter() - started
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return elapsed


def _mongo(port: int, workdir: Path) -> Process:
    return Process(
        "mongo-bench",
        [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
         "--storage-path", str(workdir / "mongo"), "--log-level", "WARNING"],
        workdir / "mongo.log",
    )  # fmt: skip


def _issues_service(
    port: int, mongo_port: int, database: str, amqp_url: str, keys_url: str, workdir: Path
) -> Process:
    return Process(
        "issues-bench",
        [sys.executable, "-m", "veche_issues"],
        workdir / "issues.log",
        {
            "ISSUES_PORT": str(port),
            "ISSUES_MONGO_URL": mongo_url(mongo_port),
            "ISSUES_MONGO_DB": database,
            "ISSUES_DEMO_DATA": "true",
            "AMQP_URL": amqp_url,
            "VECHE_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}.",
            "VECHE_JWKS_URL": f"{keys_url}/.well-known/jwks.json",
            "VECHE_DATA_DIR": str(workdir),
            "LOG_LEVEL": "WARNING",
        },
    )


def _print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(name) for name, _ in rows)
    print(f"\n{'measure'.ljust(width)}  result")
    print(f"{'-' * width}  {'-' * 30}")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


async def main(args: argparse.Namespace) -> None:
    amqp_url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    if not amqp_answers(amqp_url):
        sys.exit(f"RabbitMQ is not answering at {amqp_url}; start it or set AMQP_URL.")
    rng = random.Random(7)
    mint = TokenMint()
    workdir = Path(tempfile.mkdtemp(prefix="bench-issues-"))
    mongo_port, issues_port = free_port(), free_port()
    mongo = _mongo(mongo_port, workdir)
    database = "bench_issues"
    rows: list[tuple[str, str]] = []
    mongo.start()
    try:
        mongo.wait_port(mongo_port)
        async with serve(mint.jwks_app()) as keys_url:
            service = _issues_service(
                issues_port, mongo_port, database, amqp_url, keys_url, workdir
            )
            service.start()
            try:
                service.wait_http(f"http://127.0.0.1:{issues_port}/ready")
                await _measure(args, rng, mint, issues_port, mongo_port, database, rows)
            finally:
                service.stop()
    finally:
        mongo.stop()
    _print_table(rows)


async def _measure(
    args: argparse.Namespace,
    rng: random.Random,
    mint: TokenMint,
    issues_port: int,
    mongo_port: int,
    database: str,
    rows: list[tuple[str, str]],
) -> None:
    url = f"http://127.0.0.1:{issues_port}/graphql"
    tokens = [
        mint.token(Principal(user_id=f"bench-{i}", roles=frozenset({"CITIZEN"}), district_id="leninsky"))
        for i in range(args.clients)
    ]  # fmt: skip
    limits = httpx.Limits(max_connections=args.clients * 2)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        bench = Bench(args, rng, http, url, rows)
        await _time_reports(bench, tokens)
        total = await _seed(bench, mongo_port, database)
        if args.lists:
            await _time_lists(bench)
        for radius in (500, 2000):
            await _time_near(bench, radius, total)


async def _time_reports(bench: Bench, tokens: list[str]) -> None:
    args = bench.args
    # Warm up: the first requests fetch the keys and fill caches.
    for token in tokens[:2]:
        await bench.post(REPORT, {"input": _report_input(bench.rng)}, token)

    latencies: list[float] = []

    async def report(i: int) -> None:
        latencies.append(
            await bench.post(REPORT, {"input": _report_input(bench.rng)}, tokens[i % len(tokens)])
        )

    wall = await run_concurrently(args.reports, args.clients, report)
    bench.rows.append(
        (
            "reportIssue throughput",
            f"{args.reports / wall:,.0f} /s ({args.reports} reports, {args.clients} clients)",
        )
    )
    bench.rows.append(("reportIssue latency p50 / p95", f"{percentile(latencies, 0.5) * 1000:.1f} / {percentile(latencies, 0.95) * 1000:.1f} ms"))  # fmt: skip


async def _seed(bench: Bench, mongo_port: int, database: str) -> int:
    """Tops the store up to --issues straight through the driver; returns how many it holds."""
    client = connect(mongo_url(mongo_port))
    try:
        issues = client[database][store.ISSUES]
        have = await issues.count_documents({})
        started = time.perf_counter()
        missing = max(0, bench.args.issues - have)
        batches = [range(start, min(start + 2000, missing)) for start in range(0, missing, 2000)]

        async def insert(numbers: range) -> None:
            await issues.insert_many([seeded_issue(bench.rng, n) for n in numbers], ordered=False)

        for wave in range(0, len(batches), 2):  # two writers at a time
            await asyncio.gather(*(insert(b) for b in batches[wave : wave + 2]))
        number = missing
        seeded = time.perf_counter() - started
        total: int = await issues.count_documents({})
    finally:
        await client.close()
    bench.rows.append(("seeding (insert_many, all indexes)", f"{number:,} issues in {seeded:.1f} s ({number / max(seeded, 1e-9):,.0f} /s)"))  # fmt: skip
    return total


async def _time_lists(bench: Bench) -> None:
    lists: tuple[tuple[str, dict[str, Any]], ...] = (
        ("issues(first 20), newest, no filter", {}),
        ("issues(text 'яма', first 20)", {"filter": {"text": "яма"}}),
    )
    for label, variables in lists:
        times: list[float] = []
        for _ in range(max(3, bench.args.queries // 10)):
            started = time.perf_counter()
            response = await bench.http.post(
                bench.url, json={"query": LIST, "variables": variables}
            )
            times.append(time.perf_counter() - started)
            assert not response.json().get("errors"), response.text
        bench.rows.append(
            (label, f"p50 {percentile(times, 0.5) * 1000:.0f} ms over {len(times)} queries")
        )


async def _time_near(bench: Bench, radius: int, total: int) -> None:
    times: list[float] = []
    found: list[int] = []
    for _ in range(bench.args.queries):
        lat, lon = random_point(bench.rng)
        near = {"lat": lat, "lon": lon, "radiusMeters": radius}
        started = time.perf_counter()
        response = await bench.http.post(
            bench.url, json={"query": NEAR, "variables": {"filter": {"near": near}}}
        )
        times.append(time.perf_counter() - started)
        body = response.json()
        assert not body.get("errors"), body["errors"]
        found.append(body["data"]["issues"]["totalCount"])
    bench.rows.append(
        (
            f"issues(near, {radius} m, first 20) of {total:,}",
            f"p50 {percentile(times, 0.5) * 1000:.0f} ms, p95 {percentile(times, 0.95) * 1000:.0f} ms, "
            f"mean {statistics.mean(times) * 1000:.0f} ms; ~{statistics.mean(found):,.0f} within",
        )
    )


def _report_input(rng: random.Random) -> dict[str, Any]:
    lat, lon = random_point(rng)
    return {
        "title": f"{rng.choice(WORDS)} у дома {rng.randrange(200)}",
        "description": "Замер пропускной способности.",
        "category": rng.choice(CATEGORIES).id,
        "location": {"lat": lat, "lon": lon},
        "address": "ул. Ленина",
        "photos": ["https://img.example/1.jpg"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=600, help="reportIssue calls to time")
    parser.add_argument("--clients", type=int, default=16, help="concurrent HTTP clients")
    parser.add_argument("--issues", type=int, default=100_000, help="issues in the store for near")
    parser.add_argument("--queries", type=int, default=30, help="near queries per radius")
    parser.add_argument(
        "--lists",
        action="store_true",
        help="also time newest-first and text lists (slow on the embedded store: it sorts every match)",
    )
    asyncio.run(main(parser.parse_args()))
