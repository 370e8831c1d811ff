"""A long schema-aware fuzz run against a real stack, as `make run` starts it.

    .venv/bin/python bench/bench_fuzz.py [--examples 2500]

The same operations and malformed requests as tests/test_fuzz.py
(`veche_stack.fuzzing`), `--examples` generated operations per endpoint (the
gateway and each subgraph; 2,500 each makes 10,000 in all), as nobody, a
citizen and the admin. Prints, per endpoint, the requests sent, the answers by
HTTP status and by error code, the problems found (5xx, INTERNAL, an error
without a code) and whether any process restarted, then exits non-zero when
there was a problem.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx

from veche_kit import totp
from veche_stack.fuzzing import Tally, callers, fuzz, refuse_malformed
from veche_stack.runner import Runner
from veche_stack.stack import SERVICES

ADMIN_PASSWORD = "fuzz-admin-pass-1"
ADMIN_TOTP_SECRET = totp.new_secret()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2500)
    examples = parser.parse_args().examples
    failed = False
    with tempfile.TemporaryDirectory() as tmp, httpx.Client(timeout=30) as http:
        env = {"VECHE_ADMIN_PASSWORD": ADMIN_PASSWORD, "VECHE_ADMIN_TOTP_SECRET": ADMIN_TOTP_SECRET}
        runner = Runner(Path(tmp), env=env)
        runner.start()
        try:
            tokens = callers(http, runner.url("gateway"), ADMIN_PASSWORD, ADMIN_TOTP_SECRET)
            before = runner.children()
            for endpoint in ["gateway", *(spec.name for spec in SERVICES)]:
                tally = Tally()
                began = time.monotonic()
                fuzz(http, runner.url(endpoint), tokens, examples, tally)
                refuse_malformed(http, runner.url(endpoint), tally)
                seconds = time.monotonic() - began
                print(
                    f"{endpoint:8} {tally.requests:6} requests in {seconds:5.0f} s; "
                    f"status {dict(sorted(tally.by_status.items()))}; "
                    f"codes {dict(sorted(tally.codes.items()))}; problems {len(tally.problems)}"
                )
                for problem in tally.problems[:5]:
                    print(f"    {problem[:300]!r}")
                failed = failed or bool(tally.problems)
            restarted = runner.children() != before
            print(f"processes restarted: {'yes' if restarted else 'none'}")
            failed = failed or restarted
        finally:
            runner.interrupt()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
