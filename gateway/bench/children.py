"""What the gateway benchmarks run beside the gateway: child processes started and
stopped around a measurement, and @apollo/gateway's packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

APOLLO = Path(__file__).parent / "apollo"


@contextmanager
def child(
    command: list[str], env: Mapping[str, str], cwd: Path, log_path: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` running with its output in `log_path`; terminated (killed after 10 s) on exit."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def npm_ci() -> None:
    """@apollo/gateway's packages, installed once (`npm ci`) when missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        sys.exit("Node.js 20+ and npm are needed for the @apollo/gateway side")
    if not (APOLLO / "node_modules" / ".package-lock.json").is_file():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=APOLLO,
            check=True,
            timeout=300,
        )
