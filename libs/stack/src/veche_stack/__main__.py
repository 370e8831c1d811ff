"""`python -m veche_stack` (what `make run` does): the whole stack until Ctrl-C.

A crashed process is restarted (see `veche_stack.supervisor`); Ctrl-C or SIGTERM
stops everything in order; a second signal while stopping changes nothing (every
process is stopped within its deadline anyway); if the runner itself is killed,
its children stop on their own (`veche_stack.lifeline`).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from types import FrameType

from veche_stack.stack import GATEWAY, Stack, StackConfig
from veche_stack.supervisor import GaveUpError, RestartPolicy, Supervisor


class _Signals:
    """Counts stop signals. The handler only adds one: nothing that takes a lock,
    so a signal arriving inside another's handling cannot deadlock."""

    count = 0
    starting = True  # the first signal interrupts the start, which stops what it began

    @classmethod
    def handle(cls, signum: int, _frame: FrameType | None) -> None:
        cls.count += 1
        if cls.count > 1:
            os.write(2, b"veche: already stopping; each process gets at most 10 s\n")
        elif cls.starting:
            raise KeyboardInterrupt


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> None:
    config = StackConfig.from_env()
    stack = Stack(config)
    names = ", ".join(s.name for s in (*stack.services, GATEWAY))
    print(f"veche: starting {names}; data in {config.data_dir}, logs in {stack.logs}", flush=True)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _Signals.handle)
    try:
        stack.start()
    except (RuntimeError, TimeoutError) as error:
        print(f"veche: could not start: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("veche: stopped while starting", file=sys.stderr)
        raise SystemExit(130) from None
    _Signals.starting = False
    email, password = stack.admin_credentials()
    for name, process in stack.processes.items():
        print(f"  {name:<14} ready  (log: {process.log_path})", flush=True)
    print(f"veche: broker {stack.amqp_url}")
    print(f"veche: admin account {email} / {password}")
    secret = stack.admin_totp_secret()
    print(
        f"veche: admin two-factor secret {secret} (add it to an authenticator app, or get the"
        f" current code with `.venv/bin/python -m veche_kit.totp {secret}`)"
    )
    print(f"veche: GraphiQL at {stack.url('gateway')}", flush=True)
    print("veche: press Ctrl-C to stop everything", flush=True)

    supervisor = Supervisor(stack.processes, RestartPolicy.from_env(), say)
    failed = False
    try:
        while not _Signals.count:
            supervisor.check()
            time.sleep(0.2)
    except GaveUpError as error:
        say(f"veche: {error}; stopping everything")
        failed = True
    print("veche: stopping", flush=True)
    stack.stop()
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
