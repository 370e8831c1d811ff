"""`python -m veche_stack.mongod [secantus flags]`: the embedded MongoDB-wire store.

SecantusDB's own daemon, with two changes:

- Shutdown is signal-safe. SecantusDB's handler stops the server inside the
  signal handler; a second SIGINT/SIGTERM arriving during that stop re-enters
  `threading.Event.set` under its non-reentrant lock and hangs the process for
  good, holding its port and the WiredTiger lock. Here the handler only records
  the request; the main thread stops the server once, further signals are
  ignored, and a stop that overruns `STOP_DEADLINE_SECONDS` exits hard
  (WiredTiger's journal makes that safe to start again on).
- How long an abandoned transaction holds its locks. A process killed
  mid-transaction leaves its transaction open; like mongod's
  `transactionLifetimeLimitSeconds` (60 s) it is aborted only after that time, and
  writes to the same documents wait until then. Our transactions last
  milliseconds, so the embedded store reaps them after 10 s
  (`VECHE_MONGO_TXN_LIFETIME_SECONDS`).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType
from typing import Any

from secantus import cli
from secantus.server import SecantusDBServer

STOP_DEADLINE_SECONDS = 20.0


class SignalSafeServer(SecantusDBServer):  # type: ignore[misc]
    """`stop()` only asks (it is what SecantusDB's signal handler calls); `wait()`
    does the real stop in the main thread, once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        lifetime = float(os.environ.get("VECHE_MONGO_TXN_LIFETIME_SECONDS", "10"))
        super().__init__(*args, transaction_lifetime_seconds=lifetime, **kwargs)
        self._stop_asked = False

    def stop(self) -> None:
        self._stop_asked = True  # a plain store: safe inside a signal handler

    def wait(self) -> None:
        while True:
            try:
                while not (self._stop_asked or self._stop_event.is_set()):
                    time.sleep(0.1)
                break
            except SystemExit:
                continue  # SecantusDB's handler exits after asking; stop first
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _already_stopping)
        watchdog = threading.Timer(STOP_DEADLINE_SECONDS, _overran)
        watchdog.daemon = True
        watchdog.start()
        super().stop()
        watchdog.cancel()


def _already_stopping(signum: int, _frame: FrameType | None) -> None:
    os.write(2, f"veche.mongod: signal {signum} ignored, already stopping\n".encode())


def _overran() -> None:
    os.write(2, b"veche.mongod: stop overran its deadline, exiting hard\n")
    os._exit(1)


def main() -> None:
    cli.SecantusDBServer = SignalSafeServer
    raise SystemExit(cli.main())


if __name__ == "__main__":
    main()
