"""The users subgraph: types, queries, mutations and entities (Federation v2)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from veche_kit import export
from veche_kit.clock import utcnow
from veche_kit.graphql import (
    MUTATION_DESCRIPTION,
    QUERY_DESCRIPTION,
    Connection,
    FederatedSchema,
    PageAfter,
    PageFirst,
    id_after,
    id_connection,
    page_size,
    public_enum,
)
from veche_kit.inputs import ID_CHARS, bounded
from veche_kit.language import Language
from veche_kit.language import language as reader_language
from veche_kit.mongo import Document
from veche_users import domain, live, notices, store
from veche_users.audit_schema import AuditQueries
from veche_users.context import UsersInfo
from veche_users.moderation import HIDDEN_NAME, shown_name
from veche_users.service import MAX_REWARD_TEXT, AuthResult
from veche_users.totp_schema import (
    CurrentCode,
    EnrolmentTicket,
    SecondFactor,
    TotpEnrolment,
    TwoFactorStatus,
)

MAX_PHONE = 32  # "+7 (910) 123-45-67" with room for other separators
MAX_CODE = 16
MAX_TOKEN = 256

SignInEmail = Annotated[
    str,
    strawberry.argument(
        description="The account's sign-in e-mail (the address codes are mailed to).",
        metadata=bounded(chars=domain.MAX_EMAIL),
    ),
]
MailedCode = Annotated[
    str,
    strawberry.argument(
        description="The 8-character code from the e-mail (case, spaces and dashes do not matter).",
        metadata=bounded(chars=MAX_CODE),
    ),
]
NewPassword = Annotated[
    str,
    strawberry.argument(
        description="The new password (the same rules as at `register`).",
        metadata=bounded(chars=domain.MAX_PASSWORD),
    ),
]


Role = domain.Role
public_enum(
    Role,
    name="Role",
    description="What a person may do in Veche. Everyone is a CITIZEN; admins grant the rest.",
    values={
        "CITIZEN": "Votes, reports problems, proposes and supports initiatives.",
        "SOLVER": "Offers to fix problems in their skills (a citizen or an organization).",
        "OFFICIAL": "Works in a city department: answers and handles its issues, runs its polls.",
        "MODERATOR": "Accepts or rejects new reports and keeps discussions civil.",
        "ADMIN": "Manages roles, reference data and rewards.",
        "AUDITOR": "Reads and exports the audit log of staff actions; changes nothing.",
    },
)


@strawberry.federation.type(
    keys=["id"],
    description="A district of the city (e.g. an okrug); people, polls and issues belong to one.",
)
class District:
    id: strawberry.ID = strawberry.field(description="Stable short id, e.g. `leninsky`.")
    name: str = strawberry.field(description="Name to show, e.g. `Ленинский округ`.")
    retired: bool = strawberry.field(
        description="Retired by an admin: no longer offered in `districts` nor accepted for new "
        "polls and registrations; what names it keeps it."
    )

    @classmethod
    async def resolve_reference(cls, info: UsersInfo, id: strawberry.ID) -> District | None:
        document = await info.context.user_loaders.district_by_id.load(str(id))
        return District.from_doc(document) if document else None

    @classmethod
    def from_doc(cls, document: Document) -> District:
        retired = document.get("retired_at") is not None
        return cls(id=strawberry.ID(document["_id"]), name=document["name"], retired=retired)


@strawberry.federation.type(
    keys=["id"], description="A city department: owns categories of problems and runs polls."
)
class Department:
    id: strawberry.ID = strawberry.field(description="Stable short id, e.g. `roads`.")
    name: str = strawberry.field(description="Name to show.")
    retired: bool = strawberry.field(
        description="Retired by an admin: no longer offered in `departments` nor accepted for new "
        "officials; what names it keeps it."
    )

    @classmethod
    async def resolve_reference(cls, info: UsersInfo, id: strawberry.ID) -> Department | None:
        document = await info.context.user_loaders.department_by_id.load(str(id))
        return Department.from_doc(document) if document else None

    @classmethod
    def from_doc(cls, document: Document) -> Department:
        retired = document.get("retired_at") is not None
        return cls(id=strawberry.ID(document["_id"]), name=document["name"], retired=retired)


@strawberry.type(
    description="One change to a user's points: a credit for taking part, or a reward redeemed."
)
class PointsEntry:
    id: strawberry.ID = strawberry.field(description="Entry id.")
    amount: int = strawberry.field(description="Points added (positive) or spent (negative).")
    reason: str = strawberry.field(description="Why, in words, e.g. `Voted in a city poll`.")
    source_event: strawberry.ID = strawberry.field(
        description="The event or redemption this entry came from; each is counted once."
    )
    at: datetime = strawberry.field(description="When the entry was made (UTC).")


NotificationKind = notices.NotificationKind
public_enum(
    NotificationKind,
    name="NotificationKind",
    description="What a notification is about, for icons and grouping. Clients must tolerate "
    "values added later (show the `text`, as for OTHER): a shipped app cannot be updated "
    "with the server.",
    values={kind.name: template.meaning for kind, template in notices.TEMPLATES.items()},
)


@strawberry.type(
    description="A message in a user's inbox about something that concerns them, in the "
    "language the request's `Accept-Language` prefers: Russian (the default) or English."
)
class Notification:
    id: strawberry.ID = strawberry.field(
        description="Notification id; pass to markNotificationsRead."
    )
    kind: NotificationKind = strawberry.field(
        description="What it is about, for icons and grouping (values may be added later)."
    )
    text: str = strawberry.field(
        description="One sentence saying what happened, in Russian, or in English when "
        "`Accept-Language` prefers it (q-values honoured; any other language gets Russian). "
        "Notices written before 2026-12 keep the English text they were written in."
    )
    link: str | None = strawberry.field(
        description="What it is about, as `<type>:<id>`, e.g. `issue:65f0…`."
    )
    read: bool = strawberry.field(description="True once the user has marked it read.")
    at: datetime = strawberry.field(description="When it was written (UTC).")

    @classmethod
    def from_doc(cls, document: Document, language: Language) -> Notification:
        return cls(
            id=strawberry.ID(document["_id"]),
            kind=notices.kind_of(document),
            text=notices.text_of(document, language),
            link=document.get("link"),
            read=document["read"],
            at=document["at"],
        )


@strawberry.type(description="Something citizens can spend points on.")
class Reward:
    id: strawberry.ID = strawberry.field(description="Reward id; pass to redeemReward.")
    title: str = strawberry.field(description="What the reward is.")
    description: str | None = strawberry.field(description="Details: where and how to use it.")
    cost: int = strawberry.field(description="Points it costs.")
    stock: int = strawberry.field(description="How many are left; 0 means out of stock.")

    @classmethod
    def from_doc(cls, document: Document) -> Reward:
        return cls(
            id=strawberry.ID(document["_id"]),
            title=document["title"],
            description=document.get("description"),
            cost=document["cost"],
            stock=document.get("stock", 0),
        )


@strawberry.type(
    description="A reward a user has redeemed, with the code to show where it is used."
)
class Redemption:
    id: strawberry.ID = strawberry.field(description="Redemption id.")
    reward: Reward = strawberry.field(description="The reward as it was when redeemed.")
    cost: int = strawberry.field(description="Points spent.")
    code: str = strawberry.field(description="The code to present to receive the reward.")
    at: datetime = strawberry.field(description="When it was redeemed (UTC).")

    @classmethod
    def from_doc(cls, document: Document) -> Redemption:
        reward = {**document["reward"], "stock": 0}
        return cls(
            id=strawberry.ID(document["_id"]),
            reward=Reward.from_doc(reward),
            cost=document["cost"],
            code=document["code"],
            at=document["at"],
        )


@strawberry.type(
    description="A version of the consent text for processing personal data (152-FZ) that people accept at sign-up."
)
class ConsentVersion:
    version: str = strawberry.field(
        description="Version label, e.g. `2026-12-01`; pass it to register as `consentVersion`."
    )
    text: str = strawberry.field(
        description="The full consent text in Russian, to show before the person signs up."
    )
    published_at: datetime = strawberry.field(description="When it was published (UTC).")

    @classmethod
    def from_doc(cls, document: Document) -> ConsentVersion:
        return cls(
            version=document["version"],
            text=document["text"],
            published_at=document["published_at"],
        )


@strawberry.type(description="Why and until when an account may not sign in.")
class Suspension:
    reason: str = strawberry.field(description="The reason the moderator gave; shown to the user.")
    since: datetime = strawberry.field(description="When it began (UTC).")
    until: datetime | None = strawberry.field(
        description="When it ends by itself (UTC); null: until a moderator lifts it."
    )

    @classmethod
    def from_doc(cls, document: Document) -> Suspension:
        return cls(reason=document["reason"], since=document["since"], until=document["until"])


@strawberry.type(description="One acceptance of a consent text by a user, kept as its own record.")
class Consent:
    version: str = strawberry.field(description="The consent text version accepted.")
    accepted_at: datetime = strawberry.field(description="When it was accepted (UTC).")
    withdrawn_at: datetime | None = strawberry.field(
        description="When the user withdrew it (`withdrawConsent`, which also erased the account); null while it is in force."
    )

    @classmethod
    def from_doc(cls, document: Document) -> Consent:
        return cls(
            version=document["version"],
            accepted_at=document["accepted_at"],
            withdrawn_at=document.get("withdrawn_at"),
        )


@strawberry.federation.type(
    keys=["id"],
    description="A person using Veche. Private fields are visible only to the user themself and to admins.",
)
class User:
    id: strawberry.ID = strawberry.field(description="User id.")
    roles: list[Role] = strawberry.field(
        description="What the user may do; always includes CITIZEN."
    )
    organization: str | None = strawberry.field(
        description="For solvers acting for an organization: its name."
    )
    skills: list[str] = strawberry.field(
        description="Issue category ids a solver can take on (see `issueCategories`)."
    )
    phone_verified: bool = strawberry.field(
        description="True once the user confirmed a phone number; some polls require it."
    )
    created_at: datetime = strawberry.field(description="When the account was created (UTC).")
    _doc: strawberry.Private[Document]
    # Set when the response itself proves who the viewer is (register, login).
    _viewer_is_self: strawberry.Private[bool] = False

    @classmethod
    def from_doc(cls, document: Document, *, viewer_is_self: bool = False) -> User:
        return cls(
            id=strawberry.ID(document["_id"]),
            roles=[Role(r) for r in document["roles"]],
            organization=document.get("organization"),
            skills=document.get("skills", []),
            phone_verified=bool(document.get("phone_verified")),
            created_at=document["created_at"],
            _doc=document,
            _viewer_is_self=viewer_is_self,
        )

    @classmethod
    async def resolve_reference(cls, info: UsersInfo, id: strawberry.ID) -> User | None:
        document = await info.context.user_loaders.user_by_id.load(str(id))
        return User.from_doc(document) if document else None

    @strawberry.field(
        description=f"Name shown to others. If a moderator hid it, everyone but the person and "
        f"moderators sees «{HIDDEN_NAME}» (see `displayNameHidden`)."
    )
    async def display_name(self, info: UsersInfo) -> str:
        if self._viewer_is_self:
            return str(self._doc["display_name"])
        return shown_name(self._doc, await info.context.principal())

    @strawberry.field(
        description="True while a moderator keeps this display name hidden; the person can choose "
        "another with `updateProfile`, which shows at once (and is checked again)."
    )
    def display_name_hidden(self) -> bool:
        return bool(self._doc.get("display_name_hidden"))

    async def _private(self, info: UsersInfo) -> None:
        if self._viewer_is_self:
            return
        caller = await info.context.principal()
        user_id = self._doc["_id"]
        users = info.context.users
        users.private_owner(caller, user_id)
        if caller is not None and caller.user_id != user_id:  # an admin reads someone's
            await info.context.once(
                ("audit-read", user_id), lambda: users.audit_private_read(caller, user_id)
            )

    @strawberry.field(description="The district the user lives in, if they said.")
    async def district(self, info: UsersInfo) -> District | None:
        district_id = self._doc.get("district_id")
        if not district_id:
            return None
        document = await info.context.user_loaders.district_by_id.load(district_id)
        return District.from_doc(document) if document else None

    @strawberry.field(description="For officials: the department they work in.")
    async def department(self, info: UsersInfo) -> Department | None:
        department_id = self._doc.get("department_id")
        if not department_id:
            return None
        document = await info.context.user_loaders.department_by_id.load(department_id)
        return Department.from_doc(document) if document else None

    @strawberry.field(
        description="Sign-in email. Private: the user themself and admins only; null with FORBIDDEN at its path for anyone else."
    )
    async def email(self, info: UsersInfo) -> str | None:
        await self._private(info)
        return str(self._doc["email"])

    @strawberry.field(
        description="True once the user confirmed their e-mail address with a mailed code (`verifyEmail`, or a password reset). Private: the user themself and admins only; null with FORBIDDEN at its path for anyone else."
    )
    async def email_verified(self, info: UsersInfo) -> bool | None:
        await self._private(info)
        return bool(self._doc.get("email_verified"))

    @strawberry.field(description="Year of birth (for poll audiences by age). Private.")
    async def birth_year(self, info: UsersInfo) -> int | None:
        await self._private(info)
        year: int | None = self._doc.get("birth_year")
        return year

    @strawberry.field(
        description="Current points balance. Private: the user themself and admins only; null with FORBIDDEN at its path for anyone else."
    )
    async def points(self, info: UsersInfo) -> int | None:
        await self._private(info)
        return int(self._doc.get("points", 0))

    @strawberry.field(
        description="Points credited and spent, newest first. Private: the user themself and admins only; null with FORBIDDEN at its path for anyone else."
    )
    async def points_history(
        self,
        info: UsersInfo,
        first: PageFirst = None,
        after: PageAfter = None,
    ) -> Connection[PointsEntry] | None:
        await self._private(info)
        documents, has_next, total = await info.context.users.points_history(
            self._doc["_id"], first=page_size(first), after=id_after(after)
        )
        nodes = [
            PointsEntry(
                id=strawberry.ID(d["_id"]),
                amount=d["amount"],
                reason=d["reason"],
                source_event=strawberry.ID(d["source_event"]),
                at=d["at"],
            )
            for d in documents
        ]
        return id_connection(nodes, documents, has_next=has_next, total=total)

    @strawberry.field(
        description="The user's inbox, newest first. Private: the user themself and admins only; null with FORBIDDEN at its path for anyone else."
    )
    async def notifications(
        self,
        info: UsersInfo,
        first: PageFirst = None,
        after: PageAfter = None,
        unread_only: Annotated[
            bool | None, strawberry.argument(description="Only notifications not yet read.")
        ] = None,
    ) -> Connection[Notification] | None:
        await self._private(info)
        documents, has_next, total = await info.context.users.notifications(
            self._doc["_id"],
            unread_only=bool(unread_only),
            first=page_size(first),
            after=id_after(after),
        )
        language = reader_language(info.context.request.headers.get("accept-language"))
        nodes = [Notification.from_doc(d, language) for d in documents]
        return id_connection(nodes, documents, has_next=has_next, total=total)

    @strawberry.field(
        description="Rewards the user redeemed, newest first. Private: the user themself and admins only; null with FORBIDDEN at its path for anyone else."
    )
    async def redemptions(
        self,
        info: UsersInfo,
        first: PageFirst = None,
        after: PageAfter = None,
    ) -> Connection[Redemption] | None:
        await self._private(info)
        documents, has_next, total = await info.context.users.redemptions(
            self._doc["_id"], first=page_size(first), after=id_after(after)
        )
        nodes = [Redemption.from_doc(d) for d in documents]
        return id_connection(nodes, documents, has_next=has_next, total=total)

    @strawberry.field(
        description="The account's suspension, kept after it ends by itself (compare `until` with now); null when the account was never suspended or a moderator lifted it. The user themself, moderators and admins only; null with FORBIDDEN at its path for anyone else."
    )
    async def suspension(self, info: UsersInfo) -> Suspension | None:
        if not self._viewer_is_self:
            domain.require_self_or_staff(await info.context.principal(), self._doc["_id"])
        found: Document | None = self._doc.get("suspension")
        return Suspension.from_doc(found) if found else None

    @strawberry.field(
        description="Whether the account signs in with a second factor (TOTP), and how many recovery codes are left. Private: the user themself and admins only; null with FORBIDDEN at its path for anyone else."
    )
    async def two_factor(self, info: UsersInfo) -> TwoFactorStatus | None:
        await self._private(info)
        enrolment = await info.context.users.two_factor.enrolment(self._doc["_id"])
        return TwoFactorStatus.of(self._doc, enrolment)

    @strawberry.field(
        description="The consent texts the user accepted, oldest first, with any withdrawal. Private: the user themself and admins only; null with FORBIDDEN at its path for anyone else."
    )
    async def consents(self, info: UsersInfo) -> list[Consent] | None:
        await self._private(info)
        return [Consent.from_doc(d) for d in await info.context.users.consents(self._doc["_id"])]


@strawberry.type(
    description="What register, login and refreshToken return: tokens and the account."
)
class AuthPayload:
    access_token: str = strawberry.field(
        description="Send as `Authorization: Bearer <token>`; short-lived."
    )
    refresh_token: str = strawberry.field(
        description="Exchange with refreshToken for new tokens; single use."
    )
    expires_at: datetime = strawberry.field(description="When the access token expires (UTC).")
    user: User = strawberry.field(description="The signed-in account.")

    @classmethod
    def from_result(cls, result: AuthResult) -> AuthPayload:
        return cls(
            access_token=result.access_token,
            refresh_token=result.refresh_token,
            expires_at=result.expires_at,
            user=User.from_doc(result.user, viewer_is_self=True),
        )


@strawberry.type(
    description="Two-factor sign-in is on: a session that passed it, and the recovery codes."
)
class TotpConfirmation:
    auth: AuthPayload = strawberry.field(
        description="Tokens of a session that passed two-factor sign-in, as login returns them."
    )
    recovery_codes: list[str] = strawberry.field(
        description="10 single-use codes for signing in without the phone (pass one as `totp`). Shown only now: ask the person to keep them somewhere safe."
    )


@strawberry.input(description="A new account.")
class RegisterInput:
    email: str = strawberry.field(
        description="Sign-in email; one account per email.",
        metadata=bounded(chars=domain.MAX_EMAIL),
    )
    password: str = strawberry.field(
        description=f"At least {domain.MIN_PASSWORD} characters, letters with digits or symbols.",
        metadata=bounded(chars=domain.MAX_PASSWORD),
    )
    display_name: str = strawberry.field(
        description="Name shown to others.", metadata=bounded(chars=domain.MAX_NAME)
    )
    district_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Where the person lives (see `districts`); decides which polls they can vote in.",
    )
    birth_year: int | None = strawberry.field(
        default=None, description="Year of birth; polls may target age groups."
    )
    phone: str | None = strawberry.field(
        default=None,
        description="Phone in international form; verify it later with requestPhoneCode.",
        metadata=bounded(chars=MAX_PHONE),
    )
    consent_version: str | None = strawberry.field(
        default=None,
        description="The version of the consent text (see `currentConsent`) the person read and accepted; required, and it must be the current one, else BAD_USER_INPUT naming the current version.",
        metadata=bounded(chars=domain.MAX_CONSENT_VERSION),
    )


@strawberry.input(description="Profile fields to change; leave a field out to keep it.")
class UpdateProfileInput:
    display_name: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="New name shown to others.",
        metadata=bounded(chars=domain.MAX_NAME),
    )
    district_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="New district (see `districts`); null clears it."
    )
    birth_year: int | None = strawberry.field(
        default=strawberry.UNSET, description="Year of birth; null clears it."
    )
    organization: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Organization a solver acts for; null clears it.",
        metadata=bounded(chars=domain.MAX_ORGANIZATION),
    )


@strawberry.input(description="A reward for the catalogue.")
class RewardInput:
    title: str = strawberry.field(
        description="What the reward is.", metadata=bounded(chars=domain.MAX_NAME)
    )
    description: str | None = strawberry.field(
        default=None,
        description="Details: where and how to use it.",
        metadata=bounded(chars=MAX_REWARD_TEXT),
    )
    cost: int = strawberry.field(description="Points it costs, at least 1.")
    stock: int = strawberry.field(description="How many can be redeemed, 0 or more.")


@strawberry.federation.type(keys=["userId"], description=export.PERSONAL_DATA)
class PersonalData(export.PersonalDataKey):
    generated_at: datetime = strawberry.field(description="When the export was made (UTC).")

    @classmethod
    def resolve_reference(cls, **key: strawberry.ID) -> PersonalData:
        return cls(user_id=key["userId"], generated_at=utcnow())

    @strawberry.field(
        description="From the users service: the account (without the password hash), "
        "sessions (without their secrets), the points ledger, redemptions, notifications "
        "and the polls and initiatives kept for notifying the person."
    )
    async def account(self, info: UsersInfo) -> JSON | None:
        caller = await info.context.require_user()
        return JSON(await info.context.users.export_of(caller, str(self.user_id)))


@strawberry.type(description=QUERY_DESCRIPTION)
class Query(AuditQueries):
    @strawberry.field(
        description="The signed-in person's data export (152-FZ): one document with every "
        "record each service keeps about them. UNAUTHENTICATED without a token."
    )
    async def export_my_data(self, info: UsersInfo) -> PersonalData | None:
        caller = await info.context.require_user()
        return PersonalData(user_id=strawberry.ID(caller.user_id), generated_at=utcnow())

    @strawberry.field(description="The signed-in user; null when no token is sent.")
    async def me(self, info: UsersInfo) -> User | None:
        principal = await info.context.principal()
        if principal is None:
            return None
        document = await info.context.user_loaders.user_by_id.load(principal.user_id)
        return User.from_doc(document) if document else None

    @strawberry.field(description="A user by id; null if there is none.")
    async def user(
        self,
        info: UsersInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="User id.")],
    ) -> User | None:
        document = await info.context.user_loaders.user_by_id.load(str(id))
        return User.from_doc(document) if document else None

    @strawberry.field(
        description="The consent text a person must accept to sign up (show it before register and pass its `version` as `consentVersion`); null only before any is published."
    )
    async def current_consent(self, info: UsersInfo) -> ConsentVersion | None:
        document = await info.context.users.current_consent()
        return ConsentVersion.from_doc(document) if document else None

    @strawberry.field(description="The city's districts, by name.")
    async def districts(self, info: UsersInfo) -> list[District] | None:
        return [District.from_doc(d) for d in await info.context.users.districts()]

    @strawberry.field(description="The city's departments, by name.")
    async def departments(self, info: UsersInfo) -> list[Department] | None:
        return [Department.from_doc(d) for d in await info.context.users.departments()]

    @strawberry.field(
        description="The rewards catalogue, cheapest first (retired rewards left out; see `retireReward`)."
    )
    async def rewards(self, info: UsersInfo) -> list[Reward] | None:
        return [Reward.from_doc(d) for d in await info.context.users.rewards()]

    @strawberry.field(
        description="People and organizations who can fix problems, oldest first; filter by skill and district."
    )
    async def solvers(
        self,
        info: UsersInfo,
        skill: Annotated[
            str | None,
            strawberry.argument(
                description="An issue category id the solver must have.",
                metadata=bounded(chars=ID_CHARS),
            ),
        ] = None,
        district_id: Annotated[
            strawberry.ID | None,
            strawberry.argument(description="Only solvers living in this district."),
        ] = None,
        first: PageFirst = None,
        after: PageAfter = None,
    ) -> Connection[User] | None:
        documents, has_next, total = await info.context.users.solvers(
            skill=skill,
            district_id=str(district_id) if district_id else None,
            first=page_size(first),
            after=id_after(after),
        )
        return id_connection(
            [User.from_doc(d) for d in documents],
            documents,
            has_next=has_next,
            total=total,
        )


_REFERENCE_CODES = (
    "FORBIDDEN for non-admins (before any check of the input); BAD_USER_INPUT with `field`; "
    "NOT_FOUND for an unknown id; CONFLICT for a retired one."
)
ReferenceId = Annotated[
    strawberry.ID,
    strawberry.argument(description="The id, e.g. `leninsky`.", metadata=bounded(chars=ID_CHARS)),
]
ReferenceName = Annotated[
    str,
    strawberry.argument(
        description=f"The new name to show, at most {domain.MAX_NAME} characters.",
        metadata=bounded(chars=domain.MAX_NAME),
    ),
]


@strawberry.type(description=MUTATION_DESCRIPTION)
class Mutation:
    @strawberry.mutation(
        description="Creates a citizen account and signs it in, recording the person's acceptance of the consent text (`consentVersion`, with the time and network address). BAD_USER_INPUT without the current consent version or under the minimum age; CONFLICT if the email is taken; RATE_LIMITED (with `retryAfterSeconds`) after too many new accounts from one network within an hour."
    )
    async def register(
        self,
        info: UsersInfo,
        input: Annotated[
            RegisterInput,
            strawberry.argument(description="The new account: e-mail, password, name, consent."),
        ],
    ) -> AuthPayload:
        result = await info.context.users.register(
            email=input.email,
            password=input.password,
            display_name=input.display_name,
            district_id=str(input.district_id) if input.district_id else None,
            birth_year=input.birth_year,
            phone=input.phone,
            client=info.context.users.client_of(info.context.request),
            consent_version=input.consent_version,
        )
        return AuthPayload.from_result(result)

    @strawberry.mutation(
        description="Signs in. A wrong or unknown email and a wrong password get the same UNAUTHENTICATED answer. Accounts with two-factor sign-in also need `totp` (UNAUTHENTICATED with `extensions.reason` TOTP_REQUIRED without it, TOTP_INVALID for a wrong or used code; wrong codes are RATE_LIMITED after 5 in 15 minutes). An OFFICIAL, MODERATOR, ADMIN or AUDITOR without it gets UNAUTHENTICATED with reason TOTP_ENROLMENT_REQUIRED and `extensions.enrolmentTicket` for startTotpEnrolment. After 5 failures for one email from one network, each further try must wait longer (1 s, 2 s, 4 s...; RATE_LIMITED with `retryAfterSeconds`); other networks, the owner's included, are not held up. Too many failures from one network across accounts are RATE_LIMITED too."
    )
    async def login(
        self,
        info: UsersInfo,
        email: Annotated[
            str,
            strawberry.argument(
                description="Sign-in email.", metadata=bounded(chars=domain.MAX_EMAIL)
            ),
        ],
        password: Annotated[
            str,
            strawberry.argument(
                description="Password.", metadata=bounded(chars=domain.MAX_PASSWORD)
            ),
        ],
        totp: SecondFactor = None,
    ) -> AuthPayload:
        users = info.context.users
        client = users.client_of(info.context.request)
        return AuthPayload.from_result(await users.login(email, password, client, totp))

    @strawberry.mutation(
        description="Exchanges a refresh token for new tokens. Each refresh token works once; reusing one signs out its whole session family. A session that did not pass two-factor sign-in ends, UNAUTHENTICATED, once the account needs it: reason TOTP_REQUIRED (it turned two-factor sign-in on) or TOTP_ENROLMENT_REQUIRED (it was granted a staff role; login gives the enrolment ticket)."
    )
    async def refresh_token(
        self,
        info: UsersInfo,
        refresh_token: Annotated[
            str,
            strawberry.argument(
                description="The refresh token from the last sign-in or refresh.",
                metadata=bounded(chars=MAX_TOKEN),
            ),
        ],
    ) -> AuthPayload:
        return AuthPayload.from_result(await info.context.users.refresh(refresh_token))

    @strawberry.mutation(
        description="Starts two-factor sign-in (TOTP): a new secret for an authenticator app, to confirm with confirmTotpEnrolment. Either with the `ticket` from a login refused with TOTP_ENROLMENT_REQUIRED (staff), or signed in with the account's `password` (anyone; from then on their login needs a code too). Starting again replaces a waiting secret. BAD_USER_INPUT at `password` when it is wrong (RATE_LIMITED after 5 wrong in 15 minutes). UNAUTHENTICATED (reason TOTP_TICKET_INVALID) for an expired ticket or one from before a password change: sign in again; CONFLICT when it is on already (an admin resets it with resetTotp)."
    )
    async def start_totp_enrolment(
        self,
        info: UsersInfo,
        ticket: EnrolmentTicket = None,
        password: Annotated[
            str | None,
            strawberry.argument(
                description="When signed in (no ticket): the account's password, to confirm.",
                metadata=bounded(chars=domain.MAX_PASSWORD),
            ),
        ] = None,
    ) -> TotpEnrolment:
        caller = None if ticket else await info.context.principal()
        enrolment = await info.context.users.start_totp_enrolment(ticket, caller, password)
        return TotpEnrolment.of(enrolment)

    @strawberry.mutation(
        description="Turns two-factor sign-in on with the first code the authenticator app shows for the started secret (the same `ticket`, or signed in), and signs in: a session that passed it, and 10 recovery codes shown only now. BAD_USER_INPUT at `code` (reason TOTP_INVALID) for a wrong code, or when nothing was started or it expired; RATE_LIMITED after 5 wrong codes in 15 minutes."
    )
    async def confirm_totp_enrolment(
        self, info: UsersInfo, code: CurrentCode, ticket: EnrolmentTicket = None
    ) -> TotpConfirmation:
        caller = None if ticket else await info.context.principal()
        auth, codes = await info.context.users.confirm_totp_enrolment(ticket, caller, code)
        return TotpConfirmation(auth=AuthPayload.from_result(auth), recovery_codes=codes)

    @strawberry.mutation(
        description="Replaces the signed-in user's recovery codes with 10 new ones (shown only now; the old ones stop working), confirmed with a current code from the authenticator app. BAD_USER_INPUT at `totp` (reason TOTP_INVALID) for a wrong or used code, or when two-factor sign-in is off."
    )
    async def regenerate_recovery_codes(self, info: UsersInfo, totp: CurrentCode) -> list[str]:
        caller = await info.context.require_user()
        return await info.context.users.two_factor.regenerate(caller, totp)

    @strawberry.mutation(
        description="Turns off someone's two-factor sign-in (ADMIN only; not your own), e.g. when they lost their phone: every session of theirs ends, and their next login enrols again (staff) or signs in without a code (citizens). Audited (TOTP_RESET). False when it was off already."
    )
    async def reset_totp(
        self,
        info: UsersInfo,
        user_id: Annotated[strawberry.ID, strawberry.argument(description="Whose account.")],
        reason: Annotated[
            str,
            strawberry.argument(
                description=f"Why, for the audit log (1–{domain.MAX_SUSPENSION_REASON} characters), e.g. how the person proved who they are.",
                metadata=bounded(chars=domain.MAX_SUSPENSION_REASON),
            ),
        ],
    ) -> bool:
        caller = await info.context.require_user()
        return await info.context.users.two_factor.reset(caller, str(user_id), reason)

    @strawberry.mutation(
        description="Deletes the caller's account for good (152-FZ erasure), confirmed with their "
        "password: the name, e-mail, phone, birth year, district, points, rewards, notifications "
        "and sessions are erased in every service within seconds; ballots stay counted and "
        'reports and comments stay, shown with the author "Удалённый пользователь". '
        "True when erased; UNAUTHENTICATED for a wrong password. Sign the user out locally after it."
    )
    async def delete_my_account(
        self,
        info: UsersInfo,
        password: Annotated[
            str,
            strawberry.argument(
                description="The account's current password, to confirm.",
                metadata=bounded(chars=domain.MAX_PASSWORD),
            ),
        ],
    ) -> bool | None:
        caller = await info.context.require_user()
        return await info.context.users.delete_my_account(caller, password)

    @strawberry.mutation(
        description="Erases someone's account as `deleteMyAccount` does (ADMIN only), e.g. on a "
        "written request. The reason is kept in the erasure record, with who erased and when. "
        "False when the account was erased before."
    )
    async def erase_user(
        self,
        info: UsersInfo,
        user_id: Annotated[strawberry.ID, strawberry.argument(description="Whose account.")],
        reason: Annotated[
            str,
            strawberry.argument(
                description=f"Why, for the record (1–{domain.MAX_ERASURE_REASON} characters).",
                metadata=bounded(chars=domain.MAX_ERASURE_REASON),
            ),
        ],
    ) -> bool | None:
        caller = await info.context.require_user()
        return await info.context.users.erase_user(caller, str(user_id), reason)

    @strawberry.mutation(
        description="Ends the session the refresh token belongs to. False if it was unknown or already ended."
    )
    async def logout(
        self,
        info: UsersInfo,
        refresh_token: Annotated[
            str,
            strawberry.argument(
                description="The session's refresh token.", metadata=bounded(chars=MAX_TOKEN)
            ),
        ],
    ) -> bool:
        return await info.context.users.logout(refresh_token)

    @strawberry.mutation(
        description="Sends a 6-digit code to the phone (signed-in users). At most one code a minute per account, and a few an hour per phone number and per network (RATE_LIMITED with `retryAfterSeconds`)."
    )
    async def request_phone_code(
        self,
        info: UsersInfo,
        phone: Annotated[
            str,
            strawberry.argument(
                description="Phone in international form, e.g. +7 910 123-45-67.",
                metadata=bounded(chars=MAX_PHONE),
            ),
        ],
    ) -> bool:
        users = info.context.users
        caller = await info.context.require_user()
        return await users.request_phone_code(caller, phone, users.client_of(info.context.request))

    @strawberry.mutation(
        description="Confirms the phone with the code sent to it; the account becomes phone-verified. Sign in again (or refresh) for tokens that say so."
    )
    async def verify_phone(
        self,
        info: UsersInfo,
        code: Annotated[
            str,
            strawberry.argument(description="The 6-digit code.", metadata=bounded(chars=MAX_CODE)),
        ],
    ) -> User:
        return User.from_doc(
            await info.context.users.verify_phone(await info.context.require_user(), code)
        )

    @strawberry.mutation(
        description="Mails a new confirmation code to the signed-in user's address (registration mails the first one). The code is valid for an hour; a new one replaces it. At most one a minute, and a few an hour per address and per network (RATE_LIMITED with `retryAfterSeconds`); CONFLICT when the address is confirmed already."
    )
    async def request_email_verification(self, info: UsersInfo) -> bool:
        users = info.context.users
        caller = await info.context.require_user()
        return await users.request_email_verification(caller, users.client_of(info.context.request))

    @strawberry.mutation(
        description="Confirms an e-mail address with the code mailed to it (no sign-in needed: the code may come from a link opened elsewhere). Five wrong tries end the code (RATE_LIMITED); a wrong, used or expired code is BAD_USER_INPUT at `code`."
    )
    async def verify_email(
        self,
        info: UsersInfo,
        email: SignInEmail,
        code: MailedCode,
    ) -> bool:
        return await info.context.users.verify_email(email, code)

    @strawberry.mutation(
        description="Mails a code to set a new password with `resetPassword`, valid for an hour. Always true for a well-formed address, whether or not an account has it (nobody learns who is registered); a few an hour per address and per network (RATE_LIMITED with `retryAfterSeconds`)."
    )
    async def request_password_reset(
        self,
        info: UsersInfo,
        email: SignInEmail,
    ) -> bool:
        users = info.context.users
        return await users.request_password_reset(email, users.client_of(info.context.request))

    @strawberry.mutation(
        description="Sets a new password with the code from `requestPasswordReset`. The code works once; every session of the account ends (sign in with the new password), and the address counts as confirmed. A wrong, used or expired code is BAD_USER_INPUT at `code`; five wrong tries end the code (RATE_LIMITED)."
    )
    async def reset_password(
        self,
        info: UsersInfo,
        email: SignInEmail,
        code: MailedCode,
        new_password: NewPassword,
    ) -> bool:
        users = info.context.users
        client = users.client_of(info.context.request)
        return await users.reset_password(email, code, new_password, client)

    @strawberry.mutation(
        description="Changes the signed-in user's password. Every session ends, this one too: sign in again with the new password. BAD_USER_INPUT at `currentPassword` when it is wrong."
    )
    async def change_password(
        self,
        info: UsersInfo,
        current_password: Annotated[
            str,
            strawberry.argument(
                description="The password in use now, to confirm.",
                metadata=bounded(chars=domain.MAX_PASSWORD),
            ),
        ],
        new_password: NewPassword,
    ) -> bool:
        caller = await info.context.require_user()
        return await info.context.users.change_password(caller, current_password, new_password)

    @strawberry.mutation(description="Changes the signed-in user's profile.")
    async def update_profile(
        self,
        info: UsersInfo,
        input: Annotated[
            UpdateProfileInput,
            strawberry.argument(description="Only the fields to change; a field left out stays."),
        ],
    ) -> User:
        changes: dict[str, Any] = {}
        for name in ("display_name", "district_id", "birth_year", "organization"):
            value = getattr(input, name)
            if value is not strawberry.UNSET:
                changes[name] = str(value) if name == "district_id" and value is not None else value
        return User.from_doc(
            await info.context.users.update_profile(await info.context.require_user(), changes)
        )

    @strawberry.mutation(
        description="Offers the signed-in user's help with problems in these categories; grants the SOLVER role."
    )
    async def become_solver(
        self,
        info: UsersInfo,
        skills: Annotated[
            list[str],
            strawberry.argument(
                description="Issue category ids, as the `issueCategories` query lists them (e.g. "
                '"potholes"); an id it does not list is refused (BAD_USER_INPUT, `field: skills`).',
                metadata=bounded(items=domain.MAX_SKILLS, chars=ID_CHARS),
            ),
        ],
        organization: Annotated[
            str | None,
            strawberry.argument(
                description="The organization they act for, if any.",
                metadata=bounded(chars=domain.MAX_ORGANIZATION),
            ),
        ] = None,
    ) -> User:
        caller = await info.context.require_user()
        return User.from_doc(await info.context.users.become_solver(caller, skills, organization))

    @strawberry.mutation(description="Grants a role (ADMIN only). OFFICIAL needs departmentId.")
    async def grant_role(
        self,
        info: UsersInfo,
        user_id: Annotated[strawberry.ID, strawberry.argument(description="Who gets the role.")],
        role: Annotated[Role, strawberry.argument(description="The role to grant.")],
        department_id: Annotated[
            strawberry.ID | None, strawberry.argument(description="For OFFICIAL: their department.")
        ] = None,
    ) -> User:
        caller = await info.context.require_user()
        saved = await info.context.users.change_role(
            caller,
            str(user_id),
            role,
            grant=True,
            department_id=str(department_id) if department_id else None,
        )
        return User.from_doc(saved)

    @strawberry.mutation(description="Revokes a role (ADMIN only). CITIZEN cannot be revoked.")
    async def revoke_role(
        self,
        info: UsersInfo,
        user_id: Annotated[strawberry.ID, strawberry.argument(description="Whose role.")],
        role: Annotated[Role, strawberry.argument(description="The role to revoke.")],
    ) -> User:
        caller = await info.context.require_user()
        return User.from_doc(
            await info.context.users.change_role(caller, str(user_id), role, grant=False)
        )

    @strawberry.mutation(
        description="Publishes a new consent text (ADMIN only; FORBIDDEN otherwise); new sign-ups must accept it from now on. CONFLICT if the version exists already."
    )
    async def publish_consent_version(
        self,
        info: UsersInfo,
        version: Annotated[
            str,
            strawberry.argument(
                description="A new version label: letters, digits, dots and dashes, e.g. `2027-03-01`.",
                metadata=bounded(chars=domain.MAX_CONSENT_VERSION),
            ),
        ],
        text: Annotated[
            str,
            strawberry.argument(
                description="The full consent text in Russian.",
                metadata=bounded(chars=domain.MAX_CONSENT_TEXT),
            ),
        ],
    ) -> ConsentVersion:
        caller = await info.context.require_user()
        saved = await info.context.users.publish_consent_version(caller, version, text)
        return ConsentVersion.from_doc(saved)

    @strawberry.mutation(
        description="Withdraws the signed-in user's consent to processing their personal data, which ends the processing: the account is erased at once as `deleteMyAccount` erases it (every session ends; ballots stay counted, reports and comments stay with a neutral author). The consent record stays, marked withdrawn, as the record of what was agreed. True when withdrawn; sign the user out locally after it."
    )
    async def withdraw_consent(self, info: UsersInfo) -> bool | None:
        caller = await info.context.require_user()
        return await info.context.users.withdraw_consent(caller)

    @strawberry.mutation(
        description="Suspends an account (MODERATOR or ADMIN; staff accounts by an ADMIN only; never your own): every session ends at once in every service, and sign-in is refused (FORBIDDEN, `extensions.reason` SUSPENDED, with the reason and end) until `until` or until `unsuspendUser`. Audited."
    )
    async def suspend_user(
        self,
        info: UsersInfo,
        user_id: Annotated[strawberry.ID, strawberry.argument(description="Whose account.")],
        reason: Annotated[
            str,
            strawberry.argument(
                description=f"Why, shown to the person (1–{domain.MAX_SUSPENSION_REASON} characters).",
                metadata=bounded(chars=domain.MAX_SUSPENSION_REASON),
            ),
        ],
        until: Annotated[
            datetime | None,
            strawberry.argument(
                description="When it ends by itself (UTC, in the future); omit for no end."
            ),
        ] = None,
    ) -> User:
        caller = await info.context.require_user()
        saved = await info.context.users.suspend_user(caller, str(user_id), reason, until)
        return User.from_doc(saved)

    @strawberry.mutation(
        description="Lifts a suspension before its end (MODERATOR or ADMIN; staff accounts by an ADMIN only); the person may sign in again. BAD_USER_INPUT when the account is not suspended. Audited."
    )
    async def unsuspend_user(
        self,
        info: UsersInfo,
        user_id: Annotated[strawberry.ID, strawberry.argument(description="Whose account.")],
        reason: Annotated[
            str,
            strawberry.argument(
                description="Why, for the audit log.",
                metadata=bounded(chars=domain.MAX_SUSPENSION_REASON),
            ),
        ],
    ) -> User:
        caller = await info.context.require_user()
        return User.from_doc(await info.context.users.unsuspend_user(caller, str(user_id), reason))

    @strawberry.mutation(
        description="Adds a district (ADMIN only); the other services accept its id within seconds."
    )
    async def create_district(
        self,
        info: UsersInfo,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="Short id: lowercase letters, digits, dashes."),
        ],
        name: Annotated[
            str,
            strawberry.argument(
                description="Name to show.", metadata=bounded(chars=domain.MAX_NAME)
            ),
        ],
    ) -> District:
        caller = await info.context.require_user()
        return District.from_doc(await info.context.users.create_district(caller, str(id), name))

    @strawberry.mutation(description="Adds a department (ADMIN only).")
    async def create_department(
        self,
        info: UsersInfo,
        id: Annotated[
            strawberry.ID,
            strawberry.argument(description="Short id: lowercase letters, digits, dashes."),
        ],
        name: Annotated[
            str,
            strawberry.argument(
                description="Name to show.", metadata=bounded(chars=domain.MAX_NAME)
            ),
        ],
    ) -> Department:
        caller = await info.context.require_user()
        return Department.from_doc(
            await info.context.users.create_department(caller, str(id), name)
        )

    @strawberry.mutation(
        description="Renames a district (ADMIN only); the other services hear the new list. "
        f"{_REFERENCE_CODES} Audited."
    )
    async def rename_district(
        self, info: UsersInfo, id: ReferenceId, name: ReferenceName
    ) -> District:
        caller = await info.context.require_user()
        users = info.context.users
        return District.from_doc(
            await users.rename_reference(caller, store.DISTRICTS, str(id), name)
        )

    @strawberry.mutation(
        description="Retires a district (ADMIN only): no longer in `districts`, refused for new "
        "polls, reports and registrations (the other services within seconds); accounts, polls "
        f"and issues naming it keep it. {_REFERENCE_CODES} Audited."
    )
    async def retire_district(self, info: UsersInfo, id: ReferenceId) -> District:
        caller = await info.context.require_user()
        users = info.context.users
        return District.from_doc(await users.retire_reference(caller, store.DISTRICTS, str(id)))

    @strawberry.mutation(
        description=f"Renames a department (ADMIN only). {_REFERENCE_CODES} Audited."
    )
    async def rename_department(
        self, info: UsersInfo, id: ReferenceId, name: ReferenceName
    ) -> Department:
        caller = await info.context.require_user()
        users = info.context.users
        return Department.from_doc(
            await users.rename_reference(caller, store.DEPARTMENTS, str(id), name)
        )

    @strawberry.mutation(
        description="Retires a department (ADMIN only): no longer in `departments` nor accepted "
        "for new officials; officials, categories and issues naming it keep it (move its "
        f"categories with issues' `createCategory`/`retireCategory`). {_REFERENCE_CODES} Audited."
    )
    async def retire_department(self, info: UsersInfo, id: ReferenceId) -> Department:
        caller = await info.context.require_user()
        users = info.context.users
        return Department.from_doc(await users.retire_reference(caller, store.DEPARTMENTS, str(id)))

    @strawberry.mutation(description="Adds a reward to the catalogue (ADMIN only).")
    async def create_reward(
        self,
        info: UsersInfo,
        input: Annotated[
            RewardInput,
            strawberry.argument(description="The reward: title, cost in points, stock."),
        ],
    ) -> Reward:
        caller = await info.context.require_user()
        saved = await info.context.users.create_reward(
            caller,
            title=input.title,
            description=input.description,
            cost=input.cost,
            stock=input.stock,
        )
        return Reward.from_doc(saved)

    @strawberry.mutation(
        description="Renames a reward still offered (ADMIN only); redemptions made keep the title "
        "they had. FORBIDDEN for non-admins; BAD_USER_INPUT (`field` title) for an empty title; "
        "NOT_FOUND for an unknown id; CONFLICT for a retired reward. Audited."
    )
    async def rename_reward(
        self,
        info: UsersInfo,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The reward (see `rewards`).")
        ],
        title: Annotated[
            str,
            strawberry.argument(
                description=f"The new title, at most {domain.MAX_NAME} characters.",
                metadata=bounded(chars=domain.MAX_NAME),
            ),
        ],
    ) -> Reward:
        caller = await info.context.require_user()
        return Reward.from_doc(await info.context.users.rename_reward(caller, str(id), title))

    @strawberry.mutation(
        description="Takes a reward out of the catalogue (ADMIN only): it leaves `rewards` and "
        "`redeemReward` answers NOT_FOUND for it; redemptions made stay readable in "
        "`User.redemptions`, with their codes. FORBIDDEN for non-admins; NOT_FOUND for an unknown "
        "id; CONFLICT when retired already. Audited."
    )
    async def retire_reward(
        self,
        info: UsersInfo,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The reward (see `rewards`).")
        ],
    ) -> Reward:
        caller = await info.context.require_user()
        return Reward.from_doc(await info.context.users.retire_reward(caller, str(id)))

    @strawberry.mutation(
        description="Spends points on a reward. INSUFFICIENT_POINTS or OUT_OF_STOCK when it cannot; never goes below zero. "
        "NOT_FOUND for an unknown or retired reward."
    )
    async def redeem_reward(
        self,
        info: UsersInfo,
        reward_id: Annotated[
            strawberry.ID, strawberry.argument(description="The reward (see `rewards`).")
        ],
    ) -> Redemption:
        caller = await info.context.require_user()
        return Redemption.from_doc(await info.context.users.redeem_reward(caller, str(reward_id)))

    @strawberry.mutation(
        description="Marks the signed-in user's notifications read; returns how many changed."
    )
    async def mark_notifications_read(
        self,
        info: UsersInfo,
        ids: Annotated[
            list[strawberry.ID] | None,
            strawberry.argument(
                description="Which ones; leave out to mark all.",
                metadata=bounded(items=domain.MAX_MARK_READ),
            ),
        ] = None,
    ) -> int:
        caller = await info.context.require_user()
        return await info.context.users.mark_notifications_read(
            caller, [str(i) for i in ids] if ids is not None else None
        )


@strawberry.type(
    description="Live updates over graphql-transport-ws (WebSocket) or Server-Sent Events at the gateway's /graphql. Each field first sends the current state, then a new one after changes; on reconnect, subscribe again (the first message is the state at that moment)."
)
class Subscription:
    @strawberry.subscription(
        description="Each new notification of the signed-in user, as it is written (at most one wake every USERS_LIVE_INTERVAL_MS, 500 ms by default; notifications arriving together come one after another). Nothing is sent for those already in the inbox: read `me { notifications }` first, and again on reconnect. UNAUTHENTICATED when not signed in."
    )
    async def my_notifications(self, info: UsersInfo) -> AsyncIterator[Notification | None]:
        context = info.context
        caller = await context.require_user()
        language = reader_language(context.request.headers.get("accept-language"))
        async for document in live.watch_inbox(context.users, context.live_hub, caller.user_id):
            yield Notification.from_doc(document, language)


schema = FederatedSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[User, District, Department, PersonalData],
)
