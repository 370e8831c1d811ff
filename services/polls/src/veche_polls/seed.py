"""Demo polls for an empty store, authored by the demo admin.

The polls service does not know the admin's id until the users service tells:
the polls are created when the demo admin's `user.registered` arrives, with
`POLLS_DEMO_DATA` on (as `make run` sets it), and only while there are none.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from veche_kit import mongo
from veche_kit.clock import utcnow
from veche_kit.mongo import Database, Session
from veche_kit.outbox import add_event
from veche_polls import domain, store
from veche_polls.domain import PollStatus, QuestionDraft, QuestionKind
from veche_polls.service import published_event

log = logging.getLogger(__name__)

# (title, description, department, districts, questions)
DEMO: tuple[tuple[str, str, str, list[str], list[QuestionDraft]], ...] = (
    (
        "Благоустройство набережной Яченки",
        "Город выбирает, что сделать на набережной в первую очередь.",
        "landscaping",
        [],
        [
            QuestionDraft(
                "Что сделать в первую очередь?",
                QuestionKind.SINGLE_CHOICE,
                ("Освещение", "Велодорожку", "Детскую площадку", "Лавочки и урны"),
            ),
            QuestionDraft(
                "Как часто вы бываете на набережной?", QuestionKind.SCALE, (), None, 1, 5
            ),
        ],
    ),
    (
        "Новые автобусные маршруты",
        "Какие направления нужны жителям Ленинского округа.",
        "transport",
        ["leninsky"],
        [
            QuestionDraft(
                "Куда вам нужен прямой маршрут?",
                QuestionKind.MULTIPLE_CHOICE,
                ("Вокзал", "Аэропорт", "Центр", "Больницы"),
                2,
            ),
        ],
    ),
)


async def load_demo_polls(db: Database, admin_id: str, producer: str, session: Session) -> None:
    """Creates the demo polls, published, when the store has none (idempotent)."""
    if await db[store.POLLS].count_documents({}, session=session) > 0:
        return
    now = utcnow()
    for title, description, department, districts, questions in DEMO:
        poll = domain.new_poll(
            poll_id=mongo.new_id(),
            title=title,
            description=description,
            questions=domain.build_questions(questions),
            audience=domain.clean_audience(districts, None, None, False),
            starts_at=None,
            ends_at=now + timedelta(days=30),
            points_reward=domain.DEFAULT_POINTS_REWARD,
            author_id=admin_id,
            department_id=department,
            now=now,
        )
        poll.update(status=PollStatus.ACTIVE.value, published_at=now)
        await db[store.POLLS].insert_one(poll, session=session)
        await db[store.TALLIES].insert_one(
            {"_id": poll["_id"], "version": 0, "total": 0}, session=session
        )
        await add_event(db, published_event(poll), producer=producer, session=session)
    log.info("demo polls loaded", extra={"polls": len(DEMO)})
