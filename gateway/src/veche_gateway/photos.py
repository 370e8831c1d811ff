"""Photo uploads and photos, passed through to the subgraph that keeps them.

`POST /uploads` (the image as the body, the caller's bearer token) and
`GET /photos/...` are served by one subgraph (settings: `PHOTOS_SUBGRAPH`, the
issues service by default); photo URLs name the gateway, so clients keep one
origin. The body is streamed on, not buffered, and cut at `MAX_UPLOAD_BYTES`
(the subgraph holds its own, usually lower, limit and answers 413 itself).
Refusals come as `{"errors": [{"message", "extensions": {"code"}}]}`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from veche_gateway.language import said

# accept-language: the subgraph words its refusals in the caller's language.
UPLOAD_HEADERS = (
    "content-type",
    "content-length",
    "authorization",
    "accept-language",
    "x-request-id",
    "traceparent",
)
PHOTO_HEADERS = ("if-none-match", "accept-language", "x-request-id")
ANSWER_HEADERS = ("content-type", "cache-control", "etag", "retry-after", "x-content-type-options")


class _TooLarge(Exception):
    pass


def _origin(url: str) -> str:
    """`http://host:port/graphql` -> `http://host:port`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _refusal(status: int, code: str, message: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"code": code}}]}
    return JSONResponse(body, status, {"Cache-Control": "no-store"})


def _too_large(limit: int) -> Response:
    message = said(f"The body is larger than {limit} bytes.", f"Тело запроса больше {limit} байт.")
    return _refusal(413, "PAYLOAD_TOO_LARGE", message)


_UPLOADS_DOWN = (
    "Uploads are unavailable; try again.",
    "Загрузка фото недоступна; попробуйте снова.",
)
_PHOTOS_DOWN = ("Photos are unavailable; try again.", "Фото недоступны; попробуйте снова.")


def _unavailable(message: str, ru: str) -> Response:
    return _refusal(503, "SUBGRAPH_UNAVAILABLE", said(message, ru))


def _headers(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    headers = {name: request.headers[name] for name in names if name in request.headers}
    if request.client:
        headers["x-forwarded-for"] = request.client.host
    return headers


def _answer(answer: httpx.Response) -> Response:
    kept = {k: v for k, v in answer.headers.items() if k.lower() in ANSWER_HEADERS}
    return Response(answer.content, answer.status_code, kept)


def photo_routes(subgraph_url: str, client: httpx.AsyncClient, max_bytes: int) -> list[Route]:
    """`/uploads` and `/photos/...` on the gateway, answered by the subgraph at `subgraph_url`."""
    target = _origin(subgraph_url)

    async def capped(request: Request) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise _TooLarge
            yield chunk

    async def upload(request: Request) -> Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            return _too_large(max_bytes)
        url = f"{target}/uploads" + (f"?{request.url.query}" if request.url.query else "")
        try:
            answer = await client.post(
                url, content=capped(request), headers=_headers(request, UPLOAD_HEADERS)
            )
        except _TooLarge:
            return _too_large(max_bytes)
        except httpx.HTTPError:
            return _unavailable(*_UPLOADS_DOWN)
        return _answer(answer)

    async def photo(request: Request) -> Response:
        try:
            answer = await client.get(
                f"{target}{request.url.path}", headers=_headers(request, PHOTO_HEADERS)
            )
        except httpx.HTTPError:
            return _unavailable(*_PHOTOS_DOWN)
        return _answer(answer)

    return [
        Route("/uploads", upload, methods=["POST"]),
        Route("/photos/{path:path}", photo, methods=["GET"]),
    ]
