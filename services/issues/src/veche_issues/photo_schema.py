"""GraphQL types of uploaded photos (`Issue.images`, `photoUploads` inputs)."""

from __future__ import annotations

import strawberry

from veche_issues import domain
from veche_issues.uploads import MAX_ALT, PhotoChoice
from veche_kit.inputs import bounded
from veche_kit.mongo import Document

UPLOAD_ID_CHARS = 64


@strawberry.type(
    description="A photo uploaded with `POST /uploads` and attached to an issue. Every copy is a "
    "JPEG re-encoded by the server with no EXIF or GPS, served with a one-year immutable cache."
)
class Photo:
    url: str = strawberry.field(
        description="The screen-size copy (longer side at most 1600 px); the same URL "
        "`Issue.photos` lists, and the one `hideContent` takes as `photoUrl`."
    )
    thumbnail_url: str = strawberry.field(
        description="The thumbnail (longer side at most 320 px), for lists and maps."
    )
    width: int = strawberry.field(description="Width of the screen-size copy, in pixels.")
    height: int = strawberry.field(description="Height of the screen-size copy, in pixels.")
    alt: str | None = strawberry.field(
        description="Text for screen readers (the uploader's words); null when none was given: "
        "then describe it by the issue's title."
    )
    hidden: bool = strawberry.field(
        description="True when a moderator hid it; only the reporter and moderators get hidden "
        "photos (show them greyed out), and their URLs answer 404 to everyone."
    )

    @classmethod
    def of(cls, entry: Document, hidden: bool) -> Photo:
        return cls(
            url=entry["url"],
            thumbnail_url=entry["thumbnail_url"],
            width=int(entry["width"]),
            height=int(entry["height"]),
            alt=entry.get("alt"),
            hidden=hidden,
        )


@strawberry.input(description="A photo to attach: an upload of yours not yet attached.")
class PhotoUploadInput:
    upload_id: strawberry.ID = strawberry.field(
        description="The `id` `POST /uploads` answered. Each upload attaches once, only by its "
        "uploader, within a day of uploading (BAD_USER_INPUT `photoUploads.<n>.uploadId` otherwise).",
        metadata=bounded(chars=UPLOAD_ID_CHARS),
    )
    alt: str | None = strawberry.field(
        default=None,
        description=f"Alt text for screen readers, up to {MAX_ALT} characters; replaces the one "
        "given at upload (`?alt=`).",
        metadata=bounded(chars=MAX_ALT),
    )


PHOTO_UPLOADS_DESCRIPTION = (
    f"Photos uploaded with `POST /uploads`, in order; with `photos`, at most {domain.MAX_PHOTOS} "
    "in all. Their screen-size URLs come first in `Issue.photos`."
)
PHOTO_UPLOADS_BOUNDS = bounded(items=domain.MAX_PHOTOS)


def choices(given: list[PhotoUploadInput] | None) -> list[PhotoChoice] | None:
    if not given:
        return None
    return [PhotoChoice(str(photo.upload_id), photo.alt) for photo in given]
