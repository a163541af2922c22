"""The space link as ground stations give it: up only while one of them sees the
satellite, at that station's rates.

ContactLink stands between the flight software's link and the ground's (a TCP server,
an in-process pair): it asks the stations' look angles (sim/stations.py) where the
world's orbit has the satellite now, and while none sees it, nothing crosses: what the
flight software sends is lost in space (counted; the flight software keeps it in its
packet store instead, as it sees `in_contact` go false) and what a ground sends is lost
too (counted; its commands time out). In contact, telemetry goes down at the downlink
rate of the station that sees the satellite highest, through a transmit queue bounded
by QUEUE_S of that rate (what does not fit is counted as dropped); telecommands come
up as they are sent (the uplink rate is far above what a ground sends).

The ground learns of the link going up and down as real grounds do, from the flight
software's own events (downlink.contact_gained and contact_lost, the latter arriving
with the played-back store at the next pass) and from telemetry starting and stopping.
"""

from __future__ import annotations

import collections
from typing import Any

from boards.definition import GroundStation
from hal.packetlink import PacketLink
from sim.orbit import CircularOrbit
from sim.stations import Visibility

QUEUE_S = 2.0  # the radio's transmit queue holds this long at the downlink rate


class ContactLink:
    def __init__(self, inner: PacketLink, world: Any,
                 stations: tuple[GroundStation, ...]) -> None:
        if not stations:
            raise ValueError("a contact link needs ground stations")
        self.inner = inner
        self.world = world
        self.stations = stations
        self.counters: collections.Counter[str] = collections.Counter()
        self.station: GroundStation | None = None  # the one the link goes through now
        self.contact_s = 0.0  # time in contact, all passes
        self._orbit: CircularOrbit | None = None
        self._views: list[Visibility] = []
        self._checked_s = float("nan")
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued_bytes = 0
        self._budget_bits = 0.0
        self._pumped_s = 0.0

    @property
    def in_contact(self) -> bool:
        self._update()
        return self.station is not None

    def _now_s(self) -> float:
        return float(self.world.clock.now_s())

    def _update(self) -> None:
        now = self._now_s()
        if now == self._checked_s:
            return
        if self.station is not None and now > self._checked_s:
            self.contact_s += now - self._checked_s
        self._checked_s = now
        if self.world.orbit is not self._orbit:  # drag moved it: look again
            self._orbit = self.world.orbit
            self._views = [Visibility(s, self._orbit) for s in self.stations]
        best, best_el = None, float("-inf")
        for view in self._views:
            elevation = view.elevation_deg(now)
            if elevation >= view.station.min_elevation_deg and elevation > best_el:
                best, best_el = view.station, elevation
        if best is not None and self.station is None:
            self.counters["acquisitions"] += 1
            self._budget_bits, self._pumped_s = 0.0, now
        elif best is None and self.station is not None:
            self.counters["losses_of_signal"] += 1
            self.counters["lost_at_los"] += len(self._queue)  # still in the radio's queue
            self._queue.clear()
            self._queued_bytes = 0
        self.station = best

    def _pump(self) -> None:
        if self.station is None:
            return
        now = self._now_s()
        rate = self.station.downlink_bps
        self._budget_bits = min(self._budget_bits + (now - self._pumped_s) * rate, rate)
        self._pumped_s = now
        while self._queue and len(self._queue[0]) * 8 <= self._budget_bits:
            packet = self._queue.popleft()
            self._queued_bytes -= len(packet)
            self._budget_bits -= len(packet) * 8
            self.inner.send(packet)
            self.counters["downlinked"] += 1

    def send(self, packet: bytes) -> None:
        self._update()
        if self.station is None:
            self.counters["lost_out_of_contact"] += 1
            return
        if self._queued_bytes + len(packet) > self.station.downlink_bps / 8 * QUEUE_S:
            self.counters["dropped_queue_full"] += 1
            return
        self._queue.append(packet)
        self._queued_bytes += len(packet)
        self._pump()

    def receive(self) -> list[bytes]:
        self._update()
        self._pump()
        packets = self.inner.receive()
        if self.station is None and packets:
            self.counters["uplink_lost_out_of_contact"] += len(packets)
            return []
        self.counters["uplinked"] += len(packets)
        return packets

    def close(self) -> None:
        self.inner.close()
