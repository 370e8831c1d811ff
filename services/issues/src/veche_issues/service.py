"""Use cases of the issues service: load, decide, save with its events.

Where events are written:
- a new issue, a support, a comment and a solver offer each carry their own
  pending event inside the one document they insert or update (single-document
  atomicity, no transaction on the hot paths);
- a status change updates the issue conditionally on its current status and
  writes its events to the outbox in the same transaction, so exactly one of
  two racing changes wins and only the winner's events exist.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError

from veche_issues import domain
from veche_issues.calendar import WorkingCalendar
from veche_issues.catalogue import Catalogue
from veche_issues.domain import Actor, Kind, Status
from veche_issues.errors import NotEligibleError
from veche_issues.moderation import EXCERPT, Moderation, Target
from veche_issues.recount import DeadlineRecount
from veche_issues.settings import IssuesSettings
from veche_issues.store import (
    OFFER_PENDING,
    IssueStore,
    collecting_at,
    district_parts,
    filter_conditions,
)
from veche_issues.upload_store import Claimant, UploadStore
from veche_issues.uploads import PhotoChoice, PhotoDesk, blobs_for
from veche_kit import audit_log, export, mongo, reference_lists
from veche_kit.audit_log import AuditAction
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.errors import (
    BadUserInputError,
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidTransitionError,
    NotFoundError,
)
from veche_kit.events import (
    AuditRecorded,
    CategoriesPublished,
    CategoryItem,
    ContentKind,
    IssueFixConfirmed,
    IssueOverdue,
    IssueSupportWithdrawn,
)
from veche_kit.memo import BriefCache
from veche_kit.mongo import Database, Document
from veche_kit.outbox import Outbox, OutboxRelay, Transaction
from veche_kit.reference_lists import CATEGORY_LIST, DISTRICT_LIST, ProjectedLists
from veche_kit.throttle import RateLimiter, Window
from veche_kit.wordfilter import WordFilter

log = logging.getLogger(__name__)

# A support not counted within this time was cut off by a crash; the sweep repairs it.
SUPPORT_REPAIR_AFTER = timedelta(seconds=60)


@dataclass(frozen=True)
class Near:
    lat: float
    lon: float
    radius_meters: int | None


@dataclass(frozen=True)
class IssueQuery:
    """What `issues(filter:)` asks for; every part is optional."""

    kind: Kind | None = None
    status: Status | None = None
    category: str | None = None
    district_id: str | None = None
    near: Near | None = None
    text: str | None = None
    assignee_id: str | None = None
    department_id: str | None = None
    overdue: bool | None = None
    # Moderators list hidden issues too; everyone else never sees them in a list.
    with_hidden: bool = False


@dataclass(frozen=True)
class IssuePage:
    issues: list[Document]
    cursors: list[list[Any]]
    has_next: bool
    total: int


@dataclass(frozen=True)
class Report:
    """A new problem or initiative as the caller gave it."""

    title: str
    description: str
    category: str
    location: tuple[float, float] | None
    address: str | None
    district_id: str | None
    photos: list[str] | None = None
    # Uploads (`POST /uploads`) to attach, in order; their photos come before `photos`.
    photo_uploads: list[PhotoChoice] | None = None


def _id_text(value: str) -> str:
    return value[:40]


def _by_id(documents: list[Document], has_next: bool, total: int) -> IssuePage:
    return IssuePage(documents, [[d["_id"]] for d in documents], has_next, total)


class IssuesService:
    """Holds the service's dependencies; each method is one use case."""

    def __init__(self, store: IssueStore, outbox: Outbox, settings: IssuesSettings) -> None:
        self.store = store
        self.outbox = outbox
        self.settings = settings
        self.calendar = WorkingCalendar(
            {}, settings.city_utc_offset_hours, settings.working_day_ends_at
        )
        self.limits = RateLimiter(store.db)
        self.moderation = Moderation(store, outbox, WordFilter.from_file(settings.word_filter_file))
        uploads = UploadStore(store.db, blobs_for(settings, store.db))
        self.photos = PhotoDesk(uploads, self.limits, settings)
        self._stats: BriefCache[list[Document]] = BriefCache(settings.stats_cache_seconds)
        self.catalogue = Catalogue(self)
        self.recount = DeadlineRecount(self)

    @property
    def db(self) -> Database:
        """The service's database, for tests that set up or inspect its documents."""
        return self.store.db

    @property
    def relay(self) -> OutboxRelay | None:
        return self.outbox.relay

    # ───────────────────────── helpers ─────────────────────────

    async def load_holidays(self) -> None:
        """Reloads the working-day calendar (every marked day, of each kind)."""
        days = await self.store.calendar_days()
        self.calendar = replace(self.calendar, days=days)

    @property
    def holidays(self) -> frozenset[date]:
        """The calendar's days off (besides weekends)."""
        return self.calendar.holidays

    @property
    def deadline(self) -> domain.Deadline:
        return self.deadline_for(None)

    def deadline_for(self, category: Document | None) -> domain.Deadline:
        """The answer period of `category` (its own working days, else the setting)."""
        days = (category or {}).get("response_working_days") or self.settings.response_working_days
        return domain.Deadline(days, self.calendar)

    async def category(self, category_id: str, field: str = "category") -> Document:
        """A category new issues may take; BAD_USER_INPUT naming an unknown or retired one."""
        document = await self.store.category(category_id)
        if document is None or document.get("retired_at") is not None:
            state = "Unknown" if document is None else "Retired"
            raise BadUserInputError(
                f"{state} category '{_id_text(category_id)}'; pick one from `issueCategories`.",
                field=field,
                ru=(
                    f"Категория «{_id_text(category_id)}» {'неизвестна' if document is None else 'в архиве'}; "
                    "выберите из `issueCategories`."
                ),
            )
        return document

    async def categories(self) -> list[Document]:
        return await self.store.categories()

    async def publish_categories(self) -> None:
        """Tells the other services the whole list of categories (at every start, after
        the demo data): users checks a solver's skills against it."""

        async def work(tx: Transaction) -> None:
            tx.emit(await self.categories_told(tx.session))

        await self.outbox.transaction(work)

    async def categories_told(self, session: mongo.Session) -> CategoriesPublished:
        """The list of categories offered, marked told in the caller's transaction."""
        await reference_lists.tell(self.db, CATEGORY_LIST, session)
        rows = await self.store.categories(session)
        return CategoriesPublished(
            categories=[
                CategoryItem(id=c["_id"], name=c["name"], department_id=c.get("department_id"))
                for c in rows
            ]
        )

    async def check_district(self, district_id: str | None, field: str = "districtId") -> None:
        """Against the users service's list of districts, as last told (`reference_lists`)."""
        if district_id is not None:
            await ProjectedLists(self.db).require_known(
                DISTRICT_LIST, [district_id], field=field, seeded=self.settings.demo_data
            )

    async def get_issue(self, issue_id: str) -> Document:
        issue = await self.store.get(issue_id)
        if issue is None:
            raise NotFoundError(
                f"No issue with id '{_id_text(issue_id)}'.",
                ru=f"Обращения с id «{_id_text(issue_id)}» нет.",
            )
        return issue

    @staticmethod
    def actors(principal: Principal | None, issue: Document) -> frozenset[Actor]:
        return domain.actors_of(
            principal,
            reporter_id=issue["reporter_id"],
            department_id=issue.get("department_id"),
            solver_id=issue.get("solver_id"),
        )

    async def _apply(
        self, tx: Transaction, issue_id: str, expected: Document, change: domain.Change
    ) -> Document:
        saved = await self.store.apply_transition(issue_id, expected, change, tx.session)
        if saved is None:
            raise ConflictError(
                "The issue changed meanwhile; reload it and try again.",
                ru="Обращение тем временем изменилось; обновите его и попробуйте снова.",
            )
        return saved

    # ───────────────────────── reporting ─────────────────────────

    async def report_issue(self, caller: Principal, report: Report) -> Document:
        return await self._new_issue(caller, Kind.PROBLEM, report)

    async def propose_initiative(self, caller: Principal, report: Report) -> Document:
        return await self._new_issue(caller, Kind.INITIATIVE, report)

    async def _new_issue(self, caller: Principal, kind: Kind, report: Report) -> Document:
        issue = await self._checked_issue(caller.user_id, caller.district_id, kind, report)
        if not report.photo_uploads:
            return await self._add_new(issue, report)
        domain.check_photo_count(len(issue["photos"]) + len(report.photo_uploads))
        issue["_id"] = mongo.new_id()
        target = Claimant(issue["_id"])
        # Claimed first (each upload once, by its owner), then the issue naming them.
        attached = await self.photos.attach(
            caller.user_id, target, report.photo_uploads, "photoUploads"
        )
        issue["images"] = attached
        issue["photos"] = [entry["url"] for entry in attached] + issue["photos"]
        try:
            saved = await self._add_new(issue, report)
        except Exception:
            await self.photos.release(attached, target)
            raise
        await self.photos.settle(target)  # a crash before this: the sweep settles it
        return saved

    async def report_for_partner(
        self, partner: Document, report: Report, contact: Document | None
    ) -> Document:
        """A problem a partner filed through Open311: anonymous (no reporter, so no
        points and no notifications); the person's contact is kept, for the
        department to answer, only when they consented to it. RATE_LIMITED past
        the partner's hourly allowance."""
        window = Window(
            self.settings.open311_reports_per_partner_hour,
            3600,
            "This API key has filed its hourly allowance of reports.",
            "По этому ключу API уже подано столько обращений, сколько можно за час.",
        )
        await self.limits.hit("open311-partner", partner["_id"], window)
        issue = await self._checked_issue(None, None, Kind.PROBLEM, report)
        issue["reported_via"] = {"partner_id": partner["_id"], "name": partner["name"]}
        issue["reporter_contact"] = contact
        return await self._add_new(issue, report)

    async def _add_new(self, issue: Document, report: Report) -> Document:
        now = utcnow()
        issue.update({"_id": issue.get("_id") or mongo.new_id(), "created_at": now})
        issue["updated_at"] = now
        if report.location is not None:
            issue["location"] = domain.geo_point(*report.location)
            issue["geo_cells"] = domain.geo_cells(*report.location)
        issue.update(self.outbox.carry(domain.arrival(issue)))
        await self.store.add(issue)
        self.outbox.written()
        await self.moderation.flag(
            Target(ContentKind.ISSUE, issue["_id"]),
            {
                "author_id": issue["reporter_id"],
                "issue_id": issue["_id"],
                "excerpt": issue["title"],
            },
            issue["title"],
            issue["description"],
        )
        return issue

    async def _checked_issue(
        self, reporter_id: str | None, home_district: str | None, kind: Kind, report: Report
    ) -> Document:
        """The new issue's fields from valid input, or the refusal naming the bad field."""
        title = domain.required_text(report.title, "title", domain.MAX_TITLE)
        description = domain.required_text(
            report.description, "description", domain.MAX_DESCRIPTION
        )
        address = domain.clean_text(report.address, "address", domain.MAX_ADDRESS, required=False)
        photos = domain.clean_photos(report.photos)
        if report.location is not None:
            domain.check_point(*report.location)
        routed = await self.category(report.category)
        district = report.district_id if report.district_id is not None else home_district
        await self.check_district(district)
        initiative = kind is Kind.INITIATIVE
        return {
            "kind": kind.value,
            "title": title,
            "description": description,
            "category": report.category,
            "department_id": routed["department_id"],
            "address": address,
            "district_id": district,
            "photos": photos,
            "status": domain.initial_status(kind).value,
            "reporter_id": reporter_id,
            "solver_id": None,
            "supporters_count": 0,
            "support_threshold": self.settings.threshold_for(report.category)
            if initiative
            else None,
            "due_at": None,
            "history": [],
            "search_terms": domain.search_terms(title, description, address),
        }

    # ───────────────────────── Open311 partners ─────────────────────────

    async def create_partner_key(self, caller: Principal, name: str) -> tuple[Document, str]:
        """A new partner and its API key, shown this once (only its hash is kept)."""
        _require_admin(caller, "issue Open311 API keys", "выдавать ключи Open311 API")
        clean = domain.required_text(name, "name", domain.MAX_PARTNER_NAME)
        key = secrets.token_urlsafe(32)
        partner = {
            "_id": mongo.new_id(),
            "name": clean,
            "key_hash": _key_hash(key),
            "created_at": utcnow(),
            "created_by": caller.user_id,
            "revoked_at": None,
        }
        await self.store.add_partner_key(partner)
        return partner, key

    async def revoke_partner_key(self, caller: Principal, partner_id: str) -> Document:
        _require_admin(caller, "revoke Open311 API keys", "отзывать ключи Open311 API")
        partner = await self.store.revoke_partner_key(partner_id, utcnow())
        if partner is None:
            raise NotFoundError(
                f"No Open311 partner has the id {partner_id!r}.",
                ru=f"Партнёра Open311 с id {partner_id!r} нет.",
            )
        return partner

    async def partners(self, caller: Principal) -> list[Document]:
        _require_admin(caller, "see Open311 partners", "видеть партнёров Open311")
        return await self.store.partners()

    async def partner_for_key(self, key: str) -> Document | None:
        """The partner an API key belongs to, unless it was revoked."""
        return await self.store.partner_by_key_hash(_key_hash(key))

    # ───────────────────────── reading ─────────────────────────

    def _filter(self, query: IssueQuery) -> Document:
        terms: list[str] = []
        if query.text is not None:
            text = domain.clean_text(query.text, "filter.text", domain.MAX_SEARCH, required=False)
            terms = domain.query_terms(text or "")
        return filter_conditions(
            kind=query.kind,
            status=query.status,
            category=query.category,
            district_id=query.district_id,
            terms=terms,
            assignee_id=query.assignee_id,
            department_id=query.department_id,
            overdue=query.overdue,
            now=utcnow(),
            with_hidden=query.with_hidden,
        )

    async def find_issues(
        self, query: IssueQuery, *, first: int, after: list[Any] | None
    ) -> IssuePage:
        """A page of issues: nearest first with `near`, newest first otherwise."""
        conditions = self._filter(query)
        if query.near is not None:
            return await self._find_nearest(query.near, conditions, first=first, after=after)
        if after is not None and len(after) != 1:
            raise BadUserInputError(
                "`after` is a cursor from a list with `near`.",
                field="after",
                ru="`after` — курсор из списка с `near`.",
            )
        return _by_id(
            *await self.store.page(conditions, first=first, after=str(after[0]) if after else None)
        )

    async def _find_nearest(
        self, near: Near, conditions: Document, *, first: int, after: list[Any] | None
    ) -> IssuePage:
        domain.check_point(near.lat, near.lon, "filter.near")
        radius = domain.clean_radius(near.radius_meters, "filter.near.radiusMeters")
        position: tuple[float, str] | None = None
        if after is not None:
            if len(after) != 2 or not isinstance(after[0], int | float):
                raise BadUserInputError(
                    "`after` is a cursor from a list without `near`.",
                    field="after",
                    ru="`after` — курсор из списка без `near`.",
                )
            position = (float(after[0]), str(after[1]))
        rows, has_next, total = await self.store.page_nearest(
            conditions,
            lat=near.lat,
            lon=near.lon,
            radius_meters=radius,
            first=first,
            after=position,
        )
        return IssuePage(
            [d for d, _ in rows], [[dist, d["_id"]] for d, dist in rows], has_next, total
        )

    async def similar_issues(
        self, category: str, lat: float, lon: float, radius_meters: int | None
    ) -> list[Document]:
        """Open issues of the category near a point, nearest first (at most 20)."""
        await self.category(category)
        domain.check_point(lat, lon, "near")
        radius = domain.clean_radius(radius_meters)
        return await self.store.open_near(
            category, lat=lat, lon=lon, radius_meters=radius, limit=domain.MAX_SIMILAR
        )

    async def reported_by(
        self, user_id: str, *, first: int, after: list[Any] | None, with_hidden: bool = False
    ) -> IssuePage:
        """Issues and initiatives a user reported or proposed, newest first (hidden ones
        only `with_hidden`: for the person themselves and moderators)."""
        after_id = str(after[0]) if after else None
        return _by_id(
            *await self.store.page_reported_by(
                user_id, first=first, after=after_id, with_hidden=with_hidden
            )
        )

    async def solved_by(self, user_id: str, *, first: int, after: list[Any] | None) -> IssuePage:
        """Issues a user is the assigned solver of, newest first."""
        after_id = str(after[0]) if after else None
        return _by_id(*await self.store.page_solved_by(user_id, first=first, after=after_id))

    async def matching_issues(
        self, viewer: Principal | None, user_id: str, *, first: int, after: list[Any] | None
    ) -> IssuePage:
        """Accepted or in-progress issues without a solver in the solver's skills,
        their own district first, newest first within each part."""
        if viewer is None or viewer.user_id != user_id:
            raise ForbiddenError(
                "Only the solver themself can see the issues matching them.",
                ru="Подходящие исполнителю обращения видит только сам исполнитель.",
            )
        empty = IssuePage([], [], False, 0)
        if not viewer.has_role("SOLVER"):
            return empty
        profile = await self.store.user(user_id) or {}
        skills = list(profile.get("skills") or [])
        if not skills:
            return empty
        district = viewer.district_id or profile.get("district_id")
        parts = district_parts(district)
        start_part, last_id = _matching_cursor(after)
        documents: list[Document] = []
        cursors: list[list[Any]] = []
        for part in range(start_part, len(parts)):
            found = await self.store.matching(
                skills,
                parts[part],
                before_id=last_id if part == start_part else None,
                limit=first + 1 - len(documents),
            )
            documents += found
            cursors += [[part, d["_id"]] for d in found]
            if len(documents) > first:
                break
        total = await self.store.count_matching(skills)
        return IssuePage(documents[:first], cursors[:first], len(documents) > first, total)

    # ───────────────────────── supports ─────────────────────────

    async def support(self, caller: Principal, issue_id: str) -> Document:
        """One support per user (a unique index); repeating it changes nothing. Initiatives
        of a category that asks for it take supports from phone-verified accounts only."""
        issue = await self.get_issue(issue_id)
        await self._check_supportable(caller, issue)
        support_id = mongo.new_id()
        try:
            await self.store.insert_support(
                {
                    "_id": support_id,
                    "issue_id": issue_id,
                    "user_id": caller.user_id,
                    "at": utcnow(),
                    "counted": False,
                }
            )
        except DuplicateKeyError:
            return issue
        saved = await self.store.count_support(issue_id, 1)
        assert saved is not None
        event = domain.supported(saved, caller.user_id)
        if not await self.store.mark_counted(support_id, self.outbox.carry(event)):
            # Withdrawn while being counted: withdrawSupport left the count to us.
            saved = await self.store.count_support(issue_id, -1) or saved
        self.outbox.written()
        if saved.get("duplicate_of"):
            return await self._follow_merge(caller, saved)
        crossed = await self.check_threshold(saved)
        if crossed is not None:
            return crossed
        if domain.due_for_review(saved):
            # Another support crossed the threshold meanwhile: show the status it set.
            return await self.get_issue(issue_id)
        return saved

    async def _check_supportable(self, caller: Principal, issue: Document) -> None:
        await self._check_verified_support(caller, issue)
        if issue.get("duplicate_of"):
            raise ConflictError(
                f"This issue was merged into '{issue['duplicate_of']}': support that one.",
                duplicateOf=issue["duplicate_of"],
                ru=f"Это обращение объединено с «{issue['duplicate_of']}»: поддержите то обращение.",
            )
        if Status(issue["status"]) in domain.FINISHED:
            raise ConflictError(
                f"This issue is {issue['status']}; it takes no more supports.",
                ru=f"Это обращение в статусе {issue['status']}; поддержку оно больше не принимает.",
            )

    async def _follow_merge(self, caller: Principal, duplicate: Document) -> Document:
        """A support that reached a duplicate while it was being merged (after the merge read
        its supporters): the person supports the issue kept too, once. If that one refuses
        (closed since, say), the support stays with the closed duplicate."""
        with contextlib.suppress(DomainError):
            await self.support(caller, duplicate["duplicate_of"])
        return duplicate

    async def _check_verified_support(self, caller: Principal, issue: Document) -> None:
        if issue["kind"] != Kind.INITIATIVE.value:
            return
        if not self.settings.verified_supports_for(issue["category"]) or caller.phone_verified:
            return
        # The token may predate a verification the projection has already heard of.
        projected = await self.store.user(caller.user_id)
        if projected is not None and projected.get("phone_verified"):
            return
        raise NotEligibleError(
            "Initiatives in this category take supports from accounts with a verified phone: "
            "verify yours (requestPhoneCode, verifyPhone), then try again.",
            reason="VERIFICATION",
            ru=(
                "Инициативы этой категории поддерживают только аккаунты с подтверждённым телефоном: "
                "подтвердите свой (requestPhoneCode, verifyPhone) и попробуйте снова."
            ),
        )

    async def withdraw_support(self, caller: Principal, issue_id: str) -> Document:
        issue = await self.get_issue(issue_id)
        if Status(issue["status"]) in domain.FINISHED:
            raise ConflictError(
                f"This issue is {issue['status']}; its supports are final.",
                ru=f"Это обращение в статусе {issue['status']}; поддержка уже не меняется.",
            )

        async def work(tx: Transaction) -> Document | None:
            saved = await self.store.withdraw_support(issue_id, caller.user_id, tx.session)
            if saved is not None:
                tx.emit(
                    IssueSupportWithdrawn(
                        issue_id=issue_id,
                        kind=saved["kind"],
                        user_id=caller.user_id,
                        supporters_count=saved["supporters_count"],
                    )
                )
            return saved

        return await self.outbox.transaction(work) or issue

    async def check_threshold(self, issue: Document) -> Document | None:
        """COLLECTING -> UNDER_REVIEW once, by whichever writer's conditional update wins."""
        if not domain.due_for_review(issue):
            return None
        threshold = issue["support_threshold"]
        change = domain.review(threshold, utcnow())
        expected = collecting_at(threshold)

        async def work(tx: Transaction) -> Document | None:
            saved = await self.store.apply_transition(issue["_id"], expected, change, tx.session)
            if saved is None:
                return None
            supporters = await self.store.supporter_ids(issue["_id"], tx.session)
            assert change.entry is not None
            tx.emit(
                domain.threshold_reached(saved, threshold),
                domain.status_changed(saved, change.entry, supporters),
            )
            return saved

        return await self.outbox.transaction(work)

    # ───────────────────────── comments ─────────────────────────

    async def comment(
        self,
        caller: Principal,
        issue_id: str,
        text: str,
        photos: list[PhotoChoice] | None = None,
    ) -> Document:
        """A comment, with photos (an official's "after" photo) when `photos` names uploads."""
        clean = domain.required_text(text, "text", domain.MAX_COMMENT)
        issue = await self.get_issue(issue_id)
        if photos:
            domain.check_photo_count(len(photos), "photoUploads")
            target = Claimant(issue_id, mongo.new_id())
            attached = await self.photos.attach(caller.user_id, target, photos, "photoUploads")
            try:
                comment = await self._comment(caller, issue, clean, target.comment_id, attached)
            except Exception:
                await self.photos.release(attached, target)
                raise
            await self.photos.settle(target)
            return comment
        return await self._comment(caller, issue, clean)

    async def _comment(
        self,
        caller: Principal,
        issue: Document,
        clean: str,
        comment_id: str | None = None,
        images: list[Document] | None = None,
    ) -> Document:
        issue_id = issue["_id"]
        official = (
            caller.has_role("OFFICIAL")
            and issue.get("department_id") is not None
            and caller.department_id == issue.get("department_id")
        )
        now = utcnow()
        comment: Document = {
            "_id": comment_id or mongo.new_id(),
            "issue_id": issue_id,
            "author_id": caller.user_id,
            "text": clean,
            "official": official,
            "at": now,
        }
        if images:
            comment["images"] = images
        supporters = await self.store.supporter_ids(issue_id)
        comment.update(self.outbox.carry(domain.commented(issue, comment, supporters)))
        await self.store.add_comment(comment)
        if official:
            await self.store.keep_first_response(
                issue_id, domain.first_response(issue["created_at"], now)
            )
            await self.store.mark_answered(issue_id, now)
        self.outbox.written()
        await self.moderation.flag(
            Target(ContentKind.COMMENT, comment["_id"]),
            {"author_id": caller.user_id, "issue_id": issue_id, "excerpt": clean[:EXCERPT]},
            clean,
        )
        return comment

    # ───────────────────────── the workflow ─────────────────────────

    async def change_status(
        self,
        caller: Principal | None,
        issue_id: str,
        target: Status,
        note: str | None = None,
        *,
        expect: Status | None = None,
    ) -> Document:
        """Moves an issue along the workflow if the caller may (None: the system).

        `expect` pins the current status a specialised action needs (e.g.
        confirmResolution needs RESOLVED), so it refuses with the workflow's words.
        """
        issue = await self.get_issue(issue_id)
        kind, current = Kind(issue["kind"]), Status(issue["status"])
        domain.check_expected(kind, current, expect)
        change = domain.transition(
            kind,
            current,
            target,
            self.actors(caller, issue),
            note,
            by=caller.user_id if caller is not None else None,
            created_at=issue["created_at"],
            now=utcnow(),
            deadline=await self._deadline_of(issue, target),
        )

        async def work(tx: Transaction) -> Document:
            saved = await self._apply(tx, issue_id, {"status": current.value}, change)
            supporters = await self.store.supporter_ids(issue_id, tx.session)
            assert change.entry is not None
            tx.emit(*domain.transition_events(saved, change.entry, supporters))
            if caller is not None and change.by_city:
                tx.emit(_audit_move(caller, issue_id, current, target, change.entry["note"]))
            return saved

        return await self.outbox.transaction(work)

    async def _deadline_of(self, issue: Document, target: Status) -> domain.Deadline:
        """The answer period a move to `target` starts (read only when it starts one)."""
        if target is not Status.ACCEPTED:
            return self.deadline
        return self.deadline_for(await self.store.category(issue["category"]))

    async def mark_solved(self, caller: Principal, issue_id: str, note: str | None) -> Document:
        return await self.change_status(
            caller, issue_id, Status.RESOLVED, note, expect=Status.IN_PROGRESS
        )

    async def confirm_resolution(self, caller: Principal, issue_id: str) -> Document:
        return await self.change_status(
            caller, issue_id, Status.CLOSED, "Confirmed by the reporter.", expect=Status.RESOLVED
        )

    async def reopen(self, caller: Principal, issue_id: str, reason: str) -> Document:
        # The workflow checks who may reopen before the reason (its `note`): FORBIDDEN first.
        try:
            return await self.change_status(
                caller, issue_id, Status.IN_PROGRESS, reason, expect=Status.RESOLVED
            )
        except BadUserInputError as refused:
            if refused.extensions.get("field") != "note":
                raise
            raise BadUserInputError(refused.message, field="reason", ru=refused.ru) from None

    # ───────────────────────── solvers ─────────────────────────

    async def offer_to_solve(self, caller: Principal, issue_id: str, message: str) -> Document:
        caller.require_role("SOLVER")
        clean = domain.required_text(message, "message", domain.MAX_OFFER)
        issue = await self.get_issue(issue_id)
        domain.check_not_reporter(caller.user_id, issue["reporter_id"])
        profile = await self.store.user(caller.user_id) or {}
        domain.check_skill(issue["category"], profile.get("skills") or [])
        if Status(issue["status"]) not in domain.SOLVABLE:
            raise InvalidTransitionError(
                f"Solvers can offer help once an issue is ACCEPTED; this one is {issue['status']}.",
                current=issue["status"],
                ru=(
                    f"Исполнители могут предложить помощь, когда обращение в статусе ACCEPTED; это "
                    f"обращение в статусе {issue['status']}."
                ),
            )
        if issue.get("solver_id"):
            raise ConflictError(
                "This issue already has a solver.", ru="У этого обращения уже есть исполнитель."
            )
        offer: Document = {
            "_id": mongo.new_id(),
            "issue_id": issue_id,
            "solver_id": caller.user_id,
            "message": clean,
            "status": OFFER_PENDING,
            "at": utcnow(),
        }
        offer.update(self.outbox.carry(domain.offered(issue, offer)))
        try:
            await self.store.add_offer(offer)
        except DuplicateKeyError as error:
            raise ConflictError(
                "You have already offered to solve this issue.",
                ru="Вы уже предложили решить это обращение.",
            ) from error
        self.outbox.written()
        return offer

    async def accept_offer(self, caller: Principal, offer_id: str) -> Document:
        """The reporter or an official picks a solver; an ACCEPTED issue moves to IN_PROGRESS."""
        offer = await self.store.get_offer(offer_id)
        if offer is None:
            raise NotFoundError(
                f"No solver offer with id '{_id_text(offer_id)}'.",
                ru=f"Предложения исполнителя с id «{_id_text(offer_id)}» нет.",
            )
        issue = await self.get_issue(offer["issue_id"])
        current, now = Status(issue["status"]), utcnow()
        change = domain.assignment(
            current,
            self.actors(caller, issue),
            offer_status=offer["status"],
            solver_id=offer["solver_id"],
            reporter_id=issue["reporter_id"],
            assigned_solver=issue.get("solver_id"),
            by=caller.user_id,
            created_at=issue["created_at"],
            now=now,
        )

        async def work(tx: Transaction) -> Document:
            expected = {"status": current.value, "solver_id": None}
            saved = await self._apply(tx, issue["_id"], expected, change)
            if not await self.store.take_offer(offer_id, issue["_id"], now, tx.session):
                raise ConflictError(
                    "This offer was withdrawn or decided meanwhile.",
                    ru="Это предложение тем временем отозвали или по нему уже решили.",
                )
            tx.emit(domain.assigned(saved, offer))
            if change.entry is not None:
                supporters = await self.store.supporter_ids(saved["_id"], tx.session)
                tx.emit(domain.status_changed(saved, change.entry, supporters))
            return saved

        return await self.outbox.transaction(work)

    async def confirm_fix(self, caller: Principal, issue_id: str) -> Document:
        """An official of the responsible department confirms the solver's fix; the solver's
        points are paid on the event this writes, once (a conditional update)."""
        issue = await self.get_issue(issue_id)
        change = domain.fix_confirmation(
            Status(issue["status"]),
            self.actors(caller, issue),
            caller_id=caller.user_id,
            solver_id=issue.get("solver_id"),
            reporter_id=issue["reporter_id"],
            confirmed_by=issue.get("fix_confirmed_by"),
            now=utcnow(),
        )
        expected = {"status": issue["status"], "solver_id": issue["solver_id"]}

        async def work(tx: Transaction) -> Document:
            saved = await self._apply(tx, issue_id, {**expected, "fix_confirmed_by": None}, change)
            tx.emit(
                IssueFixConfirmed(
                    issue_id=issue_id,
                    title=saved["title"],
                    solver_id=saved["solver_id"],
                    reporter_id=saved["reporter_id"],
                    department_id=saved.get("department_id"),
                    confirmed_by=caller.user_id,
                )
            )
            return saved

        return await self.outbox.transaction(work)

    # ───────────────────────── accountability ─────────────────────────

    async def department_stats(self, now: datetime | None = None) -> list[Document]:
        """Per department routed to by some category: open, overdue, resolved, median response.
        Kept for `stats_cache_seconds` (the work is a few store queries per department);
        a given `now` computes afresh."""
        if now is not None:
            return await self._department_stats(now)
        return await self._stats.get(lambda: self._department_stats(utcnow()))

    async def _department_stats(self, now: datetime) -> list[Document]:
        return [
            await self.store.department_stats(department, now)
            for department in await self.store.department_ids()
        ]

    # ───────────────────────── the periodic sweep ─────────────────────────

    async def sweep(self, now: datetime | None = None) -> dict[str, int]:
        """Closes issues the reporter left RESOLVED too long, repairs supports a crash
        left uncounted, finishes threshold crossings, reloads the calendar and
        finishes recounts of deadlines after a calendar change. Idempotent."""
        now = now or utcnow()
        await self.load_holidays()
        await self.recount.pending()
        closed = await self._auto_close(now)
        repaired = await self._repair_supports(now)
        overdue = await self.flag_overdue(now)
        swept = await self.photos.sweep(now)
        crossed = 0
        for document in await self.store.collecting_initiatives():
            if await self.check_threshold(document) is not None:
                crossed += 1
        return {
            "closed": closed,
            "repaired": repaired,
            "crossed": crossed,
            "overdue": overdue,
            "photos_swept": swept,
        }

    async def _auto_close(self, now: datetime) -> int:
        days = self.settings.auto_close_days
        note = f"Closed automatically: no answer from the reporter within {days} days."
        closed = 0
        for issue_id in await self.store.resolved_before(now - timedelta(days=days)):
            try:
                await self.change_status(None, issue_id, Status.CLOSED, note)
                closed += 1
            except DomainError as error:
                log.info("auto-close skipped", extra={"issue_id": issue_id, "why": error.message})
        return closed

    async def flag_overdue(self, now: datetime) -> int:
        """Publishes `issue.overdue` once per issue whose official answer is late
        (`domain.is_overdue`: ACCEPTED past its dueAt, unanswered).

        A conditional update on the issue (`overdue_notified` not yet set) decides,
        in the same transaction as the outbox row, so sweeps that overlap, or run
        in several replicas, tell the department once.
        """
        flagged = 0
        for issue_id in await self.store.overdue_unflagged(now):

            async def work(tx: Transaction, issue_id: str = issue_id) -> bool:
                issue = await self.store.flag_overdue(issue_id, now, tx.session)
                if issue is None:
                    return False
                tx.emit(
                    IssueOverdue(
                        issue_id=issue_id,
                        title=issue["title"],
                        department_id=issue.get("department_id"),
                        due_at=issue["due_at"],
                        reporter_id=issue["reporter_id"],
                    )
                )
                return True

            if await self.outbox.transaction(work):
                flagged += 1
        return flagged

    async def _repair_supports(self, now: datetime) -> int:
        cutoff = now - SUPPORT_REPAIR_AFTER
        stale = await self.store.stale_supports(cutoff)
        for issue_id in {s["issue_id"] for s in stale}:
            mine = [s for s in stale if s["issue_id"] == issue_id]
            for _ in range(5):  # optimistic: retried while supports keep arriving
                issue = await self.store.get(issue_id)
                if issue is None:
                    break
                exact = await self.store.recount(issue_id, issue["supporters_count"], cutoff)
                if exact is not None:
                    for support in mine:
                        event = domain.supported(
                            {**issue, "supporters_count": exact}, support["user_id"]
                        )
                        await self.store.repair_counted(support["_id"], self.outbox.carry(event))
                    break
        if stale:
            log.warning("uncounted supports repaired", extra={"supports": len(stale)})
            self.outbox.written()
        return len(stale)

    async def export_of(self, caller: Principal, user_id: str) -> dict[str, list[Any]]:
        """The person's own records here (152-FZ): only they may read them."""
        export.require_owner(caller, user_id)
        return await self.store.export_of(user_id)


# ─────────────────────────── the events each use case tells ───────────────────────────


def _require_admin(caller: Principal, what: str, ru: str) -> None:
    if not caller.is_admin:
        raise ForbiddenError(f"Only an admin may {what}.", ru=f"Только администратор может {ru}.")


def _key_hash(key: str) -> str:
    # API keys are long random strings: a plain hash is enough to keep them unusable if read.
    return hashlib.sha256(key.encode()).hexdigest()


def _matching_cursor(after: list[Any] | None) -> tuple[int, str | None]:
    """(part, last id) of a `matchingIssues` cursor: own district first (0), then the rest."""
    if after is None:
        return 0, None
    if len(after) != 2 or after[0] not in (0, 1) or not isinstance(after[1], str):
        raise BadUserInputError(
            "`after` is not a cursor from this list.",
            field="after",
            ru="`after` — не курсор этого списка.",
        )
    return int(after[0]), after[1]


def _audit_move(
    caller: Principal, issue_id: str, current: Status, target: Status, note: str | None
) -> AuditRecorded:
    return audit_log.entry(
        caller,
        AuditAction.ISSUE_STATUS_CHANGED,
        "Issue",
        issue_id,
        before={"status": current.value},
        after={"status": target.value},
        reason=note,
    )
