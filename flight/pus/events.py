"""Service 5, event reporting: every event on the bus goes down as [5,1] (info and
debug), [5,2] (warning), [5,3] (error) or [5,4] (critical): its event id, then its
arguments as one msgpack map."""

from __future__ import annotations

from typing import Any, ClassVar

import msgpack

from flight.bus import EVENT, EventRecord
from flight.component import Counter
from flight.pus.service import Service
from hal.layout import name_id
from hal.pus import EVENT_SUBTYPE, N


class EventReporting(Service):
    """The bus's events, reported to the ground."""

    name = "events"
    service_type: ClassVar = 5
    telemetry: ClassVar = (
        Counter("reported", "Event reports sent"),
    )

    def bind(self, bus: Any, clock: Any) -> None:
        super().bind(bus, clock)
        if self.downlink.connected:
            self.subscribe(EVENT, self._on_event)

    def _on_event(self, topic: str, record: EventRecord) -> None:
        args = msgpack.packb({k: v if isinstance(v, (int, float, str, bool)) or v is None
                              else str(v) for k, v in record.args.items()})
        self.send(EVENT_SUBTYPE[record.severity], N.pack(name_id(record.name)) + args)
        self.counters["reported"] += 1
