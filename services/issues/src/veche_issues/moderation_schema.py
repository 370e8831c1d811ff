"""Moderation in the issues subgraph: complaints, the moderators' queue, hide and restore."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from veche_issues.context import IssuesInfo
from veche_issues.moderation import MAX_REASON, CaseStatus, Target
from veche_issues.moderation_store import KEPT_REASONS
from veche_kit.errors import BadUserInputError
from veche_kit.events import ContentKind
from veche_kit.graphql import (
    Connection,
    PageAfter,
    PageFirst,
    at_most,
    id_after,
    id_connection,
    page_size,
    public_enum,
)
from veche_kit.inputs import ID_CHARS, bounded
from veche_kit.mongo import Document

if TYPE_CHECKING:
    from veche_issues.schema import Issue, User

LazyIssue = Annotated["Issue", strawberry.lazy("veche_issues.schema")]
LazyUser = Annotated["User", strawberry.lazy("veche_issues.schema")]
MAX_URL = 2000

public_enum(
    ContentKind,
    name="ContentKind",
    description="What can be reported to the moderators and hidden by them.",
    values={
        "ISSUE": "A problem report or an initiative (its title and description); `id` is the issue's.",
        "COMMENT": "A comment on an issue; `id` is the comment's.",
        "PHOTO": "One photo of an issue; `id` is the issue's and `photoUrl` the photo's URL.",
        "DISPLAY_NAME": "A person's display name; `id` is the user's. Hidden, it shows as a neutral name.",
    },
)

public_enum(
    CaseStatus,
    name="ModerationStatus",
    description="Where a moderation case stands.",
    values={
        "OPEN": "Waiting for a moderator: complained about or flagged by the word filter.",
        "HIDDEN": "A moderator hid the content: only its author and moderators see it, marked.",
        "RESTORED": "A moderator showed it again (or kept it): complaints still count, it stays shown.",
    },
)


@strawberry.input(description="The content a complaint or a moderator's decision is about.")
class ContentInput:
    kind: ContentKind = strawberry.field(description="What it is.")
    id: strawberry.ID = strawberry.field(
        description="The issue's, comment's or user's id (for a PHOTO: its issue's).",
        metadata=bounded(chars=ID_CHARS),
    )
    photo_url: str | None = strawberry.field(
        default=None,
        description="For a PHOTO only: the photo's URL, as `Issue.photos` lists it.",
        metadata=bounded(chars=MAX_URL),
    )

    def target(self) -> Target:
        if (self.kind is ContentKind.PHOTO) != (self.photo_url is not None):
            raise BadUserInputError(
                "`photoUrl` is needed for a PHOTO and only for a PHOTO.",
                field="photoUrl",
                ru="`photoUrl` нужен для PHOTO и только для PHOTO.",
            )
        return Target(self.kind, str(self.id), self.photo_url)


@strawberry.type(
    description="A moderator's mark on hidden content. Only its author and moderators see hidden "
    "content at all: show it greyed out, with the reason."
)
class HiddenMark:
    at: datetime = strawberry.field(description="When it was hidden (UTC).")
    reason: str = strawberry.field(description="The moderator's reason, as they wrote it.")

    @classmethod
    def of(cls, document: Document) -> HiddenMark | None:
        mark = document.get("hidden")
        return cls(at=mark["at"], reason=mark["reason"]) if mark else None


@strawberry.type(description="A complaint's text, as the person who made it wrote it.")
class Complaint:
    text: str = strawberry.field(description="The reason given.")
    at: datetime = strawberry.field(description="When it was made (UTC).")


@strawberry.type(
    description="One piece of content in the moderation queue, with every complaint about it."
)
class ModerationCase:
    id: strawberry.ID = strawberry.field(description="Case id.")
    kind: ContentKind = strawberry.field(description="What the content is.")
    content_id: strawberry.ID = strawberry.field(
        description="The issue's, comment's or user's id; pass it back as `ContentInput.id`."
    )
    photo_url: str | None = strawberry.field(description="For a PHOTO: its URL.")
    excerpt: str | None = strawberry.field(
        description="The content as it was when first reported (up to 300 characters; a photo's "
        "URL); null once its author's account is erased."
    )
    status: CaseStatus = strawberry.field(description="Where the case stands.")
    reports_count: int = strawberry.field(
        description="How many people complained (each person counts once)."
    )
    complaints: list[Complaint] = strawberry.field(
        description="The latest five complaints.", directives=at_most(KEPT_REASONS)
    )
    flagged_word: str | None = strawberry.field(
        description="The word the word filter matched, if it flagged the content; a moderator decides."
    )
    first_reported_at: datetime = strawberry.field(description="When the case was opened (UTC).")
    decided_at: datetime | None = strawberry.field(
        description="When a moderator last hid or restored it (UTC)."
    )
    decision_reason: str | None = strawberry.field(description="That moderator's reason.")
    _doc: strawberry.Private[Document]

    @classmethod
    def from_doc(cls, d: Document) -> ModerationCase:
        return cls(
            id=strawberry.ID(d["_id"]),
            kind=ContentKind(d["kind"]),
            content_id=strawberry.ID(d["content_id"]),
            photo_url=d.get("photo_url"),
            excerpt=d.get("excerpt"),
            status=CaseStatus(d["status"]),
            reports_count=d.get("reports_count", 0),
            complaints=[Complaint(text=r["text"], at=r["at"]) for r in d.get("reasons", [])],
            flagged_word=d.get("flagged_word"),
            first_reported_at=d["first_reported_at"],
            decided_at=d.get("decided_at"),
            decision_reason=d.get("decision_reason"),
            _doc=d,
        )

    @strawberry.field(
        description="The issue the content is or belongs to (moderators see hidden ones); null for a display name."
    )
    async def issue(self, info: IssuesInfo) -> LazyIssue | None:
        from veche_issues.schema import Issue

        issue_id = self._doc.get("issue_id")
        document = await info.context.issue_loaders.issue_by_id.load(issue_id) if issue_id else None
        return Issue.from_doc(document) if document else None

    @strawberry.field(description="Who wrote the content; null if unknown or erased.")
    def author(self) -> LazyUser | None:
        from veche_issues.schema import User

        author_id = self._doc.get("author_id")
        return User(id=strawberry.ID(author_id)) if author_id else None

    @strawberry.field(description="The moderator who last decided; null while OPEN.")
    def decided_by(self) -> LazyUser | None:
        from veche_issues.schema import User

        by = self._doc.get("decided_by")
        return User(id=strawberry.ID(by)) if by else None


Reason = Annotated[
    str,
    strawberry.argument(
        description=f"Why, in words a person can act on (1–{MAX_REASON} characters).",
        metadata=bounded(chars=MAX_REASON),
    ),
]
Content = Annotated[ContentInput, strawberry.argument(description="The content.")]


@strawberry.type
class ModerationQueries:
    @strawberry.field(
        description="The moderation queue, newest case first: content people complained about or "
        "the word filter flagged. MODERATOR or ADMIN only (FORBIDDEN otherwise)."
    )
    async def moderation_queue(
        self,
        info: IssuesInfo,
        status: Annotated[
            CaseStatus | None,
            strawberry.argument(
                description="Only cases in this state (default OPEN); null for all."
            ),
        ] = CaseStatus.OPEN,
        first: PageFirst = None,
        after: PageAfter = None,
    ) -> Connection[ModerationCase] | None:
        caller = await info.context.require_user()
        documents, has_next, total = await info.context.issues.moderation.queue(
            caller, status, first=page_size(first), after=id_after(after)
        )
        nodes = [ModerationCase.from_doc(d) for d in documents]
        return id_connection(nodes, documents, has_next=has_next, total=total)


@strawberry.type
class ModerationMutations:
    @strawberry.mutation(
        description="Tells the moderators that content breaks the rules. Any signed-in user "
        "(UNAUTHENTICATED otherwise); each person's complaint about one piece of content counts "
        "once, however often it is sent; RATE_LIMITED after 30 complaints an hour. True when received."
    )
    async def report_content(
        self, info: IssuesInfo, target: Content, reason: Reason
    ) -> bool | None:
        caller = await info.context.require_user()
        await info.context.issues.moderation.report(caller, target.target(), reason)
        return True

    @strawberry.mutation(
        description="Hides content from everyone but its author and moderators, who see it marked "
        "(`hidden`); the author is notified with the reason. MODERATOR or ADMIN only; CONFLICT if "
        "it is hidden already. Audited."
    )
    async def hide_content(
        self, info: IssuesInfo, target: Content, reason: Reason
    ) -> ModerationCase | None:
        caller = await info.context.require_user()
        case = await info.context.issues.moderation.hide(caller, target.target(), reason)
        return ModerationCase.from_doc(case)

    @strawberry.mutation(
        description="Shows hidden content again. MODERATOR or ADMIN only; CONFLICT if it is not "
        "hidden. Audited."
    )
    async def restore_content(
        self, info: IssuesInfo, target: Content, reason: Reason
    ) -> ModerationCase | None:
        caller = await info.context.require_user()
        case = await info.context.issues.moderation.restore(caller, target.target(), reason)
        return ModerationCase.from_doc(case)
