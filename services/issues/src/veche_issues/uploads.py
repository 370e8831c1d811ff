"""Photo uploads, the use cases: take one (signed in, rate-limited, decoded and
re-encoded off the event loop), attach uploads to a new report (each once, only by
its uploader), serve a copy, sweep what no report claimed.

Two steps, not a GraphQL multipart request: `POST /uploads` takes the image bytes
and answers an upload id; `reportIssue`/`proposeInitiative` name the ids. See the
README's "Photo uploads" for why.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from veche_issues import domain, images
from veche_issues.s3_blobs import S3Blobs
from veche_issues.settings import IssuesSettings
from veche_issues.upload_store import (
    CLAIM_GRACE,
    COPIES,
    Claimant,
    GridFSBlobs,
    PhotoBlobs,
    UploadStore,
    blob_key,
)
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.errors import BadUserInputError
from veche_kit.mongo import Database, Document
from veche_kit.throttle import RateLimiter, Window

log = logging.getLogger(__name__)

MAX_ALT = 500  # characters of alt text
# Decodes at once: each may hold a full-size bitmap (50 MP RGBA is 200 MB).
DECODERS = 2


@dataclass(frozen=True)
class PhotoChoice:
    """An upload a report names, with alt text that replaces the upload's if given."""

    upload_id: str
    alt: str | None = None


@dataclass(frozen=True)
class Uploaded:
    """A stored upload as its uploader is told of it."""

    upload: Document
    suggested_location: tuple[float, float] | None


def clean_alt(alt: str | None, field: str) -> str | None:
    return domain.clean_text(alt, field, MAX_ALT, required=False)


def blobs_for(settings: IssuesSettings, db: Database) -> PhotoBlobs:
    """The photo store the settings name: GridFS in `db`, or an S3-compatible bucket."""
    if settings.photo_store == "gridfs":
        return GridFSBlobs(db)
    # The settings refuse s3 without all four (IssuesSettings._photo_settings).
    assert settings.s3_endpoint is not None
    assert settings.s3_bucket is not None
    assert settings.s3_access_key is not None
    assert settings.s3_secret_key is not None
    return S3Blobs(
        settings.s3_endpoint,
        settings.s3_bucket,
        region=settings.s3_region,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
    )


class PhotoDesk:
    """Uploads of one service: its store, limits and settings."""

    def __init__(self, store: UploadStore, limits: RateLimiter, settings: IssuesSettings) -> None:
        self.store = store
        self.limits = limits
        self.settings = settings
        self._decoding = asyncio.Semaphore(DECODERS)

    def url(self, upload_id: str, copy: str) -> str:
        return f"{self.settings.photo_base_url.rstrip('/')}/photos/{blob_key(upload_id, copy)}"

    async def admit(self, caller: Principal) -> None:
        """Counts an upload against the caller's hourly allowance (before its body is read)."""
        window = Window(
            self.settings.uploads_per_user_hour,
            3600,
            "You have uploaded your hourly allowance.",
            "Вы загрузили столько фото, сколько можно за час.",
        )
        await self.limits.hit("photo-upload", caller.user_id, window)

    async def upload(self, caller: Principal, data: bytes, alt: str | None) -> Uploaded:
        """Stores the served copies of `data` (ImageRefused if it is not a photo we take)."""
        alt = clean_alt(alt, "alt")
        async with self._decoding:
            photo = await asyncio.to_thread(images.process, data, self.settings.upload_max_pixels)
        now = utcnow()
        upload_id = secrets.token_urlsafe(16)
        upload: Document = {
            "_id": upload_id,
            "owner_id": caller.user_id,
            "issue_id": None,
            "ready": False,
            "alt": alt,
            "url": self.url(upload_id, "screen"),
            "thumbnail_url": self.url(upload_id, "thumb"),
            "width": photo.screen.width,
            "height": photo.screen.height,
            "thumbnail": {"width": photo.thumbnail.width, "height": photo.thumbnail.height},
            "source_format": photo.source_format,
            "created_at": now,
            "expires_at": now + timedelta(hours=self.settings.upload_keep_hours),
        }
        # The record first, so the sweep finds copies a crash leaves behind.
        await self.store.add(upload)
        for copy, rendered in zip(COPIES, (photo.screen, photo.thumbnail), strict=True):
            await self.store.blobs.put(
                blob_key(upload_id, copy), rendered.data, images.CONTENT_TYPE
            )
        await self.store.mark_ready(upload_id)
        return Uploaded({**upload, "ready": True}, photo.gps)

    async def attach(
        self, owner_id: str, target: Claimant, choices: list[PhotoChoice], field: str
    ) -> list[Document]:
        """Claims each upload for `target`; its `images` entries, or the refusal naming the
        bad one (the uploads claimed before it are given back)."""
        _check_distinct(choices, field)
        alts = [clean_alt(c.alt, f"{field}.{i}.alt") for i, c in enumerate(choices)]
        now = utcnow()
        claimed: list[Document] = []
        for index, choice in enumerate(choices):
            upload = await self.store.claim(choice.upload_id, owner_id, target, alts[index], now)
            if upload is None:
                await self.store.release([u["_id"] for u in claimed], target)
                raise BadUserInputError(
                    f"Photo {index + 1} is not an upload of yours waiting for a report (unknown, "
                    "someone else's, already used, or older than a day): upload it again.",
                    field=f"{field}.{index}.uploadId",
                    ru=(
                        f"Фото {index + 1} — не ваша загрузка, ожидающая обращения (неизвестная, чужая, уже "
                        "использованная или старше суток): загрузите его снова."
                    ),
                )
            claimed.append(upload)
        return [image_entry(upload) for upload in claimed]

    async def settle(self, target: Claimant) -> None:
        await self.store.settle(target)

    async def release(self, images_: list[Document], target: Claimant) -> None:
        await self.store.release([entry["upload_id"] for entry in images_], target)

    async def copy(self, upload_id: str, copy: str) -> bytes | None:
        """The bytes of a served copy; None when there is none or it is hidden."""
        upload = await self.store.get(upload_id)
        if upload is None or not upload.get("ready") or copy not in COPIES:
            return None
        if await self.store.hidden_from_public(upload):
            return None
        return await self.store.blobs.get(blob_key(upload_id, copy))

    async def sweep(self, now: datetime | None = None) -> int:
        """Deletes uploads no report claimed in time; settles claims a crash left open."""
        now = now or utcnow()
        swept = 0
        for upload in await self.store.expired(now):
            issue_id = upload.get("issue_id")
            if issue_id is not None and await self.store.claimant_exists(upload):
                await self.store.settle(Claimant(issue_id, upload.get("comment_id")))
                continue
            if issue_id is not None and upload["claimed_at"] > now - CLAIM_GRACE:
                continue  # its report may still be being written
            swept += await self.store.delete(upload, now)
        if swept:
            log.info("unattached uploads swept", extra={"uploads": swept})
        return swept


def image_entry(upload: Document) -> Document:
    """What an issue keeps of an attached upload (`Issue.images`)."""
    return {
        "upload_id": upload["_id"],
        "url": upload["url"],
        "thumbnail_url": upload["thumbnail_url"],
        "width": upload["width"],
        "height": upload["height"],
        "alt": upload.get("alt"),
    }


def _check_distinct(choices: list[PhotoChoice], field: str) -> None:
    seen: set[str] = set()
    for index, choice in enumerate(choices):
        if choice.upload_id in seen:
            raise BadUserInputError(
                f"Photo {index + 1} names an upload already listed.",
                field=f"{field}.{index}.uploadId",
                ru=f"Фото {index + 1} ссылается на загрузку, которая уже есть в списке.",
            )
        seen.add(choice.upload_id)
