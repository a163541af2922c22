"""The operator's side of the space link: sign and send commands, follow their
verification, and keep the latest telemetry and events.

It knows the satellite only through hal's wire formats and the dictionary the flight
software exports, so it can run anywhere the link reaches.
"""

from __future__ import annotations

import collections
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ground.series import Series
from hal import layout
from hal.auth import DEFAULT_SPACECRAFT, MAX_COUNTER, sign
from hal.dictionary import Dictionary, validate_args
from hal.errors import InputError, PacketError
from hal.layout import Layouts, name_id
from hal.packetlink import PacketLink
from hal.pus import ACK_ALL, APID, BROADCAST, N, Report, parse_verification
from hal.spacepacket import (
    SEQ_MODULO,
    Telecommand,
    Telemetry,
    cuc,
    decode_tm,
    encode_tc,
    from_cuc,
)

EVENT_SEVERITY = {1: "info", 2: "warning", 3: "error", 4: "critical"}
SUMMARY_ITEM_BYTES = 6 + 6  # TM[11,13]: release time CUC 4+2, APID, sequence count, function
MAX_EVENTS = 10_000


@dataclass(frozen=True, slots=True)
class GroundEvent:
    t_s: float
    name: str
    severity: str
    args: dict[str, Any]


@dataclass
class Sent:
    """A command sent, and what service 1 said of it so far."""

    name: str
    apid: int
    seq_count: int
    t_sent_s: float
    args: dict[str, Any] = field(default_factory=dict)
    reports: list[Report] = field(default_factory=list)
    # What the command answered: the events of its component that arrived while it
    # ran (compute.query's job_status, compute.submit's job_submitted).
    answers: list[GroundEvent] = field(default_factory=list)

    @property
    def stages(self) -> list[str]:
        return [r.stage for r in self.reports]

    @property
    def done(self) -> bool:
        return any(s in ("completed", "failed", "accept_failed", "start_failed")
                   for s in self.stages)

    @property
    def ok(self) -> bool:
        return "completed" in self.stages

    @property
    def failure(self) -> Report | None:
        return next((r for r in self.reports if r.code), None)




class Signer:
    """One key, the spacecraft it signs for, and its anti-replay counters: `counter`
    is the last one used (then kept in memory), or the Series that hands them out (one
    kept in a file, shared by ground processes: ground.keys)."""

    def __init__(self, key_id: int, key: bytes, counter: int | Series = 0, *,
                 spacecraft: int = DEFAULT_SPACECRAFT) -> None:
        self.key_id = key_id
        self.key = key
        self.spacecraft = spacecraft
        self.counters = counter if isinstance(counter, Series) else Series(
            f"key {key_id}'s anti-replay counter", MAX_COUNTER, last=counter)

    @property
    def counter(self) -> int:
        """The last counter used."""
        return self.counters.last

    def next_counter(self) -> int:
        return self.counters.take()


class GroundClient:
    """One ground station's client: its TCs carry `source_id`, take their sequence
    counts from `sequence` (a Series; else this client's own, from 0), and the
    reports and replies the satellite addresses to that source id are this client's.
    (source id, sequence count) names each TC: give each station its own source id."""

    def __init__(self, link: PacketLink, dictionary: Dictionary, signer: Signer | None,
                 clock: Callable[[], float] | None = None, *, source_id: int = 1,
                 sequence: Series | None = None) -> None:
        if not 1 <= source_id <= 0xFFFF:
            raise InputError(f"ground source id {source_id} outside 1..65535 (0 is "
                             "the satellite's broadcast)")
        self.link = link
        self.dictionary = dictionary
        self.layouts = Layouts(dictionary)
        self.signer = signer
        self._clock = clock or (lambda: 0.0)
        self.source_id = source_id
        self.sequence = sequence or Series(f"sequence count of source {source_id}",
                                           SEQ_MODULO - 1, wrap=True, last=SEQ_MODULO - 1)
        self.not_ours = 0  # reports and replies addressed to other ground stations
        self._running: list[Sent] = []  # sent, not done: what their answers go to
        self._events_of: dict[int, tuple[Telemetry, GroundEvent]] = {}  # this poll's, by id
        self._latest_hk: dict[int | None, Telemetry] = {}  # this poll's, by structure
        self.sent: dict[tuple[int, int], Sent] = {}
        self.values: dict[str, tuple[float, Any]] = {}  # point -> (on-board time, value)
        self.events: collections.deque[GroundEvent] = collections.deque(maxlen=MAX_EVENTS)
        self.replies: collections.deque[Telemetry] = collections.deque(maxlen=MAX_EVENTS)
        self.rejected: collections.Counter[str] = collections.Counter()
        self.received = 0
        # Packets the source sequence counts say never came: a gap after the last one
        # seen of each APID. A jump back (a reboot restarts the count) is no loss.
        self.tm_lost = 0
        self._last_seq: dict[int, int] = {}
        self.events_total = 0  # events ever received; `events` keeps the last MAX_EVENTS
        self.replies_total = 0  # replies ever received; `replies` keeps the last MAX_EVENTS
        self.on_tm: list[Callable[[Telemetry, bytes], None]] = []
        self.on_batch: list[Callable[[list[tuple[Telemetry, bytes]]], None]] = []
        self._hk_sizes = {sid: s.size for sid, s in self.layouts.structures.items()}

    # -- uplink ----------------------------------------------------------------------

    def command(self, name: str, args: dict[str, Any] | None = None) -> Sent:
        """Send a dictionary command (service 8). Raises ArgumentError before sending
        anything if the command or its arguments are not in the dictionary."""
        data, checked = self._perform_data(name, args)
        return self.service(8, 1, data, name, checked)

    def _perform_data(self, name: str, args: dict[str, Any] | None) -> tuple[bytes, dict]:
        """A command's [8,1] data, and its checked arguments. Raises ArgumentError."""
        checked = validate_args(self.dictionary.command(name), dict(args or {}))
        return self.layouts.pack_command(name, checked), checked

    def service(self, service: int, subtype: int, data: bytes = b"", name: str = "",
                args: dict[str, Any] | None = None) -> Sent:
        """Send any TC, signed, and start following its verification."""
        tc = self.telecommand(service, subtype, data)
        self.link.send(self.sign(tc))
        sent = Sent(name or f"TC[{service},{subtype}]", tc.apid, tc.seq_count, self._clock(),
                    dict(args or {}))
        self.sent[(tc.apid, tc.seq_count)] = sent
        self._running.append(sent)
        return sent

    def telecommand(self, service: int, subtype: int, data: bytes = b"") -> Telecommand:
        return Telecommand(APID, service, subtype, data, self.sequence.take(),
                           source_id=self.source_id, ack_flags=ACK_ALL)

    def sign(self, tc: Telecommand) -> bytes:
        if self.signer is None:
            return encode_tc(tc)  # unsigned: the flight software will refuse it
        return sign(tc, self.signer.key_id, self.signer.next_counter(), self.signer.key,
                    self.signer.spacecraft)

    def time_tagged(self, release_s: float, name: str, args: dict[str, Any] | None = None) -> Sent:
        """Schedule a command on board (service 11) for on-board time `release_s`."""
        data, checked = self._perform_data(name, args)
        inner = self.telecommand(8, 1, data)
        return self.service(11, 4, N.pack(1) + cuc(release_s) + encode_tc(inner),
                            f"schedule {name}", checked)

    # -- downlink --------------------------------------------------------------------

    def poll(self) -> list[Telemetry]:
        """Take in what the link brought; returns the packets, decoded. Listeners on
        `on_tm` hear each as it is taken, those on `on_batch` all of them at once."""
        out: list[Telemetry] = []
        taken: list[tuple[Telemetry, bytes]] = []
        self._events_of.clear()
        last_seq = self._last_seq
        lost = 0
        sizes, latest = self._hk_sizes, self._latest_hk
        for packet in self.link.receive():
            try:
                tm = decode_tm(packet)
                apid, service, subtype, data, _, seq, _, destination = tm
                if service == 3 and subtype == 25 and destination in (BROADCAST, self.source_id):
                    # Housekeeping: checked now (a known structure, of its size), decoded
                    # once per poll: only the latest of each structure makes `values`,
                    # whatever the downlink rate.
                    sid = int.from_bytes(data[:2]) if len(data) >= 2 else None
                    if sizes.get(sid) != len(data) - 2:
                        self.decode_hk(data)  # raises PacketError, saying what is wrong
                    latest[sid] = tm
                else:
                    self._take(tm)
            except PacketError as e:
                self.rejected[e.kind] += 1
                continue
            last = last_seq.get(apid)
            if last is not None:
                gap = (seq - last - 1) % SEQ_MODULO
                lost += gap if gap < SEQ_MODULO // 2 else 0
            last_seq[apid] = seq
            for listener in self.on_tm:
                listener(tm, packet)
            out.append(tm)
            taken.append((tm, packet))
        self.received += len(out)
        self.tm_lost += lost
        if taken:
            for batch_listener in self.on_batch:
                batch_listener(taken)
        for tm in self._latest_hk.values():  # the latest of each structure: the values now
            try:
                values = self.decode_hk(tm.data)
            except PacketError as e:
                self.rejected[e.kind] += 1
                continue
            for name, value in values.items():
                self.values[name] = (tm.time_s, value)
        self._latest_hk.clear()
        return out

    def _take(self, tm: Telemetry) -> None:
        if tm.destination_id != BROADCAST and tm.destination_id != self.source_id:
            self.not_ours += 1  # another station's report or reply
            return
        if tm.service == 1:
            report = parse_verification(tm.subtype, tm.data)
            sent = self.sent.get((report.apid, report.seq_count))
            if sent is not None:
                sent.reports.append(report)
        elif tm.service == 5:
            event = self.decode_event(tm)
            self._events_of[id(tm)] = (tm, event)
            self.events.append(event)
            self.events_total += 1
            self._running = [s for s in self._running if not s.done]
            component = event.name.split(".")[0]
            for sent in self._running:
                if sent.name.split(".")[0] == component:
                    sent.answers.append(event)
        else:
            self.replies.append(tm)
            self.replies_total += 1

    def event_of(self, tm: Telemetry) -> GroundEvent:
        """A TM[5,x]'s event: decoded once, when the client took it in (listeners on
        on_tm and on_batch get it again without decoding twice)."""
        decoded = self._events_of.get(id(tm))
        if decoded is not None and decoded[0] is tm:
            return decoded[1]
        return self.decode_event(tm)

    def decode_hk(self, data: bytes) -> dict[str, Any]:
        if len(data) < 2:
            raise PacketError("layout", "TM[3,25] without a structure id")
        (sid,) = N.unpack_from(data)
        structure = self.layouts.structures.get(sid)
        if structure is None:
            raise PacketError("layout", f"housekeeping structure 0x{sid:04x} is not in the "
                              "dictionary")
        return structure.values(data[2:])

    def decode_event(self, tm: Telemetry) -> GroundEvent:
        if len(tm.data) < 2:
            raise PacketError("layout", "TM[5,x] without an event id")
        (event_id,) = N.unpack_from(tm.data)
        spec = self.layouts.events.get(event_id)
        if spec is None:  # a newer flight software's: named by id, its octets kept
            return GroundEvent(tm.time_s, f"0x{event_id:04x}",
                               EVENT_SEVERITY.get(tm.subtype, "info"),
                               {"data": tm.data[2:].hex()} if len(tm.data) > 2 else {})
        values = layout.unpack(spec.args, tm.data[2:], spec.name)
        args = {a.name: v for a, v in zip(spec.args, values, strict=True) if v is not None}
        return GroundEvent(tm.time_s, spec.name, EVENT_SEVERITY.get(tm.subtype, "info"), args)

    def schedule_summary(self, tm: Telemetry) -> list[dict[str, Any]]:
        """The time-tagged TCs a TM[11,13] lists: release time, APID, sequence count,
        and the command (by its function id; None for a TC of another service)."""
        items = []
        (n,) = N.unpack_from(tm.data)
        if len(tm.data) != 2 + n * SUMMARY_ITEM_BYTES:
            raise PacketError("layout", f"TM[11,13] of {n} items has {len(tm.data)} octets")
        for i in range(n):
            at = 2 + i * SUMMARY_ITEM_BYTES
            apid, seq, function = struct.unpack_from(">HHH", tm.data, at + 6)
            spec = self.layouts.commands.get(function) if function else None
            items.append({"release_s": from_cuc(tm.data[at:at + 6]), "apid": apid,
                          "seq_count": seq, "command": spec.name if spec else None})
        return items

    def parameter_values(self, tm: Telemetry) -> dict[str, Any]:
        """The values in a TM[20,2]."""
        (n,) = N.unpack_from(tm.data)
        out, offset = {}, 2
        for _ in range(n):
            spec = self.layouts.parameters[N.unpack_from(tm.data, offset)[0]]
            size = layout.field_bytes(spec)
            (out[spec.name],) = layout.unpack([spec], tm.data[offset + 2:offset + 2 + size],
                                              spec.name)
            offset += 2 + size
        return out

    # -- services as calls ----------------------------------------------------------

    def get_parameters(self, *names: str) -> Sent:
        return self.service(20, 1, N.pack(len(names)) + b"".join(
            N.pack(name_id(n)) for n in names), "parameters.get")

    def set_parameter(self, name: str, value: Any) -> Sent:
        spec = next((p for p in self.dictionary.parameters if p.name == name), None)
        if spec is None:
            raise InputError(f"unknown parameter {name!r}")
        return self.service(20, 3, N.pack(1) + N.pack(name_id(name))
                            + layout.pack([spec], [value]), f"parameters.set {name}")

    def housekeeping(self, subtype: int, *components: str, interval_ms: int = 0) -> Sent:
        """Service 3: 5 enable, 6 disable, 27 one-shot, 31 set the interval."""
        sids = [name_id(c) for c in components]
        if subtype == 31:
            data = N.pack(len(sids)) + b"".join(struct.pack(">HI", s, interval_ms) for s in sids)
        else:
            data = N.pack(len(sids)) + b"".join(N.pack(s) for s in sids)
        return self.service(3, subtype, data, f"housekeeping {subtype}")
