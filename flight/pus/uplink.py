"""The uplink: telecommands in, checked, authenticated, routed, verified (service 1).

Every TC is checked in order (packet, APID, authentication, service, application
data) and every refusal is counted by kind, with an event and a service 1 failure
report naming the TC. Success reports [1,1] accepted, [1,3] started and [1,7]
completed go as the TC's ack flags ask; failures [1,2] and [1,8] always. The key ring
and its anti-replay counters are stored before a TC runs, so no TC runs twice across
a reboot.
"""

from __future__ import annotations

import collections
from typing import Any, ClassVar

from flight.component import (
    Component,
    Counter,
    Event,
    Parameter,
    Telemetry,
    command,
    periodic,
)
from flight.nvm import Records
from flight.pus.service import Downlink, Refused, Router
from hal.auth import DEFAULT_SPACECRAFT, MAX_COUNTER, REORDER, KeyRing
from hal.dictionary import ArgumentError, Severity
from hal.errors import PacketError
from hal.pus import ACK_ACCEPT, ACK_COMPLETE, ACK_START, APID, FAILURES, verification
from hal.spacepacket import Telecommand, decode_tc

VERIFICATION = 1  # the PUS service this component sends


class Uplink(Component):
    """Authenticated telecommands and their verification (see the module docstring)."""

    name = "link"
    service_type: ClassVar = VERIFICATION  # sent only: no TC is of service 1
    telemetry: ClassVar = (
        Counter("tc_received", "Telecommand packets received"),
        Counter("tc_accepted", "Telecommands that passed every check"),
        Counter("tc_rejected", "Telecommands refused, of every kind"),
        Counter("tc_auth_rejected", "Telecommands refused by authentication (unsigned, "
                "unknown key, tampered, replayed, out of window)"),
        Counter("tc_failed", "Accepted telecommands whose execution failed"),
        Telemetry("key_id", "int", "The key telecommands must be signed with"),
    )
    events: ClassVar = (
        Event("tc_malformed", Severity.WARNING, "A packet on the link is not a valid TC",
              kind="str", reason="text"),
        Event("tc_unsigned", Severity.WARNING, "A TC without authentication was refused",
              kind="str", reason="text"),
        Event("tc_unknown_key", Severity.WARNING, "A TC signed with a key not in use",
              kind="str", reason="text"),
        Event("tc_tampered", Severity.ERROR, "A TC whose MAC does not verify (tampered, or "
              "signed for another spacecraft)", kind="str", reason="text"),
        Event("tc_replayed", Severity.ERROR, "A TC with an anti-replay counter used before",
              kind="str", reason="text"),
        Event("tc_out_of_window", Severity.WARNING,
              "A TC whose counter jumped beyond the anti-replay window",
              kind="str", reason="text"),
        Event("tc_refused", Severity.INFO, "An authenticated TC refused (service, layout, "
              "arguments)", kind="str", reason="text"),
        Event("key_changed", Severity.INFO, "Telecommands now need another key", key_id="int"),
    )
    parameters: ClassVar = (
        Parameter("replay_window", "int", 1024,
                  "How far above the last counter a TC's counter may jump", None, 1, 1 << 20),
    )

    def __init__(self, downlink: Downlink, router: Router, keys: dict[int, bytes],
                 active_key: int, records: Records | None = None,
                 spacecraft_id: int = DEFAULT_SPACECRAFT) -> None:
        super().__init__()
        self.downlink = downlink
        self.router = router
        self.all_keys = dict(keys)
        self.records = records or Records(None)
        self.rejected: collections.Counter[str] = collections.Counter()
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
                            window=self.param("replay_window"), spacecraft=spacecraft_id,
                            counters=state["counters"] if state else {}, retired=retired,
                            seen=state["seen"] if state else {})

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
        """Take in TCs, then run the time-tagged TCs that fell due."""
        link = self.downlink.link
        if link is None:
            return  # no link: nothing comes in
        for packet in link.receive():
            self.handle(packet)
        now = self.clock.now_s()
        for service in self.router.services.values():
            for tc in service.released(now):
                self.execute(tc)

    @periodic(1)
    def housekeeping(self) -> None:
        self.publish_status("key_id", self.active_key)

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
        self.execute(verified.tc)

    def execute(self, tc: Telecommand) -> None:
        """An authenticated TC (or a released time-tagged one): accept, start, complete."""
        try:
            run = self.router.accept(tc)
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
            self._fail(tc, FAILURES.get(e.kind, FAILURES["failed"]), e.reason)
            return
        except OSError as e:  # what it changed could not be stored (schedule, parameters)
            self._fail(tc, FAILURES["failed"], f"cannot be stored: {e}")
            return
        if tc.ack_flags & ACK_COMPLETE:
            self._verify(7, tc)

    def _fail(self, tc: Telecommand, code: int, reason: str) -> None:
        self.counters["tc_failed"] += 1
        self._verify(8, tc, code, reason)

    def _refuse(self, kind: str, tc: Telecommand | None, reason: str,
                event: str | None = None) -> None:
        self.counters["tc_rejected"] += 1
        self.rejected[kind] += 1
        name = event or (f"tc_{kind}" if f"tc_{kind}" in self._events else "tc_refused")
        self.emit(name, kind=kind, reason=reason)
        if tc is not None:
            self._verify(2, tc, FAILURES.get(kind, FAILURES["failed"]), reason)

    def _verify(self, subtype: int, tc: Telecommand, code: int = 0, reason: str = "") -> None:
        self.downlink.send(VERIFICATION, subtype,
                           verification(subtype, *tc.request_id, code, reason), tc.source_id)

    def _save_state(self) -> None:
        self.records.save("link.state", {"active_key": self.active_key,
                                         "counters": dict(self.ring.counters),
                                         "seen": dict(self.ring.seen),
                                         "retired": sorted(self.ring.retired)})


# What the stored record must hold (flight.nvm: a body that fails is a damaged copy).

def _key_id(x: Any) -> int:
    if type(x) is not int or not 0 < x <= 0xFFFF:
        raise ValueError(f"key id {x!r}")
    return x


def _check_state(body: Any) -> dict[str, Any]:
    counters = {_key_id(k): v for k, v in body["counters"].items()}
    if not all(type(v) is int and 0 <= v <= MAX_COUNTER for v in counters.values()):
        raise ValueError("a counter outside 0..2^32-1")
    # Which counters below the highest were accepted (absent in records of older
    # software: then none below it is taken).
    seen = {_key_id(k): v for k, v in body.get("seen", {}).items()}
    if not all(type(v) is int and 0 <= v < 1 << REORDER for v in seen.values()):
        raise ValueError("an anti-replay window outside 64 bits")
    return {"active_key": _key_id(body["active_key"]), "counters": counters, "seen": seen,
            "retired": [_key_id(k) for k in body["retired"]]}
