"""Child processes of the stack: started with a log file, waited for, stopped.

Each child gets a lifeline (see `veche_stack.lifeline`): the read end of a pipe
whose write end only this process holds, so no child outlives it.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from veche_stack.lifeline import FD_VARIABLE

# Below Linux's ephemeral range (32768-60999): a port the kernel hands out for
# bind(0) or for any outgoing connection could be taken again between choosing it
# and the child binding it (seen: "address already in use" while other tests ran).
_PORTS = range(20000, 32000)


def free_port() -> int:
    """A loopback port nothing listens on right now, chosen outside the ephemeral range."""
    for _ in range(100):
        port = random.choice(_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_PORTS.start}-{_PORTS.stop - 1}")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def python_module(module: str, *args: str) -> list[str]:
    """The command that runs `python -m module args` tied to this process's life."""
    return [sys.executable, "-m", "veche_stack.lifeline", module, *args]


@dataclass
class Process:
    """One child process whose output goes to `log_path`."""

    name: str
    command: Sequence[str]
    log_path: Path
    env: Mapping[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    _lifeline: int | None = field(default=None, repr=False)  # the pipe's write end

    def start(self) -> None:
        """Starts it in a session of its own (a terminal's Ctrl-C reaches only the runner,
        which stops the children in order) with its lifeline."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_lifeline()
        child_end, self._lifeline = os.pipe()
        with self.log_path.open("ab") as log:
            try:
                self.popen = subprocess.Popen(
                    list(self.command),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **self.env, FD_VARIABLE: str(child_end)},
                    start_new_session=True,
                    pass_fds=(child_end,),
                )
            finally:
                os.close(child_end)

    def _close_lifeline(self) -> None:
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def _check_alive(self) -> None:
        if not self.running:
            tail = (
                self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""
            )
            raise RuntimeError(f"{self.name} exited while starting; its log ends with:\n{tail}")

    def wait_port(self, port: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not port_open("127.0.0.1", port):
            self._check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name} did not listen on port {port} within {timeout:.0f} s"
                )
            time.sleep(0.1)

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        """Waits until `url` answers 200."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} was not ready at {url} within {timeout:.0f} s")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL, as a crash would (fault tests)."""
        if self.popen is not None and self.running:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        self._close_lifeline()

    def terminate(self) -> None:
        """Asks it to stop (SIGTERM) without waiting."""
        if self.popen is not None and self.running:
            os.killpg(self.popen.pid, signal.SIGTERM)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not end in time."""
        if self.popen is None or not self.running:
            self._close_lifeline()
            return
        self.terminate()
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._close_lifeline()
