"""The S3-compatible photo store against an S3 server on loopback (moto's server,
a real HTTP endpoint speaking the S3 API), and its signatures against botocore's."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer
from PIL import Image

from veche_issues.app import create_app
from veche_issues.s3_blobs import S3Blobs, signed_headers
from veche_issues.settings import IssuesSettings
from veche_issues.upload_store import UploadStore
from veche_issues.uploads import PhotoDesk
from veche_kit.auth import Principal
from veche_kit.clock import utcnow
from veche_kit.throttle import RateLimiter
from veche_stack.processes import free_port
from veche_stack.testing import TokenMint, serve

from .conftest import IssuesServer, issues_settings

REGION, ACCESS_KEY, SECRET_KEY = "us-east-1", "veche-test", "veche-test-secret"


def signed(method: str, url: str, body: bytes, now: datetime | None = None) -> dict[str, str]:
    return signed_headers(
        method,
        url,
        body,
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        now=now,
    )


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


async def _bucket(endpoint: str, name: str) -> S3Blobs:
    url = f"{endpoint}/{name}"
    async with httpx.AsyncClient() as http:
        made = await http.put(url, headers=signed("PUT", url, b""))
    assert made.status_code == 200, made.text
    return S3Blobs(endpoint, name, region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY)


def test_requests_are_signed_as_botocore_signs_them() -> None:
    url = "http://127.0.0.1:9000/veche-photos/Ab-_1/screen.jpg"
    now = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
    ours = signed("PUT", url, b"jpeg", now)
    request = AWSRequest("PUT", url, data=b"jpeg", headers={"x-amz-date": ours["x-amz-date"]})
    request.headers["x-amz-content-sha256"] = ours["x-amz-content-sha256"]
    request.context["timestamp"] = ours["x-amz-date"]
    auth = S3SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION)
    theirs = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
    assert ours["authorization"].endswith(f"Signature={theirs}")


async def test_objects_are_put_read_and_deleted(s3_endpoint: str) -> None:
    blobs = await _bucket(s3_endpoint, "veche-roundtrip")
    try:
        await blobs.put("u1/screen.jpg", b"\xff\xd8jpeg", "image/jpeg")
        assert await blobs.get("u1/screen.jpg") == b"\xff\xd8jpeg"
        await blobs.delete("u1/screen.jpg")
        assert await blobs.get("u1/screen.jpg") is None
        await blobs.delete("u1/screen.jpg")  # twice: no error
    finally:
        await blobs.aclose()


async def test_uploads_kept_in_s3_are_served_and_swept(
    issues: IssuesServer, s3_endpoint: str, unique: str
) -> None:
    blobs = await _bucket(s3_endpoint, "veche-photos")
    # A database of its own, so this sweep meets no other test's uploads.
    db = issues.service.db.client[f"s3_{unique}"]
    desk = PhotoDesk(UploadStore(db, blobs), RateLimiter(db), issues.settings)
    picture = io.BytesIO()
    Image.new("RGB", (900, 700), (10, 120, 90)).save(picture, "PNG")
    try:
        uploaded = await desk.upload(
            Principal(user_id="s3-owner", roles=frozenset({"CITIZEN"})), picture.getvalue(), None
        )
        upload_id = uploaded.upload["_id"]
        served = await desk.copy(upload_id, "thumb")
        assert served is not None
        assert Image.open(io.BytesIO(served)).size == (320, 249)
        assert await desk.sweep(utcnow() + timedelta(hours=25)) >= 1
        assert await blobs.get(f"{upload_id}/screen.jpg") is None
    finally:
        await blobs.aclose()


async def test_a_stopped_service_has_closed_its_s3_client(
    mongo_server_url: str, amqp_url: str, s3_endpoint: str, tmp_path: Path
) -> None:
    settings = issues_settings(
        mongo_server_url,
        amqp_url,
        tmp_path,
        photo_store="s3",
        s3_endpoint=s3_endpoint,
        s3_bucket="veche-closed",
        s3_region=REGION,
        s3_access_key=ACCESS_KEY,
        s3_secret_key=SECRET_KEY,
    )
    app = create_app(settings, verifier=TokenMint().verifier())
    blobs = app.state.service.photos.store.blobs
    assert isinstance(blobs, S3Blobs)
    async with serve(app):
        assert not blobs.client.is_closed
    assert blobs.client.is_closed


def test_the_photo_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="ISSUES_S3_BUCKET"):
        IssuesSettings(photo_store="s3", s3_endpoint="http://127.0.0.1:9000")
    with pytest.raises(ValueError, match="ISSUES_PHOTO_BASE_URL"):
        IssuesSettings(environment="production", amqp_url="amqp://veche:s@mq:5672/")
