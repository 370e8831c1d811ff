"""The HTTP side of photo uploads, mounted beside Open311 (the gateway passes both on).

- `POST /uploads[?alt=...]`: the image itself as the body (any `Content-Type`: the
  bytes decide), `Authorization: Bearer <access token>`. 201 with the upload's id,
  its copies' URLs and sizes, `expiresAt`, and `suggestedLocation` (the GPS the
  photo carried, never stored). Refusals: 401 UNAUTHENTICATED, 429 RATE_LIMITED
  (`Retry-After`), 413 PAYLOAD_TOO_LARGE (by `Content-Length` before reading, or
  as soon as the streamed body passes the limit), 415 UNSUPPORTED_MEDIA_TYPE,
  400 BAD_USER_INPUT (`field`), each as `{"errors": [{"message", "extensions": {"code"}}]}`.
- `GET /photos/<upload>/screen.jpg` (at most 1600 px) and `/thumb.jpg` (at most
  320 px): JPEG, no metadata, cached for a year (`immutable`: a URL's bytes never change).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from veche_issues import images
from veche_issues.uploads import PhotoDesk, Uploaded
from veche_kit.auth import Principal, TokenVerifier, bearer_token
from veche_kit.errors import DomainError, UnauthenticatedError
from veche_kit.language import said

IMMUTABLE = "public, max-age=31536000, immutable"
STATUS_OF = {"UNAUTHENTICATED": 401, "RATE_LIMITED": 429, "BAD_USER_INPUT": 400}


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, **extensions: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extensions = status, code, message, extensions

    def response(self) -> Response:
        extensions = {"code": self.code, **self.extensions}
        body = {"errors": [{"message": self.message, "extensions": extensions}]}
        headers = {"Cache-Control": "no-store"}
        if "retryAfterSeconds" in self.extensions:
            headers["Retry-After"] = str(self.extensions["retryAfterSeconds"])
        return JSONResponse(body, self.status, headers)


def _too_large(limit: int) -> Refusal:
    return Refusal(
        413,
        "PAYLOAD_TOO_LARGE",
        said(
            f"The photo is larger than {limit // (1024 * 1024)} MB.",
            f"Фото больше {limit // (1024 * 1024)} МБ.",
        ),
        limit=limit,
    )


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to pass `limit` (never read whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        parts.append(chunk)
    return b"".join(parts)


def _answer(uploaded: Uploaded) -> dict[str, Any]:
    upload, gps = uploaded.upload, uploaded.suggested_location
    return {
        "id": upload["_id"],
        "url": upload["url"],
        "thumbnailUrl": upload["thumbnail_url"],
        "width": upload["width"],
        "height": upload["height"],
        "alt": upload["alt"],
        "expiresAt": upload["expires_at"].isoformat().replace("+00:00", "Z"),
        "suggestedLocation": {"lat": gps[0], "lon": gps[1]} if gps else None,
    }


class UploadRoutes:
    def __init__(self, desk: PhotoDesk, verifier: TokenVerifier) -> None:
        self.desk = desk
        self.verifier = verifier

    async def caller(self, request: Request) -> Principal:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise UnauthenticatedError(
                "Sign in first: send 'Authorization: Bearer <access token>'.",
                ru="Сначала войдите: отправьте 'Authorization: Bearer <access token>'.",
            )
        return await self.verifier.verify(token)

    async def upload(self, request: Request) -> Response:
        try:
            caller = await self.caller(request)
            await self.desk.admit(caller)  # counted before the body is read
            data = await read_capped(request, self.desk.settings.upload_max_bytes)
            uploaded = await self.desk.upload(caller, data, request.query_params.get("alt"))
        except Refusal as refused:
            return refused.response()
        except images.ImageRefused as refused:
            message = said(refused.message, refused.ru)
            return Refusal(refused.status, refused.code, message).response()
        except DomainError as refused:  # UNAUTHENTICATED, RATE_LIMITED, BAD_USER_INPUT
            status = STATUS_OF.get(refused.code, 400)
            message = said(refused.message, refused.ru)
            return Refusal(status, refused.code, message, **refused.extensions).response()
        return JSONResponse(_answer(uploaded), 201, {"Cache-Control": "no-store"})

    async def photo(self, request: Request) -> Response:
        upload_id, copy = request.path_params["upload"], request.path_params["copy"]
        etag = f'"{upload_id}-{copy}"'
        data = await self.desk.copy(upload_id, copy)
        if data is None:
            missing = said(
                "No such photo (or a moderator hid it).",
                "Такого фото нет (или его скрыл модератор).",
            )
            return Refusal(404, "NOT_FOUND", missing).response()
        headers = {"Cache-Control": IMMUTABLE, "ETag": etag, "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(data, 200, headers, media_type=images.CONTENT_TYPE)


def routes(desk: PhotoDesk, verifier: TokenVerifier) -> list[BaseRoute]:
    api = UploadRoutes(desk, verifier)
    return [
        Route("/uploads", api.upload, methods=["POST"]),
        Route("/photos/{upload}/{copy}.jpg", api.photo, methods=["GET", "HEAD"]),
    ]
