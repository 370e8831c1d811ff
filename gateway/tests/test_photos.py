"""Uploads and photos pass through the gateway to the subgraph that keeps them:
the caller's token and the body go on, the photo's cache headers come back, a body
past the gateway's cap is cut, and an unreachable subgraph answers 503."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from veche_gateway.photos import photo_routes
from veche_stack.processes import free_port
from veche_stack.testing import serve

CAP = 1024


async def take(request: Request) -> Response:
    body = await request.body()
    seen = {
        "size": len(body),
        "alt": request.query_params.get("alt"),
        "authorization": request.headers.get("authorization"),
        "type": request.headers.get("content-type"),
    }
    return JSONResponse(seen, 201)


async def photo(request: Request) -> Response:
    headers = {"Cache-Control": "public, max-age=31536000, immutable", "ETag": '"p"'}
    if request.headers.get("if-none-match") == '"p"':
        return Response(status_code=304, headers=headers)
    return Response(b"\xff\xd8jpeg", 200, headers, media_type="image/jpeg")


def gateway(subgraph: str, client: httpx.AsyncClient) -> Starlette:
    return Starlette(routes=photo_routes(f"{subgraph}/graphql", client, CAP))


async def _chunks(count: int) -> AsyncIterator[bytes]:
    for _ in range(count):
        yield b"x" * 512


async def test_uploads_and_photos_pass_through() -> None:
    subgraph_app = Starlette(
        routes=[
            Route("/uploads", take, methods=["POST"]),
            Route("/photos/{upload}/{copy}.jpg", photo, methods=["GET"]),
        ]
    )
    async with serve(subgraph_app) as subgraph, httpx.AsyncClient() as client:
        transport = httpx.ASGITransport(app=gateway(subgraph, client))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            taken = await http.post(
                "/uploads?alt=Яма",
                content=b"j" * 700,
                headers={"Authorization": "Bearer t", "Content-Type": "image/jpeg"},
            )
            declared = await http.post("/uploads", content=b"x" * (CAP + 1))
            streamed = await http.post("/uploads", content=_chunks(3))
            served = await http.get("/photos/abc/screen.jpg")
            cached = await http.get("/photos/abc/screen.jpg", headers={"If-None-Match": '"p"'})
    assert (taken.status_code, taken.json()) == (
        201,
        {"size": 700, "alt": "Яма", "authorization": "Bearer t", "type": "image/jpeg"},
    )
    for refused in (declared, streamed):
        assert refused.status_code == 413
        assert refused.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert (served.status_code, served.content) == (200, b"\xff\xd8jpeg")
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert cached.status_code == 304


async def test_an_unreachable_subgraph_answers_503() -> None:
    async with httpx.AsyncClient() as client:
        app = gateway(f"http://127.0.0.1:{free_port()}", client)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw"
        ) as http:
            answer = await http.get("/photos/abc/thumb.jpg")
    assert answer.status_code == 503
    assert answer.json()["errors"][0]["extensions"]["code"] == "SUBGRAPH_UNAVAILABLE"
