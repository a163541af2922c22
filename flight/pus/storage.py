"""Service 15, on-board storage and retrieval: telemetry made out of contact waits in a
bounded packet store and goes down at the next pass.

The downlink keeps a packet out of the link while its link says it is out of contact
(`in_contact` false: a contact link in the sim; a radio without carrier lock) and
hands it to the store instead, whole and as it was made (its time stamp is the time
it was made). Bounded by `capacity_kb`; when full, `overwrite` chooses between the
oldest packets giving way (a circular store, the default: the newest telemetry is
what an operator wants first) and the new ones being refused. Both are counted.
Back in contact, the store plays back in the order the packets were made,
`playback_per_tick` packets a tenth of a second beside live telemetry, by itself
(`auto_playback`) or when asked.

    [15,1] [15,2]   enable / disable storage (no data)
    [15,9]          play back the whole store now (no data)
    [15,11]         delete the store's content (no data)
    [15,12] -> [15,13]  summary: packets u32, octets u32, capacity octets u32,
                    stored u32, overwritten u32, refused u32, played back u32
                    (counts since boot or storage.reset_counters)

The store is kept in the flight computer's RAM: a reboot empties it.
"""

from __future__ import annotations

import collections
import struct
from typing import ClassVar

from flight.component import Counter, Event, Parameter, Telemetry, command, periodic
from flight.pus.service import Downlink, Refused, Run, Service, unknown_subtype
from hal.dictionary import Severity
from hal.spacepacket import Telecommand

SUMMARY = struct.Struct(">IIIIIII")


class PacketStore:
    """A bounded FIFO of whole packets with its counters."""

    def __init__(self, capacity_bytes: int, overwrite: bool = True,
                 counts: collections.Counter[str] | None = None) -> None:
        self.capacity_bytes = capacity_bytes
        self.overwrite = overwrite
        self.enabled = True
        self.packets: collections.deque[bytes] = collections.deque()
        self.bytes = 0
        self.counts: collections.Counter[str] = collections.Counter() if counts is None \
            else counts

    def resize(self, capacity_bytes: int) -> None:
        """A new capacity; a store now over it gives up its oldest packets (counted)."""
        self.capacity_bytes = capacity_bytes
        while self.bytes > capacity_bytes:
            self.bytes -= len(self.packets.popleft())
            self.counts["overwritten"] += 1

    def keep(self, packet: bytes) -> None:
        if not self.enabled:
            self.counts["refused"] += 1
            return
        if len(packet) > self.capacity_bytes:
            self.counts["refused"] += 1
            return
        while self.bytes + len(packet) > self.capacity_bytes:
            if not self.overwrite:
                self.counts["refused"] += 1
                return
            self.bytes -= len(self.packets.popleft())
            self.counts["overwritten"] += 1
        self.packets.append(packet)
        self.bytes += len(packet)
        self.counts["stored"] += 1

    def take(self, n: int) -> list[bytes]:
        out: list[bytes] = []
        while self.packets and len(out) < n:
            packet = self.packets.popleft()
            self.bytes -= len(packet)
            out.append(packet)
        return out

    def clear(self) -> int:
        n = len(self.packets)
        self.packets.clear()
        self.bytes = 0
        return n


class Storage(Service):
    """The packet store's service: what is kept, its playback, and its reports."""

    name = "storage"
    service_type: ClassVar = 15
    telemetry: ClassVar = (
        Telemetry("packets", "int", "Packets waiting in the store"),
        Telemetry("fill_pct", "float", "How full the store is", "%"),
        Telemetry("in_contact", "bool", "Whether the link is in contact with a ground"),
        Counter("stored", "Packets kept while out of contact"),
        Counter("overwritten", "Oldest packets given up for newer ones in a full store"),
        Counter("refused", "Packets not kept: store disabled, or full and not overwriting"),
        Counter("played_back", "Stored packets sent down"),
        Counter("contacts", "Contacts with a ground begun"),
    )
    events: ClassVar = (
        Event("contact_gained", Severity.INFO, "The link is in contact with a ground again",
              waiting="int"),
        Event("contact_lost", Severity.INFO, "The link lost contact: telemetry goes to the "
              "store until the next"),
        Event("playback_done", Severity.INFO, "The store has sent everything down",
              played="int"),
    )
    parameters: ClassVar = (
        Parameter("capacity_kb", "int", 4096, "Size of the packet store", "KiB", 1, 1 << 20),
        Parameter("overwrite", "bool", True, "A full store gives up its oldest packets "
                  "(else it refuses new ones)"),
        Parameter("auto_playback", "bool", True, "Play the store back as contact begins"),
        Parameter("playback_per_tick", "int", 50, "Stored packets sent every tenth of a "
                  "second in contact", None, 1, 1000),
    )

    def __init__(self, downlink: Downlink) -> None:
        super().__init__(downlink)
        # its counts are this component's counters: housekeeping sees them as they are
        self.store = PacketStore(self.param("capacity_kb") * 1024, self.param("overwrite"),
                                 self.counters)
        downlink.store = self.store
        self._contact = True
        self._playing = False
        self._played = 0

    def parameter_updated(self, name: str, value: object) -> None:
        if name == "capacity_kb":
            self.store.resize(int(value) * 1024)  # type: ignore[call-overload]
        elif name == "overwrite":
            self.store.overwrite = bool(value)

    def accept(self, tc: Telecommand) -> Run:
        if tc.subtype in (1, 2, 9, 11, 12) and tc.data:
            raise Refused("layout", f"TC[15,{tc.subtype}] takes no data, got "
                          f"{len(tc.data)} octets")
        if tc.subtype == 1:
            return lambda: setattr(self.store, "enabled", True)
        if tc.subtype == 2:
            return lambda: setattr(self.store, "enabled", False)
        if tc.subtype == 9:
            return self.playback
        if tc.subtype == 11:
            return self.clear
        if tc.subtype == 12:
            return lambda: self.send(13, self.summary(), tc.source_id)
        raise unknown_subtype(tc)

    def summary(self) -> bytes:
        counts = self.store.counts
        return SUMMARY.pack(len(self.store.packets), self.store.bytes,
                            self.store.capacity_bytes, counts["stored"],
                            counts["overwritten"], counts["refused"], counts["played_back"])

    @command
    def playback(self) -> None:
        """Send the packet store down now, beside live telemetry."""
        self._playing = True

    @command
    def clear(self) -> None:
        """Delete what the packet store holds."""
        self.store.clear()
        self._playing = False

    @periodic(10)
    def service(self) -> None:
        contact = self.downlink.in_contact
        if contact == self._contact and not self._playing:
            return  # the usual tick: nothing changed, nothing to send
        if contact != self._contact:
            self._contact = contact
            if contact:
                self.counters["contacts"] += 1
                self.emit("contact_gained", waiting=len(self.store.packets))
                if self.param("auto_playback") and self.store.packets:
                    self._playing = True
            else:
                self.emit("contact_lost")  # kept in the store, told at the next pass
        if self._playing and contact:
            sent = self.downlink.send_stored(self.store.take(self.param("playback_per_tick")))
            self.store.counts["played_back"] += sent
            self._played += sent
            if not self.store.packets:
                self._playing = False
                self.emit("playback_done", played=self._played)
                self._played = 0

    @periodic(1)
    def housekeeping(self) -> None:
        self.publish_status("packets", len(self.store.packets))
        self.publish_status("fill_pct", 100.0 * self.store.bytes / self.store.capacity_bytes)
        self.publish_status("in_contact", self._contact)
