"""The shape of a PUS service, and the two things every service stands on: the downlink
below it and the router that finds it by its service type.

A service is a component like any other (its own counters, commands, events and
telemetry) that also declares `service_type` and answers `accept(tc)`: the TC's data
checked, and what runs it returned, or `Refused` with the reason. The uplink
authenticates a TC, asks the router for the service of its type, and reports each
stage through service 1. A service sends its reports through the downlink and never
calls the uplink; a time-tagged schedule hands the TCs it releases back through
`released()`.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Callable
from typing import Any, ClassVar

from flight.component import Component, Counter
from hal.errors import PacketError
from hal.packetlink import PacketLink
from hal.pus import APID, BROADCAST, N
from hal.spacepacket import SEQ_MODULO, Telecommand, encode_tm
from hal.spacepacket import Telemetry as Tm

Run = Callable[[], None]


class Refused(PacketError):
    """A TC refused by a service, or a command that failed; `kind` is a key of
    hal.pus.FAILURES. (The codecs' own PacketErrors, "layout" and "unknown_function",
    are refused as they come.)"""


def count(data: bytes, what: str) -> int:
    """The u16 item count that starts a service's data."""
    if len(data) < 2:
        raise Refused("layout", f"{what}: no count")
    return int(N.unpack_from(data)[0])


def count_list(data: bytes, item: struct.Struct, what: str) -> list[tuple[Any, ...]]:
    """A u16 count and that many fixed-size items, filling `data` exactly."""
    n = count(data, what)
    if len(data) != 2 + n * item.size:
        raise Refused("layout", f"{what}: {n} items need {2 + n * item.size} octets, "
                      f"got {len(data)}")
    return [item.unpack_from(data, 2 + i * item.size) for i in range(n)]


def unknown_subtype(tc: Telecommand) -> Refused:
    return Refused("unknown_service", f"TC[{tc.service},{tc.subtype}] is not a service "
                   "of this flight software")


class Downlink(Component):
    """Packs telemetry into space packets: source sequence count, a message counter per
    (service, subtype), on-board time, the packet error control; then the link."""

    name = "downlink"
    telemetry: ClassVar = (
        Counter("tm_sent", "Telemetry packets sent"),
    )

    def __init__(self, link: PacketLink | None) -> None:
        super().__init__()
        self.link = link
        self.store: Any = None  # the packet store (service 15) keeps what is out of contact
        self._seq = 0
        self._msg_counters: collections.Counter[tuple[int, int]] = collections.Counter()

    @property
    def in_contact(self) -> bool:
        """Whether the link reaches a ground now: a link that can lose contact (a radio,
        the sim's passes) says so by `in_contact`; any other always reaches one."""
        return bool(getattr(self.link, "in_contact", True))

    @property
    def connected(self) -> bool:
        """Whether anything can hear the downlink (without a ground, nothing need be
        gathered for it)."""
        return self.link is not None

    def send(self, service: int, subtype: int, data: bytes, to: int = BROADCAST) -> None:
        """One TM; `to` is its destination id: the source id of the ground that asked
        (a report or a reply), or BROADCAST for all (housekeeping, events)."""
        if self.link is None:
            return
        counter = self._msg_counters[(service, subtype)]
        self._msg_counters[(service, subtype)] = (counter + 1) & 0xFFFF
        tm = Tm(APID, service, subtype, data, self.clock.now_s(), self._seq, counter, to)
        self._seq = (self._seq + 1) % SEQ_MODULO
        packet = encode_tm(tm)
        if self.store is not None and not self.in_contact:
            self.store.keep(packet)  # made now, sent at the next pass
            return
        self.link.send(packet)
        self.counters["tm_sent"] += 1

    def send_stored(self, packets: list[bytes]) -> int:
        """Send packets the store kept, as they were made; how many went."""
        if self.link is None:
            return 0
        for packet in packets:
            self.link.send(packet)
        self.counters["tm_sent"] += len(packets)
        return len(packets)


class Service(Component):
    """A PUS service (see the module docstring)."""

    service_type: ClassVar[int]

    def __init__(self, downlink: Downlink) -> None:
        super().__init__()
        self.downlink = downlink

    def accept(self, tc: Telecommand) -> Run:
        """Check `tc` (of this service's type) and return what runs it; raise Refused
        (or the codecs' PacketError) for a TC this service will not run."""
        raise unknown_subtype(tc)

    def released(self, now_s: float) -> list[Telecommand]:
        """TCs this service holds that are due now, to run as if just received."""
        return []

    def send(self, subtype: int, data: bytes, to: int = BROADCAST) -> None:
        self.downlink.send(self.service_type, subtype, data, to)


class Router:
    """The services of one flight software, by service type."""

    def __init__(self) -> None:
        self.services: dict[int, Service] = {}

    def add(self, service: Service) -> None:
        other = self.services.get(service.service_type)
        if other is not None:
            raise ValueError(f"{service.name} and {other.name} both claim PUS service "
                             f"{service.service_type}")
        self.services[service.service_type] = service

    def accept(self, tc: Telecommand) -> Run:
        service = self.services.get(tc.service)
        if service is None:
            raise unknown_subtype(tc)
        return service.accept(tc)
