"""Schema-aware fuzzing of a real stack, as `make run` starts it: the gateway
and every subgraph get generated operations (valid and invalid, queries and
mutations, anonymous, as a citizen and as the admin) and malformed requests
(`veche_stack.fuzzing`). Every answer must be free of 5xx and `INTERNAL`,
every error must carry a code, and no process may restart.
`bench/bench_fuzz.py` runs the same for longer; VECHE_FUZZ_EXAMPLES sets the
examples per endpoint here."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from veche_stack.fuzzing import Tally, callers, fuzz, refuse_malformed
from veche_stack.runner import Runner
from veche_stack.stack import SERVICES

from .flows import ADMIN_PASSWORD, ADMIN_TOTP_SECRET, runner_on, running

pytestmark = pytest.mark.stack

ENDPOINTS = ["gateway", *(spec.name for spec in SERVICES)]
EXAMPLES = int(os.environ.get("VECHE_FUZZ_EXAMPLES", "60"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    with running(runner_on(tmp_path_factory.mktemp("fuzz"))) as runner:
        yield runner


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def tokens(stack: Runner, http: httpx.Client) -> list[str | None]:
    return callers(http, stack.url("gateway"), ADMIN_PASSWORD, ADMIN_TOTP_SECRET)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_generated_operations_get_coded_answers(
    stack: Runner, http: httpx.Client, tokens: list[str | None], endpoint: str
) -> None:
    before = stack.children()
    tally = Tally()
    fuzz(http, stack.url(endpoint), tokens, EXAMPLES, tally)
    assert tally.requests >= EXAMPLES
    assert not tally.problems, "\n".join(tally.problems[:20])
    assert stack.children() == before, "a process restarted"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_malformed_requests_get_coded_refusals(
    stack: Runner, http: httpx.Client, endpoint: str
) -> None:
    before = stack.children()
    tally = Tally()
    refuse_malformed(http, stack.url(endpoint), tally)
    assert not tally.problems, "\n".join(tally.problems)
    assert stack.children() == before, "a process restarted"
