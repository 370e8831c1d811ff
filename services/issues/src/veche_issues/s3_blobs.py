"""`PhotoBlobs` in an S3-compatible store (AWS S3, MinIO, Ceph RGW, Yandex Object Storage...).

Three calls (PUT, GET, DELETE of `/<bucket>/<key>`, path-style, so any endpoint
works without DNS per bucket), signed with AWS Signature Version 4 over httpx:
no SDK to install for three requests. The bucket must exist and stay private:
photos are served by the issues service (`/photos/...`), which checks whether a
moderator hid them, not by the bucket.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import httpx

ALGORITHM = "AWS4-HMAC-SHA256"
SIGNED = "host;x-amz-content-sha256;x-amz-date"


class S3Error(Exception):
    """The store refused a call (wrong keys, no such bucket...)."""


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signed_headers(
    method: str,
    url: str,
    body: bytes,
    *,
    region: str,
    access_key: str,
    secret_key: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers that sign one request (SigV4, service `s3`, no query string)."""
    parts = urlsplit(url)
    now = now or datetime.now(UTC)
    stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(body).hexdigest()
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload, "x-amz-date": stamp}
    canonical = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/~"),
            "",  # no query string
            "".join(f"{name}:{headers[name]}\n" for name in SIGNED.split(";")),
            SIGNED,
            payload,
        ]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(("AWS4" + secret_key).encode(), day)
    for part in (region, "s3", "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={SIGNED}, "
        f"Signature={signature}"
    )
    return headers


class S3Blobs:
    """Photo copies as objects `<upload>/<copy>.jpg` in one bucket."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        *,
        region: str,
        access_key: str,
        secret_key: str,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base = f"{endpoint.rstrip('/')}/{bucket}"
        self.region, self.access_key, self.secret_key = region, access_key, secret_key
        self.client = client or httpx.AsyncClient(timeout=30)

    async def _call(
        self, method: str, key: str, body: bytes = b"", content_type: str | None = None
    ) -> httpx.Response:
        url = f"{self.base}/{key}"
        headers = signed_headers(
            method,
            url,
            body,
            region=self.region,
            access_key=self.access_key,
            secret_key=self.secret_key,
        )
        if content_type is not None:
            headers["content-type"] = content_type
        answer = await self.client.request(method, url, content=body, headers=headers)
        if answer.status_code >= 300 and answer.status_code != 404:
            raise S3Error(f"{method} {key}: {answer.status_code} {answer.text[:200]}")
        return answer

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await self._call("PUT", key, data, content_type)

    async def get(self, key: str) -> bytes | None:
        answer = await self._call("GET", key)
        return None if answer.status_code == 404 else answer.content

    async def delete(self, key: str) -> None:
        await self._call("DELETE", key)  # a missing object is no error: deleting is idempotent

    async def aclose(self) -> None:
        await self.client.aclose()
