"""Open311 passes through the gateway unchanged to the subgraph that serves it,
and an unreachable subgraph answers 503 in Open311's error shape."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from veche_gateway.passthrough import open311_route
from veche_stack.processes import free_port
from veche_stack.testing import serve


async def echo(request: Request) -> Response:
    body = await request.body()
    seen = f"{request.method} {request.url.path}?{request.url.query} {body.decode()}"
    forwarded = request.headers.get("x-forwarded-for", "")
    return Response(f"{seen} from {forwarded}", 201, media_type="text/xml")


def gateway(subgraph: str, client: httpx.AsyncClient) -> Starlette:
    return Starlette(routes=[open311_route(f"{subgraph}/graphql", client, max_body_bytes=64)])


async def test_requests_pass_through_unchanged() -> None:
    subgraph_app = Starlette(
        routes=[Route("/open311/v2/{path:path}", echo, methods=["GET", "POST"])]
    )
    async with serve(subgraph_app) as subgraph, httpx.AsyncClient() as client:
        app = gateway(subgraph, client)
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            got = await http.get("/open311/v2/requests.xml?status=open&service_code=a,b")
            posted = await http.post(
                "/open311/v2/requests.json",
                content=b"api_key=k",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            too_big = await http.post("/open311/v2/requests.json", content=b"x" * 65)
    assert got.status_code == 201
    assert got.headers["content-type"].startswith("text/xml")
    assert got.text == "GET /open311/v2/requests.xml?status=open&service_code=a,b  from 203.0.113.7"
    assert posted.text == "POST /open311/v2/requests.json? api_key=k from 203.0.113.7"
    assert too_big.status_code == 413
    assert too_big.json()[0]["code"] == 413


async def test_an_unreachable_subgraph_answers_503_in_open311_shape() -> None:
    async with httpx.AsyncClient() as client:
        app = gateway(f"http://127.0.0.1:{free_port()}", client)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw"
        ) as http:
            answer = await http.get("/open311/v2/services.json")
    assert answer.status_code == 503
    assert answer.json() == [
        {"code": 503, "description": "Open311 is unavailable right now; try again shortly"}
    ]
