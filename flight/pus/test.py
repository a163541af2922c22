"""Service 17, test: are-you-alive [17,1] answered [17,2]."""

from __future__ import annotations

from typing import ClassVar

from flight.component import Counter
from flight.pus.service import Run, Service, unknown_subtype
from hal.spacepacket import Telecommand


class ConnectionTest(Service):
    """Proof of life for the ground, end to end through the link."""

    name = "test"
    service_type: ClassVar = 17
    telemetry: ClassVar = (
        Counter("alive_answered", "Are-you-alive tests answered"),
    )

    def accept(self, tc: Telecommand) -> Run:
        if tc.subtype != 1:
            raise unknown_subtype(tc)
        return lambda: self._answer(tc.source_id)

    def _answer(self, to: int) -> None:
        self.send(2, b"", to)
        self.counters["alive_answered"] += 1
