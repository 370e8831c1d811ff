"""`python -m veche_stack.mongod [secantus flags]`: the embedded MongoDB-wire store.

SecantusDB's own daemon, with one setting it does not expose as a flag: how
long an abandoned transaction holds its locks. A process killed mid-transaction
(a crash, or the fault tests' SIGKILL) leaves its transaction open; like mongod's
`transactionLifetimeLimitSeconds` (60 s) it is aborted only after that time,
and writes to the same documents wait until then. Our transactions last
milliseconds, so the embedded store reaps them after 10 s
(`VECHE_MONGO_TXN_LIFETIME_SECONDS`).
"""

from __future__ import annotations

import functools
import os

from secantus import cli
from secantus.server import SecantusDBServer


def main() -> None:
    lifetime = float(os.environ.get("VECHE_MONGO_TXN_LIFETIME_SECONDS", "10"))
    cli.SecantusDBServer = functools.partial(
        SecantusDBServer, transaction_lifetime_seconds=lifetime
    )
    raise SystemExit(cli.main())


if __name__ == "__main__":
    main()
