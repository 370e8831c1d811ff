"""`runtime`: request ids taken or made, bad ones refused; limits read from settings;
stop steps all run."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from veche_kit.logs import request_id_var
from veche_kit.runtime import MAX_REQUEST_ID, RequestIdMiddleware, Runtime, operation_limits
from veche_kit.settings import ServiceSettings
from veche_stack.testing import TokenMint


async def echo_id(_: Request) -> Response:
    return JSONResponse({"id": request_id_var.get()})


def client() -> httpx.AsyncClient:
    app = RequestIdMiddleware(Starlette(routes=[Route("/", echo_id)]))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc")


async def test_the_callers_request_id_is_used_and_returned() -> None:
    async with client() as http:
        response = await http.get("/", headers={"x-request-id": "abc-1"})
    assert response.json() == {"id": "abc-1"}
    assert response.headers["x-request-id"] == "abc-1"


async def test_a_request_id_is_made_when_none_is_given_and_cut_when_long() -> None:
    async with client() as http:
        made = await http.get("/")
        long = await http.get("/", headers={"x-request-id": "a" * 500})
    assert len(made.json()["id"]) == 32
    assert made.headers["x-request-id"] == made.json()["id"]
    assert long.json()["id"] == "a" * MAX_REQUEST_ID


async def test_a_request_id_that_is_not_printable_ascii_is_refused() -> None:
    async with client() as http:
        response = await http.get("/", headers={"x-request-id": "id with space"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert request_id_var.get() is None


def test_operation_limits_come_from_settings() -> None:
    settings = ServiceSettings(max_tokens=10, max_depth=3, max_aliases=0, max_body_bytes=99)
    limits = operation_limits(settings)
    assert (limits.max_tokens, limits.max_depth, limits.max_aliases) == (10, 3, 0)
    assert limits.max_body_bytes == 99


async def test_every_stop_step_runs_though_one_fails(
    mongo_server_url: str, amqp_url: str, unique: str
) -> None:
    settings = ServiceSettings(
        mongo_url=mongo_server_url,
        mongo_db=f"runtime_{unique}",
        amqp_url=amqp_url,
        namespace=f"test-{unique}.",
    )
    runtime = Runtime.create(settings, TokenMint().verifier(), indexes={})
    ran: list[str] = []

    async def breaks() -> None:
        ran.append("breaks")
        raise OSError("the HTTP client is already gone")

    async def closes() -> None:
        ran.append("closes")

    runtime.on_stop.extend([breaks, closes])
    # Not started: the broker link's shutdown callbacks would outlive this test's loop.
    await runtime.stop()
    assert ran == ["breaks", "closes"]
