"""The polls subgraph: types, queries, mutations and entities (Federation v2).

Entities: `Poll` (owned here, key `id`); `User` (owned by users) gains
`ballots`; `Issue` (owned by issues) gains `poll`. `District` and `Department`
are referenced only, as key stubs this subgraph does not resolve.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.federation.schema_directives import Key
from strawberry.federation.types import FieldSet
from strawberry.scalars import JSON
from strawberry.types import Info

from veche_kit import export
from veche_kit.clock import as_utc, utcnow
from veche_kit.graphql import (
    MUTATION_DESCRIPTION,
    QUERY_DESCRIPTION,
    Connection,
    FederatedSchema,
    PageAfter,
    PageFirst,
    RequestContext,
    at_most,
    connection,
    encode_cursor,
    id_after,
    id_connection,
    page_size,
    position_after,
    public_enum,
)
from veche_kit.inputs import ID_CHARS, bounded
from veche_kit.live import LiveHub
from veche_kit.mongo import Document
from veche_polls import domain, live
from veche_polls.audit import TreeHead, canonical
from veche_polls.domain import AnswerDraft, QuestionDraft
from veche_polls.errors import PollNotActiveError
from veche_polls.loaders import PollLoaders
from veche_polls.service import AudienceDraft, NewPoll, PollsService


@dataclass
class PollsContext(RequestContext):
    service: PollsService | None = None
    batches: PollLoaders | None = None
    live: LiveHub[None] | None = None

    @property
    def polls(self) -> PollsService:
        assert self.service is not None
        return self.service

    @property
    def live_hub(self) -> LiveHub[None]:
        assert self.live is not None
        return self.live

    @property
    def poll_loaders(self) -> PollLoaders:
        assert self.batches is not None
        return self.batches

    async def my_ballot(self, poll_id: str) -> Document | None:
        """The caller's ballot in the poll (batched over the polls of a response)."""
        caller = await self.principal()
        if caller is None:
            return None
        return await self.poll_loaders.my_ballot_by_poll(caller.user_id).load(poll_id)

    async def tally(self, poll_id: str) -> Document:
        """The poll's counters as the caller should see them (their own ballot counted)."""
        caller = await self.principal()
        viewer_id = caller.user_id if caller else None
        return await self.poll_loaders.tally_by_poll(viewer_id).load(poll_id)


PollsInfo = Info[PollsContext, None]


# ─────────────────────────── enums ───────────────────────────


PollStatus = domain.PollStatus
public_enum(
    PollStatus,
    name="PollStatus",
    description="Where a poll is in its life.",
    values={
        "DRAFT": "Being prepared; seen only by its department's officials and admins; can be edited.",
        "ACTIVE": "Published: open for votes from `startsAt` (if set) until `endsAt` (if set) or until closed.",
        "CLOSED": "Voting has ended; results are public; a decision may follow.",
    },
)


QuestionKind = domain.QuestionKind
public_enum(
    QuestionKind,
    name="QuestionKind",
    description="How a question is answered.",
    values={
        "SINGLE_CHOICE": "Pick exactly one option: send one id in `optionIds`.",
        "MULTIPLE_CHOICE": "Pick 1 to `maxChoices` different options: send their ids in `optionIds`.",
        "SCALE": "Rate from `scaleMin` to `scaleMax`: send the number as `value`. Its `options` are the points of the scale.",
    },
)


DecisionStatus = domain.DecisionStatus
public_enum(
    DecisionStatus,
    name="DecisionStatus",
    description="How far the city has got with what it decided after a poll.",
    values={
        "TAKEN": "Decided; work has not started yet.",
        "IN_PROGRESS": "Being carried out.",
        "IMPLEMENTED": "Done.",
    },
)


# ─────────────────────────── referenced entities ───────────────────────────


@strawberry.federation.type(
    keys=[Key(fields=FieldSet("id"), resolvable=False)],
    description="A district of the city (e.g. an okrug); people, polls and issues belong to one.",
)
class District:
    id: strawberry.ID = strawberry.field(description="Stable short id, e.g. `leninsky`.")


@strawberry.federation.type(
    keys=[Key(fields=FieldSet("id"), resolvable=False)],
    description="A city department: owns categories of problems and runs polls.",
)
class Department:
    id: strawberry.ID = strawberry.field(description="Stable short id, e.g. `roads`.")


# ─────────────────────────── poll parts ───────────────────────────


@strawberry.type(description="One choice of a question.")
class Option:
    id: strawberry.ID = strawberry.field(
        description="Option id, unique within the poll (e.g. `q1-2`); send it in `AnswerInput.optionIds`."
    )
    text: str = strawberry.field(description="What the option says; for a SCALE, the number.")

    @classmethod
    def from_doc(cls, document: Document) -> Option:
        return cls(id=strawberry.ID(document["id"]), text=document["text"])


@strawberry.type(description="A question of a poll.")
class Question:
    id: strawberry.ID = strawberry.field(
        description="Question id within the poll (`q1`, `q2`...); send it as `AnswerInput.questionId`."
    )
    text: str = strawberry.field(description="The question.")
    kind: QuestionKind = strawberry.field(description="How it is answered.")
    options: list[Option] = strawberry.field(
        description="The choices, in order. For a SCALE: one per point, from `scaleMin` to `scaleMax`.",
        directives=at_most(domain.MAX_CHOICES),
    )
    max_choices: int | None = strawberry.field(
        description="How many options a voter may pick: 1 for SINGLE_CHOICE; null for SCALE."
    )
    scale_min: int | None = strawberry.field(description="SCALE only: the lowest value.")
    scale_max: int | None = strawberry.field(description="SCALE only: the highest value.")

    @classmethod
    def from_doc(cls, document: Document) -> Question:
        return cls(
            id=strawberry.ID(document["id"]),
            text=document["text"],
            kind=QuestionKind(document["kind"]),
            options=[Option.from_doc(o) for o in document["options"]],
            max_choices=document.get("max_choices"),
            scale_min=document.get("scale_min"),
            scale_max=document.get("scale_max"),
        )


@strawberry.type(
    description="Who may vote. A voter must match every rule that is set; the check uses their profile at vote time."
)
class Audience:
    district_ids: list[strawberry.ID] = strawberry.field(
        description="Districts whose residents may vote; empty means the whole city."
    )
    min_age: int | None = strawberry.field(
        description="Youngest age allowed (age reached this year, from the birth year); null: no limit."
    )
    max_age: int | None = strawberry.field(
        description="Oldest age allowed (age reached this year); null: no limit."
    )
    verified_only: bool = strawberry.field(description="Only people with a verified phone.")

    @classmethod
    def from_doc(cls, document: Document) -> Audience:
        return cls(
            district_ids=[strawberry.ID(d) for d in document["district_ids"]],
            min_age=document.get("min_age"),
            max_age=document.get("max_age"),
            verified_only=bool(document.get("verified_only")),
        )


@strawberry.type(description="A voter's answer to one question.")
class Answer:
    question_id: strawberry.ID = strawberry.field(description="The question answered.")
    option_ids: list[strawberry.ID] = strawberry.field(
        description="Options chosen (choice questions); empty for a SCALE."
    )
    value: int | None = strawberry.field(description="The number given (SCALE); null otherwise.")

    @classmethod
    def from_doc(cls, document: Document) -> Answer:
        return cls(
            question_id=strawberry.ID(document["question_id"]),
            option_ids=[strawberry.ID(o) for o in document["option_ids"]],
            value=document.get("value"),
        )


@strawberry.type(description="What the city decided after a poll, and how far it has got.")
class Decision:
    text: str = strawberry.field(description="The decision, in words.")
    status: DecisionStatus = strawberry.field(description="Taken, in progress or implemented.")
    updated_at: datetime = strawberry.field(description="When it was last recorded (UTC).")


# ─────────────────────────── results ───────────────────────────


@strawberry.type(description="Votes for one option.")
class OptionResult:
    option: Option = strawberry.field(description="The option.")
    votes: int = strawberry.field(description="Ballots that chose it.")
    share: float = strawberry.field(
        description="votes / ballots counted here, 0 to 1 (0 when there are none). For MULTIPLE_CHOICE the shares add up to more than 1."
    )


@strawberry.type(description="Results of one question.")
class QuestionResult:
    question: Question = strawberry.field(description="The question.")
    options: list[OptionResult] = strawberry.field(
        description="Every option in the question's order, including those nobody chose.",
        directives=at_most(domain.MAX_CHOICES),
    )
    average: float | None = strawberry.field(
        description="SCALE: the mean value given; null for choice questions or without votes."
    )


@strawberry.type(description="Results among voters of one district.")
class DistrictResult:
    district: District | None = strawberry.field(
        description="The district (its name via the users service; null while that service is unavailable)."
    )
    total_votes: int = strawberry.field(description="Ballots from this district.")
    questions: list[QuestionResult] = strawberry.field(
        description="Per question, as in the totals.", directives=at_most(domain.MAX_QUESTIONS)
    )


@strawberry.type(description="Results among voters of one age group.")
class AgeGroupResult:
    label: str = strawberry.field(
        description="The group: `14-17`, `18-24`, `25-34`, `35-44`, `45-54`, `55-64` or `65+` (age reached in the voting year)."
    )
    total_votes: int = strawberry.field(description="Ballots from this age group.")
    questions: list[QuestionResult] = strawberry.field(
        description="Per question, as in the totals.", directives=at_most(domain.MAX_QUESTIONS)
    )


@strawberry.type(
    description="A poll's tallies. They cost the same to read at any number of ballots; your own ballot is always counted in what you see."
)
class PollResults:
    total_votes: int = strawberry.field(description="Ballots counted.")
    questions: list[QuestionResult] = strawberry.field(
        description="Per question, in poll order.", directives=at_most(domain.MAX_QUESTIONS)
    )
    by_district: list[DistrictResult] = strawberry.field(
        description="Per district: the audience's districts and any other district voters came from, by id. Voters without a district count only in the totals.",
        directives=at_most(domain.ASSUMED_DISTRICTS),
    )
    by_age_group: list[AgeGroupResult] = strawberry.field(
        description="Per age group, all seven in age order (zeros included). Voters without a birth year count only in the totals.",
        directives=at_most(len(domain.AGE_GROUPS)),
    )

    @classmethod
    def build(cls, poll: Document, tally: Document) -> PollResults:
        results = domain.results_of(poll, tally)
        return cls(
            total_votes=results.total,
            questions=_questions(results.questions),
            by_district=[
                DistrictResult(
                    district=District(id=strawberry.ID(s.key)),
                    total_votes=s.total,
                    questions=_questions(s.questions),
                )
                for s in results.by_district
            ],
            by_age_group=[
                AgeGroupResult(label=s.key, total_votes=s.total, questions=_questions(s.questions))
                for s in results.by_age_group
            ],
        )


def _questions(counts: list[domain.QuestionCount]) -> list[QuestionResult]:
    return [
        QuestionResult(
            question=Question.from_doc(c.question),
            options=[
                OptionResult(option=Option.from_doc(o.option), votes=o.votes, share=o.share)
                for o in c.options
            ],
            average=c.average,
        )
        for c in counts
    ]


# ─────────────────────────── polls and ballots ───────────────────────────


@strawberry.federation.type(
    keys=["id"],
    description="A city poll: questions put to an audience of residents, one final ballot each.",
)
class Poll:
    id: strawberry.ID = strawberry.field(description="Poll id.")
    title: str = strawberry.field(description="Short title.")
    description: str | None = strawberry.field(description="What the poll is about, in detail.")
    status: PollStatus = strawberry.field(description="DRAFT, ACTIVE or CLOSED.")
    questions: list[Question] = strawberry.field(
        description="The questions, in order.", directives=at_most(domain.MAX_QUESTIONS)
    )
    starts_at: datetime | None = strawberry.field(
        description="When voting opens (UTC); null: as soon as it is published."
    )
    ends_at: datetime | None = strawberry.field(
        description="When voting ends and the poll closes by itself (UTC); null: when an official closes it."
    )
    audience: Audience = strawberry.field(description="Who may vote.")
    points_reward: int = strawberry.field(description="Points credited to each voter.")
    created_at: datetime = strawberry.field(description="When the poll was created (UTC).")
    _doc: strawberry.Private[Document]

    @classmethod
    def from_doc(cls, document: Document) -> Poll:
        return cls(
            id=strawberry.ID(document["_id"]),
            title=document["title"],
            description=document.get("description"),
            status=PollStatus(document["status"]),
            questions=[Question.from_doc(q) for q in document["questions"]],
            starts_at=document.get("starts_at"),
            ends_at=document.get("ends_at"),
            audience=Audience.from_doc(document["audience"]),
            points_reward=document["points_reward"],
            created_at=document["created_at"],
            _doc=document,
        )

    @classmethod
    async def resolve_reference(cls, info: PollsInfo, id: strawberry.ID) -> Poll | None:
        return await _visible_poll(info, str(id))

    @strawberry.field(
        description="True while votes are accepted: ACTIVE, after `startsAt` and before `endsAt`."
    )
    def accepting_votes(self) -> bool:
        try:
            domain.check_voting_open(self._doc, utcnow())
        except PollNotActiveError:
            return False
        return True

    @strawberry.field(
        description="Who created the poll (for a poll from an initiative: its initiator); null while the users service is unavailable."
    )
    def author(self) -> User | None:
        return User(id=strawberry.ID(self._doc["author_id"]))

    @strawberry.field(
        description="The department running the poll; null for city-wide polls of admins."
    )
    def department(self) -> Department | None:
        department_id = self._doc.get("department_id")
        return Department(id=strawberry.ID(department_id)) if department_id else None

    @strawberry.field(description="The citizen initiative this poll grew out of, if any.")
    def source_initiative(self) -> Issue | None:
        issue_id = self._doc.get("source_initiative_id")
        return Issue(id=strawberry.ID(issue_id)) if issue_id else None

    @strawberry.field(
        description="Ballots counted so far (the same count as `results.totalVotes`, your own ballot included)."
    )
    async def votes_count(self, info: PollsInfo) -> int:
        if not domain.takes_ballots(self._doc):
            return 0
        return int((await info.context.tally(self._doc["_id"])).get("total", 0))

    @strawberry.field(
        description="The caller's own ballot in this poll; null if none or not signed in."
    )
    async def my_ballot(self, info: PollsInfo) -> Ballot | None:
        ballot = await info.context.my_ballot(self._doc["_id"])
        return Ballot.from_doc(ballot) if ballot else None

    @strawberry.field(
        description="Tallies. Visible to officials of the poll's department and admins always, to a voter once they voted, to everyone once CLOSED; null otherwise."
    )
    async def results(self, info: PollsInfo) -> PollResults | None:
        caller = await info.context.principal()
        voted = await info.context.my_ballot(self._doc["_id"]) is not None
        if not domain.results_visible(caller, self._doc, has_voted=voted):
            return None
        return PollResults.build(self._doc, await info.context.tally(self._doc["_id"]))

    @strawberry.field(description="What the city decided after the poll; null until recorded.")
    def decision(self) -> Decision | None:
        decision = self._doc.get("decision")
        if not decision:
            return None
        return Decision(
            text=decision["text"],
            status=DecisionStatus(decision["status"]),
            updated_at=decision["updated_at"],
        )


@strawberry.type(
    description="The voter's proof that their ballot is in the poll's public log: keep it. `commitment` is published (the record's id in the log); `salt` is known only to the voter, and opens it: sha256(ballotId + salt) = commitment. Anyone given both can check the record, and so how it voted."
)
class BallotReceipt:
    commitment: str = strawberry.field(description="The record's commitment, hex.")
    salt: str = strawberry.field(description="The secret that opens the commitment, hex.")
    _poll_id: strawberry.Private[str]

    @strawberry.field(
        description="The record's position in the log; null until the ballot is folded into the counters (about a second). `ballotProof` proves it against a signed head."
    )
    async def leaf_index(self, info: PollsInfo) -> int | None:
        return await info.context.polls.record_index(self._poll_id, self.commitment)


@strawberry.type(description="A voter's ballot: final once cast.")
class Ballot:
    id: strawberry.ID = strawberry.field(description="Ballot id.")
    answers: list[Answer] = strawberry.field(
        description="One answer per question, in poll order.",
        directives=at_most(domain.MAX_QUESTIONS),
    )
    cast_at: datetime = strawberry.field(description="When it was cast (UTC).")
    receipt: BallotReceipt | None = strawberry.field(
        description="Only in castVote's answer, for polls with receipts: the voter's proof of inclusion (see BallotReceipt). Null elsewhere."
    )
    _poll_id: strawberry.Private[str]

    @classmethod
    def from_doc(cls, document: Document, *, with_receipt: bool = False) -> Ballot:
        receipt = None
        if with_receipt and document.get("salt"):
            receipt = BallotReceipt(
                commitment=document["commitment"],
                salt=document["salt"],
                _poll_id=document["poll_id"],
            )
        return cls(
            id=strawberry.ID(document["_id"]),
            answers=[Answer.from_doc(a) for a in document["answers"]],
            cast_at=document["cast_at"],
            receipt=receipt,
            _poll_id=document["poll_id"],
        )

    @strawberry.field(description="The poll voted in.")
    async def poll(self, info: PollsInfo) -> Poll:
        document = await info.context.poll_loaders.poll_by_id.load(self._poll_id)
        assert document is not None, "a ballot's poll is never deleted"
        return Poll.from_doc(document)


# Descriptions of entities owned elsewhere repeat the owner's words, so composition has one.
@strawberry.federation.type(
    keys=["id"],
    description="A person using Veche. Private fields are visible only to the user themself and to admins.",
)
class User:
    id: strawberry.ID = strawberry.field(description="User id.")

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> User:
        return cls(id=id)

    @strawberry.field(
        description="The user's ballots, newest first. Only the user themself may read them (null with FORBIDDEN for anyone else)."
    )
    async def ballots(
        self, info: PollsInfo, first: PageFirst = None, after: PageAfter = None
    ) -> Connection[Ballot] | None:
        caller = await info.context.require_user()
        owner = info.context.polls.ballot_owner(caller, str(self.id))  # FORBIDDEN before input
        documents, has_next, total = await info.context.polls.ballots_of(
            owner, first=page_size(first), after=id_after(after)
        )
        return id_connection(
            [Ballot.from_doc(d) for d in documents],
            documents,
            has_next=has_next,
            total=total,
        )


@strawberry.federation.type(
    keys=["id"],
    description="A problem report or a citizen initiative, with its workflow, supports, comments and solver.",
)
class Issue:
    id: strawberry.ID = strawberry.field(description="Issue id.")

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Issue:
        return cls(id=id)

    @strawberry.federation.field(
        description="The poll an initiative was put to, if any (a DRAFT one only for those who manage it).",
    )
    async def poll(self, info: PollsInfo) -> Poll | None:
        document = await info.context.poll_loaders.poll_by_initiative.load(str(self.id))
        if document is None or not info.context.polls.visible(
            await info.context.principal(), document
        ):
            return None
        return Poll.from_doc(document)


async def _visible_poll(info: PollsInfo, poll_id: str) -> Poll | None:
    document = await info.context.poll_loaders.poll_by_id.load(poll_id)
    if document is None or not info.context.polls.visible(await info.context.principal(), document):
        return None
    return Poll.from_doc(document)


def _poll_page(documents: list[Document], has_next: bool, total: int) -> Connection[Poll]:
    return id_connection(
        [Poll.from_doc(d) for d in documents],
        documents,
        has_next=has_next,
        total=total,
    )


# ─────────────────────────── inputs ───────────────────────────


@strawberry.input(description="A question of a new or edited poll.")
class QuestionInput:
    text: str = strawberry.field(
        description="The question.", metadata=bounded(chars=domain.MAX_QUESTION)
    )
    kind: QuestionKind = strawberry.field(description="How it is answered.")
    options: list[str] | None = strawberry.field(
        default=None,
        description=f"Choice questions: {domain.MIN_OPTIONS}–{domain.MAX_OPTIONS} option texts, in order, no repeats. Leave out for a SCALE.",
        metadata=bounded(items=domain.MAX_OPTIONS, chars=domain.MAX_OPTION),
    )
    max_choices: int | None = strawberry.field(
        default=None,
        description="MULTIPLE_CHOICE: how many options a voter may pick (default: all). Leave out otherwise.",
    )
    scale_min: int | None = strawberry.field(
        default=None, description="SCALE: the lowest value, e.g. 1."
    )
    scale_max: int | None = strawberry.field(
        default=None,
        description=f"SCALE: the highest value, e.g. 5; at most {domain.MAX_SCALE_POINTS - 1} above scaleMin.",
    )

    def draft(self) -> QuestionDraft:
        return QuestionDraft(
            text=self.text,
            kind=self.kind,
            options=tuple(self.options or ()),
            max_choices=self.max_choices,
            scale_min=self.scale_min,
            scale_max=self.scale_max,
        )


@strawberry.input(description="Who may vote; leave a rule out to not apply it.")
class AudienceInput:
    district_ids: list[strawberry.ID] = strawberry.field(
        default_factory=list,
        description='District ids, as the `districts` query lists them (e.g. "leninsky"), whose residents may vote; empty: the whole city. An id it does not list is refused (BAD_USER_INPUT, `field: audience.districtIds`, the message naming it).',
        metadata=bounded(items=domain.MAX_DISTRICTS, chars=ID_CHARS),
    )
    min_age: int | None = strawberry.field(
        default=None, description=f"Youngest age allowed, {domain.MIN_AGE}–{domain.MAX_AGE}."
    )
    max_age: int | None = strawberry.field(
        default=None, description=f"Oldest age allowed, {domain.MIN_AGE}–{domain.MAX_AGE}."
    )
    verified_only: bool = strawberry.field(
        default=True,
        description="Only people with a verified phone (`verifyPhone`); on by default, so that "
        "throwaway accounts cannot sway the result. Set false for a poll open to every account.",
    )

    def draft(self) -> AudienceDraft:
        return AudienceDraft(
            [str(d) for d in self.district_ids], self.min_age, self.max_age, self.verified_only
        )


@strawberry.input(description="A new poll; it starts as a DRAFT.")
class CreatePollInput:
    title: str = strawberry.field(
        description="Short title.", metadata=bounded(chars=domain.MAX_TITLE)
    )
    description: str | None = strawberry.field(
        default=None, description="Details.", metadata=bounded(chars=domain.MAX_DESCRIPTION)
    )
    questions: list[QuestionInput] = strawberry.field(
        description=f"{domain.MIN_QUESTIONS}–{domain.MAX_QUESTIONS} questions, in order.",
        metadata=bounded(items=domain.MAX_QUESTIONS),
    )
    audience: AudienceInput | None = strawberry.field(
        default=None,
        description="Who may vote; leave out for everyone in the city with a verified phone.",
    )
    starts_at: datetime | None = strawberry.field(
        default=None, description="When voting opens (UTC); leave out to open on publishing."
    )
    ends_at: datetime | None = strawberry.field(
        default=None,
        description="When the poll closes by itself (UTC); after `startsAt`. Leave out to close by hand.",
    )
    points_reward: int | None = strawberry.field(
        default=None,
        description=f"Points each voter earns, 0–{domain.MAX_POINTS_REWARD} (default {domain.DEFAULT_POINTS_REWARD}).",
    )
    department_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Admins: the department running the poll (optional). Officials' polls belong to their own department.",
    )
    audit: bool = strawberry.field(
        default=True,
        description="Keep a public, verifiable log of the poll's anonymous ballot records with signed tree heads (`pollAudit`); on by default.",
    )
    receipts: bool = strawberry.field(
        default=True,
        description="Give each voter a receipt that proves their record is in the log. A receipt also lets a voter show someone how they voted: turn it off for sensitive polls (the public log and recount stay).",
    )


@strawberry.input(description="Changes to a DRAFT poll; leave a field out to keep it.")
class UpdatePollInput:
    title: str | None = strawberry.field(
        default=strawberry.UNSET, description="New title.", metadata=bounded(chars=domain.MAX_TITLE)
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="New details; null clears them.",
        metadata=bounded(chars=domain.MAX_DESCRIPTION),
    )
    questions: list[QuestionInput] | None = strawberry.field(
        default=strawberry.UNSET,
        description="The full new list of questions (replaces the old).",
        metadata=bounded(items=domain.MAX_QUESTIONS),
    )
    audience: AudienceInput | None = strawberry.field(
        default=strawberry.UNSET, description="The new audience; null: the whole city."
    )
    starts_at: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="New opening time (UTC); null: on publishing."
    )
    ends_at: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="New closing time (UTC); null: closed by hand."
    )
    points_reward: int | None = strawberry.field(
        default=strawberry.UNSET, description="New points per voter; null: the default."
    )


@strawberry.input(description="The answer to one question of a ballot.")
class AnswerInput:
    question_id: strawberry.ID = strawberry.field(description="The question (`Question.id`).")
    option_ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description="Choice questions: the chosen option ids (one for SINGLE_CHOICE, up to `maxChoices` for MULTIPLE_CHOICE).",
        metadata=bounded(items=domain.MAX_OPTIONS),
    )
    value: int | None = strawberry.field(
        default=None, description="SCALE questions: a number from `scaleMin` to `scaleMax`."
    )


def _when(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


# ─────────────────────────── root types ───────────────────────────


@strawberry.type(
    description="One anonymous ballot record of a poll's public log: the answers and the ballot's commitment, never who voted, when, or from where."
)
class BallotRecord:
    leaf_index: int = strawberry.field(description="Position in the log (cast order), from 0.")
    commitment: str = strawberry.field(description="sha256(ballot id + the voter's salt), hex.")
    record: str = strawberry.field(
        description="The record exactly as hashed: canonical JSON (sorted keys, no spaces, UTF-8). Its leaf hash is sha256(0x00 || record) (RFC 9162)."
    )
    leaf_hash: str = strawberry.field(description="sha256(0x00 || record), hex.")


@strawberry.type(
    description="The latest signed tree head of a poll's public log (Certificate Transparency style, RFC 9162): the log's root at a size, with the counters at that size, signed by the polls service's key (JWKS at the polls service's /.well-known/jwks.json). Visible when the poll's results are."
)
class PollAudit:
    tree_size: int = strawberry.field(description="How many records the head covers.")
    root_hash: str = strawberry.field(description="The Merkle root over those records, hex.")
    signed_at: datetime = strawberry.field(description="When the head was signed (UTC).")
    signature: str = strawberry.field(description="Ed25519 signature over `statement`, base64url.")
    key_id: str = strawberry.field(description="The signing key's `kid` in the JWKS.")
    statement: str = strawberry.field(
        description="Exactly what was signed: canonical JSON of poll, treeSize, rootHash, tallies (overall, and per district and age group of at least the minimum group size), signedAt and keyId."
    )
    _poll_id: strawberry.Private[str]

    @classmethod
    def from_head(cls, head: TreeHead) -> PollAudit:
        return cls(
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            signed_at=head.signed_at,
            signature=head.signature,
            key_id=head.key_id,
            statement=head.payload().decode(),
            _poll_id=head.poll_id,
        )

    @strawberry.field(description="The log's records in order, for a recount (page with `after`).")
    async def records(
        self, info: PollsInfo, first: PageFirst = None, after: PageAfter = None
    ) -> Connection[BallotRecord]:
        documents, has_next = await info.context.polls.records_page(
            self._poll_id, page_size(first), position_after(after)
        )
        nodes = [
            BallotRecord(
                leaf_index=d["index"],
                commitment=d["commitment"],
                record=canonical(d["record"]).decode(),
                leaf_hash=d["hash"],
            )
            for d in documents
        ]
        cursors = [encode_cursor([str(d["index"])]) for d in documents]
        return connection(nodes, cursors, has_next=has_next, total=self.tree_size)

    @strawberry.field(
        description="Every signed head of the log up to this one, largest first: one per fold. Check that each is consistent with the next with `consistencyProof`."
    )
    async def heads(
        self, info: PollsInfo, first: PageFirst = None, after: PageAfter = None
    ) -> Connection[PollAudit]:
        start = position_after(after)
        below = start if start is not None else self.tree_size + 1
        heads, has_next, total = await info.context.polls.heads_page(
            self._poll_id, page_size(first), below, self.tree_size
        )
        nodes = [PollAudit.from_head(h) for h in heads]
        cursors = [encode_cursor([str(h.tree_size)]) for h in heads]
        return connection(nodes, cursors, has_next=has_next, total=total)


@strawberry.type(
    description="The audit path of one record against a signed tree head (RFC 9162, 2.1.3)."
)
class InclusionProof:
    leaf_index: int = strawberry.field(description="The record's position in the log.")
    tree_size: int = strawberry.field(
        description="The size of the signed head it is proven against."
    )
    path: list[str] = strawberry.field(description="The sibling hashes from the leaf up, hex.")


@strawberry.federation.type(keys=["userId"], description=export.PERSONAL_DATA)
class PersonalData(export.PersonalDataKey):
    @strawberry.field(
        description="From the polls service: the voter profile it keeps (district, birth year, phone verified) and every ballot, with its answers."
    )
    async def polls(self, info: PollsInfo) -> JSON | None:
        caller = await info.context.require_user()
        return JSON(await info.context.polls.export_of(caller, str(self.user_id)))


@strawberry.type(description=QUERY_DESCRIPTION)
class Query:
    @strawberry.field(
        description="A poll by id; null if there is none (or it is a DRAFT you do not manage)."
    )
    async def poll(
        self,
        info: PollsInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="Poll id.")],
    ) -> Poll | None:
        return await _visible_poll(info, str(id))

    @strawberry.field(
        description="Polls, newest first. DRAFTs appear only to those who manage them."
    )
    async def polls(
        self,
        info: PollsInfo,
        status: Annotated[
            PollStatus | None, strawberry.argument(description="Only polls in this status.")
        ] = None,
        district_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(
                description="Only polls open to this district's residents (including city-wide ones); a district id from the `districts` query."
            ),
        ] = None,
        first: PageFirst = None,
        after: PageAfter = None,
    ) -> Connection[Poll] | None:
        after_id = id_after(after)
        documents, has_next, total = await info.context.polls.list_polls(
            await info.context.principal(),
            status=status,
            district_id=str(district_id) if district_id else None,
            first=page_size(first),
            after=after_id,
        )
        return _poll_page(documents, has_next, total)

    @strawberry.field(
        description="Polls the signed-in user can vote in now and has not yet: ACTIVE, open, their audience. Newest first."
    )
    async def polls_for_me(
        self, info: PollsInfo, first: PageFirst = None, after: PageAfter = None
    ) -> Connection[Poll] | None:
        caller = await info.context.require_user()
        after_id = id_after(after)
        documents, has_next, total = await info.context.polls.polls_for_me(
            caller, first=page_size(first), after=after_id
        )
        return _poll_page(documents, has_next, total)

    @strawberry.field(
        description="The latest signed tree head of the poll's public log, with its records for a recount. Null when the poll keeps no log, or while its results are not visible to you (the same rule as Poll.results). Verify it offline with `python -m veche_polls.verify`."
    )
    async def poll_audit(
        self,
        info: PollsInfo,
        poll_id: Annotated[strawberry.ID, strawberry.argument(description="Poll id.")],
    ) -> PollAudit | None:
        head = await info.context.polls.latest_head(await info.context.principal(), str(poll_id))
        return PollAudit.from_head(head) if head else None

    @strawberry.field(
        description="Proof that the record with this commitment (from a ballot receipt) is in the log covered by the latest signed head. Null until the ballot is folded and a head covers it, or while the results are not visible to you."
    )
    async def ballot_proof(
        self,
        info: PollsInfo,
        poll_id: Annotated[strawberry.ID, strawberry.argument(description="Poll id.")],
        commitment: Annotated[
            str,
            strawberry.argument(
                description="The receipt's commitment, hex (64 digits).",
                metadata=bounded(chars=64),
            ),
        ],
    ) -> InclusionProof | None:
        found = await info.context.polls.inclusion_proof(
            await info.context.principal(), str(poll_id), commitment[:64]
        )
        if found is None:
            return None
        index, size, path = found
        return InclusionProof(leaf_index=index, tree_size=size, path=[h.hex() for h in path])

    @strawberry.field(
        description="Proof (RFC 9162, 2.1.4) that the log at `fromSize` is a prefix of the log at `toSize`: no record was changed or removed between two signed heads. Both must be sizes of signed heads; hex hashes."
    )
    async def consistency_proof(
        self,
        info: PollsInfo,
        poll_id: Annotated[strawberry.ID, strawberry.argument(description="Poll id.")],
        from_size: Annotated[int, strawberry.argument(description="The older head's tree size.")],
        to_size: Annotated[int, strawberry.argument(description="The newer head's tree size.")],
    ) -> list[str] | None:
        proof = await info.context.polls.consistency_proof(
            await info.context.principal(), str(poll_id), from_size, to_size
        )
        return [h.hex() for h in proof] if proof is not None else None


@strawberry.type(description=MUTATION_DESCRIPTION)
class Mutation:
    @strawberry.mutation(
        description="Creates a DRAFT poll (OFFICIAL for their department, or ADMIN). BAD_USER_INPUT names the field at fault."
    )
    async def create_poll(
        self,
        info: PollsInfo,
        input: Annotated[
            CreatePollInput,
            strawberry.argument(description="The poll: title, questions, audience, schedule."),
        ],
    ) -> Poll:
        caller = await info.context.require_user()
        draft = NewPoll(
            title=input.title,
            description=input.description,
            questions=[q.draft() for q in input.questions],
            audience=input.audience.draft() if input.audience else None,
            starts_at=_when(input.starts_at),
            ends_at=_when(input.ends_at),
            points_reward=input.points_reward,
            department_id=str(input.department_id) if input.department_id else None,
            audit=input.audit,
            receipts=input.receipts,
        )
        return Poll.from_doc(await info.context.polls.create_poll(caller, draft))

    @strawberry.mutation(
        description="Changes a DRAFT poll (its department's officials, admins). INVALID_TRANSITION once published."
    )
    async def update_poll(
        self,
        info: PollsInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="Poll id.")],
        input: Annotated[
            UpdatePollInput, strawberry.argument(description="Only the fields to change.")
        ],
    ) -> Poll:
        caller = await info.context.require_user()
        changes: dict[str, Any] = {}
        for name in ("title", "description", "points_reward"):
            value = getattr(input, name)
            if value is not strawberry.UNSET:
                changes[name] = value
        for name in ("starts_at", "ends_at"):
            value = getattr(input, name)
            if value is not strawberry.UNSET:
                changes[name] = _when(value)
        if input.questions is not strawberry.UNSET:
            changes["questions"] = [q.draft() for q in input.questions or []]
        if input.audience is not strawberry.UNSET:
            changes["audience"] = input.audience.draft() if input.audience else None
        saved = await info.context.polls.update_poll(caller, str(id), changes)
        return Poll.from_doc(saved)

    @strawberry.mutation(
        description="Publishes a DRAFT poll: ACTIVE, and open for votes from `startsAt` if that is later."
    )
    async def publish_poll(
        self,
        info: PollsInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="Poll id.")],
    ) -> Poll:
        caller = await info.context.require_user()
        return Poll.from_doc(await info.context.polls.publish_poll(caller, str(id)))

    @strawberry.mutation(
        description="Closes an ACTIVE poll now (it also closes by itself at `endsAt`). INVALID_TRANSITION if it is not ACTIVE."
    )
    async def close_poll(
        self,
        info: PollsInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="Poll id.")],
    ) -> Poll:
        caller = await info.context.require_user()
        return Poll.from_doc(await info.context.polls.close_poll(caller, str(id)))

    @strawberry.mutation(
        description="Casts the signed-in user's ballot: every question answered. Final: ALREADY_VOTED on a second try; POLL_NOT_ACTIVE outside voting time; NOT_ELIGIBLE (with `extensions.reason` DISTRICT, AGE or VERIFICATION) outside the audience, or PROFILE_CHANGED when a change of district or birth year made after the poll was published is what would let the voter in (such a change counts for polls published later)."
    )
    async def cast_vote(
        self,
        info: PollsInfo,
        poll_id: Annotated[strawberry.ID, strawberry.argument(description="Poll id.")],
        answers: Annotated[
            list[AnswerInput],
            strawberry.argument(
                description="One answer per question of the poll.",
                metadata=bounded(items=domain.MAX_QUESTIONS),
            ),
        ],
    ) -> Ballot:
        caller = await info.context.require_user()
        drafts = [
            AnswerDraft(
                question_id=str(a.question_id),
                option_ids=[str(o) for o in a.option_ids or []],
                value=a.value,
            )
            for a in answers
        ]
        ballot = await info.context.polls.cast_vote(caller, str(poll_id), drafts)
        return Ballot.from_doc(ballot, with_receipt=True)

    @strawberry.mutation(
        description="Records (or updates) what the city decided after a CLOSED poll; its department's officials and admins."
    )
    async def record_decision(
        self,
        info: PollsInfo,
        poll_id: Annotated[strawberry.ID, strawberry.argument(description="Poll id.")],
        text: Annotated[
            str,
            strawberry.argument(
                description="The decision.", metadata=bounded(chars=domain.MAX_DECISION)
            ),
        ],
        status: Annotated[DecisionStatus, strawberry.argument(description="How far it has got.")],
    ) -> Poll:
        caller = await info.context.require_user()
        saved = await info.context.polls.record_decision(caller, str(poll_id), text, status)
        return Poll.from_doc(saved)


@strawberry.type(
    description="Live updates over graphql-transport-ws (WebSocket) or Server-Sent Events at the gateway's /graphql. Each field first sends the current state, then a new one after changes; on reconnect, subscribe again (the first message is the state at that moment)."
)
class Subscription:
    @strawberry.subscription(
        description="A poll's results, now and then after votes: at most one update per poll every POLLS_LIVE_INTERVAL_MS (500 ms by default), the last one counting every ballot. The same numbers and visibility rule as Poll.results: NOT_FOUND for a poll you cannot see, FORBIDDEN while its results are hidden from you (before you vote, unless you manage it or it is CLOSED)."
    )
    async def poll_results(
        self,
        info: PollsInfo,
        poll_id: Annotated[
            strawberry.ID,
            strawberry.argument(description="Poll id.", metadata=bounded(chars=ID_CHARS)),
        ],
    ) -> AsyncIterator[PollResults | None]:
        context = info.context
        caller = await context.principal()
        async for results in live.watch_results(
            context.polls, context.live_hub, caller, str(poll_id), PollResults.build
        ):
            yield results


# castVote is the hottest request: parse and validate each distinct document once, not per call.
schema = FederatedSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[Poll, User, Issue, District, Department, PersonalData],
    cached_documents=512,
)
