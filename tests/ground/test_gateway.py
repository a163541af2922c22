"""The signing gateway: a tool's unsigned TCs, as spacepackets (YAMCS, tmtccmd) builds
them, reach the satellite signed and complete; TM reaches the tool unchanged."""

from __future__ import annotations

import pytest
from spacepackets.ecss import PusTc

from boards.definition import default_path, load
from ground.client import Signer
from ground.gateway import Gateway
from hal.auth import KeyFile, sign
from hal.layout import name_id
from hal.packetlink import InProcessLink
from hal.pus import APID, parse_verification
from hal.spacepacket import decode_tc, decode_tm, encode_tc
from skyrack.assembly import assemble

KEYS = KeyFile(1, {1: bytes(range(32)), 2: bytes(range(32, 64))})
STATION = 9


@pytest.fixture
def rig():
    """(satellite, gateway, the tool's end of the gateway)."""
    flight_end, gateway_up = InProcessLink.pair()
    gateway_down, tool = InProcessLink.pair()
    satellite = assemble(load(default_path()), seed=1, link=flight_end, keys=KEYS)
    gateway = Gateway(gateway_up, gateway_down, Signer(1, KEYS.keys[1]), KEYS.keys, STATION)
    yield satellite, gateway, tool
    satellite.close()


def run(satellite, gateway, seconds: float = 2.0) -> None:
    end = satellite.clock.now_s() + seconds
    while satellite.clock.now_s() < end:
        gateway.step()
        satellite.run_until(satellite.clock.now_s() + 0.1)
        gateway.step()


def reports(tool, packet: bytes) -> list[tuple[str, int]]:
    """(stage, destination) of each service 1 report on `packet` that reached the tool."""
    tc = decode_tc(packet)
    out = []
    for raw in tool.receive():
        tm = decode_tm(raw)
        if tm.service == 1:
            report = parse_verification(tm.subtype, tm.data)
            if (report.apid, report.seq_count) == (tc.apid, tc.seq_count):
                out.append((report.stage, tm.destination_id))
    return out


def test_an_unsigned_tc_from_a_tool_is_signed_and_completes(rig) -> None:
    satellite, gateway, tool = rig
    noop = PusTc(8, 1, apid=APID, app_data=name_id("fsw.noop").to_bytes(2, "big"),
                 seq_count=77).pack()
    tool.send(noop)
    run(satellite, gateway)
    assert reports(tool, noop) == [("accepted", STATION), ("started", STATION),
                                   ("completed", STATION)]
    assert gateway.counters["tc_signed"] == 1 and gateway.counters["tm_forwarded"] > 3
    assert satellite.flight.space_link.rejected == {}


def test_a_signed_tc_passes_untouched_and_garbage_goes_nowhere(rig) -> None:
    satellite, gateway, tool = rig
    already = sign(decode_tc(PusTc(17, 1, apid=APID, seq_count=5, source_id=3).pack()), 2, 1,
                   KEYS.keys[2])
    satellite.flight.space_link.use_key(2)
    tool.send(already)
    tool.send(b"\x18\x10\xc0\x00\x00\x05hello")  # a TC header, and no TC
    run(satellite, gateway)
    assert reports(tool, already) == [("accepted", 3), ("started", 3), ("completed", 3)]
    assert gateway.counters["tc_passed"] == 1 and gateway.counters["tc_signed"] == 0
    assert sum(v for k, v in gateway.counters.items() if k.startswith("refused_")) == 1
    assert satellite.flight.space_link.counters["tc_received"] == 1


def test_a_tc_too_long_to_sign_is_refused_not_a_crash(rig) -> None:
    satellite, gateway, tool = rig
    tool.send(encode_tc(decode_tc(PusTc(8, 1, apid=APID, app_data=bytes(65520)).pack())))
    run(satellite, gateway, 0.5)
    assert gateway.counters["refused_unsignable"] == 1
    assert satellite.flight.space_link.counters["tc_received"] == 0


def test_a_tc_only_listener_takes_tcs_and_is_sent_nothing() -> None:
    """For tools with a separate TC link (YAMCS's TcpTcDataLink): their TCs are signed
    and go up; no TM is written to a socket that nothing reads."""
    flight_end, gateway_up = InProcessLink.pair()
    tools, _ = InProcessLink.pair()
    tc_in, tc_tool = InProcessLink.pair()
    satellite = assemble(load(default_path()), seed=1, link=flight_end, keys=KEYS)
    gateway = Gateway(gateway_up, tools, Signer(1, KEYS.keys[1]), KEYS.keys, STATION, tc_in)
    try:
        tc_tool.send(PusTc(17, 1, apid=APID, seq_count=9).pack())
        run(satellite, gateway)
        assert gateway.counters["tc_signed"] == 1
        assert satellite.flight.component("test").counters["alive_answered"] == 1
        assert tc_tool.receive() == []
    finally:
        satellite.close()
