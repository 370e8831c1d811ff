"""How a subgraph reads a GraphQL request off HTTP before Strawberry sees it.

A subgraph takes `POST` with `Content-Type: application/json` only: a browser
sends `text/plain`, form and multipart bodies cross-site without a preflight,
so refusing them is Apollo's CSRF prevention. The body is read up to
`max_body_bytes` (413 beyond), must be one JSON object (not `null`, `1`,
`"x"`, a batch list, nor nested past the decoder's depth) holding a `query`
string and, optionally, `variables` and `extensions` objects and an
`operationName` string. Every refusal is a GraphQL error with a code
(`Refused.response`), never a 500, said in the request's language (`said`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from strawberry.http import GraphQLRequestData

from veche_kit.language import said

BAD_USER_INPUT = "BAD_USER_INPUT"
JSON_TYPE = "application/json"
# Only an escaped UTF-16 surrogate (\uD800-\uDFFF) can make a lone one; look closer only then.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


class Refused(Exception):
    """A request refused before any GraphQL work, with its HTTP status and code."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        code: str = BAD_USER_INPUT,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body = {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}
        return JSONResponse(body, self.status, self.headers)


def refusal(message: str, status: int = 400, code: str = BAD_USER_INPUT) -> JSONResponse:
    return Refused(message, status, code).response()


def _media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes (declared or streamed)."""
    too_large = Refused(
        said(
            f"The request body exceeds {limit} bytes.",
            f"Тело запроса больше {limit} байт.",
        ),
        status=413,
    )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _has_lone_surrogate(data: Any) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# What a malformed body is told, in English and Russian (`said` picks).
_MALFORMED = {
    "nested": ("The request body is nested too deeply.", "Тело запроса вложено слишком глубоко."),
    "json": (
        "The request body is not valid JSON (UTF-8).",
        "Тело запроса не является корректным JSON (UTF-8).",
    ),
    "object": (
        'The request body must be one JSON object: {"query": "...", "variables": {...}}.',
        'Тело запроса должно быть одним объектом JSON: {"query": "...", "variables": {...}}.',
    ),
    "surrogate": (
        "The request holds a lone UTF-16 surrogate (\\uD800-\\uDFFF).",
        "В запросе одиночный суррогат UTF-16 (\\uD800-\\uDFFF).",
    ),
    "query": ("The request has no `query` string.", "В запросе нет строки `query`."),
    "variables": ("`variables` must be a JSON object.", "`variables` должно быть объектом JSON."),
    "operationName": ("`operationName` must be a string.", "`operationName` должно быть строкой."),
    "extensions": (
        "`extensions` must be a JSON object.",
        "`extensions` должно быть объектом JSON.",
    ),
}


def _malformed(what: str) -> Refused:
    return Refused(said(*_MALFORMED[what]))


def parse_request(body: bytes) -> GraphQLRequestData:
    """The GraphQL request a JSON body holds, or Refused saying what is wrong with it."""
    try:
        data = json.loads(body)
    except RecursionError:
        raise _malformed("nested") from None
    except ValueError:  # invalid JSON or invalid UTF-8
        raise _malformed("json") from None
    if not isinstance(data, dict):
        raise _malformed("object")
    if _SURROGATE_ESCAPE.search(body) and _has_lone_surrogate(data):
        raise _malformed("surrogate")
    query = data.get("query")
    if not isinstance(query, str) or not query.strip():
        raise _malformed("query")
    variables = data.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise _malformed("variables")
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise _malformed("operationName")
    extensions = data.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise _malformed("extensions")
    return GraphQLRequestData(
        query=query, variables=variables, operation_name=operation_name, extensions=extensions
    )


async def read_graphql_request(request: Request, max_body_bytes: int) -> GraphQLRequestData:
    """Method, content type, size and shape checked, in that order (cheapest first)."""
    if request.method != "POST":
        raise Refused(
            said(
                "Subgraphs take POST with Content-Type: application/json "
                "(call the gateway instead).",
                "Подграф принимает только POST с Content-Type: application/json "
                "(обращайтесь к шлюзу).",
            ),
            status=405,
            headers={"Allow": "POST"},
        )
    if _media_type(request.headers.get("content-type")) != JSON_TYPE:
        raise Refused(
            said(
                "Send the request as Content-Type: application/json; other types are refused "
                "because a browser can send them from another site without asking (CSRF).",
                "Отправьте запрос с Content-Type: application/json; другие типы отклоняются: "
                "браузер может отправить их с чужого сайта без спроса (CSRF).",
            )
        )
    return parse_request(await read_body(request, max_body_bytes))
