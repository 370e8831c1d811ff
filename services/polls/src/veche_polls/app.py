"""Assembles the polls service: `create_app(settings)` -> Starlette."""

from __future__ import annotations

import asyncio
import logging

from starlette.applications import Starlette
from starlette.requests import Request

from veche_kit.auth import TokenVerifier, jwks_over_http
from veche_kit.logs import configure_logging
from veche_kit.outbox import OUTBOX, Outbox
from veche_kit.runtime import Runtime, build_app
from veche_polls import store
from veche_polls.consumers import Reactions, handlers
from veche_polls.loaders import PollLoaders
from veche_polls.schema import PollsContext, schema
from veche_polls.service import PollsService
from veche_polls.settings import PollsSettings
from veche_polls.tallies import TallyFolder

log = logging.getLogger(__name__)


async def _close_due_polls(service: PollsService) -> None:
    """The scheduler: closes polls at their end time (reads close them too; one wins)."""
    interval = service.settings.close_check_seconds
    while True:
        try:
            await service.close_due()
        except Exception:
            log.exception("closing due polls failed; retrying")
        await asyncio.sleep(interval)


def create_app(
    settings: PollsSettings | None = None, *, verifier: TokenVerifier | None = None
) -> Starlette:
    settings = settings or PollsSettings()
    verifier = verifier or TokenVerifier(jwks_over_http(settings.jwks_url), settings.token_issuer)
    runtime = Runtime.create(
        settings,
        verifier,
        indexes=dict(store.INDEXES),
        migrations=store.MIGRATIONS,
        outbox_collections=(OUTBOX, store.BALLOTS),
    )
    poll_store = store.PollStore(runtime.db)
    runtime.attach_consumer(handlers.bind(Reactions(poll_store, settings)))
    folder = TallyFolder(
        runtime.client,
        runtime.db,
        batch_size=settings.fold_batch_size,
        idle_seconds=settings.fold_idle_seconds,
    )
    outbox = Outbox(runtime.client, runtime.db, settings.service_name, runtime.relay)
    service = PollsService(poll_store, outbox, settings, folder)
    runtime.run_in_background("tally-folder", folder.run)
    runtime.run_in_background("poll-closer", lambda: _close_due_polls(service))

    def context(request: Request) -> PollsContext:
        return PollsContext(
            request=request, verifier=verifier, service=service, batches=PollLoaders(service)
        )

    app = build_app(runtime, schema, context_factory=context)
    app.state.service = service
    return app


def main() -> None:
    import uvicorn

    settings = PollsSettings()
    configure_logging(settings.service_name, settings.log_level)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None)
