"""Keeps the stack's processes running, as a process manager would on one machine.

A process that stops unexpectedly is started again after a delay that doubles with
each restart in the window (first `first_delay`, at most `max_delay`), while the
rest keep serving. After `max_restarts` restarts within `window_seconds` the
supervisor gives up: the runner then stops everything with that message. In
production, restarts belong to the platform (compose `restart:`, systemd,
Kubernetes); this is `make run`'s story.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from veche_stack.processes import Process


@dataclass(frozen=True)
class RestartPolicy:
    """When and how often a crashed process is started again (`VECHE_RESTART_*`)."""

    first_delay: float = 0.5
    max_delay: float = 10.0
    max_restarts: int = 5
    window_seconds: float = 60.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RestartPolicy:
        default = cls()
        return cls(
            first_delay=float(environ.get("VECHE_RESTART_FIRST_DELAY", default.first_delay)),
            max_delay=float(environ.get("VECHE_RESTART_MAX_DELAY", default.max_delay)),
            max_restarts=int(environ.get("VECHE_RESTART_MAX", default.max_restarts)),
            window_seconds=float(environ.get("VECHE_RESTART_WINDOW", default.window_seconds)),
        )

    def delay(self, recent_restarts: int) -> float:
        return min(self.first_delay * 2.0**recent_restarts, self.max_delay)


class GaveUpError(RuntimeError):
    """A process crashed more often than the policy allows."""


class Supervisor:
    """Call `check()` often (the runner does, every 0.2 s): it notices stopped
    processes, schedules their restart and carries it out when due."""

    def __init__(
        self,
        processes: Mapping[str, Process],
        policy: RestartPolicy,
        say: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.processes = processes
        self.policy = policy
        self.say = say
        self.clock = clock
        self._restarts: dict[str, deque[float]] = {}
        self._due: dict[str, float] = {}

    def _recent(self, name: str, now: float) -> deque[float]:
        times = self._restarts.setdefault(name, deque())
        while times and now - times[0] > self.policy.window_seconds:
            times.popleft()
        return times

    def check(self) -> None:
        now = self.clock()
        for name, process in self.processes.items():
            if process.running:
                continue
            recent = self._recent(name, now)
            if name not in self._due:
                code = process.popen.returncode if process.popen is not None else None
                if len(recent) >= self.policy.max_restarts:
                    raise GaveUpError(
                        f"{name} stopped {len(recent) + 1} times within "
                        f"{self.policy.window_seconds:.0f} s (last exit code {code}); "
                        f"giving up, see {process.log_path}"
                    )
                delay = self.policy.delay(len(recent))
                self._due[name] = now + delay
                self.say(
                    f"veche: {name} stopped unexpectedly (exit code {code}); "
                    f"restarting in {delay:.1f} s (log: {process.log_path})"
                )
            elif now >= self._due[name]:
                del self._due[name]
                recent.append(now)
                process.start()
                self.say(
                    f"veche: {name} restarted (restart {len(recent)} of at most "
                    f"{self.policy.max_restarts} within {self.policy.window_seconds:.0f} s)"
                )
