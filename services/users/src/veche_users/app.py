"""Assembles the users service: `create_app(settings)` -> Starlette."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from veche_kit.auth import Jwks, TokenVerifier
from veche_kit.live import LiveHub
from veche_kit.logs import configure_logging
from veche_kit.outbox import Outbox
from veche_kit.periodic import Lease
from veche_kit.retention import Retention
from veche_kit.runtime import Runtime, build_app, serve
from veche_kit.signing import SigningKey
from veche_users import live, store
from veche_users.codes import CodeSender, Mailer, SmtpMailer, load_mailer, load_sender
from veche_users.consumers import Reactions, handlers
from veche_users.context import UsersContext
from veche_users.loaders import UserLoaders
from veche_users.schema import schema
from veche_users.seed import ensure_admin, load_demo_data
from veche_users.service import UsersService
from veche_users.settings import UsersSettings


def signing_key(settings: UsersSettings) -> SigningKey:
    if settings.signing_key:
        return SigningKey.from_pem(settings.signing_key.encode())
    return SigningKey.load_or_create(Path(settings.data_dir) / "keys" / "users-signing-key.pem")


def _on_start_and_background(
    runtime: Runtime, service: UsersService, settings: UsersSettings
) -> None:
    # Before the demo data: its admin accepts the current consent version.
    runtime.on_start.append(service.publish_default_consent)
    if settings.demo_data:
        runtime.on_start.append(lambda: load_demo_data(service))
    runtime.on_start.append(lambda: ensure_admin(service))
    # After the demo data: polls and issues check districts against the list told.
    runtime.on_start.append(service.publish_references)
    retention = Retention(
        runtime.db,
        store.retention_rules(settings.read_notification_days, settings.audit_days),
        settings.retention_sweep_seconds,
    )
    # One instance sweeps at a time; another takes over within three rounds of its death.
    lease = Lease(runtime.db, "users-retention", 3 * settings.retention_sweep_seconds)
    runtime.run_in_background("retention", lambda: retention.run(lease))


def _mailer(settings: UsersSettings) -> Mailer:
    smtp = None
    if settings.smtp_host:
        smtp = SmtpMailer(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
        )
    return load_mailer(settings.email_sender, smtp)


def _contexts(
    verifier: TokenVerifier, service: UsersService, user_store: store.UserStore, hub: LiveHub[int]
) -> Callable[[Request], UsersContext]:
    """Each request's (or subscription socket's) context."""

    def context(request: Request) -> UsersContext:
        return UsersContext(
            request=request,
            verifier=verifier,
            service=service,
            batches=UserLoaders(user_store),
            live=hub,
        )

    return context


def create_app(
    settings: UsersSettings | None = None,
    *,
    sender: CodeSender | None = None,
    mailer: Mailer | None = None,
) -> Starlette:
    settings = settings or UsersSettings()
    key = signing_key(settings)

    async def own_keys() -> Jwks:
        # The users service verifies its own tokens without a round trip to itself.
        return key.jwks()

    verifier = TokenVerifier(own_keys, settings.token_issuer)
    runtime = Runtime.create(
        settings, verifier, indexes=dict(store.INDEXES), migrations=store.MIGRATIONS
    )
    user_store = store.UserStore(runtime.db)
    outbox = Outbox(runtime.client, runtime.db, settings.service_name, runtime.relay)
    senders = (sender or load_sender(settings.code_sender), mailer or _mailer(settings))
    service = UsersService(user_store, outbox, settings, key, *senders)
    if verifier.stale is not None:
        # The same record: a sign-out (or a TOTP reset) takes effect at once.
        service.stale = service.two_factor.stale = verifier.stale
    consumer = runtime.attach_consumer(handlers.bind(Reactions(service)), handlers.lanes)
    hub = runtime.live_hub(live.routes(consumer.handlers), settings.live_interval_ms / 1000)
    _on_start_and_background(runtime, service, settings)

    async def jwks(_: Request) -> Response:
        return JSONResponse(key.jwks(), headers={"Cache-Control": "public, max-age=300"})

    app = build_app(
        runtime,
        schema,
        context_factory=_contexts(verifier, service, user_store, hub),
        routes=[Route("/.well-known/jwks.json", jwks)],
    )
    app.state.service = service
    return app


def main() -> None:
    settings = UsersSettings()
    configure_logging(settings.service_name, settings.log_level)
    serve(create_app(settings), settings)
