"""`logs`: one JSON object a line, with the request id and extras, nothing else leaked."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from veche_kit.logs import JsonFormatter, configure_logging, request_id_var


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"name": "veche.test", "levelno": 30, "levelname": "WARNING"})
    made.msg, made.args = msg, args
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def formatted(made: logging.LogRecord) -> dict[str, object]:
    line = JsonFormatter("users").format(made)
    assert "\n" not in line
    loaded: dict[str, object] = json.loads(line)
    return loaded


def test_a_record_is_one_json_line_with_its_fields() -> None:
    entry = formatted(record("hello %s", "world", retry_in=0.5))
    assert entry["msg"] == "hello world"
    assert (entry["level"], entry["service"], entry["logger"]) == ("warning", "users", "veche.test")
    assert entry["retry_in"] == 0.5
    assert str(entry["at"]).endswith("+00:00")
    assert "request_id" not in entry


def test_standard_and_private_attributes_stay_out() -> None:
    entry = formatted(record("x", _secret="hunter2"))
    assert set(entry) == {"at", "level", "service", "logger", "msg"}


def test_the_request_id_of_the_work_at_hand_is_logged() -> None:
    token = request_id_var.set("req-42")
    try:
        assert formatted(record("x"))["request_id"] == "req-42"
    finally:
        request_id_var.reset(token)


def test_newlines_and_unserialisable_extras_do_not_break_the_line() -> None:
    entry = formatted(record("line one\nline two", thing=object(), name_ru="Калуга"))
    assert entry["msg"] == "line one\nline two"
    assert str(entry["thing"]).startswith("<object")
    assert entry["name_ru"] == "Калуга"


def test_an_exception_is_logged_with_its_traceback() -> None:
    try:
        raise LookupError("missing")
    except LookupError:
        made = record("failed", exc_info=None)
        made.exc_info = __import__("sys").exc_info()
    assert "LookupError: missing" in str(formatted(made)["exc"])


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root")
def test_configure_logging_sets_one_json_handler_and_quiets_chatty_libraries() -> None:
    configure_logging("polls", "debug")
    root = logging.getLogger()
    (handler,) = root.handlers
    assert isinstance(handler.formatter, JsonFormatter)
    assert handler.formatter.service == "polls"
    assert root.level == logging.DEBUG
    assert logging.getLogger("pymongo").level == logging.WARNING
