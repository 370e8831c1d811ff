"""Live inbox: each new notification of the caller (`Subscription.myNotifications`).

Notifications are written by whichever users instance consumed the event that
caused them, so no instance knows whose inbox grew from the event alone (a poll
published notifies its whole audience). Each instance's own queue (`veche_kit.live`)
is bound to the events the users service turns into notifications; any of them
wakes this instance's inbox subscribers (at most once per `USERS_LIVE_INTERVAL_MS`),
and each reads its user's newest notifications and sends those it has not sent.
The event may arrive before the consumer wrote them: a subscriber that found
nothing new wakes again, up to `SETTLE_ROUNDS` times, before it waits for the
next event.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable

from veche_kit.events import Event
from veche_kit.live import LiveHub, TopicsOf
from veche_kit.mongo import Document
from veche_users import store
from veche_users.service import UsersService

INBOXES = "inboxes"  # one topic: an event does not say whose inboxes it fills
SETTLE_ROUNDS = 5
# The newest notifications read per wake: more arriving within one interval are
# left to the inbox (`User.notifications`), not pushed.
NEWEST = 20
REMEMBERED = 200  # ids already sent, per subscriber


def _inboxes(_: Event) -> Iterable[str]:
    return [INBOXES]


def routes(routing_keys: Iterable[str]) -> dict[str, TopicsOf]:
    """The live feed's routes: every event the users consumer handles."""
    return dict.fromkeys(routing_keys, _inboxes)


async def _newest(service: UsersService, user_id: str) -> list[Document]:
    cursor = service.store.db[store.NOTIFICATIONS].find({"user_id": user_id})
    return await cursor.sort("_id", -1).limit(NEWEST).to_list()


class _Sent:
    """The ids a subscriber has sent (or found there when it subscribed), bounded."""

    def __init__(self, ids: Iterable[str]) -> None:
        self._order: deque[str] = deque(maxlen=REMEMBERED)
        self._ids: set[str] = set()
        for notification_id in ids:
            self.add(notification_id)

    def __contains__(self, notification_id: object) -> bool:
        return notification_id in self._ids

    def add(self, notification_id: str) -> None:
        if len(self._order) == self._order.maxlen:
            self._ids.discard(self._order[0])
        self._order.append(notification_id)
        self._ids.add(notification_id)


async def watch_inbox(
    service: UsersService, hub: LiveHub[int], user_id: str
) -> AsyncIterator[Document]:
    """Each notification written for `user_id` from now on, oldest first."""
    with hub.subscribe(INBOXES) as subscriber:
        sent = _Sent(d["_id"] for d in await _newest(service, user_id))
        events, quiet = 0, 0
        while await subscriber.wait():
            if (subscriber.latest or 0) > events:  # woken by an event, not a re-touch
                events, quiet = subscriber.latest or 0, 0
            fresh = [d for d in reversed(await _newest(service, user_id)) if d["_id"] not in sent]
            for document in fresh:
                sent.add(document["_id"])
                yield document
            quiet = 0 if fresh else quiet + 1
            if quiet < SETTLE_ROUNDS:
                hub.touch(INBOXES)  # the consumer may not have written them yet
