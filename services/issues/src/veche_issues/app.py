"""Assembles the issues service: `create_app(settings)` -> Starlette."""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import BaseRoute

from veche_issues import live, moderation_store, open311, store, upload_routes, upload_store
from veche_issues.consumers import handlers
from veche_issues.context import IssuesContext
from veche_issues.loaders import IssueLoaders
from veche_issues.schema import schema
from veche_issues.seed import load_reference_data
from veche_issues.service import IssuesService
from veche_issues.settings import IssuesSettings
from veche_kit.auth import TokenVerifier, jwks_over_http
from veche_kit.live import LiveHub
from veche_kit.logs import configure_logging
from veche_kit.outbox import Outbox
from veche_kit.periodic import Lease, every
from veche_kit.runtime import Runtime, build_app, serve


async def _start(runtime: Runtime, service: IssuesService, settings: IssuesSettings) -> None:
    """Demo reference data, the holidays, then the categories told to the others."""
    if settings.demo_data:
        await load_reference_data(runtime.db)
    await service.load_holidays()
    await service.publish_categories()  # after the demo data: users checks skills against it


def _routes(
    service: IssuesService, settings: IssuesSettings, verifier: TokenVerifier
) -> list[BaseRoute]:
    """Beside GraphQL: Open311, photo uploads and photos."""
    return [
        *open311.routes(service, settings.open311_jurisdiction),
        *upload_routes.routes(service.photos, verifier),
    ]


def _contexts(
    verifier: TokenVerifier,
    service: IssuesService,
    issue_store: store.IssueStore,
    hub: LiveHub[None],
) -> Callable[[Request], IssuesContext]:
    """Each request's (or subscription socket's) context."""

    def context(request: Request) -> IssuesContext:
        return IssuesContext(
            request=request,
            verifier=verifier,
            service=service,
            batches=IssueLoaders(issue_store),
            live=hub,
        )

    return context


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
    runtime.attach_consumer(handlers.bind(issue_store), handlers.lanes)
    outbox = Outbox(runtime.client, runtime.db, settings.service_name, runtime.relay)
    service = IssuesService(issue_store, outbox, settings)

    runtime.on_start.append(lambda: _start(runtime, service, settings))
    runtime.on_stop.append(service.photos.store.blobs.aclose)
    # One instance sweeps at a time; another takes over within three rounds of its death.
    lease = Lease(runtime.db, "issues-sweep", 3 * settings.sweep_seconds)
    runtime.run_in_background(
        "issues-sweep",
        lambda: every(settings.sweep_seconds, service.sweep, lease=lease, first_wait=True),
    )

    hub = runtime.live_hub(live.ROUTES, settings.live_interval_ms / 1000)
    app = build_app(
        runtime,
        schema,
        context_factory=_contexts(verifier, service, issue_store, hub),
        routes=_routes(service, settings, verifier),
    )
    app.state.service = service
    return app


def main() -> None:
    settings = IssuesSettings()
    configure_logging(settings.service_name, settings.log_level)
    serve(create_app(settings), settings)
