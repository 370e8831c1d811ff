"""Fixtures every test package shares: one embedded MongoDB-wire server for the
session (tests use their own database names instead of cleaning up) and the
machine's RabbitMQ."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from veche_stack.broker import amqp_answers
from veche_stack.processes import Process, free_port, python_module
from veche_stack.stack import DEFAULT_AMQP_URL, mongo_url


@pytest.fixture(scope="session")
def mongo_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A SecantusDB server in its own process, as `make run` starts one."""
    given = os.environ.get("VECHE_TEST_MONGO_URL")
    if given:
        yield given
        return
    path: Path = tmp_path_factory.mktemp("mongo")
    port = free_port()
    process = Process(
        "mongo-test",
        python_module(
            "veche_stack.mongod",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            str(path / "data"),
            "--log-level",
            "WARNING",
        ),
        path / "mongo.log",
    )
    process.start()
    try:
        process.wait_port(port)
        yield mongo_url(port)
    finally:
        process.stop()


@pytest.fixture(scope="session")
def amqp_url() -> str:
    url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    if not amqp_answers(url):
        pytest.fail(f"RabbitMQ is not answering at {url}; the tests need a real broker")
    return url


@pytest.fixture
def unique() -> str:
    """A short unique token for names, so tests never share state."""
    return uuid.uuid4().hex[:10]
