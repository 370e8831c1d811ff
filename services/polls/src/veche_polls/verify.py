"""Anyone's recount of a poll, from its public log alone.

    python -m veche_polls.verify export --api URL --jwks URL --poll ID --out DIR
    python -m veche_polls.verify check DIR [--receipt BALLOT_ID:SALT]

`export` reads, through the public API (the gateway's /graphql, or the polls
service's), the latest signed head, every record of the log, the poll's results
and the signing keys, into DIR (records.jsonl, head.json, results.json,
jwks.json). `check` needs nothing but those files and checks that

- the head is signed by the key it names;
- the records are the log the head covers: as many, each of this poll, and their
  Merkle root (RFC 9162) is the signed root, so no record was changed, dropped,
  added or moved;
- recounting the records gives the signed tallies, question by question, and
  the published results agree with the head (total, each option, each district
  and age group the head publishes: records carry no district or age, so those
  are checked against the signed subtotals, not recounted);
- with a receipt (the ballot id and the salt castVote returned), that ballot's
  record is in the log, by its inclusion proof.

Each mismatch is printed, saying what differs; the exit code is 1 if any.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from veche_polls.audit import TreeHead, canonical, commitment, record_hash
from veche_polls.domain import ballot_increments, field_key, merge_increments
from veche_polls.merkle import inclusion_proof, root_of, verify_inclusion

AUDIT = """query($poll: ID!, $after: String) {
  poll(id: $poll) {
    status
    results {
      totalVotes
      questions { question { id } options { option { id } votes } }
      byDistrict { district { id } totalVotes }
      byAgeGroup { label totalVotes }
    }
  }
  pollAudit(pollId: $poll) {
    statement signature
    records(first: 100, after: $after) { edges { node { record } } pageInfo { hasNextPage endCursor } }
  }
}"""


# ───────────────────────── export ─────────────────────────


def export(api: str, jwks_url: str, poll_id: str, out: Path, token: str | None = None) -> int:
    """Writes the poll's public log to `out`; returns the number of records."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    out.mkdir(parents=True, exist_ok=True)
    records: list[str] = []
    after: str | None = None
    with httpx.Client(timeout=60, headers=headers) as http:
        while True:
            body = http.post(
                api, json={"query": AUDIT, "variables": {"poll": poll_id, "after": after}}
            )
            data = body.json().get("data") or {}
            audit = data.get("pollAudit")
            if audit is None:
                raise SystemExit(
                    f"no public log for poll {poll_id} (or its results are not visible yet)"
                )
            if after is None:
                head, results = audit, data["poll"]["results"]
            page = audit["records"]
            records += [e["node"]["record"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        jwks = http.get(jwks_url).json()
    (out / "records.jsonl").write_text("".join(r + "\n" for r in records))
    (out / "head.json").write_text(
        json.dumps({"statement": head["statement"], "signature": head["signature"]}, indent=1)
    )
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False))
    (out / "jwks.json").write_text(json.dumps(jwks, indent=1))
    return len(records)


# ───────────────────────── check ─────────────────────────


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)

    def expect(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
        return ok


def _head(directory: Path) -> TreeHead:
    signed = json.loads((directory / "head.json").read_text())
    s = json.loads(signed["statement"])
    return TreeHead(
        poll_id=s["poll"],
        tree_size=s["treeSize"],
        root_hash=s["rootHash"],
        tallies=s["tallies"],
        signed_at=datetime.fromisoformat(s["signedAt"]),
        key_id=s["keyId"],
        signature=signed["signature"],
    )


def _public_key(jwks: Mapping[str, Any], kid: str) -> Ed25519PublicKey | None:
    for key in jwks.get("keys", []):
        if key.get("kid") == kid and key.get("crv") == "Ed25519":
            raw = base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4))
            return Ed25519PublicKey.from_public_bytes(raw)
    return None


def _recount(records: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        ballot = {
            "answers": [
                {"question_id": a["question"], "option_ids": a["options"], "value": a.get("value")}
                for a in record["answers"]
            ]
        }
        merge_increments(counts, ballot_increments(ballot))
    return counts


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, int]:
    flat: dict[str, int] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check(directory: Path, receipt: tuple[str, str] | None = None) -> Report:
    report = Report()
    head = _head(directory)
    _check_signature(report, head, json.loads((directory / "jwks.json").read_text()))
    lines = (directory / "records.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    _check_records(report, head, lines, records)
    leaves = [record_hash(r) for r in records]
    root = root_of(leaves).hex()
    report.expect(
        root == head.root_hash,
        f"the records' Merkle root {root[:16]}… is not the signed root {head.root_hash[:16]}…: "
        "a record was changed, dropped, added or moved",
    )
    _check_tallies(report, head, records)
    _check_results(report, head, json.loads((directory / "results.json").read_text()))
    if receipt is not None:
        _check_receipt(report, head, records, leaves, receipt)
    return report


def _check_signature(report: Report, head: TreeHead, jwks: Mapping[str, Any]) -> None:
    key = _public_key(jwks, head.key_id)
    if report.expect(key is not None, f"no key {head.key_id!r} in jwks.json"):
        assert key is not None
        report.expect(
            head.verify(key), "the head's signature does not verify: the head was altered"
        )


def _check_records(
    report: Report, head: TreeHead, lines: list[str], records: list[dict[str, Any]]
) -> None:
    """Each record: of this poll, canonical, and nothing but answers and a commitment."""
    report.expect(
        len(records) == head.tree_size,
        f"{len(records)} records, but the signed head covers {head.tree_size}",
    )
    for index, (line, record) in enumerate(zip(lines, records, strict=True)):
        report.expect(record.get("poll") == head.poll_id, f"record {index} is of another poll")
        report.expect(
            canonical(record).decode() == line, f"record {index} is not in canonical form"
        )
        report.expect(
            set(record) == {"poll", "commitment", "answers"},
            f"record {index} holds more than answers and a commitment: {sorted(record)}",
        )


def _check_tallies(report: Report, head: TreeHead, records: list[dict[str, Any]]) -> None:
    """The signed overall counters equal a recount of the records."""
    signed = _flatten({k: v for k, v in head.tallies.items() if k not in ("d", "a")})
    recounted = _recount(records)
    for counter in sorted(set(signed) | set(recounted)):
        report.expect(
            signed.get(counter, 0) == recounted.get(counter, 0),
            f"tally {counter}: the records give {recounted.get(counter, 0)}, the head says {signed.get(counter, 0)}",
        )


def _check_receipt(
    report: Report,
    head: TreeHead,
    records: list[dict[str, Any]],
    leaves: list[bytes],
    receipt: tuple[str, str],
) -> None:
    """The voter's own ballot is one record, included under the signed root."""
    ballot_id, salt = receipt
    mine = commitment(ballot_id, salt)
    found = [i for i, r in enumerate(records) if r["commitment"] == mine]
    if report.expect(len(found) == 1, f"no record opens with this receipt ({mine[:16]}…)"):
        index = found[0]
        path = inclusion_proof(leaves, index)
        report.expect(
            verify_inclusion(
                leaves[index], index, len(leaves), path, bytes.fromhex(head.root_hash)
            ),
            f"record {index} is not included under the signed root",
        )


def _check_results(report: Report, head: TreeHead, results: Mapping[str, Any] | None) -> None:
    """The published results against the signed head."""
    if results is None:
        report.expect(False, "the poll's results were not visible when exported")
        return
    tallies = head.tallies
    report.expect(
        results["totalVotes"] == tallies["total"],
        f"results say {results['totalVotes']} votes, the head {tallies['total']}",
    )
    for question in results["questions"]:
        qid = question["question"]["id"]
        for option in question["options"]:
            oid = option["option"]["id"]
            signed = tallies.get("q", {}).get(qid, {}).get("o", {}).get(oid, 0)
            report.expect(
                option["votes"] == signed,
                f"results give {qid}/{oid} {option['votes']} votes, the head {signed}",
            )
    groups = [
        ("d", field_key(g["district"]["id"]), g) for g in results["byDistrict"] if g["district"]
    ]
    groups += [("a", g["label"], g) for g in results["byAgeGroup"]]
    for scope, name, group in groups:
        signed_group = tallies.get(scope, {}).get(name)
        if signed_group is not None:  # groups below the minimum size are not signed
            report.expect(
                group["totalVotes"] == signed_group["total"],
                f"results give {name} {group['totalVotes']} votes, the head {signed_group['total']}",
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m veche_polls.verify",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    out = commands.add_parser("export", help="download a poll's public log")
    out.add_argument(
        "--api", required=True, help="a GraphQL endpoint, e.g. http://127.0.0.1:4000/graphql"
    )
    out.add_argument("--jwks", required=True, help="the polls service's /.well-known/jwks.json")
    out.add_argument("--poll", required=True)
    out.add_argument("--out", required=True, type=Path)
    out.add_argument(
        "--token", help="an access token, while the results are visible only to voters"
    )
    checking = commands.add_parser("check", help="check an exported log")
    checking.add_argument("directory", type=Path)
    checking.add_argument("--receipt", help="BALLOT_ID:SALT from castVote")
    args = parser.parse_args()
    if args.command == "export":
        count = export(args.api, args.jwks, args.poll, args.out, args.token)
        print(f"exported {count} records to {args.out}")
        return
    receipt = None
    if args.receipt:
        ballot_id, _, salt = args.receipt.partition(":")
        receipt = (ballot_id, salt)
    report = check(args.directory, receipt)
    for problem in report.problems:
        print(f"MISMATCH: {problem}")
    if report.problems:
        sys.exit(1)
    print(f"OK: {args.directory} is the signed log; the recount matches the head and the results")


if __name__ == "__main__":
    main()
