"""Photo uploads through the gateway, as a phone does them: the photo to
`POST /uploads`, the report naming its upload id, the photo fetched back from the
URL the issue lists (the gateway's), without the EXIF and GPS it was taken with."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from veche_stack.runner import Runner

from .flows import POTHOLE, citizen, gateway_client, runner_on, running

pytestmark = pytest.mark.stack

REPORT = """mutation($input: ReportIssueInput!) {
  reportIssue(input: $input) { id photos images { url thumbnailUrl width height alt } }
}"""
READ = "query($id: ID!) { issue(id: $id) { photos images { url thumbnailUrl alt } } }"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    with running(runner_on(tmp_path_factory.mktemp("uploads"))) as runner:
        yield runner


def camera_photo() -> bytes:
    image = Image.new("RGB", (2000, 1500), (120, 160, 60))
    exif = Image.Exif()
    exif[0x010F] = "VecheStackCam"
    exif[0x8825] = {1: "N", 2: (54.0, 30.0, 49.68), 3: "E", 4: (36.0, 15.0, 40.32)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


async def test_a_phone_uploads_reports_and_the_photo_is_served_by_the_gateway(
    stack: Runner,
) -> None:
    graphql = stack.url("gateway")
    origin = graphql.removesuffix("/graphql")
    async with gateway_client(stack) as client, httpx.AsyncClient(timeout=30) as http:
        person, _ = await citizen(client, "Фотограф")
        auth = {"Authorization": f"Bearer {person.token}", "Content-Type": "image/jpeg"}
        answer = await http.post(
            f"{origin}/uploads", content=camera_photo(), params={"alt": "Яма"}, headers=auth
        )
        assert answer.status_code == 201, answer.text
        upload = answer.json()
        assert upload["suggestedLocation"] == {"lat": 54.5138, "lon": 36.2612}
        report = {**POTHOLE, "photoUploads": [{"uploadId": upload["id"]}]}
        issue = (await person.data(REPORT, {"input": report}))["reportIssue"]
        read = (await client.data(READ, {"id": issue["id"]}))["issue"]
        image = read["images"][0]
        assert read["photos"] == [image["url"]]
        assert image["url"].startswith(f"{origin}/photos/")
        assert image["alt"] == "Яма"
        for url, longest in ((image["url"], 1600), (image["thumbnailUrl"], 320)):
            served = await http.get(url)
            assert served.status_code == 200
            assert served.headers["content-type"] == "image/jpeg"
            assert "immutable" in served.headers["cache-control"]
            picture = Image.open(io.BytesIO(served.content))
            assert max(picture.size) == longest
            assert dict(picture.getexif()) == {}
            assert b"VecheStackCam" not in served.content
        open311 = (await http.get(f"{origin}/open311/v2/requests/{issue['id']}.json")).json()
        assert open311[0]["media_url"] == image["url"]
        refused = await http.post(f"{origin}/uploads", content=b"not a photo", headers=auth)
        assert refused.status_code == 415
        assert refused.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
