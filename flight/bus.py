"""The software bus: synchronous publish/subscribe between components.

Telemetry samples are published under their point name ("power.batt_v"); events
under "event" and under their own name ("power.latchup"), so a consumer names exactly
what it reads; command outcomes under "command". A subscriber to "*" sees each message
once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hal.dictionary import Severity
from hal.values import quick

ALL = "*"
EVENT = "event"
COMMAND = "command"


@quick
@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float
    name: str
    value: Any


@quick
@dataclass(frozen=True, slots=True)
class EventRecord:
    t_s: float
    name: str
    severity: Severity
    args: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[str, Any], None]


class Bus:
    def __init__(self) -> None:
        self._subscribers: dict[str, list[Subscriber]] = defaultdict(list)
        # Each topic's subscribers and then "*"'s, in that order: one look-up a sample
        # instead of two (made again after a subscription).
        self._routes: dict[str, tuple[Subscriber, ...]] = {}
        self.published = 0

    def subscribe(self, topic: str, subscriber: Subscriber) -> None:
        """Call `subscriber(topic, message)` for every message on `topic` ("*": every topic)."""
        self._subscribers[topic].append(subscriber)
        self._routes.clear()

    def publish(self, topic: str, message: Any, also: str | None = None) -> None:
        """Deliver `message` to the subscribers of `topic`, of `also` (a second name it
        goes by) and of "*"."""
        self.published += 1
        if also is None:
            route = self._routes.get(topic)
            if route is None:
                route = self._routes[topic] = (*self._subscribers.get(topic, ()),
                                               *self._subscribers.get(ALL, ()))
            for subscriber in route:
                subscriber(topic, message)
            return
        for subscriber in self._subscribers.get(topic, ()):
            subscriber(topic, message)
        for subscriber in self._subscribers.get(also, ()):
            subscriber(also, message)
        for subscriber in self._subscribers.get(ALL, ()):
            subscriber(topic, message)
