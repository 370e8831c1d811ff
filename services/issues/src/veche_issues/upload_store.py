"""Uploaded photos: their records (`uploads`) and the bytes of their copies (`PhotoBlobs`).

An upload is PENDING (`issue_id` None, `expires_at` a day ahead) until a report
(or a comment: `comment_id` too) claims it by a conditional update (its owner, unclaimed, ready, not expired), so an
upload id is used once and only by its uploader. Once the report is written the
expiry is cleared; the sweep deletes what is still unclaimed when it expires, and
repairs a claim whose report was written but not settled (a crash in between).

The copies live in GridFS (bucket `photos`, file ids `<upload>/<copy>.jpg`) in the
service's own MongoDB, so the embedded store needs nothing else. `PhotoBlobs` is
the seam for an S3-compatible store. GridFS writes cannot join a transaction
(PyMongo refuses), hence the record's `ready` flag: it is set once both copies
are stored, and only a ready upload can be claimed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo import ASCENDING, IndexModel

from veche_issues.store import COMMENTS, ISSUES, UPLOADS
from veche_kit.mongo import Database, Document

BUCKET = "photos"
COPIES = ("screen", "thumb")
# A claim whose report was not written within this time was cut off (a crash, a refusal).
CLAIM_GRACE = timedelta(minutes=10)

INDEXES: dict[str, list[IndexModel]] = {
    UPLOADS: [
        IndexModel([("expires_at", ASCENDING)], name="expiry"),
        IndexModel([("owner_id", ASCENDING)], name="owner"),
        IndexModel([("issue_id", ASCENDING)], name="issue"),
    ],
}


@dataclass(frozen=True)
class Claimant:
    """What claims uploads: a new issue, or a new comment on an issue."""

    issue_id: str
    comment_id: str | None = None


def blob_key(upload_id: str, copy: str) -> str:
    return f"{upload_id}/{copy}.jpg"


class PhotoBlobs(Protocol):
    """Where the bytes of photo copies are kept, by key."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def delete(self, key: str) -> None: ...

    async def aclose(self) -> None:
        """Lets go of connections (at the service's stop)."""


class GridFSBlobs:
    """`PhotoBlobs` in GridFS (255 KiB chunks in `photos.chunks`)."""

    def __init__(self, db: Database) -> None:
        self.bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self.bucket.upload_from_stream_with_id(
            key, key, data, metadata={"contentType": content_type}
        )

    async def get(self, key: str) -> bytes | None:
        try:
            stream = await self.bucket.open_download_stream(key)
        except NoFile:
            return None
        data: bytes = await stream.read()
        return data

    async def delete(self, key: str) -> None:
        with contextlib.suppress(NoFile):  # already gone: deleting is idempotent
            await self.bucket.delete(key)

    async def aclose(self) -> None:
        """Nothing of its own to close: the service's store client is closed with it."""


class UploadStore:
    def __init__(self, db: Database, blobs: PhotoBlobs) -> None:
        self.db = db
        self.blobs = blobs
        self.uploads = db[UPLOADS]

    async def add(self, upload: Document) -> None:
        await self.uploads.insert_one(upload)

    async def mark_ready(self, upload_id: str) -> None:
        await self.uploads.update_one({"_id": upload_id}, {"$set": {"ready": True}})

    async def get(self, upload_id: str) -> Document | None:
        return await self.uploads.find_one({"_id": upload_id})

    async def claim(
        self, upload_id: str, owner_id: str, target: Claimant, alt: str | None, now: datetime
    ) -> Document | None:
        """The upload, now claimed by the issue (or its comment); None unless it is the
        owner's, ready, unclaimed and unexpired."""
        changes: Document = {
            "issue_id": target.issue_id,
            "comment_id": target.comment_id,
            "claimed_at": now,
        }
        if alt is not None:
            changes["alt"] = alt
        found: Document | None = await self.uploads.find_one_and_update(
            {
                "_id": upload_id,
                "owner_id": owner_id,
                "issue_id": None,
                "ready": True,
                "expires_at": {"$gt": now},
            },
            {"$set": changes},
            return_document=True,
        )
        return found

    async def release(self, upload_ids: list[str], target: Claimant) -> None:
        """Gives claimed uploads back (the report was refused after claiming them)."""
        await self.uploads.update_many(
            {"_id": {"$in": upload_ids}, "issue_id": target.issue_id},
            {"$set": {"issue_id": None, "comment_id": None, "claimed_at": None}},
        )

    async def settle(self, target: Claimant) -> None:
        """The report (or comment) is written: its uploads stay for good."""
        await self.uploads.update_many(
            {"issue_id": target.issue_id, "comment_id": target.comment_id},
            {"$set": {"expires_at": None}},
        )

    async def expired(self, now: datetime, limit: int = 500) -> list[Document]:
        return await self.uploads.find({"expires_at": {"$lt": now}}).limit(limit).to_list()

    async def claimant_exists(self, upload: Document) -> bool:
        """Whether the issue (or comment) that claimed the upload was written."""
        comment_id = upload.get("comment_id")
        collection, key = (COMMENTS, comment_id) if comment_id else (ISSUES, upload["issue_id"])
        return await self.db[collection].find_one({"_id": key}, {"_id": 1}) is not None

    async def hidden_from_public(self, upload: Document) -> bool:
        """Whether a moderator hid the photo (by its URL) or the issue it belongs to."""
        if upload.get("issue_id") is None:
            return False
        issue = await self.db[ISSUES].find_one(
            {"_id": upload["issue_id"]}, {"hidden_photos": 1, "hidden": 1}
        )
        if issue is None:
            return False
        if upload.get("comment_id"):
            comment = await self.db[COMMENTS].find_one({"_id": upload["comment_id"]}, {"hidden": 1})
            if comment is not None and comment.get("hidden") is not None:
                return True
        return issue.get("hidden") is not None or upload.get("url") in (
            issue.get("hidden_photos") or []
        )

    async def delete(self, upload: Document, expires_before: datetime) -> bool:
        """Deletes an expired upload and its copies; False when it was claimed meanwhile."""
        gone = await self.uploads.delete_one(
            {"_id": upload["_id"], "expires_at": {"$lt": expires_before}}
        )
        if not gone.deleted_count:
            return False
        for copy in COPIES:
            await self.blobs.delete(blob_key(upload["_id"], copy))
        return True
