"""The public log of a real poll: 1,000 ballots (cast 50 at a time) are folded
into counters and log together; the exported log verifies, and each kind of
tampering is caught and named; every receipt opens its record; successive signed
heads are consistent; the records hold no voter id."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from veche_polls import verify
from veche_polls.audit import canonical, commitment, record_hash
from veche_polls.merkle import inclusion_proof, root_of, verify_consistency, verify_inclusion
from veche_stack.testing import GraphQLClient, eventually

from .conftest import CLOSE, PollsServer

VOTE = """mutation($poll: ID!, $answers: [AnswerInput!]!) {
  castVote(pollId: $poll, answers: $answers) { id receipt { commitment salt leafIndex } }
}"""
HEAD = "query($poll: ID!) { pollAudit(pollId: $poll) { treeSize rootHash keyId statement } }"
HEADS = """query($poll: ID!, $after: String) {
  pollAudit(pollId: $poll) {
    heads(first: 100, after: $after) {
      totalCount edges { node { treeSize rootHash } } pageInfo { hasNextPage endCursor }
    }
  }
}"""
PROOF = """query($poll: ID!, $c: String!) {
  ballotProof(pollId: $poll, commitment: $c) { leafIndex treeSize path }
}"""
CONSISTENCY = """query($poll: ID!, $a: Int!, $b: Int!) {
  consistencyProof(pollId: $poll, fromSize: $a, toSize: $b)
}"""
CREATE = """mutation($input: CreatePollInput!) { createPoll(input: $input) { id } }"""
PUBLISH = "mutation($id: ID!) { publishPoll(id: $id) { status } }"
QUESTIONS = [
    {"text": "Что построить?", "kind": "SINGLE_CHOICE", "options": ["Парк", "Парковку", "Школу"]},
    {"text": "Насколько это срочно?", "kind": "SCALE", "scaleMin": 1, "scaleMax": 5},
]
DISTRICTS = ["leninsky", "moskovsky", "oktyabrsky", None]
BALLOTS = 1000


async def new_poll(polls: PollsServer, **options: Any) -> tuple[GraphQLClient, str]:
    official = polls.official()
    made = await official.data(
        CREATE,
        {"input": {"title": "Куда направить бюджет двора", "questions": QUESTIONS, **options}},
    )
    poll_id: str = made["createPoll"]["id"]
    await official.data(PUBLISH, {"id": poll_id})
    return official, poll_id


def answers(rng: random.Random) -> list[dict[str, Any]]:
    return [
        {"questionId": "q1", "optionIds": [f"q1-{rng.randint(1, 3)}"]},
        {"questionId": "q2", "value": rng.randint(1, 5)},
    ]


@pytest.fixture(scope="module")
async def closed_poll(
    polls: PollsServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    official, poll_id = await new_poll(polls)
    rng = random.Random(16)
    voters = [
        polls.citizen(district=DISTRICTS[i % 4], birth_year=1950 + i % 55) for i in range(BALLOTS)
    ]
    receipts: list[dict[str, Any]] = []
    for start in range(0, BALLOTS, 50):
        cast = await asyncio.gather(
            *[
                v.data(VOTE, {"poll": poll_id, "answers": answers(rng)})
                for v in voters[start : start + 50]
            ]
        )
        receipts += [c["castVote"] for c in cast]
    await official.data(CLOSE, {"id": poll_id})

    async def logged() -> bool:
        head = (await polls.client.data(HEAD, {"poll": poll_id}))["pollAudit"]
        return bool(head and head["treeSize"] == BALLOTS)

    await eventually(logged, timeout=120)
    exported = tmp_path_factory.mktemp("audit") / "export"
    count = await asyncio.to_thread(
        verify.export,
        polls.url + "/graphql",
        polls.url + "/.well-known/jwks.json",
        poll_id,
        exported,
    )
    assert count == BALLOTS
    return {"poll": poll_id, "receipts": receipts, "export": exported, "voters": voters}


def tampered(closed_poll: dict[str, Any], tmp_path: Path) -> Path:
    copy = tmp_path / "tampered"
    shutil.copytree(closed_poll["export"], copy)
    return copy


def edit_records(directory: Path, change: Any) -> None:
    path = directory / "records.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("".join(line + "\n" for line in change(lines)))


def test_the_exported_log_verifies(closed_poll: dict[str, Any]) -> None:
    report = verify.check(closed_poll["export"])
    assert report.problems == []
    head = json.loads(json.loads((closed_poll["export"] / "head.json").read_text())["statement"])
    assert head["tallies"]["total"] == BALLOTS
    # 250 ballots per district: all above the minimum group size, so all signed.
    assert sorted(head["tallies"]["d"]) == ["leninsky", "moskovsky", "oktyabrsky"]


def changed(line: str, **fields: Any) -> str:
    """A record line with some fields replaced, still canonical."""
    return canonical({**json.loads(line), **fields}).decode()


def other_answer(line: str) -> str:
    record = json.loads(line)
    chosen = record["answers"][0]["options"]
    record["answers"][0]["options"] = ["q1-2"] if chosen == ["q1-1"] else ["q1-1"]
    return changed(line, answers=record["answers"])


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("change", "Merkle root"),
        ("drop", "999 records, but the signed head covers 1000"),
        ("reorder", "Merkle root"),
        ("add", "1001 records, but the signed head covers 1000"),
        ("tally", "signature does not verify"),
        ("results", "results say"),
    ],
)
def test_each_kind_of_tampering_is_caught_and_named(
    closed_poll: dict[str, Any], tmp_path: Path, tamper: str, message: str
) -> None:
    directory = tampered(closed_poll, tmp_path)
    if tamper == "change":
        edit_records(directory, lambda ls: [other_answer(ls[0]), *ls[1:]])
    elif tamper == "drop":
        edit_records(directory, lambda ls: ls[:500] + ls[501:])
    elif tamper == "reorder":
        edit_records(directory, lambda ls: [ls[1], ls[0], *ls[2:]])
    elif tamper == "add":
        edit_records(directory, lambda ls: [*ls, changed(ls[-1], commitment="0" * 64)])
    elif tamper == "tally":
        head_path = directory / "head.json"
        signed = json.loads(head_path.read_text())
        statement = json.loads(signed["statement"])
        statement["tallies"]["total"] += 1
        signed["statement"] = canonical(statement).decode()
        head_path.write_text(json.dumps(signed))
    else:
        results_path = directory / "results.json"
        results = json.loads(results_path.read_text())
        results["totalVotes"] -= 1
        results_path.write_text(json.dumps(results))
    problems = verify.check(directory).problems
    assert problems, f"{tamper} went unnoticed"
    assert any(message in p for p in problems), problems


def test_every_receipt_opens_its_record_in_the_log(closed_poll: dict[str, Any]) -> None:
    lines = (closed_poll["export"] / "records.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    leaves = [record_hash(r) for r in records]
    root = root_of(leaves)
    position = {r["commitment"]: i for i, r in enumerate(records)}
    for cast in closed_poll["receipts"]:
        receipt = cast["receipt"]
        assert commitment(cast["id"], receipt["salt"]) == receipt["commitment"]
        index = position[receipt["commitment"]]
        assert verify_inclusion(
            leaves[index], index, len(leaves), inclusion_proof(leaves, index), root
        )
    one = closed_poll["receipts"][7]
    assert verify.check(closed_poll["export"], (one["id"], one["receipt"]["salt"])).problems == []
    forged = verify.check(closed_poll["export"], (one["id"], "00" * 16)).problems
    assert any("no record opens with this receipt" in p for p in forged)


async def _all_heads(polls: PollsServer, poll_id: str) -> list[dict[str, Any]]:
    """Every signed head of the poll's log, page by page, oldest first."""
    heads: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await polls.client.data(HEADS, {"poll": poll_id, "after": after}))["pollAudit"][
            "heads"
        ]
        heads += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(heads) == page["totalCount"] >= 2  # one head per fold
    heads.sort(key=lambda h: h["treeSize"])
    return heads


async def test_the_api_proves_inclusion_and_consistency(
    polls: PollsServer, closed_poll: dict[str, Any]
) -> None:
    poll_id = closed_poll["poll"]
    head = (await polls.client.data(HEAD, {"poll": poll_id}))["pollAudit"]
    root = bytes.fromhex(head["rootHash"])
    records = [
        json.loads(line)
        for line in (closed_poll["export"] / "records.jsonl").read_text().splitlines()
    ]
    for cast in closed_poll["receipts"][::97]:
        commit = cast["receipt"]["commitment"]
        proof = (await polls.client.data(PROOF, {"poll": poll_id, "c": commit}))["ballotProof"]
        leaf = record_hash(records[proof["leafIndex"]])
        path = [bytes.fromhex(h) for h in proof["path"]]
        assert verify_inclusion(leaf, proof["leafIndex"], proof["treeSize"], path, root)
    heads = await _all_heads(polls, poll_id)
    assert heads[-1]["treeSize"] == BALLOTS
    for old, new in itertools.pairwise(heads):
        sizes = {"poll": poll_id, "a": old["treeSize"], "b": new["treeSize"]}
        proof = (await polls.client.data(CONSISTENCY, sizes))["consistencyProof"]
        assert verify_consistency(
            old["treeSize"],
            new["treeSize"],
            bytes.fromhex(old["rootHash"]),
            bytes.fromhex(new["rootHash"]),
            [bytes.fromhex(h) for h in proof],
        )


async def test_the_records_hold_no_voter_id(
    polls: PollsServer, closed_poll: dict[str, Any]
) -> None:
    stored = await polls.db["ballot_records"].find({"poll_id": closed_poll["poll"]}).to_list()
    assert len(stored) == BALLOTS
    text = json.dumps([s["record"] for s in stored])
    voter_ids = [
        b["voter_id"] async for b in polls.db["ballots"].find({"poll_id": closed_poll["poll"]})
    ]
    assert not any(voter in text for voter in voter_ids)
    assert {frozenset(s["record"]) for s in stored} == {
        frozenset({"poll", "commitment", "answers"})
    }


async def test_a_poll_without_receipts_keeps_its_log(polls: PollsServer) -> None:
    _, poll_id = await new_poll(polls, receipts=False)
    cast = await polls.citizen().data(VOTE, {"poll": poll_id, "answers": answers(random.Random(1))})
    assert cast["castVote"]["receipt"] is None
    _, unaudited = await new_poll(polls, audit=False)
    voter = polls.citizen()
    await voter.data(VOTE, {"poll": unaudited, "answers": answers(random.Random(2))})

    async def logged_for(who: GraphQLClient, poll: str) -> bool:
        head = (await who.data(HEAD, {"poll": poll}))["pollAudit"]
        return head is not None and head["treeSize"] == 1

    voter_with_no_receipt = polls.citizen()
    await voter_with_no_receipt.data(VOTE, {"poll": poll_id, "answers": answers(random.Random(3))})
    # A voter sees the log (they voted); an anonymous caller does not while it is ACTIVE.
    await eventually(lambda: _records(polls, poll_id, 2))
    head = (await voter_with_no_receipt.data(HEAD, {"poll": poll_id}))["pollAudit"]
    assert head["treeSize"] == 2
    assert (await polls.client.data(HEAD, {"poll": poll_id}))["pollAudit"] is None
    assert not await logged_for(voter, unaudited)  # no log at all
    assert await polls.db["ballot_records"].count_documents({"poll_id": unaudited}) == 0


async def _records(polls: PollsServer, poll_id: str, count: int) -> bool:
    return await polls.db["ballot_records"].count_documents({"poll_id": poll_id}) == count
