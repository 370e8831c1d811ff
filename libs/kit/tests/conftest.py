"""Fixtures every kit test shares."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from veche_kit.language import Language, language_var


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """Schemas executed in the test process read refusals in English, as the asserts are
    written (a request over HTTP gets its own language from its Accept-Language)."""
    token = language_var.set(Language.EN)
    yield
    language_var.reset(token)
