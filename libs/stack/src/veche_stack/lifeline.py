"""`python -m veche_stack.lifeline <module> [args]`: runs `python -m <module> [args]`
and stops it when the process that started it dies.

The stack runner gives each child the read end of a pipe (its fd in
`VECHE_LIFELINE_FD`) and keeps the write end. However the runner ends (Ctrl-C, a
crash, SIGKILL, the OOM killer, a closed terminal) the kernel closes that end, the
read here returns end-of-file, and the child asks itself to stop as a signal would.
A pipe works on every POSIX system and whatever thread spawned the child, unlike
Linux's `PR_SET_PDEATHSIG`. If the child has not ended `GRACE_SECONDS` later, it
exits hard.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import time

FD_VARIABLE = "VECHE_LIFELINE_FD"
GRACE_SECONDS = 15.0


def _wait_for_parent_death(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 1):
                break  # end-of-file: the parent's end is closed
        except InterruptedError:
            continue
        except OSError:
            break
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_SECONDS)
    os._exit(1)


def watch_parent() -> None:
    """Starts watching the lifeline, when the process was given one."""
    value = os.environ.pop(FD_VARIABLE, None)
    if value is None:
        return
    fd = int(value)
    os.set_inheritable(fd, False)  # the child's own children are not tied to it
    threading.Thread(
        target=_wait_for_parent_death, args=(fd,), name="lifeline", daemon=True
    ).start()


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: python -m veche_stack.lifeline <module> [args]")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    watch_parent()
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
