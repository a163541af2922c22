"""The ground client on its own: what it decodes from packets an independent PUS
implementation (spacepackets) builds, how it follows verification, and what it refuses."""

import struct

import pytest
from spacepackets.ecss import PusTc, PusTm

from flight.software import FlightSoftware
from ground.client import GroundClient, Signer
from hal import layout
from hal.auth import KeyRing
from hal.dictionary import ArgumentError
from hal.layout import Layouts, name_id
from hal.packetlink import InProcessLink
from hal.pus import APID, FAILURES, N, verification
from hal.spacepacket import cuc, decode_tc
from tests.doubles import subtype_of

DICTIONARY = FlightSoftware.dictionary()
LAYOUTS = Layouts(DICTIONARY)
KEY = bytes(range(32))


@pytest.fixture
def ends():
    flight, ground = InProcessLink.pair()
    client = GroundClient(ground, DICTIONARY, Signer(1, KEY, 41))
    return flight, client


def tm(service: int, subtype: int, data: bytes, time_s: float = 12.5) -> bytes:
    """A TM packet as spacepackets builds it, not as we do."""
    return PusTm(service, subtype, timestamp=cuc(time_s),
                 source_data=data, apid=APID, seq_count=7, message_counter=0,
                 destination_id=1).pack()


def test_housekeeping_built_by_spacepackets_is_decoded_point_by_point(ends) -> None:
    flight, client = ends
    structure = next(s for s in LAYOUTS.structures.values() if s.name == "mode")
    values = [("compute" if p.name == "mode.mode" else p.values[0] if p.values
               else 1.5 if p.type == "float" else True if p.type == "bool" else 3)
              for p in structure.points]
    flight.send(tm(3, 25, N.pack(structure.sid) + layout.pack(structure.points, values)))
    (packet,) = client.poll()
    assert packet.time_s == 12.5 and client.received == 1
    assert client.values["mode.mode"] == (12.5, "compute")
    assert {p.name for p in structure.points} <= set(client.values)


def test_a_command_is_signed_with_the_next_counter_and_followed_to_completion(ends) -> None:
    flight, client = ends
    sent = client.command("power.switch", {"channel": 3, "on": True})
    (packet,) = flight.receive()
    theirs = PusTc.unpack(packet)  # an independent parser reads our header and CRC
    assert (theirs.apid, theirs.service, subtype_of(theirs)) == (APID, 8, 1)
    verified = KeyRing({1: KEY}).verify(decode_tc(packet), packet)
    assert verified.counter == 42 and client.signer.counter == 42
    assert theirs.app_data[6:-16] == verified.tc.data  # key id, counter | data | MAC
    spec, args = LAYOUTS.unpack_command(verified.tc.data)
    assert (spec.name, args) == ("power.switch", {"channel": 3, "on": True})
    request = struct.unpack(">HH", packet[:4])
    for subtype in (1, 3, 7):
        flight.send(tm(1, subtype, verification(subtype, *request)))
    client.poll()
    assert sent.stages == ["accepted", "started", "completed"] and sent.ok and sent.done


def test_a_failure_report_carries_its_code_and_reason(ends) -> None:
    flight, client = ends
    sent = client.command("fsw.noop")
    request = struct.unpack(">HH", flight.receive()[0][:4])
    flight.send(tm(1, 2, verification(2, *request, FAILURES["replayed"], "counter 42 used")))
    client.poll()
    assert sent.done and not sent.ok
    assert (sent.failure.failure, sent.failure.reason) == ("replayed", "counter 42 used")


def test_bad_arguments_are_refused_before_anything_is_sent(ends) -> None:
    flight, client = ends
    with pytest.raises(ArgumentError, match="channel = 8 is above the maximum 7"):
        client.command("power.switch", {"channel": 8, "on": True})
    with pytest.raises(ArgumentError, match="unknown command 'power.swich'"):
        client.command("power.swich")
    assert flight.receive() == [] and client.signer.counter == 41  # no counter spent


def test_events_decode_by_id_and_a_stranger_is_named_by_its_id(ends) -> None:
    flight, client = ends
    latchup = LAYOUTS.events[name_id("power.latchup")]
    assert [(a.name, a.type) for a in latchup.args] == [("channel", "int"), ("count", "int")]
    # Built by hand from the declared layout, not by the flight software's packer;
    # "count" is not yet sampled (the emitter left it out).
    flight.send(tm(5, 2, N.pack(name_id("power.latchup")) + struct.pack(">qq", 2, -2**63)))
    flight.send(tm(5, 3, N.pack(0xBEEF) + b"\x01\x02"))
    client.poll()
    first, second = client.events
    assert (first.name, first.severity, first.args) == ("power.latchup", "warning",
                                                       {"channel": 2})
    assert (second.name, second.severity, second.args) == ("0xbeef", "error",
                                                           {"data": "0102"})
    assert client.events_total == 2


def _flipped(packet: bytes) -> bytes:
    return packet[:-3] + bytes([packet[-3] ^ 1]) + packet[-2:]


@pytest.mark.parametrize("packet,kind", [
    (b"\x08\x10\xc0\x00\x00\x03abcd", "truncated"),
    (_flipped(tm(17, 2, b"\x00\x00")), "crc"),
    (tm(3, 25, N.pack(0x0001) + bytes(8)), "layout"),  # a structure the dictionary lacks
    (tm(5, 1, N.pack(name_id("power.latchup")) + b"\xc1"), "layout"),  # cut short
], ids=["truncated", "crc", "unknown structure", "event arguments"])
def test_packets_that_do_not_decode_are_counted_and_dropped(ends, packet, kind) -> None:
    flight, client = ends
    flight.send(packet)
    assert client.poll() == [] and client.rejected[kind] == 1
    assert client.values == {} and not client.events


def test_lost_telemetry_is_counted_from_the_sequence_counts(ends) -> None:
    flight, client = ends
    for seq in (5, 6, 9, 10, 0, 1):  # 7 and 8 never came; then the flight software rebooted
        flight.send(PusTm(17, 2, timestamp=cuc(1.0), apid=APID, seq_count=seq,
                          destination_id=0).pack())
    client.poll()
    assert client.received == 6 and client.tm_lost == 2
