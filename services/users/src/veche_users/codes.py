"""Delivery of one-time codes, pluggable: texts to phones, e-mails to addresses.

The development senders write the code to the log (and keep the last codes in
memory for tests). A city plugs in its SMS gateway by naming a class in
`USERS_CODE_SENDER`, and its mail by `USERS_EMAIL_SENDER=smtp` (the `USERS_SMTP_*`
settings) or a class of its own (`module:Class`, constructed without arguments).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import smtplib
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, Protocol

log = logging.getLogger(__name__)


class CodeSender(Protocol):
    async def send(self, phone: str, code: str) -> None:
        """Delivers `code` to `phone`; raises if it could not."""


class MailPurpose(StrEnum):
    """What an e-mailed code is for."""

    VERIFY_EMAIL = "VERIFY_EMAIL"
    RESET_PASSWORD = "RESET_PASSWORD"


class Mailer(Protocol):
    async def send_code(
        self, to: str, purpose: MailPurpose, code: str, link: str | None, minutes: int
    ) -> None:
        """Delivers `code` (and the link that carries it, when the city set one) to the
        address `to`; valid for `minutes`. Raises if it could not."""


def _masked_phone(phone: str) -> str:
    return "…" + phone[-4:]


def _masked_email(address: str) -> str:
    return "…@" + address.rpartition("@")[2]


class LogCodeSender:
    """Development delivery: the code goes to the service log."""

    def __init__(self) -> None:
        self.sent: dict[str, str] = {}

    async def send(self, phone: str, code: str) -> None:
        self.sent[phone] = code
        # The log keeps the number's last digits only: logs outlive an erased account.
        log.info(
            "phone verification code (development sender)",
            extra={"phone": _masked_phone(phone), "code": code},
        )


class LogMailer:
    """Development delivery of e-mails: the code goes to the service log."""

    def __init__(self) -> None:
        self.sent: dict[tuple[str, MailPurpose], str] = {}

    async def send_code(
        self, to: str, purpose: MailPurpose, code: str, link: str | None, minutes: int
    ) -> None:
        self.sent[(to, purpose)] = code
        # The domain only: logs outlive an erased account.
        log.info(
            "e-mail code (development sender)",
            extra={"to": _masked_email(to), "purpose": purpose.value, "code": code},
        )


_SUBJECTS = {
    MailPurpose.VERIFY_EMAIL: "Вече: подтвердите адрес почты / confirm your e-mail",
    MailPurpose.RESET_PASSWORD: "Вече: восстановление пароля / password reset",
}
_WHY = {
    MailPurpose.VERIFY_EMAIL: (
        "Код для подтверждения адреса почты",
        "Your code to confirm this e-mail address",
    ),
    MailPurpose.RESET_PASSWORD: (
        "Код для смены пароля (если вы его не запрашивали, ничего не делайте)",
        "Your code to set a new password (if you did not ask for it, do nothing)",
    ),
}


def mail_text(purpose: MailPurpose, code: str, link: str | None, minutes: int) -> str:
    """The body of a code e-mail, in Russian and then English."""
    russian, english = _WHY[purpose]
    lines = [f"{russian}: {code}", f"Код действует {minutes} мин."]
    if link:
        lines.append(f"Или откройте ссылку: {link}")
    lines += ["", f"{english}: {code}", f"It is valid for {minutes} minutes."]
    if link:
        lines.append(f"Or open the link: {link}")
    return "\n".join(lines) + "\n"


class SmtpMailer:
    """Sends through the city's mail server (`USERS_SMTP_*`), STARTTLS unless told not to."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password = username, password
        self.starttls, self.timeout = starttls, timeout

    async def send_code(
        self, to: str, purpose: MailPurpose, code: str, link: str | None, minutes: int
    ) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, _SUBJECTS[purpose]
        message.set_content(mail_text(purpose, code, link, minutes))
        # smtplib blocks: keep it off the event loop.
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)


def _custom(spec: str) -> Any:
    module_name, _, class_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()


def load_sender(spec: str) -> CodeSender:
    """`log`, or `package.module:ClassName` for a city's own SMS sender."""
    if spec == "log":
        return LogCodeSender()
    sender: CodeSender = _custom(spec)
    return sender


def load_mailer(spec: str, smtp: SmtpMailer | None) -> Mailer:
    """`log`, `smtp` (the settings' mail server) or `package.module:ClassName`."""
    if spec == "log":
        return LogMailer()
    if spec == "smtp":
        if smtp is None:
            raise ValueError("USERS_EMAIL_SENDER=smtp needs USERS_SMTP_HOST")
        return smtp
    mailer: Mailer = _custom(spec)
    return mailer
