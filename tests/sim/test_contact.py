"""The space link over ground stations: up only in a pass, and what the satellite made
out of contact played back from its packet store (PUS service 15) at the next."""

from __future__ import annotations

import collections
import dataclasses
import struct

import pytest

from boards.definition import default_path, load
from flight.pus.storage import PacketStore
from hal.packetlink import InProcessLink
from hal.spacepacket import decode_tm_checked
from sim.contact import ContactLink
from sim.stations import passes
from skyrack.assembly import assemble

SVALBARD_PASSES = ((1273.2, 1833.8), (6900.6, 7449.8))  # over the first two orbits


def contact_satellite(**params):
    definition = load(default_path())
    definition = dataclasses.replace(
        definition, sim={**definition.sim, "contact": "passes"}, plan=(),
        stations=tuple(s for s in definition.stations if s.name == "svalbard"))
    ground, flight_end = InProcessLink.pair()
    satellite = assemble(definition, seed=1, link=flight_end)
    for name, value in params.items():
        satellite.flight.component("storage").set_param(name, value)
    return satellite, ground


def fly(satellite, ground, until_s: float) -> list:
    got = []
    t = satellite.clock.now_s()
    while t < until_s:
        t = min(t + 5.0, until_s)
        satellite.run_until(t)
        got += [decode_tm_checked(p) for p in ground.receive()]
    return got


def hk_seconds(packets) -> dict[int, list[float]]:
    by_sid = collections.defaultdict(list)
    for tm in packets:
        if (tm.service, tm.subtype) == (3, 25):
            by_sid[struct.unpack_from(">H", tm.data)[0]].append(tm.time_s)
    return by_sid


def test_telemetry_of_an_out_of_contact_orbit_comes_down_at_the_next_pass_whole() -> None:
    satellite, ground = contact_satellite(capacity_kb=65536)
    try:
        link = satellite.flight.downlink.link
        assert isinstance(link, ContactLink)
        station = satellite.definition.stations[0]
        found = list(passes(station, satellite.world.orbit, 0.0, 7600.0))
        assert [(round(p.aos_s, 1), round(p.los_s, 1)) for p in found] == \
            [pytest.approx(x, abs=0.2) for x in SVALBARD_PASSES]
        before_pass = fly(satellite, ground, 1200.0)
        assert before_pass == []  # nothing crosses before the first pass
        first = fly(satellite, ground, 1900.0)
        assert first and link.counters["acquisitions"] == 1
        gap = fly(satellite, ground, 6850.0)
        assert gap == []  # the satellite out of sight for most of an orbit
        store = satellite.flight.component("storage").store
        assert len(store.packets) > 50_000
        second = fly(satellite, ground, 7440.0)
        events = satellite.flight.component("storage").counters
        assert events["contacts"] == 2
    finally:
        satellite.close()
    assert store.counts["overwritten"] == 0 and store.counts["refused"] == 0
    assert len(store.packets) == 0 and store.counts["played_back"] == store.counts["stored"]
    assert link.counters["dropped_queue_full"] == 0 and link.counters["lost_out_of_contact"] == 0
    # every housekeeping structure, every second from boot, came down once
    seconds = hk_seconds(first + second)
    assert len(seconds) > 10
    for sid, times in seconds.items():
        whole = sorted(round(t) for t in times)
        assert len(whole) == len(set(whole)), sid
        assert whole == list(range(whole[0], whole[0] + len(whole))), sid  # no gap
        assert whole[0] <= 1 and whole[-1] >= 7400, sid
    # what was made out of contact arrived after what was made in it: played back
    made_in_gap = [tm for tm in second if 1900.0 < tm.time_s < 6850.0]
    assert made_in_gap and min(tm.time_s for tm in second) < 1900.0 < max(
        tm.time_s for tm in made_in_gap)


def test_a_full_store_gives_up_its_oldest_packets_and_counts_them() -> None:
    satellite, ground = contact_satellite(capacity_kb=256)
    try:
        fly(satellite, ground, 1900.0)
        gap = fly(satellite, ground, 6899.0)  # the next pass begins at 6900.6 s
        storage = satellite.flight.component("storage")
        kept = list(storage.store.packets)
        second = fly(satellite, ground, 7440.0)
    finally:
        satellite.close()
    assert gap == []
    counts = storage.store.counts
    assert counts["overwritten"] > 1000 and counts["refused"] == 0
    assert sum(map(len, kept)) <= 256 * 1024
    times = [decode_tm_checked(p).time_s for p in kept]
    assert times == sorted(times) and min(times) > 6000.0  # the newest kept, the oldest gone
    came = sorted(tm.time_s for tm in second if tm.time_s < 6899.0)
    # each packet still kept at the pass came down (the store went on giving up its
    # oldest for the 1.6 s until it: a couple of seconds' worth), and none from before
    assert came == times[len(times) - len(came):] and len(times) - len(came) < 60


def test_a_store_that_does_not_overwrite_refuses_the_newest_and_counts_them() -> None:
    store = PacketStore(capacity_bytes=100, overwrite=False)
    for i in range(30):
        store.keep(bytes([i]) * 10)
    assert [p[0] for p in store.packets] == list(range(10))  # the first ten, whole
    assert store.counts == {"stored": 10, "refused": 20}
    store.overwrite = True
    store.keep(b"x" * 25)
    assert store.bytes == 95 and store.counts["overwritten"] == 3
    assert [p[0] for p in store.packets][:1] == [3] and store.packets[-1] == b"x" * 25
    store.keep(b"y" * 101)  # bigger than the whole store: refused, nothing given up
    assert store.counts["refused"] == 21 and store.bytes == 95
    store.enabled = False
    store.keep(b"z")
    assert store.counts["refused"] == 22
    assert store.take(2) == [bytes([3]) * 10, bytes([4]) * 10] and store.bytes == 75


def test_service_15_over_the_link_reports_plays_back_deletes_and_disables_the_store() -> None:
    from ground.client import GroundClient, Signer
    from hal.auth import KeyFile

    keys = KeyFile(1, {1: bytes(range(32))})
    flight_end, ground_end = InProcessLink.pair()
    sat = assemble(load(default_path()), link=flight_end, keys=keys)
    ground = GroundClient(ground_end, sat.flight.dictionary(), Signer(1, keys.keys[1], 0),
                          clock=sat.clock.now_s)

    def run(sent, seconds: float = 1.0):
        sat.run_until(sat.clock.now_s() + seconds)
        ground.poll()
        assert sent.stages[-1] == "completed", sent.stages
        return [tm for tm in ground.replies if (tm.service, tm.subtype) == (15, 13)]

    try:
        store = sat.flight.component("storage").store
        for i in range(10):
            store.keep(bytes([i]) * 100)
        summary = run(ground.service(15, 12))[-1]
        packets, octets, capacity, *_ = struct.unpack(">IIIIIII", summary.data)
        assert (packets, octets, capacity) == (10, 1000, 4096 * 1024)
        run(ground.service(15, 11))  # delete
        assert not store.packets
        run(ground.service(15, 2))  # disable: nothing more is kept
        store.keep(b"x" * 10)
        assert not store.packets and store.counts["refused"] == 1
        run(ground.service(15, 1))
        for i in range(3):
            store.keep(bytes([i]) * 10)
        run(ground.command("storage.playback"))
        assert not store.packets and store.counts["played_back"] == 3
        refused, padded = ground.service(15, 99), ground.service(15, 11, b"\x00\x01")
        store.keep(b"kept")
        sat.run_until(sat.clock.now_s() + 1.0)
        ground.poll()
        assert refused.stages[-1] == "accept_failed" and padded.stages[-1] == "accept_failed"
        assert list(store.packets) == [b"kept"]  # a delete with data in it deleted nothing
    finally:
        sat.close()
