"""Service 5, event reporting: every event on the bus goes down as [5,1] (info and
debug), [5,2] (warning), [5,3] (error) or [5,4] (critical): its event id, then its
declared arguments in their fixed layout (hal.layout), an argument left out as "not
yet sampled"."""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

from flight.bus import EVENT, EventRecord
from flight.component import Counter
from flight.pus.service import Downlink, Service
from hal.layout import Layouts, name_id
from hal.pus import EVENT_SUBTYPE, N
from hal.valuetype import BadValue, ValueType


class EventReporting(Service):
    """The bus's events, reported to the ground."""

    name = "events"
    service_type: ClassVar = 5
    telemetry: ClassVar = (
        Counter("reported", "Event reports sent"),
        Counter("bad_arguments", "Event arguments that were no value of their declared "
                "type, sent as not yet sampled (a flight software bug)"),
    )

    def __init__(self, downlink: Downlink, layouts: Layouts) -> None:
        super().__init__(downlink)
        self.layouts = layouts

    def bind(self, bus: Any, clock: Any) -> None:
        super().bind(bus, clock)
        if self.downlink.connected:
            self.subscribe(EVENT, self._on_event)

    def _on_event(self, topic: str, record: EventRecord) -> None:
        event_id = name_id(record.name)
        spec = self.layouts.events[event_id]
        out = bytearray(N.pack(event_id))
        for arg in spec.args:
            kind = ValueType(arg.type)
            value = record.args.get(arg.name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                value = int(value)  # numpy's too
            elif isinstance(value, numbers.Real) and kind is ValueType.FLOAT:
                value = float(value)
            try:
                out += kind.pack(arg, kind.check(arg, value, arg.name)
                                 if value is not None and not kind.textual else value)
            except BadValue:
                self.counters["bad_arguments"] += 1
                out += kind.pack(arg, None)
        self.send(EVENT_SUBTYPE[record.severity], bytes(out))
        self.counters["reported"] += 1
