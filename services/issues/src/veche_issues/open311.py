"""Open311 GeoReport v2, served beside GraphQL from the issues service's own
data (https://wiki.open311.org/GeoReport_v2).

Services are our categories (their department as `group`); service requests
are problem reports (initiatives are not service requests). Each call answers
in JSON or XML by the path's suffix, and errors come in Open311's own shape,
`[{"code": 400, "description": "..."}]`.

Our eight statuses map onto Open311's two: a report is `open` while the city
still owes an answer or a fix (NEW, ACCEPTED, IN_PROGRESS; for initiatives
also COLLECTING, UNDER_REVIEW) and `closed` once it is RESOLVED (reported
fixed, awaiting the reporter's confirmation), CLOSED or REJECTED.
`status_notes` carries the latest note of the report's history, or what the
status means when no one wrote one.

`POST requests` files a problem as `reportIssue` does, for a partner holding
an API key an admin issued (`createOpen311Key`). The report is anonymous: no
Veche account stands behind it, so it earns no points and notifies no one.
The person's e-mail, phone and name are kept (for the department to answer
them) only when the partner sends `consent=true`, our one extension to the
spec's fields; otherwise they are dropped unread.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from veche_issues import domain
from veche_issues.domain import Kind, RequestFilter, Status
from veche_issues.service import IssuesService, Report
from veche_kit.errors import DomainError, RateLimitedError
from veche_kit.language import said
from veche_kit.mongo import Document

PREFIX = "/open311/v2"
FORMATS = ("json", "xml")
CLOSED = domain.SETTLED  # what Open311 calls closed
# What a status means, for a report whose history has no note yet.
STATUS_NOTES = {
    Status.NEW: "Received; awaiting moderation.",
    Status.ACCEPTED: "Accepted; the responsible department must act by expected_datetime.",
    Status.COLLECTING: "Collecting supports.",
    Status.UNDER_REVIEW: "Under review by the responsible department.",
    Status.IN_PROGRESS: "Work is in progress.",
    Status.RESOLVED: "Reported fixed; awaiting the reporter's confirmation.",
    Status.CLOSED: "Fixed and closed.",
    Status.REJECTED: "Rejected.",
}
MAX_IDS = 100  # service_request_id values in one call
MAX_SPAN = timedelta(days=90)  # the spec's longest start_date..end_date range
MAX_RADIUS = 5_000  # metres, for the lat/long/radius extension
DEFAULT_RADIUS = 500
MAX_RESULTS = 200  # requests in one answer, newest first
MAX_POST_BYTES = 64 * 1024  # a report's form: text fields and one media_url
MAX_FORM_FIELDS = 50
MAX_CONTACT = 200  # characters of each contact field
TITLE_FROM_DESCRIPTION = 80


class Open311Error(Exception):
    """A refusal in Open311's shape: an HTTP status and a description, in English and
    in Russian (`ru`); the answer is in the request's language (`Accept-Language`)."""

    def __init__(self, status: int, description: str, *, ru: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.ru = ru


def _w3c(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _date(params: Mapping[str, str], name: str) -> datetime | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(
            400,
            f"{name} must be a W3C datetime such as 2026-01-31T00:00:00Z, not {text[:40]!r}",
            ru=f"{name} должно быть датой и временем W3C, например 2026-01-31T00:00:00Z, а не {text[:40]!r}",
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _number(params: Mapping[str, str], name: str) -> float | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise Open311Error(
            400,
            f"{name} must be a number, not {text[:40]!r}",
            ru=f"{name} должно быть числом, а не {text[:40]!r}",
        ) from None
    if not math.isfinite(value):
        raise Open311Error(
            400, f"{name} must be a finite number", ru=f"{name} должно быть конечным числом"
        )
    return value


def _list(params: Mapping[str, str], name: str, limit: int) -> list[str] | None:
    text = params.get(name)
    if text is None or text.strip() == "":
        return None
    values = [value.strip() for value in text.split(",") if value.strip()]
    if len(values) > limit:
        raise Open311Error(
            400,
            f"{name} takes at most {limit} comma-separated values",
            ru=f"{name}: не больше {limit} значений через запятую",
        )
    return values


def request_filter(params: Mapping[str, str], now: datetime) -> RequestFilter:
    """The filter `params` ask for, or the refusal naming the bad parameter."""
    ids = _list(params, "service_request_id", MAX_IDS)
    codes = _list(params, "service_code", MAX_IDS)
    start, end = _span(params, now)
    closed: bool | None = None
    statuses = _list(params, "status", 2)
    if statuses is not None:
        if not set(statuses) <= {"open", "closed"}:
            raise Open311Error(
                400,
                "status must be open, closed or both (comma-separated)",
                ru="status: open, closed или оба (через запятую)",
            )
        closed = None if len(set(statuses)) == 2 else statuses[0] == "closed"
    return RequestFilter(ids, codes, start, end, closed, _near(params))


def _span(params: Mapping[str, str], now: datetime) -> tuple[datetime, datetime]:
    """From `start_date` to `end_date`: the last 90 days when neither is given."""
    start, end = _date(params, "start_date"), _date(params, "end_date")
    end = end or (start + MAX_SPAN if start else now)
    start = start or end - MAX_SPAN
    if start > end:
        raise Open311Error(
            400,
            "start_date must not be after end_date",
            ru="start_date не может быть позже end_date",
        )
    if end - start > MAX_SPAN:
        raise Open311Error(
            400,
            "start_date and end_date may be at most 90 days apart",
            ru="между start_date и end_date не больше 90 дней",
        )
    return start, end


def _near(params: Mapping[str, str]) -> tuple[float, float, float] | None:
    """Where `lat`, `long` and `radius` ask to search, if they do."""
    lat, lon = _number(params, "lat"), _number(params, "long")
    radius = _number(params, "radius")
    near: tuple[float, float, float] | None = None
    if (lat is None) != (lon is None):
        raise Open311Error(400, "lat and long go together", ru="lat и long указываются вместе")
    if lat is not None and lon is not None:
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise Open311Error(
                400,
                "lat must lie in -90..90 and long in -180..180",
                ru="lat должна быть в пределах -90..90, а long — в пределах -180..180",
            )
        radius = DEFAULT_RADIUS if radius is None else radius
        if not 0 < radius <= MAX_RADIUS:
            raise Open311Error(
                400,
                f"radius is in metres, more than 0 and at most {MAX_RADIUS}",
                ru=f"radius указывается в метрах: больше 0 и не больше {MAX_RADIUS}",
            )
        near = (lat, lon, radius)
    elif radius is not None:
        raise Open311Error(400, "radius needs lat and long", ru="для radius нужны lat и long")
    return near


def service_row(category: Document) -> dict[str, Any]:
    return {
        "service_code": category["_id"],
        "service_name": category["name"],
        "description": category["name"],
        "metadata": False,  # no category has extra attributes yet
        "type": "realtime",
        "keywords": "",
        "group": category.get("department_id") or "",
    }


def service_request(issue: Document, categories: Mapping[str, Document]) -> dict[str, Any]:
    status = Status(issue["status"])
    notes = [entry["note"] for entry in issue.get("history", []) if entry.get("note")]
    location = (issue.get("location") or {}).get("coordinates")
    hidden = issue.get("hidden_photos") or []  # a moderator's hide holds here too
    photos = [url for url in issue.get("photos") or [] if url not in hidden]
    category = categories.get(issue["category"], {})
    return {
        "service_request_id": issue["_id"],
        "status": "closed" if status in CLOSED else "open",
        "status_notes": notes[-1] if notes else STATUS_NOTES[status],
        "service_name": category.get("name", issue["category"]),
        "service_code": issue["category"],
        "description": issue["description"],
        "agency_responsible": issue.get("department_id") or "",
        "service_notice": "",
        "requested_datetime": _w3c(issue.get("created_at")),
        "updated_datetime": _w3c(issue.get("updated_at")),
        "expected_datetime": _w3c(issue.get("due_at")),
        "address": issue.get("address") or "",
        "address_id": "",
        "zipcode": "",
        "lat": location[1] if location else None,
        "long": location[0] if location else None,
        "media_url": photos[0] if photos else "",
    }


# ───────────────────────── formats ─────────────────────────


def _element(name: str, row: Mapping[str, Any]) -> ElementTree.Element:
    element = ElementTree.Element(name)
    for key, value in row.items():
        if isinstance(value, list):  # a service definition's attributes
            child = ElementTree.SubElement(element, key)
            child.extend(_element("attribute", entry) for entry in value)
        else:
            ElementTree.SubElement(element, key).text = _text(value)
    return element


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# The XML root and the element of each item, per answer (the spec's examples);
# a service definition is a single object under its root.
ROOTS = {
    "services": ("services", "service"),
    "requests": ("service_requests", "request"),
    "definition": ("service_definition", None),
    "errors": ("errors", "error"),
}


def answer(kind: str, rows: list[dict[str, Any]], fmt: str, status: int = 200) -> Response:
    single = ROOTS[kind][1] is None
    if fmt == "json":
        return JSONResponse(rows[0] if single else rows, status)
    root, item = ROOTS[kind]
    if item is None:
        top = _element(root, rows[0])
    else:
        top = ElementTree.Element(root)
        top.extend(_element(item, row) for row in rows)
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(top, "utf-8")
    return Response(body, status, media_type="text/xml; charset=utf-8")


def refusal(error: Open311Error, fmt: str) -> Response:
    return answer(
        "errors",
        [{"code": error.status, "description": said(error.description, error.ru)}],
        fmt,
        error.status,
    )


# ───────────────────────── POST requests ─────────────────────────


async def form(request: Request) -> dict[str, str]:
    """The form of a `POST requests` (application/x-www-form-urlencoded, as the spec
    says), refused before parsing when it is too large."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_POST_BYTES:
        raise Open311Error(
            413,
            f"the form is larger than {MAX_POST_BYTES} bytes",
            ru=f"форма больше {MAX_POST_BYTES} байт",
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_POST_BYTES:
            raise Open311Error(
                413,
                f"the form is larger than {MAX_POST_BYTES} bytes",
                ru=f"форма больше {MAX_POST_BYTES} байт",
            )
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise Open311Error(
            400,
            "send the fields as application/x-www-form-urlencoded",
            ru="отправьте поля как application/x-www-form-urlencoded",
        )
    try:
        fields = parse_qs(
            body.decode(),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise Open311Error(
            400,
            f"the form must be UTF-8 with at most {MAX_FORM_FIELDS} fields",
            ru=f"форма должна быть в UTF-8 и содержать не больше {MAX_FORM_FIELDS} полей",
        ) from None
    return {name: values[0] for name, values in fields.items()}


def _title(description: str) -> str:
    """Open311 has no title: the first line of the description stands in for it."""
    first = description.strip().splitlines()[0] if description.strip() else ""
    if len(first) <= TITLE_FROM_DESCRIPTION:
        return first
    return first[: TITLE_FROM_DESCRIPTION - 1].rstrip() + "…"


def partner_report(fields: Mapping[str, str]) -> tuple[Report, Document | None]:
    """The report and (with consent) the person's contact a partner's form gives."""
    for required in ("service_code", "description"):
        if not fields.get(required, "").strip():
            raise Open311Error(400, f"{required} is required", ru=f"{required} обязателен")
    lat, lon = _number(fields, "lat"), _number(fields, "long")
    if lat is None or lon is None:
        raise Open311Error(
            400,
            "lat and long are required: every problem is placed on the map",
            ru="lat и long обязательны: каждая проблема отмечается на карте",
        )
    media = fields.get("media_url", "").strip()
    report = Report(
        title=_title(fields["description"]),
        description=fields["description"],
        category=fields["service_code"].strip(),
        location=(lat, lon),
        address=fields.get("address_string") or None,
        district_id=None,
        photos=[media] if media else None,
    )
    contact: Document | None = None
    if fields.get("consent", "").lower() == "true":
        name = " ".join(
            part for part in (fields.get("first_name", ""), fields.get("last_name", "")) if part
        )
        given = {"email": fields.get("email"), "phone": fields.get("phone"), "name": name}
        contact = {key: value[:MAX_CONTACT] for key, value in given.items() if value} or None
    return report, contact


# ───────────────────────── routes ─────────────────────────

Handler = Callable[[Request, str], Awaitable[Response]]


class GeoReport:
    """The endpoints of one jurisdiction, each answering in the format its path asks for."""

    def __init__(self, service: IssuesService, jurisdiction: str) -> None:
        self.service = service
        self.store = service.store
        self.jurisdiction = jurisdiction

    def check_jurisdiction(self, asked: str | None) -> None:
        if asked not in (None, "", self.jurisdiction):
            raise Open311Error(
                404,
                f"jurisdiction_id {asked[:60]!r} is not served here; this is {self.jurisdiction!r}",
                ru=f"jurisdiction_id {asked[:60]!r} здесь не обслуживается; здесь {self.jurisdiction!r}",
            )

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            fmt = request.path_params.get("fmt", "json")
            if fmt not in FORMATS:
                return refusal(
                    Open311Error(404, "the format is json or xml", ru="формат — json или xml"),
                    "json",
                )
            try:
                self.check_jurisdiction(request.query_params.get("jurisdiction_id"))
                return await handler(request, fmt)
            except Open311Error as error:
                return refusal(error, fmt)

        return run

    async def categories(self) -> dict[str, Document]:
        return {category["_id"]: category for category in await self.store.categories()}

    async def list_services(self, _: Request, fmt: str) -> Response:
        rows = [service_row(c) for c in (await self.categories()).values()]
        return answer("services", rows, fmt)

    async def definition(self, request: Request, fmt: str) -> Response:
        code = request.path_params["code"]
        if await self.store.category(code) is None:
            raise Open311Error(
                404,
                f"no service with service_code {code[:60]!r}; see services.{fmt}",
                ru=f"услуги с service_code {code[:60]!r} нет; см. services.{fmt}",
            )
        return answer("definition", [{"service_code": code, "attributes": []}], fmt)

    async def list_requests(self, request: Request, fmt: str) -> Response:
        wanted = request_filter(request.query_params, datetime.now(UTC))
        found = await self.store.service_requests(wanted, MAX_RESULTS)
        named = await self.categories()
        return answer("requests", [service_request(issue, named) for issue in found], fmt)

    async def one_request(self, request: Request, fmt: str) -> Response:
        request_id = request.path_params["id"]
        issue = await self.store.get(request_id)
        if issue is None or issue["kind"] != Kind.PROBLEM.value:
            raise Open311Error(
                404,
                f"no service request {request_id[:60]!r}",
                ru=f"обращения {request_id[:60]!r} нет",
            )
        return answer("requests", [service_request(issue, await self.categories())], fmt)

    async def create_request(self, request: Request, fmt: str) -> Response:
        fields = await form(request)
        self.check_jurisdiction(fields.get("jurisdiction_id"))
        partner = await self.partner(fields.get("api_key", ""))
        report, contact = partner_report(fields)
        try:
            issue = await self.service.report_for_partner(partner, report, contact)
        except RateLimitedError as refused:
            raise Open311Error(429, refused.message, ru=refused.ru) from None
        except DomainError as refused:
            raise Open311Error(400, refused.message, ru=refused.ru) from None
        notice = "Received; it is anonymous in Veche and awaits moderation."
        row = {"service_request_id": issue["_id"], "service_notice": notice, "account_id": ""}
        return answer("requests", [row], fmt)

    async def partner(self, key: str) -> Document:
        if not key:
            raise Open311Error(
                400,
                "api_key is required to file a report; ask the city for one",
                ru="чтобы подать обращение, нужен api_key; запросите его у города",
            )
        partner = await self.service.partner_for_key(key)
        if partner is None:
            raise Open311Error(
                403,
                "api_key is not valid (unknown or revoked)",
                ru="api_key недействителен (неизвестен или отозван)",
            )
        return partner

    async def token(self, request: Request, fmt: str) -> Response:
        raise Open311Error(
            404,
            "no such token: this endpoint issues no tokens, each request has its id at once",
            ru="такого токена нет: здесь токены не выдаются, у каждого обращения id есть сразу",
        )


def routes(service: IssuesService, jurisdiction: str) -> list[BaseRoute]:
    """GeoReport v2 under /open311/v2, for one jurisdiction."""
    api = GeoReport(service, jurisdiction)
    endpoint = api.endpoint
    return [
        Mount(
            PREFIX,
            routes=[
                Route("/services.{fmt}", endpoint(api.list_services), methods=["GET"]),
                Route("/services/{code}.{fmt}", endpoint(api.definition), methods=["GET"]),
                Route("/requests.{fmt}", endpoint(api.list_requests), methods=["GET"]),
                Route("/requests.{fmt}", endpoint(api.create_request), methods=["POST"]),
                Route("/requests/{id}.{fmt}", endpoint(api.one_request), methods=["GET"]),
                Route("/tokens/{token}.{fmt}", endpoint(api.token), methods=["GET"]),
            ],
        )
    ]
