"""`python -m veche_stack` (what `make run` runs) as a child of a test or bench, on
ports of its own: started, read, signalled, and its children found by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from veche_stack.processes import free_port
from veche_stack.stack import GATEWAY, SERVICES, instance_names

READY_LINE = "press Ctrl-C"


def stack_ports() -> dict[str, int]:
    """Free ports for every process: `users`... `gateway`, and `mongo-users`... ."""
    ports = {s.name: free_port() for s in (*SERVICES, GATEWAY)}
    ports.update({f"mongo-{s.name}": free_port() for s in SERVICES})
    return ports


@dataclass
class Runner:
    """One `python -m veche_stack` on `data_dir`. Its output (stdout and stderr) is
    collected in `output` for as long as it runs."""

    data_dir: Path
    ports: dict[str, int] = field(default_factory=stack_ports)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # VECHE_WORKERS=N: a free port for every instance past the first (`polls-2`...)
        for spec in SERVICES:
            for name in instance_names(spec, self.workers)[1:]:
                self.ports.setdefault(name, free_port())

    @property
    def workers(self) -> int:
        return int(self.env.get("VECHE_WORKERS") or os.environ.get("VECHE_WORKERS") or 1)

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            "VECHE_DATA_DIR": str(self.data_dir),
            "VECHE_NAMESPACE": f"test-{uuid.uuid4().hex[:8]}.",
            "PYTHONUNBUFFERED": "1",
        }
        for spec in (*SERVICES, GATEWAY):
            env[f"{spec.env_prefix}PORT"] = str(self.ports[spec.name])
            if spec.mongo_port:
                env[f"{spec.env_prefix}MONGO_PORT"] = str(self.ports[f"mongo-{spec.name}"])
        for spec in SERVICES:
            for name in instance_names(spec, self.workers)[1:]:
                env[name.upper().replace("-", "_") + "_PORT"] = str(self.ports[name])
        return {**env, **self.env}

    def launch(self) -> subprocess.Popen[str]:
        """Starts the runner without waiting for it."""
        self.output = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "veche_stack"],
            env=self.environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        return self.process

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)

    def start(self, timeout: float = 120.0) -> None:
        """Starts the runner and waits until it says the stack is up."""
        process = self.launch()
        deadline = time.monotonic() + timeout
        while not any(READY_LINE in line for line in self.output):
            if process.poll() is not None or time.monotonic() > deadline:
                self.interrupt()
                logs = "".join(
                    f"\n== {p.name}\n" + p.read_text(errors="replace")[-1500:]
                    for p in sorted((self.data_dir / "logs").glob("*.log"))
                )
                raise RuntimeError("the stack did not start:\n" + self.text + logs)
            time.sleep(0.1)

    @property
    def text(self) -> str:
        return "".join(self.output)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def url(self, name: str, path: str = "/graphql") -> str:
        return f"http://127.0.0.1:{self.ports[name]}{path}"

    def children(self) -> dict[str, int]:
        """The runner's children by process name (`users`, `polls-2`, `mongo-users`...),
        from /proc."""
        found: dict[str, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                words = (entry / "cmdline").read_bytes().decode().split("\0")
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.pid and "veche_stack.lifeline" in words:
                found[_instance(entry) or _process_name(words)] = int(entry.name)
        return found

    def signal(self, signum: int = signal.SIGINT) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def interrupt(self, timeout: float = 60.0) -> int | None:
        """Ctrl-C, so the runner stops what it started; SIGKILL only as a last resort.
        Returns its exit code."""
        if self.process is None:
            return None
        self.signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def _process_name(words: list[str]) -> str:
    module = words[words.index("veche_stack.lifeline") + 1]
    if module == "veche_stack.mongod":
        return "mongo-" + Path(words[words.index("--storage-path") + 1]).name
    return module.removeprefix("veche_")


def _instance(entry: Path) -> str | None:
    """The `VECHE_INSTANCE` the stack gave a service's process (`polls-2`)."""
    try:
        variables = (entry / "environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for variable in variables:
        if variable.startswith(b"VECHE_INSTANCE="):
            return variable.split(b"=", 1)[1].decode()
    return None


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pids: Mapping[str, int], timeout: float) -> dict[str, int]:
    """Waits up to `timeout` s for every process in `pids` to end; returns those left."""
    deadline = time.monotonic() + timeout
    while True:
        left = {name: pid for name, pid in pids.items() if alive(pid)}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)
