"""Assembles the polls service: `create_app(settings)` -> Starlette."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from veche_kit.auth import TokenVerifier, jwks_over_http
from veche_kit.live import LiveHub
from veche_kit.logs import configure_logging
from veche_kit.outbox import OUTBOX, Outbox
from veche_kit.periodic import Lease, every
from veche_kit.runtime import Runtime, build_app, serve
from veche_kit.signing import SigningKey
from veche_polls import live, store
from veche_polls.consumers import Reactions, handlers
from veche_polls.loaders import PollLoaders
from veche_polls.schema import PollsContext, schema
from veche_polls.service import PollsService
from veche_polls.settings import PollsSettings
from veche_polls.tallies import TallyFolder


def audit_key(settings: PollsSettings) -> SigningKey:
    """The key that signs tree heads: from settings, or generated once (development)."""
    if settings.audit_key:
        return SigningKey.from_pem(settings.audit_key.encode())
    return SigningKey.load_or_create(Path(settings.data_dir) / "keys" / "polls-audit-key.pem")


def _tally_folder(runtime: Runtime, settings: PollsSettings, key: SigningKey) -> TallyFolder:
    return TallyFolder(
        runtime.client,
        runtime.db,
        audit_key=key,
        min_group=settings.audit_min_group,
        batch_size=settings.fold_batch_size,
        idle_seconds=settings.fold_idle_seconds,
    )


def _close_on_schedule(runtime: Runtime, service: PollsService, interval: float) -> None:
    """Closes polls at their end time (reads close them too; one wins), on one instance
    at a time."""
    lease = Lease(runtime.db, "poll-closer", max(3 * interval, 10.0))
    runtime.run_in_background(
        "poll-closer", lambda: every(interval, service.close_due, lease=lease)
    )


def _contexts(
    verifier: TokenVerifier, service: PollsService, hub: LiveHub[Any]
) -> Callable[[Request], PollsContext]:
    """Each request's (or subscription socket's) context."""

    def context(request: Request) -> PollsContext:
        return PollsContext(
            request=request,
            verifier=verifier,
            service=service,
            batches=PollLoaders(service),
            live=hub,
        )

    return context


def _jwks_route(key: SigningKey) -> Route:
    """The key that verifies every tree head (anyone may check a poll's log)."""

    async def jwks(_: Request) -> Response:
        return JSONResponse(key.jwks(), headers={"Cache-Control": "public, max-age=300"})

    return Route("/.well-known/jwks.json", jwks)


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
    poll_store = store.PollStore(
        runtime.db, cache_seconds=settings.vote_cache_seconds, cache_size=settings.vote_cache_size
    )
    runtime.attach_consumer(handlers.bind(Reactions(poll_store, settings)), handlers.lanes)
    key = audit_key(settings)
    folder = _tally_folder(runtime, settings, key)
    outbox = Outbox(runtime.client, runtime.db, settings.service_name, runtime.relay)
    service = PollsService(poll_store, outbox, settings, folder)
    runtime.run_in_background("tally-folder", folder.run)
    _close_on_schedule(runtime, service, settings.close_check_seconds)
    hub = runtime.live_hub(live.ROUTES, settings.live_interval_ms / 1000)
    app = build_app(
        runtime,
        schema,
        context_factory=_contexts(verifier, service, hub),
        routes=[_jwks_route(key)],
    )
    app.state.service = service
    app.state.live = hub
    return app


def main() -> None:
    settings = PollsSettings()
    configure_logging(settings.service_name, settings.log_level)
    serve(create_app(settings), settings)
