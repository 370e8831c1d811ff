"""Finding what a leftover process holds before the stack starts: a listening port or
an embedded store's data lock. A stack that was killed uncleanly (or another program)
may hold them; the runner says so in one line instead of failing half-way.

Which PID holds what is read from Linux's /proc; elsewhere the message says only
that the port or lock is taken.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from veche_stack.processes import port_open

PROC = Path("/proc")
TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Holding:
    """Something the stack needs that another process holds."""

    what: str  # "port 4003 (issues)" or "the issues store's data lock (path)"
    pid: int | None

    def message(self) -> str:
        if self.pid is None:
            return f"{self.what} is taken by another process; stop it, or choose another port"
        return (
            f"{self.what} is held by PID {self.pid} ({command_line(self.pid)}); "
            f"stop it with `kill {self.pid}` (or `kill -9 {self.pid}` if it does not exit)"
        )


class LeftoverError(RuntimeError):
    """What the stack needs is held by another process (one line per holding)."""

    def __init__(self, holdings: list[Holding]) -> None:
        super().__init__("; ".join(h.message() for h in holdings))
        self.holdings = holdings


def command_line(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "unknown command"
    words = raw.rstrip(b"\0").decode(errors="replace").split("\0")
    line = " ".join(Path(words[0]).name if i == 0 else w for i, w in enumerate(words))
    return line if len(line) <= 120 else line[:117] + "..."


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == TCP_LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def _pid_with_socket(inodes: set[str]) -> int | None:
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(entry.name)
        except OSError:
            continue  # gone, or not ours to read
    return None


def port_holder(port: int) -> int | None:
    """The PID listening on `port`, when /proc tells."""
    inodes = _listening_inodes(port)
    return _pid_with_socket(inodes) if inodes else None


def lock_holder(path: Path) -> int | None:
    """The PID holding a POSIX lock on `path` (WiredTiger's lock file), when /proc tells."""
    try:
        stat = path.stat()
        locks = (PROC / "locks").read_text().splitlines()
    except OSError:
        return None
    wanted = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    for line in locks:
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 4242 08:01:1234567 0 EOF" ("->" marks a waiter)
        if "->" not in fields and len(fields) >= 6 and fields[5] == wanted:
            return int(fields[4])
    return None


def find_holdings(ports: dict[str, int], store_dirs: dict[str, Path]) -> list[Holding]:
    """What another process holds of `ports` (by owner's name) and of the stores'
    data directories."""
    holdings: list[Holding] = []
    for name, port in ports.items():
        if port_open("127.0.0.1", port, timeout=0.2):
            holdings.append(Holding(f"port {port} ({name})", port_holder(port)))
    for name, directory in store_dirs.items():
        pid = lock_holder(directory / "WiredTiger.lock")
        if pid is not None and pid not in {h.pid for h in holdings}:
            holdings.append(Holding(f"the {name} store's data lock ({directory})", pid))
    return holdings
