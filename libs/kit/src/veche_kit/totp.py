"""Time-based one-time passwords (RFC 6238, over RFC 4226's HOTP), standard library only.

The parameters every authenticator app assumes when an `otpauth://` URI names no
others: SHA-1, 6 digits, 30-second steps. A code is accepted for its step and one
step either side (`SKEW`), for phones whose clocks are a little off.

Here rather than in the users service because the stack's tools and tests compute
the seeded admin's codes too (`current_code`, or `python -m veche_kit.totp SECRET`).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import struct
import sys
import time
from datetime import datetime
from urllib.parse import quote, urlencode

DIGITS = 6
PERIOD = 30  # seconds a code stands for
SKEW = 1  # steps either side of now that are accepted
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends for HMAC-SHA-1


def new_secret() -> str:
    """A fresh shared secret, base32 without padding (what authenticator apps take)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode().rstrip("=")


def secret_bytes(secret: str) -> bytes:
    """The key a base32 secret stands for (spaces, dashes, case and padding forgiven);
    ValueError when it is not base32 or shorter than 80 bits."""
    text = secret.replace(" ", "").replace("-", "").upper().rstrip("=")
    try:
        key = base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError as error:
        raise ValueError("a TOTP secret is base32: letters A-Z and digits 2-7") from error
    if len(key) < 10:
        raise ValueError("a TOTP secret holds at least 80 bits (16 base32 characters)")
    return key


def hotp(key: bytes, counter: int, *, digits: int = DIGITS, digest: str = "sha1") -> str:
    """RFC 4226 section 5.3: HMAC of the counter, dynamically truncated to `digits`."""
    mac = hmac.new(key, struct.pack(">Q", counter), digest).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def step_at(at: datetime | float | None = None) -> int:
    """RFC 6238 section 4.2: the time step T of a moment (now when None)."""
    seconds = time.time() if at is None else at.timestamp() if isinstance(at, datetime) else at
    return int(seconds // PERIOD)


def code_at(
    secret: str, at: datetime | float | None = None, *, digits: int = DIGITS, digest: str = "sha1"
) -> str:
    """The code an authenticator app shows at `at` (now when None)."""
    return hotp(secret_bytes(secret), step_at(at), digits=digits, digest=digest)


def current_code(secret: str) -> str:
    """The code for now: what a test or a developer types for the seeded admin."""
    return code_at(secret)


def matching_step(secret: str, code: str, at: datetime | float | None = None) -> int | None:
    """The step within `SKEW` of `at` whose code is `code`, or None; every candidate is
    compared in constant time."""
    key, now = secret_bytes(secret), step_at(at)
    found = None
    for step in range(now - SKEW, now + SKEW + 1):
        if hmac.compare_digest(hotp(key, step).encode(), code.encode()) and found is None:
            found = step
    return found


def otpauth_uri(secret: str, account: str, issuer: str) -> str:
    """The Key Uri Format authenticator apps scan from a QR code."""
    label = quote(f"{issuer}:{account}", safe="@:")
    query = urlencode(
        {
            "secret": secret,
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": PERIOD,
        }
    )
    return f"otpauth://totp/{label}?{query}"


def main(argv: list[str] | None = None) -> None:
    """`python -m veche_kit.totp SECRET`: the current code and how long it stands."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m veche_kit.totp SECRET")
    left = PERIOD - int(time.time()) % PERIOD
    try:
        code = current_code(args[0])
    except ValueError as error:
        raise SystemExit(f"veche_kit.totp: {error}") from None
    print(f"{code}  (for {left} more second(s))")


if __name__ == "__main__":
    main()
