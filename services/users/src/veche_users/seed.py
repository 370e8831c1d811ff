"""Demo data for an empty store: Kaluga's okrugs, departments, rewards, an admin.

Nothing in the code is Kaluga-specific: this is data, loaded only when the
store is empty and `USERS_DEMO_DATA` is on (as `make run` sets it).
"""

from __future__ import annotations

import logging

from veche_kit import mongo
from veche_kit.clock import utcnow
from veche_kit.reference import DEPARTMENTS, DISTRICTS
from veche_users import store
from veche_users.domain import Role
from veche_users.service import UsersService

log = logging.getLogger(__name__)

REWARDS = [
    ("Билет в Калужский планетарий", "Один взрослый билет на любой сеанс.", 300, 100),
    ("Проездной на день", "Безлимитные поездки на городском транспорте в течение суток.", 150, 500),
    ("Экскурсия по Дому музею К. Э. Циолковского", "Групповая экскурсия, запись по коду.", 500, 40),
]


async def load_demo_data(service: UsersService) -> None:
    """Loads the demo city's reference data when the store has none (idempotent)."""
    db = service.db
    if await db[store.DISTRICTS].count_documents({}) == 0:
        await db[store.DISTRICTS].insert_many([{"_id": i, "name": n} for i, n in DISTRICTS])
        await db[store.DEPARTMENTS].insert_many([{"_id": i, "name": n} for i, n in DEPARTMENTS])
        await db[store.REWARDS].insert_many(
            [
                {
                    "_id": mongo.new_id(),
                    "title": t,
                    "description": d,
                    "cost": c,
                    "stock": s,
                    "created_at": utcnow(),
                }
                for t, d, c, s in REWARDS
            ]
        )
        log.info(
            "demo data loaded", extra={"districts": len(DISTRICTS), "departments": len(DEPARTMENTS)}
        )


async def ensure_admin(service: UsersService) -> None:
    """The first admin (VECHE_ADMIN_EMAIL/PASSWORD) when the store has none, with demo
    data or without: a fresh city starts with an admin who configures the rest."""
    db = service.db
    email, password = service.settings.admin_email, service.settings.admin_password
    if (
        email
        and password
        and await db[store.USERS].count_documents({"roles": Role.ADMIN.value}) == 0
    ):
        current = await service.current_consent()
        await service.register(
            consent_version=current["version"] if current else None,
            email=email,
            password=password,
            display_name="Администратор",
            district_id=None,
            birth_year=None,
            roles=(Role.CITIZEN, Role.ADMIN),
        )
        log.info("admin account created", extra={"email": email})
    await _enrol_admin(service)


async def _enrol_admin(service: UsersService) -> None:
    """The admin signs in with a TOTP code from `admin_totp_secret` (the stack generates
    it): enrolled once, also when the account was made before two-factor sign-in."""
    email, secret = service.settings.admin_email, service.settings.admin_totp_secret
    if not (email and secret):
        return
    admin = await service.store.by_email(email.strip().lower())
    if admin is None or Role.ADMIN.value not in admin["roles"]:
        return
    if await service.two_factor.seed(admin["_id"], secret):
        log.info("admin enrolled in two-factor sign-in", extra={"user_id": admin["_id"]})
