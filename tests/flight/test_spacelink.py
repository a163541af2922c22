"""The flight software's PUS services, commanded by the ground client over an
in-process link, on the simulated satellite."""

import dataclasses

import pytest

from boards.definition import DefinitionError, default_path, load
from ground.client import GroundClient, Signer
from hal.auth import KeyFile, sign
from hal.dictionary import ArgumentError
from hal.layout import name_id
from hal.packetlink import InProcessLink
from hal.pus import APID, N, parse_verification
from hal.spacepacket import Telecommand, cuc, decode_tm, encode_tc
from skyrack.assembly import assemble

KEYS = KeyFile(1, {1: bytes(range(32)), 2: bytes(range(32, 64))})


@pytest.fixture
def pair():
    """(satellite, ground) joined by an in-process space link."""
    flight_end, ground_end = InProcessLink.pair()
    satellite = assemble(load(default_path()), seed=1, link=flight_end, keys=KEYS)
    ground = GroundClient(ground_end, satellite.flight.dictionary(),
                          Signer(1, KEYS.keys[1]), clock=satellite.clock.now_s)
    yield satellite, ground
    satellite.close()


def run(satellite, ground, seconds: float = 1.0) -> None:
    satellite.run_until(satellite.clock.now_s() + seconds)
    ground.poll()


def events(ground, name: str) -> list:
    return [e for e in ground.events if e.name == name]


def test_a_command_is_accepted_started_completed_and_its_effect_seen(pair) -> None:
    satellite, ground = pair
    sent = ground.command("power.switch", {"channel": 2, "on": True})
    run(satellite, ground, 2.0)
    assert sent.stages == ["accepted", "started", "completed"]
    assert satellite.world.switches[2]
    assert ground.values["power.switches"][1] & 0b100  # housekeeping shows the switch on
    assert 20 < ground.values["power.batt_v"][1] < 40
    assert ground.values["link.tc_accepted"][1] == 1


def test_a_failing_command_reports_its_failure_and_reason(pair) -> None:
    satellite, ground = pair
    sent = ground.command("compute.cancel", {"job": 7})
    run(satellite, ground)
    assert sent.stages == ["accepted", "started", "failed"]
    assert sent.failure.failure == "failed" and "job 7" in sent.failure.reason


def test_the_ground_refuses_bad_arguments_before_sending(pair) -> None:
    _, ground = pair
    with pytest.raises(ArgumentError, match="channel = 9 is above the maximum 7"):
        ground.command("power.switch", {"channel": 9, "on": True})
    with pytest.raises(ArgumentError, match="unknown command"):
        ground.command("power.explode")
    assert ground.sent == {}


def test_replayed_tampered_unsigned_and_wrong_key_tcs_are_refused_and_counted(pair) -> None:
    satellite, ground = pair
    link = ground.link
    good = ground.sign(ground.telecommand(17, 1))
    link.send(good)
    link.send(good)  # replayed
    tampered = bytearray(ground.sign(ground.telecommand(17, 1)))
    tampered[16] ^= 0x01  # the counter's last octet; the CRC is fixed up below
    from hal.crc import crc16_ccitt_false
    tampered[-2:] = crc16_ccitt_false(bytes(tampered[:-2])).to_bytes(2, "big")
    link.send(bytes(tampered))
    link.send(encode_tc(ground.telecommand(17, 1)))  # unsigned
    link.send(sign(ground.telecommand(17, 1), 2, 1, KEYS.keys[2]))  # a key not in use
    link.send(sign(ground.telecommand(17, 1), 1, 10**6, KEYS.keys[1]))  # out of window
    link.send(b"\x18\x10garbage")  # not a packet at all
    run(satellite, ground, 2.0)
    space = satellite.flight.space_link
    assert dict(space.rejected) == {"replayed": 1, "tampered": 1, "unsigned": 1,
                                    "unknown_key": 1, "out_of_window": 1, "malformed": 1}
    assert space.counters["tc_accepted"] == 1
    assert ground.values["link.tc_auth_rejected"][1] == 5
    for name in ("tc_replayed", "tc_tampered", "tc_unsigned", "tc_unknown_key",
                 "tc_out_of_window", "tc_malformed"):
        assert len(events(ground, f"link.{name}")) == 1, name
    assert sum(1 for tm in ground.replies if (tm.service, tm.subtype) == (17, 2)) == 1


def test_a_ground_holding_the_wrong_key_gets_no_command_through(pair) -> None:
    satellite, ground = pair
    impostor = GroundClient(ground.link, ground.dictionary, Signer(1, bytes(32)))
    sent = impostor.command("power.switch", {"channel": 2, "on": True})
    satellite.run_until(2.0)
    impostor.poll()
    assert not satellite.world.switches[2]
    assert sent.stages == ["accept_failed"] and sent.failure.failure == "tampered"
    assert satellite.flight.space_link.rejected["tampered"] == 1


def test_keys_rotate_by_an_authenticated_command(pair) -> None:
    satellite, ground = pair
    sent = ground.command("link.use_key", {"key_id": 2})
    run(satellite, ground, 2.0)
    assert sent.ok and ground.values["link.key_id"][1] == 2
    old = ground.command("fsw.noop")
    run(satellite, ground)
    assert old.failure is not None and old.failure.failure == "unknown_key"
    ground.signer = Signer(2, KEYS.keys[2])
    new = ground.command("fsw.noop")
    run(satellite, ground)
    assert new.stages[-1] == "completed"
    assert satellite.flight.space_link.counters["tc_accepted"] == 2


def test_are_you_alive_and_one_shot_and_disabled_housekeeping(pair) -> None:
    satellite, ground = pair
    ground.service(17, 1)
    ground.housekeeping(6, *[s.name for s in ground.layouts.structures.values()])
    run(satellite, ground)
    ground.values.clear()
    run(satellite, ground, 3.0)
    assert ground.values == {}  # disabled: nothing periodic
    ground.housekeeping(27, "thermal")
    run(satellite, ground)
    assert set(ground.values) == {p.name for p in ground.dictionary.telemetry
                                  if p.name.startswith("thermal.")}
    assert any((tm.service, tm.subtype) == (17, 2) for tm in ground.replies)


def test_parameters_are_read_set_and_kept_across_a_restart(pair) -> None:
    satellite, ground = pair
    sent = ground.set_parameter("compute.steps_per_tick", 4)
    run(satellite, ground)
    assert sent.ok
    ground.get_parameters("compute.steps_per_tick", "link.replay_window")
    run(satellite, ground)
    (reply,) = [tm for tm in ground.replies if (tm.service, tm.subtype) == (20, 2)]
    assert ground.parameter_values(reply) == {"compute.steps_per_tick": 4,
                                              "link.replay_window": 1024}
    bad = ground.set_parameter("compute.steps_per_tick", 1000)
    run(satellite, ground)
    assert bad.failure.failure == "bad_arguments" and "above the maximum 100" in \
        bad.failure.reason
    rebooted = satellite.boot()  # the same storage, a fresh flight software
    assert rebooted.component("compute").param("steps_per_tick") == 4
    assert rebooted.space_link.ring.counters == {1: 3}  # no replay after a restart


def test_time_tagged_commands_wait_for_their_time_and_can_be_deleted(pair) -> None:
    satellite, ground = pair
    now = satellite.clock.now_s()
    ground.time_tagged(now + 5.0, "power.switch", {"channel": 2, "on": True})
    ground.time_tagged(now + 6.0, "fsw.noop")
    run(satellite, ground)
    ground.service(11, 17)
    run(satellite, ground)
    (summary,) = [tm for tm in ground.replies if (tm.service, tm.subtype) == (11, 13)]
    assert N.unpack_from(summary.data)[0] == 2
    noop_seq = summary.data[2 + 12 + 8:2 + 12 + 10]  # second entry's sequence count
    ground.service(11, 5, N.pack(1) + N.pack(APID) + noop_seq)
    run(satellite, ground, 2.0)
    assert not satellite.world.switches[2]
    run(satellite, ground, 4.0)
    assert satellite.world.switches[2]
    assert len(satellite.flight.component("schedule").activities) == 0
    assert satellite.flight.component("fsw").counters["cmd_accepted"] == 0  # noop deleted


def test_malformed_service_data_is_refused_with_the_reason(pair) -> None:
    satellite, ground = pair
    cases = [
        (ground.service(8, 1, b"\xbe"), "no function id"),
        (ground.service(8, 1, b"\xbe\xef"), "function id 0xbeef"),
        (ground.service(3, 5, N.pack(3) + b"\x00"), "3 items need 8 octets"),
        (ground.service(3, 27, N.pack(1) + N.pack(0x1234)), "no housekeeping structure"),
        (ground.service(11, 4, N.pack(1) + cuc(1.0) + b"\x18\x10\xc0"), "truncated"),
        (ground.service(42, 1), "TC[42,1] is not a service"),
        (ground.service(20, 1, N.pack(1) + N.pack(7)), "no parameter 0x0007"),
    ]
    run(satellite, ground)
    for sent, reason in cases:
        assert sent.stages == ["accept_failed"], sent
        assert reason in sent.failure.reason, (reason, sent.failure.reason)


def test_an_unknown_apid_is_refused(pair) -> None:
    satellite, ground = pair
    ground.link.send(sign(Telecommand(0x55, 17, 1, seq_count=1), 1, 1, KEYS.keys[1]))
    run(satellite, ground)
    assert satellite.flight.space_link.rejected["apid"] == 1


def test_the_ground_counts_malformed_telemetry_and_carries_on(pair) -> None:
    satellite, ground = pair
    from hal.spacepacket import Telemetry, encode_tm

    inbox = ground.link.inbox
    good = encode_tm(Telemetry(APID, 17, 2))
    inbox.extend([b"\x08\x10", good[:-1] + bytes([good[-1] ^ 1]),
                  encode_tm(Telemetry(APID, 3, 25, b"\xbe\xef")),  # no such structure
                  encode_tm(Telemetry(APID, 5, 1, N.pack(name_id("link.key_changed"))
                                      + b"\xc1")),  # its arguments cut short
                  encode_tm(Telemetry(APID, 1, 8, b"\x00"))])  # a report cut short
    ground.poll()
    assert dict(ground.rejected) == {"truncated": 1, "crc": 1, "layout": 3}
    run(satellite, ground, 2.0)
    assert ground.values["power.batt_v"][1] > 20  # and it carries on


def test_expect_still_finds_events_after_the_ground_dropped_old_ones(pair) -> None:
    from ground import client as client_module
    from ground.console import Console, ConsoleError

    satellite, ground = pair
    ground.events = client_module.collections.deque(maxlen=3)  # a tiny event memory
    console = Console(ground, now=satellite.clock.now_s,
                      idle=lambda: satellite.run_until(satellite.clock.now_s() + 0.5))
    for _ in range(5):
        console.send_and_verify("fsw.noop")  # each raises an event; the oldest fall off
    assert ground.events_total == 6 and len(ground.events) == 3  # fsw.booted, then 5 no-ops
    console.expect_event("fsw.noop")
    console.expect_event("fsw.noop")
    console.expect_event("fsw.noop")
    with pytest.raises(ConsoleError, match="expect fsw.noop: nothing after 2 s"):
        console.expect_event("fsw.noop", timeout_s=2.0)
    console.send_and_verify("fsw.noop")
    assert console.expect_event("fsw.noop").name == "fsw.noop"


def test_a_tc_whose_counter_cannot_be_stored_is_refused_not_run(pair) -> None:
    satellite, ground = pair
    storage = satellite.flight.records.storage
    real_write = storage.write

    def full(name: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    storage.write = full
    sent = ground.command("fsw.noop")
    run(satellite, ground)
    assert sent.stages == ["accept_failed"]
    assert "anti-replay counter cannot be stored" in sent.failure.reason
    assert not events(ground, "fsw.noop")
    storage.write = real_write
    sent = ground.command("fsw.noop")
    run(satellite, ground)
    assert sent.stages[-1] == "completed"


def test_a_schedule_that_cannot_be_stored_is_not_put_in_force(pair) -> None:
    satellite, ground = pair
    storage = satellite.flight.records.storage
    writes = {"left": 2}  # the anti-replay counter's two copies, then nothing
    real_write = storage.write

    def filling(name: str, data: bytes) -> None:
        if writes["left"] <= 0:
            raise OSError(28, "No space left on device")
        writes["left"] -= 1
        real_write(name, data)

    storage.write = filling
    sent = ground.time_tagged(satellite.clock.now_s() + 3.0, "fsw.noop")
    run(satellite, ground)
    assert sent.stages[-1] == "failed" and "cannot be stored" in sent.failure.reason
    assert satellite.flight.component("schedule").activities == []
    storage.write = real_write
    run(satellite, ground, 5.0)
    assert not events(ground, "fsw.noop")


def test_every_counter_is_in_the_first_housekeeping_packet(pair) -> None:
    satellite, ground = pair
    first_tick_s = satellite.flight.executive.next_tick_s()
    satellite.run_until(first_tick_s)  # one packet per structure, sent before any poll
    ground.poll()
    counters = {p.name for p in ground.dictionary.telemetry if p.counter}
    assert len(counters) > 40  # three per component, and the traffic and error counts
    unsampled = sorted(n for n in counters if ground.values.get(n, (0, None))[1] is None)
    assert unsampled == []
    (sent_s,) = {ground.values[n][0] for n in counters}  # all from the first packets
    assert sent_s == pytest.approx(first_tick_s, abs=1e-4)  # CUC: 2^-16 s


def test_reset_counters_over_the_link_zeroes_the_uplinks_counts(pair) -> None:
    satellite, ground = pair
    for _ in range(3):
        ground.command("fsw.noop")
    ground.link.send(b"\x18\x10garbage")
    run(satellite, ground, 2.0)
    assert ground.values["link.tc_received"][1] == 4
    sent = ground.command("link.reset_counters")
    run(satellite, ground, 2.0)
    assert sent.ok
    # Zeroed while its own TC ran; what counts since is the reset alone, as accepted.
    assert ground.values["link.tc_received"][1] == 0
    assert ground.values["link.tc_rejected"][1] == 0
    assert ground.values["downlink.tm_sent"][1] > 0  # another component's count
    assert satellite.flight.space_link.counters["tc_accepted"] == 0


def test_a_tc_captured_from_one_satellite_is_refused_by_another_under_the_same_keys() -> None:
    """Two satellites, spacecraft 1 and 2, given the same keys (as a careless operator
    might): the TC signed for the first, replayed byte for byte to the second, is
    refused there as signed for another satellite, and runs on neither twice."""
    definition = load(default_path())
    ends = [InProcessLink.pair() for _ in range(2)]
    first = assemble(definition, seed=1, link=ends[0][0], keys=KEYS)
    sister_keys = KeyFile(KEYS.active, KEYS.keys, spacecraft=2)
    sister = assemble(dataclasses.replace(definition, spacecraft_id=2), seed=1,
                      link=ends[1][0], keys=sister_keys)
    try:
        ground = GroundClient(ends[0][1], first.flight.dictionary(),
                              Signer(1, KEYS.keys[1]), clock=first.clock.now_s)
        captured = ground.sign(ground.telecommand(8, 1, ground._perform_data(
            "power.switch", {"channel": 2, "on": True})[0]))
        for satellite, (_, ground_end) in ((first, ends[0]), (sister, ends[1])):
            ground_end.send(captured)
            satellite.run_until(2.0)
        assert first.world.switches[2] and not sister.world.switches[2]
        link = sister.flight.space_link
        assert link.rejected == {"tampered": 1} and link.counters["tc_accepted"] == 0
        reports = [decode_tm(p) for p in ends[1][1].receive()]
        failure = next(parse_verification(tm.subtype, tm.data) for tm in reports
                       if (tm.service, tm.subtype) == (1, 2))
        assert "signed for another satellite" in failure.reason
        with pytest.raises(DefinitionError, match="key file is for spacecraft 1"):
            assemble(dataclasses.replace(definition, spacecraft_id=2), link=ends[1][0],
                     keys=KEYS)
    finally:
        first.close()
        sister.close()


def _schedule_data(release_s: float, packet: bytes) -> bytes:
    return N.pack(1) + cuc(release_s) + packet


def test_a_scheduled_tc_for_another_apid_is_refused_at_insertion(pair) -> None:
    satellite, ground = pair
    data, _ = ground._perform_data("power.switch", {"channel": 2, "on": True})
    foreign = encode_tc(Telecommand(0x055, 8, 1, data, 0, source_id=1))
    sent = ground.service(11, 4, _schedule_data(5.0, foreign), "schedule foreign")
    run(satellite, ground, 8.0)
    assert sent.stages == ["accept_failed"] and sent.failure.failure == "apid"
    assert "APID 0x055" in sent.failure.reason
    assert not satellite.world.switches[2]
    assert satellite.flight.component("schedule").activities == []


def test_schedules_nested_too_deep_are_refused_not_a_crash(pair) -> None:
    satellite, ground = pair
    inner = encode_tc(ground.telecommand(17, 1))
    for _ in range(495):  # each level schedules the one inside it
        inner = encode_tc(Telecommand(APID, 11, 4, _schedule_data(9.0, inner), 0,
                                      source_id=1))
        if len(inner) > 60000:
            break
    sent = ground.service(11, 4, _schedule_data(9.0, inner), "schedule nested")
    once = ground.service(11, 4, _schedule_data(9.0, encode_tc(Telecommand(
        APID, 11, 4, _schedule_data(9.5, encode_tc(ground.telecommand(17, 1))), 0,
        source_id=1))), "schedule a schedule")
    run(satellite, ground, 2.0)
    assert sent.stages == ["accept_failed"] and "nested more than 2 deep" in sent.failure.reason
    assert once.ok  # one level of nesting (a schedule that schedules) is allowed
    assert sum(satellite.flight.executive.task_errors.values()) == 0
