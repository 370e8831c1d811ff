"""Phone verification code delivery, pluggable.

The development sender writes the code to the log (and keeps the last codes
in memory for tests); a city plugs in its SMS gateway by naming a class in
`USERS_CODE_SENDER` (`module:Class`, constructed without arguments).
"""

from __future__ import annotations

import importlib
import logging
from typing import Protocol

log = logging.getLogger(__name__)


class CodeSender(Protocol):
    async def send(self, phone: str, code: str) -> None:
        """Delivers `code` to `phone`; raises if it could not."""


class LogCodeSender:
    """Development delivery: the code goes to the service log."""

    def __init__(self) -> None:
        self.sent: dict[str, str] = {}

    async def send(self, phone: str, code: str) -> None:
        self.sent[phone] = code
        # The log keeps the number's last digits only: logs outlive an erased account.
        log.info(
            "phone verification code (development sender)",
            extra={"phone": "…" + phone[-4:], "code": code},
        )


def load_sender(spec: str) -> CodeSender:
    """`log`, or `package.module:ClassName` for a city's own sender."""
    if spec == "log":
        return LogCodeSender()
    module_name, _, class_name = spec.partition(":")
    sender: CodeSender = getattr(importlib.import_module(module_name), class_name)()
    return sender
