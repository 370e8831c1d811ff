"""Assembles the issues service: `create_app(settings)` -> Starlette."""

from __future__ import annotations

import asyncio
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute

from veche_issues import moderation_store, open311, store, upload_routes, upload_store
from veche_issues.consumers import handlers
from veche_issues.context import IssuesContext
from veche_issues.loaders import IssueLoaders
from veche_issues.schema import schema
from veche_issues.seed import load_reference_data
from veche_issues.service import IssuesService
from veche_issues.settings import IssuesSettings
from veche_kit.auth import TokenVerifier, jwks_over_http
from veche_kit.logs import configure_logging
from veche_kit.outbox import Outbox
from veche_kit.runtime import Runtime, build_app, serve

log = logging.getLogger(__name__)


async def _sweep_forever(service: IssuesService, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await service.sweep()
        except Exception:
            log.exception("sweep failed; retrying at the next round")


def _routes(
    service: IssuesService, settings: IssuesSettings, verifier: TokenVerifier
) -> list[BaseRoute]:
    """Beside GraphQL: Open311, photo uploads and photos."""
    return [
        *open311.routes(service, settings.open311_jurisdiction),
        *upload_routes.routes(service.photos, verifier),
    ]


def create_app(
    settings: IssuesSettings | None = None, *, verifier: TokenVerifier | None = None
) -> Starlette:
    settings = settings or IssuesSettings()
    verifier = verifier or TokenVerifier(jwks_over_http(settings.jwks_url), settings.token_issuer)
    runtime = Runtime.create(
        settings,
        verifier,
        indexes={**store.INDEXES, **moderation_store.INDEXES, **upload_store.INDEXES},
        migrations=store.MIGRATIONS,
        outbox_collections=store.EVENT_SOURCES,
    )
    issue_store = store.IssueStore(runtime.db)
    runtime.attach_consumer(handlers.bind(issue_store))
    outbox = Outbox(runtime.client, runtime.db, settings.service_name, runtime.relay)
    service = IssuesService(issue_store, outbox, settings)

    async def start() -> None:
        if settings.demo_data:
            await load_reference_data(runtime.db)
        await service.load_holidays()

    runtime.on_start.append(start)
    runtime.run_in_background(
        "issues-sweep", lambda: _sweep_forever(service, settings.sweep_seconds)
    )

    def context(request: Request) -> IssuesContext:
        return IssuesContext(
            request=request, verifier=verifier, service=service, batches=IssueLoaders(issue_store)
        )

    app = build_app(
        runtime,
        schema,
        context_factory=context,
        routes=_routes(service, settings, verifier),
    )
    app.state.service = service
    return app


def main() -> None:
    settings = IssuesSettings()
    configure_logging(settings.service_name, settings.log_level)
    serve(create_app(settings), settings)
