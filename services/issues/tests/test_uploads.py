"""Photo uploads against the real service: images made here with Pillow go through
`POST /uploads`, are read back from their URLs, attach to reports, get hidden,
and are swept when no report claims them."""

from __future__ import annotations

import asyncio
import io
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pillow_heif
import pytest
from PIL import Image

from veche_kit.clock import utcnow

from .conftest import IssuesServer, Person

# Kaluga's theatre square, as the phone's GPS wrote it (degrees, minutes, seconds).
GPS = {1: "N", 2: (54.0, 31.0, 45.48), 3: "E", 4: (36.0, 16.0, 31.44)}
READ = """query($id: ID!) { issue(id: $id) {
  photos hiddenPhotos images { url thumbnailUrl width height alt hidden }
} }"""
PROPOSE = """mutation($input: ProposeInitiativeInput!) {
  proposeInitiative(input: $input) { id photos images { url alt } }
}"""
REPORT_CONTENT = (
    "mutation($t: ContentInput!, $r: String!) { reportContent(target: $t, reason: $r) }"
)
HIDE = "mutation($t: ContentInput!, $r: String!) { hideContent(target: $t, reason: $r) { status } }"


def photo(fmt: str = "JPEG", size: tuple[int, int] = (2400, 1800), exif: bool = True) -> bytes:
    """A picture with a camera's EXIF: make, orientation (turn 90°), GPS."""
    image = Image.new("RGB", size, (200, 40, 40))
    image.paste((30, 90, 200), (0, 0, size[0] // 2, size[1] // 3))
    tags = Image.Exif()
    if exif:
        tags[0x010F] = "VecheTestCam"
        tags[0x0112] = 6
        tags[0x8825] = GPS
    out = io.BytesIO()
    if fmt == "HEIF":
        pillow_heif.from_pillow(image).save(out, quality=60, exif=tags.tobytes())
    else:
        image.save(out, fmt, exif=tags)
    return out.getvalue()


def token(issues: IssuesServer, person: Person) -> str:
    return issues.mint.token(person.principal)


async def upload(
    issues: IssuesServer, person: Person, data: bytes, alt: str | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=issues.url) as http:
        return await http.post(
            "/uploads",
            content=data,
            params={"alt": alt} if alt else None,
            headers={"Authorization": f"Bearer {token(issues, person)}"},
        )


async def uploaded(issues: IssuesServer, person: Person, data: bytes | None = None) -> str:
    answer = await upload(issues, person, data or photo(size=(800, 600)))
    assert answer.status_code == 201, answer.text
    upload_id: str = answer.json()["id"]
    return upload_id


def code_of(answer: httpx.Response) -> str:
    code: str = answer.json()["errors"][0]["extensions"]["code"]
    return code


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(url)


async def test_served_copies_carry_no_exif_and_are_sized(issues: IssuesServer) -> None:
    answer = await upload(issues, issues.citizen(), photo(), alt="Яма у остановки")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["suggestedLocation"] == {"lat": 54.5293, "lon": 36.2754}
    # Turned upright (the orientation tag said 90°), then fitted into 1600 px.
    assert (body["width"], body["height"], body["alt"]) == (1200, 1600, "Яма у остановки")
    for url, longest in ((body["url"], 1600), (body["thumbnailUrl"], 320)):
        served = await fetch(url)
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/jpeg"
        assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
        image = Image.open(io.BytesIO(served.content))
        assert max(image.size) == longest
        assert image.size[0] < image.size[1]
        assert dict(image.getexif()) == {}
        assert "exif" not in image.info
        assert b"Exif" not in served.content
        assert b"VecheTestCam" not in served.content
    kept = await issues.service.db["uploads"].find_one({"_id": body["id"]})
    assert kept is not None
    assert "54.52" not in repr(kept)  # the GPS was told, never kept


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "HEIF"])
async def test_png_webp_and_heic_are_taken(issues: IssuesServer, fmt: str) -> None:
    answer = await upload(issues, issues.citizen(), photo(fmt, (480, 360)))
    assert answer.status_code == 201, answer.text
    served = await fetch(answer.json()["thumbnailUrl"])
    assert Image.open(io.BytesIO(served.content)).format == "JPEG"
    assert b"VecheTestCam" not in served.content


async def test_what_is_not_a_photo_we_take_is_refused(issues: IssuesServer) -> None:
    person = issues.citizen()
    for data in (b"%PDF-1.4 not a photo", photo("GIF", (20, 20), exif=False), b""):
        answer = await upload(issues, person, data)
        assert (answer.status_code, code_of(answer)) == (415, "UNSUPPORTED_MEDIA_TYPE")
    async with httpx.AsyncClient(base_url=issues.url) as http:
        anonymous = await http.post("/uploads", content=photo())
    assert (anonymous.status_code, code_of(anonymous)) == (401, "UNAUTHENTICATED")


async def _raw_upload(issues: IssuesServer, person: Person, headers: str, body: bytes) -> bytes:
    """Sends a request by hand and reads the answer without finishing the body."""
    address = urlsplit(issues.url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(
        f"POST /uploads HTTP/1.1\r\nHost: {address.netloc}\r\n"
        f"Authorization: Bearer {token(issues, person)}\r\n{headers}\r\n".encode()
    )
    writer.write(body)
    await writer.drain()
    status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    return status


async def test_an_oversized_upload_is_refused_before_it_is_all_read(issues: IssuesServer) -> None:
    limit = issues.settings.upload_max_bytes
    person = issues.citizen()
    # Declared too large: refused on the header, with none of the body sent.
    declared = await _raw_upload(issues, person, f"Content-Length: {limit + 1}\r\n", b"")
    assert declared.startswith(b"HTTP/1.1 413")
    # Streamed with no length: refused once past the limit, the body never finished.
    chunk = b"\xff" * 65536
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(limit // 65536 + 2))
    streamed = await _raw_upload(issues, person, "Transfer-Encoding: chunked\r\n", chunks)
    assert streamed.startswith(b"HTTP/1.1 413")


async def test_a_report_with_photos_reads_back_with_fetchable_urls(issues: IssuesServer) -> None:
    reporter = issues.citizen()
    first = (await upload(issues, reporter, photo(size=(900, 600)), alt="Общий вид")).json()
    second = await uploaded(issues, reporter)
    linked = "https://img.example/yama.jpg"
    issue = await issues.report(
        reporter,
        photos=[linked],
        photoUploads=[{"uploadId": first["id"]}, {"uploadId": second, "alt": "Вблизи"}],
    )
    read = (await issues.citizen().client.data(READ, {"id": issue["id"]}))["issue"]
    images = read["images"]
    assert read["photos"] == [images[0]["url"], images[1]["url"], linked]
    assert [i["alt"] for i in images] == ["Общий вид", "Вблизи"]
    assert (images[0]["width"], images[0]["height"]) == (600, 900)  # upright, never enlarged
    for image in images:
        for url in (image["url"], image["thumbnailUrl"]):
            assert (await fetch(url)).status_code == 200
    async with httpx.AsyncClient(base_url=issues.url) as http:
        open311 = (await http.get(f"/open311/v2/requests/{issue['id']}.json")).json()
    assert open311[0]["media_url"] == first["url"]


async def test_an_upload_attaches_once_and_only_for_its_uploader(issues: IssuesServer) -> None:
    owner, other = issues.citizen(), issues.citizen()
    mine, also_mine = await uploaded(issues, owner), await uploaded(issues, owner)
    refused = await other.client.post(REPORT_WITH, _report([mine]))
    assert _refusal(refused) == ("BAD_USER_INPUT", "photoUploads.0.uploadId")
    # A refusal on the second gives the first back: it attaches afterwards.
    refused = await owner.client.post(REPORT_WITH, _report([also_mine, "no-such-upload"]))
    assert _refusal(refused) == ("BAD_USER_INPUT", "photoUploads.1.uploadId")
    repeated = await owner.client.post(REPORT_WITH, _report([mine, mine]))
    assert _refusal(repeated) == ("BAD_USER_INPUT", "photoUploads.1.uploadId")
    await owner.client.data(REPORT_WITH, _report([mine, also_mine]))
    again = await owner.client.post(REPORT_WITH, _report([mine]))
    assert _refusal(again) == ("BAD_USER_INPUT", "photoUploads.0.uploadId")
    initiative = (
        await owner.client.data(
            PROPOSE,
            {
                "input": {
                    "title": "Сквер",
                    "description": "Разбить сквер.",
                    "category": "yards",
                    "photoUploads": [{"uploadId": await uploaded(issues, owner), "alt": "Пустырь"}],
                }
            },
        )
    )["proposeInitiative"]
    assert initiative["photos"] == [initiative["images"][0]["url"]]


REPORT_WITH = """mutation($input: ReportIssueInput!) { reportIssue(input: $input) { id } }"""


def _report(upload_ids: list[str]) -> dict[str, Any]:
    return {
        "input": {
            "title": "Яма",
            "description": "Глубокая яма.",
            "category": "potholes",
            "location": {"lat": 54.5293, "lon": 36.2754},
            "photoUploads": [{"uploadId": u} for u in upload_ids],
        }
    }


def _refusal(answer: dict[str, Any]) -> tuple[str, str]:
    extensions = answer["errors"][0]["extensions"]
    return extensions["code"], extensions.get("field", "")


async def test_a_hidden_upload_leaves_images_and_its_url(issues: IssuesServer) -> None:
    reporter, neighbour, moderator = issues.citizen(), issues.citizen(), issues.moderator()
    kept_id, hidden_id = await uploaded(issues, reporter), await uploaded(issues, reporter)
    issue = await issues.report(
        reporter, photoUploads=[{"uploadId": hidden_id}, {"uploadId": kept_id}]
    )
    hidden_url, kept_url = issue["photos"]
    target = {"kind": "PHOTO", "id": issue["id"], "photoUrl": hidden_url}
    await neighbour.client.data(REPORT_CONTENT, {"t": target, "r": "Чужое лицо на фото"})
    await moderator.client.data(HIDE, {"t": target, "r": "Лицо"})
    public = (await neighbour.client.data(READ, {"id": issue["id"]}))["issue"]
    assert public["photos"] == [kept_url]
    assert [i["url"] for i in public["images"]] == [kept_url]
    own = (await reporter.client.data(READ, {"id": issue["id"]}))["issue"]
    assert [(i["url"], i["hidden"]) for i in own["images"]] == [
        (hidden_url, True),
        (kept_url, False),
    ]
    assert (await fetch(hidden_url)).status_code == 404
    assert (await fetch(kept_url)).status_code == 200
    async with httpx.AsyncClient(base_url=issues.url) as http:
        open311 = (await http.get(f"/open311/v2/requests/{issue['id']}.json")).json()
    assert open311[0]["media_url"] == kept_url  # the first photo still shown


async def test_uploads_no_report_claimed_are_swept(issues: IssuesServer) -> None:
    person = issues.citizen()
    left, used = await uploaded(issues, person), await uploaded(issues, person)
    await issues.report(person, photoUploads=[{"uploadId": used}])
    left_url = (await issues.service.db["uploads"].find_one({"_id": left}) or {})["url"]
    swept = await issues.service.photos.sweep(utcnow() + timedelta(hours=25))
    assert swept >= 1
    assert await issues.service.db["uploads"].find_one({"_id": left}) is None
    assert await issues.service.db["photos.files"].find_one({"_id": f"{left}/screen.jpg"}) is None
    assert (await fetch(left_url)).status_code == 404
    assert await issues.service.db["uploads"].find_one({"_id": used}) is not None


async def test_uploads_are_rate_limited_per_person(issues: IssuesServer) -> None:
    person = issues.citizen()
    allowance = issues.settings.uploads_per_user_hour
    async with httpx.AsyncClient(base_url=issues.url) as http:
        headers = {"Authorization": f"Bearer {token(issues, person)}"}
        # Empty bodies: each counts, and is refused as no photo, until the allowance is spent.
        for _ in range(allowance):
            assert (await http.post("/uploads", content=b"", headers=headers)).status_code == 415
        limited = await http.post("/uploads", content=photo(), headers=headers)
    assert (limited.status_code, code_of(limited)) == (429, "RATE_LIMITED")
    assert int(limited.headers["retry-after"]) >= 1
    assert (await upload(issues, issues.citizen(), photo(size=(64, 64)))).status_code == 201


COMMENT = """mutation($id: ID!, $t: String!, $p: [PhotoUploadInput!]) {
  commentOnIssue(id: $id, text: $t, photoUploads: $p) { id official images { url alt } }
}"""
COMMENTS = """query($id: ID!) { issue(id: $id) {
  comments(first: 10) { edges { node { id images { url thumbnailUrl alt } } } }
} }"""


async def test_an_official_answers_with_an_after_photo(issues: IssuesServer) -> None:
    reporter, official, moderator = issues.citizen(), issues.official(), issues.moderator()
    issue = await issues.report(reporter)
    after = await uploaded(issues, official)
    answer = (
        await official.client.data(
            COMMENT,
            {"id": issue["id"], "t": "Яму заделали.", "p": [{"uploadId": after, "alt": "После"}]},
        )
    )["commentOnIssue"]
    assert answer["official"] is True
    [photo_url] = [image["url"] for image in answer["images"]]
    read = (await reporter.client.data(COMMENTS, {"id": issue["id"]}))["issue"]
    [node] = [edge["node"] for edge in read["comments"]["edges"]]
    assert node["images"][0]["alt"] == "После"
    assert (await fetch(node["images"][0]["thumbnailUrl"])).status_code == 200
    reused = await official.client.post(
        COMMENT, {"id": issue["id"], "t": "Ещё", "p": [{"uploadId": after}]}
    )
    assert _refusal(reused) == ("BAD_USER_INPUT", "photoUploads.0.uploadId")
    target = {"kind": "COMMENT", "id": answer["id"]}
    await reporter.client.data(REPORT_CONTENT, {"t": target, "r": "Не та яма"})
    await moderator.client.data(HIDE, {"t": target, "r": "Чужое фото"})
    assert (await fetch(photo_url)).status_code == 404
