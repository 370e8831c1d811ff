"""`python -m veche_stack` (what `make run` does): the whole stack until Ctrl-C."""

from __future__ import annotations

import signal
import sys
import threading

from veche_stack.stack import Stack, StackConfig


def main() -> None:
    config = StackConfig.from_env()
    stack = Stack(config)
    names = ", ".join(s.name for s in stack.services) + (", gateway" if stack.gateway else "")
    print(f"veche: starting {names}; data in {config.data_dir}, logs in {stack.logs}", flush=True)
    try:
        stack.start()
    except (RuntimeError, TimeoutError) as error:
        print(f"veche: could not start: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    email, password = stack.admin_credentials()
    for name, process in stack.processes.items():
        print(f"  {name:<14} ready  (log: {process.log_path})", flush=True)
    print(f"veche: broker {stack.amqp_url}")
    print(f"veche: admin account {email} / {password}")
    if stack.gateway:
        print(f"veche: GraphiQL at {stack.url('gateway')}", flush=True)
    else:
        print(
            f"veche: users GraphQL at {stack.url('users')} (the gateway is not installed yet)",
            flush=True,
        )
    print("veche: press Ctrl-C to stop everything", flush=True)

    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    while not stopped.wait(1.0):
        for name, process in stack.processes.items():
            if not process.running:
                print(
                    f"veche: {name} stopped unexpectedly; see {process.log_path}", file=sys.stderr
                )
                stopped.set()
                break
    print("veche: stopping", flush=True)
    stack.stop()


if __name__ == "__main__":
    main()
