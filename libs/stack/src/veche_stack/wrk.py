"""Running `wrk` (the C load generator, Debian's package) and reading its report.

Benchmarks drive the system under test from wrk so that no Python client shares
the measured interpreters; every benchmark reads wrk's output the same way here.
`WRK_POST_LUA` in `veche_stack.testing` is the script for one fixed POST body;
a script of one's own must print `BAD n` in `done()` as that one does.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run reports."""

    requests: int
    seconds: float  # the window wrk measured over
    bad: int  # answers the script counted bad, plus socket errors
    p50_ms: float
    p99_ms: float
    output: str

    @property
    def rate(self) -> float:
        return self.requests / max(self.seconds, 1e-9)


def _latency_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def run_wrk(
    url: str, script: Path, connections: int, seconds: float, *, threads: int = 2
) -> WrkRun:
    """Runs wrk with `script` against `url`; exits the benchmark, showing wrk's output,
    when wrk fails or the script printed no `BAD` line."""
    command = [
        *("wrk", f"-t{min(threads, connections)}", f"-c{connections}"),
        *(f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s"),
        *("-s", str(script), url),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    out = result.stdout
    done = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m)", out, re.M)
    bad = re.search(r"^BAD (\d+)$", out, re.M)
    if result.returncode != 0 or not done or not bad:
        sys.exit(f"wrk failed ({result.returncode}): {out}\n{result.stderr}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    socket_errors = sum(int(n) for n in errors.groups()) if errors else 0
    return WrkRun(
        requests=int(done.group(1)),
        seconds=float(done.group(2)) * _UNITS[done.group(3)] / 1000,
        bad=int(bad.group(1)) + socket_errors,
        p50_ms=_latency_ms(out, "50%"),
        p99_ms=_latency_ms(out, "99%"),
        output=out,
    )
