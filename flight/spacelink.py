"""The flight side of the space link: PUS services over authenticated telecommands.

Every TC is checked in order (packet, APID, authentication, service, application
data) and every refusal is counted by kind, with an event and a service 1 failure
report naming the TC. Services:

    1   verification: acceptance [1,1]/[1,2], start [1,3]/[1,4], completion
        [1,7]/[1,8]. Success reports as the TC's ack flags ask; failures always.
    3   housekeeping: one structure per component, [3,25] periodically; enable [3,5],
        disable [3,6], one-shot [3,27], collection interval [3,31].
    5   events: [5,1] info and debug, [5,2] warning, [5,3] error, [5,4] critical.
    8   perform function [8,1]: a dictionary command by function id.
    11  time-based schedule: insert [11,4], delete [11,5], summary [11,17] -> [11,13].
    17  are-you-alive [17,1] -> [17,2].
    20  parameters: report [20,1] -> [20,2], set [20,3]; kept across restarts.

The layouts of each service's data are in hal.pus (shared with the ground);
argument, housekeeping and parameter values use hal.layout.
"""

from __future__ import annotations

import collections
import math
import struct
from typing import Any, ClassVar

import msgpack

from flight.bus import ALL, EVENT, EventRecord, Sample
from flight.component import Component, Event, Parameter, Telemetry, command, periodic
from flight.dispatcher import Dispatcher, Status
from flight.nvm import Records
from hal import layout
from hal.auth import MAX_COUNTER, KeyRing
from hal.dictionary import ArgumentError, Dictionary, Severity, check_value, validate_args
from hal.errors import PacketError
from hal.layout import Layouts, name_id
from hal.packetlink import PacketLink
from hal.pus import (
    ACK_ACCEPT,
    ACK_COMPLETE,
    ACK_START,
    APID,
    EVENT_SUBTYPE,
    FAILURES,
    GROUND_ID,
    N,
    verification,
)
from hal.spacepacket import (
    SEQ_MODULO,
    Telecommand,
    cuc,
    decode_tc,
    encode_tm,
    from_cuc,
    packet_length,
)
from hal.spacepacket import Telemetry as Tm

MAX_SCHEDULED = 256


class Refused(PacketError):
    """A TC refused by a service, or a command that failed; `kind` is a key of FAILURES.
    (The codecs' own PacketErrors, "layout" and "unknown_function", are refused as they
    come.)"""


def _count(data: bytes, what: str) -> int:
    """The u16 item count that starts a service's data."""
    if len(data) < 2:
        raise Refused("layout", f"{what}: no count")
    return N.unpack_from(data)[0]


def _count_list(data: bytes, item: struct.Struct, what: str) -> list[tuple[Any, ...]]:
    n = _count(data, what)
    if len(data) != 2 + n * item.size:
        raise Refused("layout", f"{what}: {n} items need {2 + n * item.size} octets, "
                      f"got {len(data)}")
    return [item.unpack_from(data, 2 + i * item.size) for i in range(n)]


class SpaceLink(Component):
    """PUS services on the space link (see the module docstring)."""

    name = "link"
    telemetry: ClassVar = (
        Telemetry("tc_received", "int", "Telecommand packets received"),
        Telemetry("tc_accepted", "int", "Telecommands that passed every check"),
        Telemetry("tc_rejected", "int", "Telecommands refused, of every kind"),
        Telemetry("tc_auth_rejected", "int",
                  "Telecommands refused by authentication (unsigned, unknown key, "
                  "tampered, replayed, out of window)"),
        Telemetry("tm_sent", "int", "Telemetry packets sent"),
        Telemetry("scheduled", "int", "Time-tagged commands waiting"),
        Telemetry("key_id", "int", "The key telecommands must be signed with"),
    )
    events: ClassVar = (
        Event("tc_malformed", Severity.WARNING, "A packet on the link is not a valid TC"),
        Event("tc_unsigned", Severity.WARNING, "A TC without authentication was refused"),
        Event("tc_unknown_key", Severity.WARNING, "A TC signed with a key not in use"),
        Event("tc_tampered", Severity.ERROR, "A TC whose MAC does not verify"),
        Event("tc_replayed", Severity.ERROR, "A TC with an old anti-replay counter"),
        Event("tc_out_of_window", Severity.WARNING,
              "A TC whose counter jumped beyond the anti-replay window"),
        Event("tc_refused", Severity.INFO, "An authenticated TC refused (service, layout, "
              "arguments)"),
        Event("key_changed", Severity.INFO, "Telecommands now need another key"),
    )
    parameters: ClassVar = (
        Parameter("replay_window", "int", 1024,
                  "How far above the last counter a TC's counter may jump", None, 1, 1 << 20),
    )

    def __init__(self, link: PacketLink | None, dictionary: Dictionary,
                 keys: dict[int, bytes], active_key: int,
                 records: Records | None = None) -> None:
        super().__init__()
        self.link = link
        self.layouts = Layouts(dictionary)
        self.all_keys = dict(keys)
        self.records = records or Records(None)
        self.dispatcher: Dispatcher | None = None
        self.components: dict[str, Component] = {}
        self.rejected: collections.Counter[str] = collections.Counter()
        self._latest: dict[str, Any] = {}
        self._hk = {sid: {"enabled": True, "interval_s": 1.0, "due_s": 0.0}
                    for sid in self.layouts.structures}
        self._seq = 0
        self._msg_counters: collections.Counter[tuple[int, int]] = collections.Counter()
        state = self.records.load("link.state", _check_state, None)
        retired = set(state["retired"]) if state else set()
        self.active_key = state["active_key"] if state else active_key
        if self.active_key not in self.all_keys:
            # A stored key id this key file lacks: the file's own active key, unless that
            # one was retired on board (then no TC verifies: the satellite needs a key
            # it has not retired).
            self.active_key = active_key
        self.ring = KeyRing({self.active_key: self.all_keys[self.active_key]}
                            if self.active_key in self.all_keys
                            and self.active_key not in retired else {},
                            window=self.param("replay_window"),
                            counters=state["counters"] if state else {}, retired=retired)
        self.schedule: list[tuple[float, bytes]] = self.records.load(
            "link.schedule", _check_schedule, [])

    # -- wiring ---------------------------------------------------------------------

    def attach(self, dispatcher: Dispatcher, components: list[Component]) -> None:
        """What service 8 dispatches to and service 20 reads and sets."""
        self.dispatcher = dispatcher
        self.components = {c.name: c for c in components}
        for name, value in self.records.load("link.params", _check_params, {}).items():
            self._set_param(name, value, persist=False)

    def bind(self, bus: Any, clock: Any) -> None:
        super().bind(bus, clock)
        if self.link is not None:  # without a ground, nothing need be kept or forwarded
            bus.subscribe(ALL, self._on_bus)

    def _on_bus(self, topic: str, message: Any) -> None:
        if isinstance(message, Sample):
            self._latest[topic] = message.value
        elif topic == EVENT and isinstance(message, EventRecord):
            self._send_event(message)

    def parameter_updated(self, name: str, value: Any) -> None:
        if name == "replay_window":
            self.ring.window = value

    # -- commands -------------------------------------------------------------------

    @command(hazardous=True)
    def use_key(self, key_id: int) -> None:
        """Accept telecommands signed with key `key_id` only, from the next TC on. The
        key must be on board (in the key file the flight software was given)."""
        if key_id not in self.all_keys:
            raise ArgumentError(f"key {key_id} is not on board (keys: "
                                f"{', '.join(map(str, sorted(self.all_keys)))})")
        if key_id in self.ring.retired:
            raise ArgumentError(f"key {key_id} was retired; a retired key never signs again")
        if key_id != self.active_key:
            self.ring.retired.add(self.active_key)
        self.active_key = key_id
        self.ring.keys = {key_id: self.all_keys[key_id]}
        self._save_state()
        self.emit("key_changed", key_id=key_id)

    # -- the periodic work ------------------------------------------------------------

    @periodic(10)
    def service(self) -> None:
        """Take in TCs, release due time-tagged TCs, send due housekeeping."""
        if self.link is None:
            return  # no link: nothing comes in, nothing need go out
        for packet in self.link.receive():
            self.handle(packet)
        now = self.clock.now_s()
        due = [p for t, p in self.schedule if t <= now]
        if due:
            self._replace_schedule([(t, p) for t, p in self.schedule if t > now])
            for packet in due:
                self._execute(decode_tc(packet), packet)
        for sid, hk in self._hk.items():
            if hk["enabled"] and now >= hk["due_s"]:
                hk["due_s"] = now + hk["interval_s"]
                self._send_hk(sid)

    @periodic(1)
    def housekeeping(self) -> None:
        for key in ("tc_received", "tc_accepted", "tc_rejected", "tc_auth_rejected",
                    "tm_sent"):
            self.publish(key, self.counters[key])
        self.publish("scheduled", len(self.schedule))
        self.publish("key_id", self.active_key)

    # -- telecommands ----------------------------------------------------------------

    def handle(self, packet: bytes) -> None:
        """One packet from the link: checked, authenticated, executed, reported."""
        self.counters["tc_received"] += 1
        try:
            tc = decode_tc(packet)
        except PacketError as e:
            self._refuse("malformed", None, f"{e.kind}: {e.reason}", event="tc_malformed")
            return
        try:
            if tc.apid != APID:
                raise Refused("apid", f"APID 0x{tc.apid:03x} is not this flight software's "
                              f"(0x{APID:03x})")
            try:
                verified = self.ring.verify(tc, packet)
            except PacketError:
                self.counters["tc_auth_rejected"] += 1
                raise
            try:
                self._save_state()
            except OSError as e:
                # Run only what cannot be replayed after a reboot: with its counter not
                # stored, this TC could be. (In memory the counter has moved on.)
                raise Refused("failed", f"the anti-replay counter cannot be stored: {e}") \
                    from None
        except PacketError as e:
            self._refuse(e.kind, tc, e.reason)
            return
        self._execute(verified.tc, packet)

    def _execute(self, tc: Telecommand, packet: bytes) -> None:
        """An authenticated TC (or a released time-tagged one): accept, start, complete."""
        try:
            run = self._accept(tc)
        except PacketError as e:
            self._refuse(e.kind, tc, e.reason)
            return
        self.counters["tc_accepted"] += 1
        if tc.ack_flags & ACK_ACCEPT:
            self._verify(1, tc)
        if tc.ack_flags & ACK_START:
            self._verify(3, tc)
        try:
            run()
        except Refused as e:
            self._verify(8, tc, FAILURES.get(e.kind, FAILURES["failed"]), e.reason)
            return
        except OSError as e:  # what it changed could not be stored (schedule, parameters)
            self._verify(8, tc, FAILURES["failed"], f"cannot be stored: {e}")
            return
        if tc.ack_flags & ACK_COMPLETE:
            self._verify(7, tc)

    def _accept(self, tc: Telecommand) -> Any:
        """Check a TC's service and data; returns what runs it (raising PacketError when
        it fails)."""
        key = (tc.service, tc.subtype)
        if key == (8, 1):
            spec, args = self.layouts.unpack_command(tc.data)
            try:
                checked = validate_args(spec, args)
            except ArgumentError as e:
                raise Refused("bad_arguments", str(e)) from None
            return lambda: self._perform(spec.name, checked)
        if key == (17, 1):
            return lambda: self._send(17, 2, b"")
        if key in ((3, 5), (3, 6), (3, 27)):
            sids = [s for (s,) in _count_list(tc.data, N, f"TC[3,{tc.subtype}]")]
            self._known_sids(sids)
            return lambda: self._hk_control(tc.subtype, sids)
        if key == (3, 31):
            items = _count_list(tc.data, struct.Struct(">HI"), "TC[3,31]")
            self._known_sids([s for s, _ in items])
            if any(ms < 100 for _, ms in items):
                raise Refused("bad_arguments", "collection intervals are 100 ms at least")
            return lambda: self._hk_intervals(items)
        if key == (20, 1):
            ids = [i for (i,) in _count_list(tc.data, N, "TC[20,1]")]
            specs = [self._param_spec(i) for i in ids]
            return lambda: self._report_params(specs)
        if key == (20, 3):
            values = self._parse_param_values(tc.data)
            return lambda: [self._set_param(s.name, v) for s, v in values]
        if key == (11, 4):
            entries = self._parse_schedule(tc.data)
            return lambda: self._insert(entries)
        if key == (11, 5):
            ids = _count_list(tc.data, struct.Struct(">HH"), "TC[11,5]")
            return lambda: self._delete(ids)
        if key == (11, 17):
            return self._summary
        raise Refused("unknown_service", f"TC[{tc.service},{tc.subtype}] is not a service "
                      "of this flight software")

    def _perform(self, name: str, args: dict[str, Any]) -> None:
        assert self.dispatcher is not None, "attach() the dispatcher first"
        result = self.dispatcher.dispatch(name, args)
        if result.status is not Status.COMPLETED:
            raise Refused("failed", result.reason)

    def _refuse(self, kind: str, tc: Telecommand | None, reason: str,
                event: str | None = None) -> None:
        self.counters["tc_rejected"] += 1
        self.rejected[kind] += 1
        name = event or (f"tc_{kind}" if f"tc_{kind}" in self._events else "tc_refused")
        self.emit(name, kind=kind, reason=reason)
        if tc is not None:
            self._verify(2, tc, FAILURES.get(kind, FAILURES["failed"]), reason)

    # -- service 3 ---------------------------------------------------------------------

    def _known_sids(self, sids: list[int]) -> None:
        for sid in sids:
            if sid not in self._hk:
                raise Refused("bad_arguments", f"no housekeeping structure 0x{sid:04x}")

    def _hk_control(self, subtype: int, sids: list[int]) -> None:
        for sid in sids:
            if subtype == 27:
                self._send_hk(sid)
            else:
                self._hk[sid]["enabled"] = subtype == 5
                self._hk[sid]["due_s"] = self.clock.now_s()

    def _hk_intervals(self, items: list[tuple[int, int]]) -> None:
        for sid, ms in items:
            self._hk[sid]["interval_s"] = ms / 1000

    def _send_hk(self, sid: int) -> None:
        structure = self.layouts.structures[sid]
        values = [self._latest.get(p.name) for p in structure.points]
        self._send(3, 25, N.pack(sid) + layout.pack(structure.points, values))

    # -- service 5 ---------------------------------------------------------------------

    def _send_event(self, record: EventRecord) -> None:
        args = msgpack.packb({k: v if isinstance(v, (int, float, str, bool)) or v is None
                              else str(v) for k, v in record.args.items()})
        self._send(5, EVENT_SUBTYPE[record.severity], N.pack(name_id(record.name)) + args)

    # -- service 11 --------------------------------------------------------------------

    def _parse_schedule(self, data: bytes) -> list[tuple[float, bytes]]:
        n = _count(data, "TC[11,4]")
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
            self._accept(inner)  # refuse now what could never run later
            entries.append((release_s, packet))
            offset += 6 + size
        if offset != len(data):
            raise Refused("layout", f"TC[11,4]: {len(data) - offset} octets after "
                          f"{n} activities")
        if len(self.schedule) + len(entries) > MAX_SCHEDULED:
            raise Refused("schedule_full", f"the schedule holds {MAX_SCHEDULED} activities; "
                          f"{len(self.schedule)} wait")
        return entries

    def _insert(self, entries: list[tuple[float, bytes]]) -> None:
        self._replace_schedule(sorted(self.schedule + entries, key=lambda e: e[0]))

    def _delete(self, ids: list[tuple[int, int]]) -> None:
        wanted = set(ids)
        keyed = [((tc.apid, tc.seq_count), (t, p))
                 for t, p in self.schedule for tc in (decode_tc(p),)]
        missing = wanted - {key for key, _ in keyed}
        if missing:
            raise Refused("bad_arguments", "not scheduled: " + ", ".join(
                f"APID 0x{a:03x} seq {s}" for a, s in sorted(missing)))
        self._replace_schedule([entry for key, entry in keyed if key not in wanted])

    def _summary(self) -> None:
        out = bytearray(N.pack(len(self.schedule)))
        for release_s, packet in self.schedule:
            tc = decode_tc(packet)
            function = N.unpack_from(tc.data)[0] if (tc.service, tc.subtype) == (8, 1) \
                and len(tc.data) >= 2 else 0
            out += cuc(release_s) + struct.pack(">HHH", tc.apid, tc.seq_count, function)
        self._send(11, 13, bytes(out))

    # -- service 20 --------------------------------------------------------------------

    def _param_spec(self, param_id: int) -> Any:
        spec = self.layouts.parameters.get(param_id)
        if spec is None:
            raise Refused("bad_arguments", f"no parameter 0x{param_id:04x}")
        return spec

    def _parse_param_values(self, data: bytes) -> list[tuple[Any, Any]]:
        n = _count(data, "TC[20,3]")
        out, offset = [], 2
        for _ in range(n):
            if len(data) < offset + 2:
                raise Refused("layout", "TC[20,3]: truncated")
            spec = self._param_spec(N.unpack_from(data, offset)[0])
            size = layout.field_bytes(spec)
            (value,) = layout.unpack([spec], data[offset + 2:offset + 2 + size], spec.name)
            component, _, local = spec.name.partition(".")
            owner = self.components[component]
            try:
                check_value(next(p for p in owner.declared("parameters") if p.name == local),
                            value, spec.name)
            except ArgumentError as e:
                raise Refused("bad_arguments", str(e)) from None
            out.append((spec, value))
            offset += 2 + size
        if offset != len(data):
            raise Refused("layout", f"TC[20,3]: {len(data) - offset} octets after {n} values")
        return out

    def _report_params(self, specs: list[Any]) -> None:
        out = bytearray(N.pack(len(specs)))
        for spec in specs:
            component, _, local = spec.name.partition(".")
            out += N.pack(name_id(spec.name)) + layout.pack(
                [spec], [self.components[component].param(local)])
        self._send(20, 2, bytes(out))

    def _set_param(self, name: str, value: Any, persist: bool = True) -> None:
        component, _, local = name.partition(".")
        owner = self.components.get(component)
        if owner is None:
            return  # a stored parameter of a component this build no longer has
        if persist:  # stored first (OSError: nothing changed), then in force
            stored = self.records.load("link.params", _check_params, {})
            stored[name] = value
            self.records.save("link.params", stored)
        try:
            owner.set_param(local, value)
        except ArgumentError:
            return  # a stored value this build refuses: keep the default

    # -- downlink ----------------------------------------------------------------------

    def _verify(self, subtype: int, tc: Telecommand, code: int = 0, reason: str = "") -> None:
        self._send(1, subtype, verification(subtype, *tc.request_id, code, reason))

    def _send(self, service: int, subtype: int, data: bytes) -> None:
        if self.link is None:
            return
        counter = self._msg_counters[(service, subtype)]
        self._msg_counters[(service, subtype)] = (counter + 1) & 0xFFFF
        tm = Tm(APID, service, subtype, data, self.clock.now_s(), self._seq, counter,
                GROUND_ID)
        self._seq = (self._seq + 1) % SEQ_MODULO
        self.link.send(encode_tm(tm))
        self.counters["tm_sent"] += 1

    # -- persistence -------------------------------------------------------------------

    def _save_state(self) -> None:
        self.records.save("link.state", {"active_key": self.active_key,
                                         "counters": dict(self.ring.counters),
                                         "retired": sorted(self.ring.retired)})

    def _replace_schedule(self, schedule: list[tuple[float, bytes]]) -> None:
        """Stored first, then in force: a schedule that could not be stored (OSError)
        leaves the one before in force, as after a reboot."""
        self.records.save("link.schedule", [[t, p] for t, p in schedule])
        self.schedule = schedule


# What the stored records must hold (flight.nvm: a body that fails is a damaged copy).

def _key_id(x: Any) -> int:
    if type(x) is not int or not 0 < x <= 0xFFFF:
        raise ValueError(f"key id {x!r}")
    return x


def _check_state(body: Any) -> dict[str, Any]:
    counters = {_key_id(k): v for k, v in body["counters"].items()}
    if not all(type(v) is int and 0 <= v <= MAX_COUNTER for v in counters.values()):
        raise ValueError("a counter outside 0..2^32-1")
    return {"active_key": _key_id(body["active_key"]), "counters": counters,
            "retired": [_key_id(k) for k in body["retired"]]}


def _check_schedule(body: Any) -> list[tuple[float, bytes]]:
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


def _check_params(body: Any) -> dict[str, Any]:
    if not all(type(k) is str and type(v) in (int, float, bool, str)
               for k, v in body.items()):
        raise ValueError("a parameter that is not name = number, flag or text")
    return dict(body)
