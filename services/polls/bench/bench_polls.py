"""Polls benchmark: castVote against the embedded store's raw insert rate, results
latency at 10, 10,000 and 1,000,000 ballots, and how soon the counters catch up.

    python services/polls/bench/bench_polls.py [--votes 3000] [--clients 32]

Starts its own SecantusDB server and the polls service (`python -m veche_polls`)
as child processes, uses the RabbitMQ at AMQP_URL, and serves the token keys
itself. Prints a small table. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.mongo import Database, connect, new_id
from veche_kit.outbox import Outbox
from veche_polls import audit, domain, store
from veche_polls.app import audit_key
from veche_polls.service import PollsService
from veche_polls.settings import PollsSettings
from veche_polls.tallies import TallyFolder
from veche_stack.broker import amqp_answers
from veche_stack.processes import Process, free_port
from veche_stack.stack import DEFAULT_AMQP_URL, mongo_url
from veche_stack.testing import TokenMint, percentile, run_concurrently, serve

CREATE = """mutation($input: CreatePollInput!) { createPoll(input: $input) { id } }"""
PUBLISH = """mutation($id: ID!) { publishPoll(id: $id) { id } }"""
VOTE = """mutation($poll: ID!, $answers: [AnswerInput!]!) { castVote(pollId: $poll, answers: $answers) { id } }"""
RESULTS = """query($id: ID!) { poll(id: $id) { votesCount results { totalVotes
  questions { options { votes share } average }
  byDistrict { totalVotes questions { options { votes } average } }
  byAgeGroup { label totalVotes questions { options { votes } average } } } } }"""
QUESTIONS = [
    {"text": "Что построить?", "kind": "SINGLE_CHOICE", "options": ["Парк", "Парковку", "Школу"]},
    {
        "text": "Что ещё важно?",
        "kind": "MULTIPLE_CHOICE",
        "options": ["Свет", "Лавочки", "Урны", "Деревья"],
        "maxChoices": 2,
    },
    {"text": "Насколько срочно?", "kind": "SCALE", "scaleMin": 1, "scaleMax": 5},
]
DISTRICTS = ["leninsky", "moskovsky", "oktyabrsky"]


def answers(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {"questionId": "q1", "optionIds": [rng.choice(["q1-1", "q1-2", "q1-3"])]},
        {"questionId": "q2", "optionIds": rng.sample(["q2-1", "q2-2", "q2-3", "q2-4"], 2)},
        {"questionId": "q3", "value": rng.randint(1, 5)},
    ]


class Bench:
    def __init__(self, http: httpx.AsyncClient, url: str, mint: TokenMint, db: Database) -> None:
        self.http = http
        self.url = url
        self.mint = mint
        self.db = db
        self.official = mint.token(
            Principal("o-bench", frozenset({"CITIZEN", "OFFICIAL"}), department_id="roads")
        )

    async def gql(self, token: str | None, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            self.url, json={"query": query, "variables": variables}, headers=headers
        )
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        data: dict[str, Any] = body["data"]
        return data

    async def new_poll(self) -> str:
        data = await self.gql(
            self.official, CREATE, {"input": {"title": "Бенчмарк", "questions": QUESTIONS}}
        )
        poll_id: str = data["createPoll"]["id"]
        await self.gql(self.official, PUBLISH, {"id": poll_id})
        return poll_id

    def voter_token(self, i: int, rng: random.Random) -> str:
        year = utcnow().year
        return self.mint.token(
            Principal(
                f"v-{i}-{uuid.uuid4().hex[:6]}",
                frozenset({"CITIZEN"}),
                district_id=rng.choice(DISTRICTS),
                birth_year=year - rng.randint(14, 90),
                phone_verified=True,  # polls are verified-only by default
            )
        )

    async def raw_inserts(self, count: int, clients: int) -> float:
        """The embedded store's own rate for the same single-document write castVote makes."""
        scratch = self.db["bench_raw_inserts"]
        await scratch.create_index([("poll_id", 1), ("voter_id", 1)], unique=True)
        rng = random.Random(1)
        documents = [
            {
                "_id": new_id(),
                "poll_id": "raw",
                "voter_id": f"v-{i}",
                "answers": [
                    {"question_id": "q1", "option_ids": ["q1-1"], "value": None},
                    {"question_id": "q2", "option_ids": ["q2-1", "q2-3"], "value": None},
                    {"question_id": "q3", "option_ids": [], "value": rng.randint(1, 5)},
                ],
                "district_id": rng.choice(DISTRICTS),
                "age_group": "25-34",
                "cast_at": utcnow(),
                "tally_pending": True,
                "envelope": {"id": str(uuid.uuid4()), "type": "poll.vote_cast", "data": {}},
                "pending": True,
            }
            for i in range(count)
        ]

        async def insert(i: int) -> None:
            await scratch.insert_one(documents[i])

        elapsed = await run_concurrently(count, clients, insert)
        return count / elapsed

    async def typename_round_trips(self, count: int, clients: int) -> float:
        """The HTTP + GraphQL floor: the cheapest request the service answers."""

        async def ask(_: int) -> None:
            await self.gql(None, "{ __typename }", {})

        return count / await run_concurrently(count, clients, ask)

    async def cast_votes_in_process(self, poll_id: str, count: int, clients: int) -> float:
        """The castVote use case called directly (no HTTP, no GraphQL): its store work."""
        settings = PollsSettings(mongo_url="unused", service_name="polls")
        # not started: the service folds
        folder = TallyFolder(self.db.client, self.db, audit_key=audit_key(settings))
        outbox = Outbox(self.db.client, self.db, settings.service_name)
        service = PollsService(store.PollStore(self.db), outbox, settings, folder)
        rng = random.Random(6)
        year = utcnow().year
        voters = [
            Principal(
                f"direct-{i}",
                frozenset({"CITIZEN"}),
                district_id=rng.choice(DISTRICTS),
                birth_year=year - rng.randint(14, 90),
                phone_verified=True,  # polls are verified-only by default
            )
            for i in range(count)
        ]
        ballots = [
            [
                domain.AnswerDraft(a["questionId"], a.get("optionIds", ()), a.get("value"))
                for a in answers(rng)
            ]
            for _ in range(count)
        ]

        async def vote(i: int) -> None:
            await service.cast_vote(voters[i], poll_id, ballots[i])

        return count / await run_concurrently(count, clients, vote)

    async def cast_votes(
        self, poll_id: str, count: int, clients: int
    ) -> tuple[float, list[float], float]:
        rng = random.Random(2)
        tokens = [self.voter_token(i, rng) for i in range(count)]
        ballots = [answers(rng) for _ in range(count)]
        latencies: list[float] = []

        async def vote(i: int) -> None:
            started = time.perf_counter()
            await self.gql(tokens[i], VOTE, {"poll": poll_id, "answers": ballots[i]})
            latencies.append(time.perf_counter() - started)

        elapsed = await run_concurrently(count, clients, vote)
        return count / elapsed, latencies, time.perf_counter()

    async def counters_catch_up(self, poll_id: str, count: int, last_ballot_at: float) -> float:
        """Seconds from the last ballot until the counters hold every ballot."""
        while True:
            tally = await self.db[store.TALLIES].find_one({"_id": poll_id})
            if tally is not None and tally.get("total") == count:
                return time.perf_counter() - last_ballot_at
            await asyncio.sleep(0.01)

    async def recount_matches(self, poll_id: str) -> bool:
        """Counts the ballots from scratch and compares every counter (option, district, age group)."""
        recount: Counter[str] = Counter()
        async for ballot in self.db[store.BALLOTS].find({"poll_id": poll_id}):
            recount.update(domain.ballot_increments(ballot))
        tally = await self.db[store.TALLIES].find_one({"_id": poll_id}) or {}
        flat: Counter[str] = Counter()

        def walk(node: dict[str, Any], prefix: str) -> None:
            for key, value in node.items():
                if isinstance(value, dict):
                    walk(value, f"{prefix}{key}.")
                elif key not in ("_id", "version") and value:
                    flat[f"{prefix}{key}"] = value

        walk(tally, "")
        return flat == recount

    async def seed_ballots(self, poll_id: str, count: int, *, audited: bool = True) -> None:
        """Writes ballots as castVote would (pending, with their commitment when the
        poll keeps a public log), without the HTTP round trips."""
        rng = random.Random(3)
        year = utcnow().year
        poll = await self.db[store.POLLS].find_one({"_id": poll_id})
        assert poll is not None
        for start in range(0, count, 1000):
            batch = []
            for i in range(start, min(count, start + 1000)):
                drafts = [
                    domain.AnswerDraft(a["questionId"], a.get("optionIds", ()), a.get("value"))
                    for a in answers(rng)
                ]
                ballot_id = new_id()
                batch.append(
                    {
                        "_id": ballot_id,
                        "poll_id": poll_id,
                        "voter_id": f"seed-{i}",
                        "answers": domain.clean_answers(poll["questions"], drafts),
                        "district_id": rng.choice(DISTRICTS),
                        "age_group": domain.age_group(year - rng.randint(1940, 2010)),
                        "cast_at": utcnow(),
                        "tally_pending": True,
                        **audit.ballot_receipt_fields(ballot_id, {**poll, "audit": audited}),
                    }
                )
            await self.db[store.BALLOTS].insert_many(batch)

    async def seed_counters(self, poll_id: str, count: int) -> None:
        """A tally as a million ballots would leave it (no ballot documents)."""
        tally: dict[str, Any] = {"version": 1}
        rng = random.Random(4)
        increments: dict[str, int] = {}
        sample = 1000
        poll = await self.db[store.POLLS].find_one({"_id": poll_id})
        assert poll is not None
        for _ in range(sample):
            drafts = [
                domain.AnswerDraft(a["questionId"], a.get("optionIds", ()), a.get("value"))
                for a in answers(rng)
            ]
            ballot = {
                "answers": domain.clean_answers(poll["questions"], drafts),
                "district_id": rng.choice(DISTRICTS),
                "age_group": rng.choice([g for g, _, _ in domain.AGE_GROUPS]),
            }
            domain.merge_increments(increments, domain.ballot_increments(ballot))
        scaled = {path: n * (count // sample) for path, n in increments.items()}
        domain.apply_increments(tally, scaled)
        await self.db[store.TALLIES].replace_one({"_id": poll_id}, tally, upsert=True)

    async def results_latency(self, poll_id: str, rounds: int = 40) -> tuple[float, float, int]:
        latencies = []
        total = 0
        for _ in range(rounds):
            started = time.perf_counter()
            data = await self.gql(self.official, RESULTS, {"id": poll_id})
            latencies.append(time.perf_counter() - started)
            total = data["poll"]["results"]["totalVotes"]
        return statistics.median(latencies), percentile(latencies, 0.95), total


def _mongo(port: int, work: Path) -> Process:
    return Process(
        "mongo-bench",
        [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
         "--storage-path", str(work / "mongo"), "--log-level", "WARNING"],
        work / "mongo.log",
    )  # fmt: skip


def _polls_service(port: int, mongo_port: int, amqp: str, jwks_base: str, work: Path) -> Process:
    return Process(
        "polls-bench",
        [sys.executable, "-m", "veche_polls"],
        work / "polls.log",
        {
            "POLLS_PORT": str(port),
            "POLLS_MONGO_URL": mongo_url(mongo_port),
            "POLLS_MONGO_DB": "bench_polls",
            "AMQP_URL": amqp,
            "VECHE_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}.",
            "VECHE_JWKS_URL": f"{jwks_base}/.well-known/jwks.json",
            "VECHE_DATA_DIR": str(work),
            "LOG_LEVEL": "WARNING",
        },
    )


def _print_log_problems(log_file: Path) -> None:
    """The service's errors during the run: a fast number means little if requests failed."""
    log = log_file.read_text(errors="replace").splitlines()
    problems = [line for line in log if '"level": "error"' in line or "Traceback" in line]
    print(f"\nservice log: {len(problems)} error line(s)")
    for line in problems[:5]:
        print("  " + line[:300])


async def main(votes: int, clients: int) -> None:
    amqp = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    if not amqp_answers(amqp):
        sys.exit(f"No RabbitMQ answers at {amqp}; set AMQP_URL.")
    work = Path(tempfile.mkdtemp(prefix="veche-bench-polls-"))
    mongo_port, polls_port = free_port(), free_port()
    mongo = _mongo(mongo_port, work)
    mint = TokenMint()
    mongo.start()
    service: Process | None = None
    try:
        mongo.wait_port(mongo_port)
        async with serve(mint.jwks_app()) as jwks_base:
            service = _polls_service(polls_port, mongo_port, amqp, jwks_base, work)
            service.start()
            service.wait_http(f"http://127.0.0.1:{polls_port}/ready")
            client = connect(mongo_url(mongo_port))
            limits = httpx.Limits(max_connections=clients + 4)
            async with httpx.AsyncClient(timeout=60, limits=limits) as http:
                bench = Bench(
                    http, f"http://127.0.0.1:{polls_port}/graphql", mint, client["bench_polls"]
                )
                await report(bench, votes, clients)
            await client.close()
    finally:
        if service is not None:
            service.stop()
        mongo.stop()
        _print_log_problems(work / "polls.log")
        shutil.rmtree(work, ignore_errors=True)


class Table:
    """Rows printed as they are measured, and once more as a Markdown table at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def row(self, name: str, value: str) -> None:
        self.rows.append((name, value))
        print(f"  {name:<52} {value}", flush=True)

    def print_markdown(self) -> None:
        width = max(len(n) for n, _ in self.rows)
        print("\n| measure" + " " * (width - 7) + " | value |")
        print("|" + "-" * (width + 2) + "|-------|")
        for name, value in self.rows:
            print(f"| {name:<{width}} | {value} |")


async def _floors(bench: Bench, table: Table, votes: int, clients: int) -> float:
    """What castVote is measured against; returns the raw insert rate."""
    raw = await bench.raw_inserts(votes, clients)
    table.row("embedded store: raw single-document inserts", f"{raw:,.0f}/s")
    direct = await bench.cast_votes_in_process(await bench.new_poll(), votes, clients)
    table.row("castVote use case in-process (reads + 1 insert)", f"{direct:,.0f}/s")
    table.row(
        "HTTP + GraphQL floor ({ __typename })",
        f"{await bench.typename_round_trips(votes, clients):,.0f}/s",
    )
    return raw


async def _votes_over_http(
    bench: Bench, table: Table, votes: int, clients: int, raw: float
) -> None:
    poll_id = await bench.new_poll()
    rate, latencies, last_at = await bench.cast_votes(poll_id, votes, clients)
    table.row("castVote over HTTP (token, checks, ballot insert)", f"{rate:,.0f}/s")
    table.row("castVote / raw insert", f"{rate / raw:.2f}")
    table.row(
        "castVote latency p50 / p95 / p99",
        " / ".join(f"{percentile(latencies, p) * 1000:.0f} ms" for p in (0.5, 0.95, 0.99)),
    )
    catch_up = await bench.counters_catch_up(poll_id, votes, last_at)
    table.row("last ballot -> counters hold every ballot", f"{catch_up * 1000:.0f} ms")
    table.row(
        "counters == recount (option, district, age group)",
        str(await bench.recount_matches(poll_id)),
    )


async def _small_poll(bench: Bench) -> str:
    """A poll with 10 ballots cast over HTTP and folded."""
    small = await bench.new_poll()
    rng = random.Random(5)
    for i in range(10):
        await bench.gql(bench.voter_token(i, rng), VOTE, {"poll": small, "answers": answers(rng)})
    await bench.counters_catch_up(small, 10, time.perf_counter())
    return small


async def _fold_rate(bench: Bench, poll_id: str, audited: bool) -> float:
    """Ballots per second folded after 10,000 are seeded into the poll at once."""
    await bench.seed_ballots(poll_id, 10_000, audited=audited)
    seeded_at = time.perf_counter()
    await bench.counters_catch_up(poll_id, 10_000, seeded_at)
    return 10_000 / (time.perf_counter() - seeded_at)


async def _folding(bench: Bench, table: Table) -> str:
    """The fold with and without the public log; returns the logged poll of 10,000 ballots."""
    plain = await _fold_rate(bench, await bench.new_poll(), audited=False)
    table.row("folding 10,000 ballots into the counters (no public log)", f"{plain:,.0f}/s")
    medium = await bench.new_poll()
    logged = await _fold_rate(bench, medium, audited=True)
    table.row("folding 10,000 ballots, counters + public log + signed head", f"{logged:,.0f}/s")
    table.row("the log's cost per ballot in the fold", f"{(1 / logged - 1 / plain) * 1e6:,.0f} µs")
    return medium


async def report(bench: Bench, votes: int, clients: int) -> None:
    table = Table()
    print(f"polls benchmark: {votes} votes, {clients} concurrent clients", flush=True)
    raw = await _floors(bench, table, votes, clients)
    await _votes_over_http(bench, table, votes, clients, raw)
    small = await _small_poll(bench)
    medium = await _folding(bench, table)
    large = await bench.new_poll()
    await bench.seed_counters(large, 1_000_000)
    for poll, label in ((small, "10"), (medium, "10,000"), (large, "1,000,000")):
        p50, p95, total = await bench.results_latency(poll)
        table.row(
            f"results at {label} ballots (p50 / p95)",
            f"{p50 * 1000:.1f} / {p95 * 1000:.1f} ms  ({total:,} counted)",
        )
    table.print_markdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=3000, help="castVote calls to time")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.votes, arguments.clients))
