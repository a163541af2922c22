"""Service 11, the time-based schedule: insert [11,4], delete [11,5], summary
[11,17] -> [11,13]. A time-tagged TC is checked when it is inserted (a TC that could
never run is refused then, not at its release) and run, when due, as if just received.
The schedule is stored before it is in force, so it survives a reboot as it was."""

from __future__ import annotations

import math
import struct
from typing import Any, ClassVar

from flight.component import Telemetry, periodic
from flight.nvm import Records
from flight.pus.service import (
    Downlink,
    Refused,
    Router,
    Run,
    Service,
    count,
    count_list,
    unknown_subtype,
)
from hal.errors import PacketError
from hal.pus import APID, N
from hal.spacepacket import Telecommand, cuc, decode_tc, from_cuc, packet_length

MAX_SCHEDULED = 256
MAX_NESTING = 2  # a scheduled TC[11,x] may schedule once more; deeper is refused
RECORD = "link.schedule"
ACTIVITY_ID = struct.Struct(">HH")  # APID, sequence count
SUMMARY_ITEM = struct.Struct(">HHH")  # APID, sequence count, function id


class Schedule(Service):
    """Time-tagged telecommands, released on on-board time."""

    name = "schedule"
    service_type: ClassVar = 11
    telemetry: ClassVar = (
        Telemetry("scheduled", "int", "Time-tagged commands waiting"),
    )

    def __init__(self, downlink: Downlink, router: Router,
                 records: Records | None = None) -> None:
        super().__init__(downlink)
        self.router = router
        self.records = records or Records(None)
        self.activities: list[tuple[float, bytes]] = self.records.load(
            RECORD, _check_schedule, [])
        self._depth = 0  # TC[11,4]s being checked, one inside the other

    def accept(self, tc: Telecommand) -> Run:
        if tc.subtype == 4:
            entries = self._parse(tc.data)
            return lambda: self._replace(sorted(self.activities + entries,
                                                key=lambda e: e[0]))
        if tc.subtype == 5:
            ids = count_list(tc.data, ACTIVITY_ID, "TC[11,5]")
            return lambda: self._delete(ids)
        if tc.subtype == 17:
            return lambda: self._summary(tc.source_id)
        raise unknown_subtype(tc)

    def released(self, now_s: float) -> list[Telecommand]:
        due = [p for t, p in self.activities if t <= now_s]
        if due:
            self._replace([(t, p) for t, p in self.activities if t > now_s])
        return [decode_tc(p) for p in due]

    @periodic(1)
    def housekeeping(self) -> None:
        self.publish_status("scheduled", len(self.activities))

    def _parse(self, data: bytes) -> list[tuple[float, bytes]]:
        if self._depth >= MAX_NESTING:
            raise Refused("layout", f"TC[11,4]: schedules nested more than {MAX_NESTING} "
                          "deep are refused")
        self._depth += 1
        try:
            return self._parse_activities(data)
        finally:
            self._depth -= 1

    def _parse_activities(self, data: bytes) -> list[tuple[float, bytes]]:
        n = count(data, "TC[11,4]")
        entries, offset = [], 2
        for i in range(n):
            if len(data) < offset + 6 + 6:
                raise Refused("layout", f"TC[11,4]: activity {i} is truncated")
            release_s = from_cuc(data[offset:offset + 6])
            size = packet_length(data[offset + 6:offset + 12])
            packet = data[offset + 6:offset + 6 + size]
            try:
                inner = decode_tc(packet)
            except PacketError as e:
                raise Refused("layout", f"TC[11,4]: activity {i}: {e.reason}") from None
            if inner.apid != APID:
                raise Refused("apid", f"TC[11,4]: activity {i} is for APID 0x{inner.apid:03x}, "
                              f"not this flight software's (0x{APID:03x})")
            self.router.accept(inner)  # refuse now what could never run later
            entries.append((release_s, packet))
            offset += 6 + size
        if offset != len(data):
            raise Refused("layout", f"TC[11,4]: {len(data) - offset} octets after "
                          f"{n} activities")
        if len(self.activities) + len(entries) > MAX_SCHEDULED:
            raise Refused("schedule_full", f"the schedule holds {MAX_SCHEDULED} activities; "
                          f"{len(self.activities)} wait")
        return entries

    def _delete(self, ids: list[tuple[Any, ...]]) -> None:
        wanted = set(ids)
        keyed = [((tc.apid, tc.seq_count), (t, p))
                 for t, p in self.activities for tc in (decode_tc(p),)]
        missing = wanted - {key for key, _ in keyed}
        if missing:
            raise Refused("bad_arguments", "not scheduled: " + ", ".join(
                f"APID 0x{a:03x} seq {s}" for a, s in sorted(missing)))
        self._replace([entry for key, entry in keyed if key not in wanted])

    def _summary(self, to: int) -> None:
        out = bytearray(N.pack(len(self.activities)))
        for release_s, packet in self.activities:
            tc = decode_tc(packet)
            function = N.unpack_from(tc.data)[0] if (tc.service, tc.subtype) == (8, 1) \
                and len(tc.data) >= 2 else 0
            out += cuc(release_s) + SUMMARY_ITEM.pack(tc.apid, tc.seq_count, function)
        self.send(13, bytes(out), to)

    def _replace(self, activities: list[tuple[float, bytes]]) -> None:
        """Stored first, then in force: a schedule that could not be stored (OSError)
        leaves the one before in force, as after a reboot."""
        self.records.save(RECORD, [[t, p] for t, p in activities])
        self.activities = activities


def _check_schedule(body: Any) -> list[tuple[float, bytes]]:
    """What the stored record must hold (flight.nvm: a body that fails is a damaged
    copy)."""
    entries = []
    for release_s, packet in body:
        if type(release_s) not in (int, float) or not math.isfinite(release_s) \
                or type(packet) is not bytes:
            raise ValueError("an entry is not (release time, packet)")
        try:
            decode_tc(packet)
        except PacketError as e:
            raise ValueError(f"a scheduled packet: {e}") from None
        entries.append((float(release_s), packet))
    if len(entries) > MAX_SCHEDULED:
        raise ValueError(f"{len(entries)} entries; the schedule holds {MAX_SCHEDULED}")
    return sorted(entries, key=lambda e: e[0])
