"""Stored records: two sealed copies, the newest good one wins, and nothing read from
storage can stop the flight software from booting.

The sweep damages every kind of file the flight software keeps (truncations, bit flips
at seeded offsets, swapped copies, foreign files, well-sealed bodies of the wrong
shape) and boots on it each time: the boot must succeed, an event must name the file,
and what was stored must come back from the other copy."""

from __future__ import annotations

import random
import re
from typing import Any

import msgpack
import pytest

from drivers.compute import NumpyDevice
from drivers.storage import DirectoryStorage
from flight.nvm import HEAD, Records, seal, unseal
from flight.software import FlightSoftware
from ground.client import GroundClient, Signer
from hal.auth import KeyFile
from hal.packetlink import InProcessLink
from sim.clock import VirtualClock
from tests.crash import Child, Trial, kill_trials, tally, trial_count
from tests.flight.fakes import FakeAccelerator, FakePower, FakeThermal

KEYS = KeyFile(1, {1: bytes(range(32)), 2: bytes(range(32, 64))})


def boot(storage_dir, link=None) -> FlightSoftware:
    sw = FlightSoftware(VirtualClock(), power=FakePower(), thermal=FakeThermal(),
                        accelerator=FakeAccelerator(), rails={"accelerator": 2},
                        compute=NumpyDevice(), storage=DirectoryStorage(storage_dir / "nv"),
                        work_dir=storage_dir / "jobs", link=link, keys=KEYS.keys, active_key=1)
    return sw


def what_is_kept(sw: FlightSoftware) -> dict[str, Any]:
    """Everything the flight software promises to keep, as it holds it now."""
    link, compute = sw.space_link, sw.component("compute")
    return {
        "counters": dict(link.ring.counters), "active_key": link.active_key,
        "retired": sorted(link.ring.retired),
        "schedule": list(sw.component("schedule").activities),
        "replay_window": link.param("replay_window"),
        "steps_per_tick": compute.param("steps_per_tick"),
        "next_job": compute._next_id,
        "jobs": [(j.id, j.workload, j.state.value) for j in compute.jobs.values()],
        "boots": sw.system.boots,
        "result": sw.records.load("job-1.result", lambda b: b["crc32c"], None),
    }


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A storage that holds one of every record, written through the real commands."""
    base = tmp_path_factory.mktemp("stored")
    flight_end, ground_end = InProcessLink.pair()
    sw = boot(base, flight_end)
    ground = GroundClient(ground_end, sw.dictionary(), Signer(1, KEYS.keys[1]))
    sw.component("mode").set_param("battery_wh", 1e6)  # so that job 1 runs to its result
    ground.command("mode.set", {"mode": "compute"})
    ground.command("compute.submit", {"workload": "mlp", "seed": 3, "steps": 2})
    ground.command("compute.submit", {"workload": "train", "seed": 1, "steps": 50})
    ground.time_tagged(5000.0, "fsw.noop")
    ground.set_parameter("compute.steps_per_tick", 3)
    ground.command("link.use_key", {"key_id": 2})
    sw.run_until(8.0)
    ground.poll()
    kept = what_is_kept(sw)
    assert kept["counters"] == {1: 6} and kept["retired"] == [1] and kept["next_job"] == 3
    assert len(kept["schedule"]) == 1 and kept["steps_per_tick"] == 3
    files = {p.name: p.read_bytes() for p in (base / "nv").iterdir()}
    assert {"link.state.a", "link.schedule.b", "link.params.a", "compute.jobs.b",
            "fsw.boot.a", "job-1.result.a"} <= set(files)
    return files, {**kept, "boots": kept["boots"] + 1}


def boot_on(tmp_path, files: dict[str, bytes]) -> FlightSoftware:
    nv = tmp_path / "nv"
    nv.mkdir(exist_ok=True)
    for old in nv.iterdir():
        old.unlink()
    for name, data in files.items():
        (nv / name).write_bytes(data)
    return boot(tmp_path)


def test_a_record_round_trips_and_the_newer_copy_wins(tmp_path) -> None:
    records = Records(DirectoryStorage(tmp_path))
    records.save("x", {"n": 1})
    records.save("x", {"n": 2})
    assert Records(DirectoryStorage(tmp_path)).load("x", dict, None) == {"n": 2}
    (tmp_path / "x.b").write_bytes(seal("x", {"n": 1}, 1, 1))  # a cut between the writes
    fresh = Records(DirectoryStorage(tmp_path))
    assert fresh.load("x", dict, None) == {"n": 2} and fresh.problems == []
    assert Records(DirectoryStorage(tmp_path)).load("missing", dict, {"d": 0}) == {"d": 0}


@pytest.mark.parametrize("raw,reason", [
    (b"", "truncated (0 bytes)"),
    (b"JUNK" + bytes(30), "not a record"),
    (seal("x", {"n": 1}, 1, 1)[:-1], "truncated or padded"),
    (seal("x", {"n": 1}, 1, 1)[:-4] + b"\0\0\0\0", "fails its CRC"),
    (seal("x", {"n": 1}, 2, 1), "schema 2; this software reads format 1 schema 1"),
    (seal("y", {"n": 1}, 1, 1), "holds record 'y', not 'x'"),
])
def test_every_kind_of_damaged_copy_is_named(raw, reason) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        unseal(raw, "x", 1)


def test_a_flipped_bit_in_any_record_falls_back_to_the_other_copy(tmp_path, stored) -> None:
    files, kept = stored
    rng = random.Random(5)
    trials = 0
    for name, data in sorted(files.items()):
        offsets = range(len(data)) if len(data) <= 32 else rng.sample(range(len(data)), 24)
        for offset in offsets:
            damaged = bytearray(data)
            damaged[offset] ^= 1 << rng.randrange(8)
            sw = boot_on(tmp_path, {**files, name: bytes(damaged)})
            assert sw.system.damaged == 1, f"{name} offset {offset}: not reported"
            problem = sw.system.problems[0]
            assert problem.file == name and problem.fallback == "the other copy"
            got = what_is_kept(sw)
            assert got == kept, f"{name} offset {offset}: {got} != {kept}"
            repaired = (tmp_path / "nv" / name).read_bytes()
            assert repaired == data or name.startswith("fsw.boot"), "not repaired"
            trials += 1
    assert trials > 200, trials


@pytest.mark.parametrize("how", ["truncated", "empty", "swapped", "foreign", "random"])
def test_damaged_copies_of_every_record_fall_back_and_boot(tmp_path, stored, how) -> None:
    files, kept = stored
    names = sorted(files)
    rng = random.Random(how)
    for name in names:
        data = files[name]
        other = files[names[(names.index(name) + 3) % len(names)]]
        bad = {"truncated": data[:rng.randrange(1, len(data))], "empty": b"",
               "swapped": other, "foreign": b"#!/bin/sh\nrm -rf /\n" * 4,
               "random": rng.randbytes(len(data))}[how]
        if bad == data:
            continue
        sw = boot_on(tmp_path, {**files, name: bad})
        assert sw.system.damaged == 1 and sw.system.problems[0].file == name, name
        assert what_is_kept(sw) == kept, name


def test_both_copies_lost_boot_on_defaults_with_a_critical_event(tmp_path, stored) -> None:
    files, _ = stored
    for record in sorted({n.rsplit(".", 1)[0] for n in files}):
        broken = {n: (b"x" if n.rsplit(".", 1)[0] == record else d) for n, d in files.items()}
        sw = boot_on(tmp_path, broken)
        assert sw.system.damaged == 2
        assert {p.fallback for p in sw.system.problems} == {"defaults"}



def test_with_the_job_table_lost_ids_go_on_past_every_trace_of_a_job(tmp_path) -> None:
    records = Records(DirectoryStorage(tmp_path / "nv"))
    records.save("job-7.result", {"job": 7})
    (tmp_path / "jobs" / "job-9").mkdir(parents=True)
    (tmp_path / "nv" / "compute.jobs.a").write_bytes(b"damaged")
    assert boot(tmp_path).component("compute")._next_id == 10


def mutate(value: Any, rng: random.Random, depth: int = 0) -> Any:
    """A value of the same shape with some parts replaced by hostile ones."""
    hostile = [10**18, -1, 2**64 - 1, 1e308, float("nan"), "", "x" * 300, b"\xff" * 9,
               None, True, [], {}, [1, [2, [3]]], {"a": {"b": 1}}]
    if rng.random() < 0.25 or depth > 4:
        return rng.choice(hostile)
    if isinstance(value, dict):
        out = {k: mutate(v, rng, depth + 1) if rng.random() < 0.5 else v
               for k, v in value.items()}
        if rng.random() < 0.2 and out:
            out.pop(rng.choice(list(out)))
        return out
    if isinstance(value, list):
        return [mutate(v, rng, depth + 1) if rng.random() < 0.5 else v for v in value]
    return value


def test_well_sealed_bodies_of_the_wrong_shape_never_crash_the_boot(tmp_path, stored) -> None:
    """An adversary (or a bug) can write a copy whose CRC checks out: each field is still
    checked before it is used."""
    files, kept = stored
    rng = random.Random(9)
    refused = 0
    for name, data in sorted(files.items()):
        record = name.rsplit(".", 1)[0]
        _, body = unseal(data, record, 1)
        sequence = HEAD.unpack_from(data)[3]
        for _ in range(40):
            forged = seal(record, mutate(body, rng), 1, sequence + 1)  # newer than the good
            sw = boot_on(tmp_path, {**files, name: forged})
            refused += sw.system.damaged
            assert sw.system.damaged in (0, 1)
            if sw.system.damaged:
                assert what_is_kept(sw) == kept
    assert refused > 100


@pytest.mark.crash
def test_a_power_cut_never_loses_a_counter_that_was_saved(tmp_path) -> None:
    """kill -9 while a record is rewritten over and over (an anti-replay counter after
    each TC): what loads is the last save that returned, or the one in flight."""
    state = {"last": -1, "saves": 0, "in_flight": 0}

    class Cutting(DirectoryStorage):
        def __init__(self, root, child: Child) -> None:
            super().__init__(root)
            self.child = child

        def write(self, name: str, data: bytes) -> None:
            self.child.step()
            super().write(name, data)

    def writer(child: Child) -> None:
        records = Records(Cutting(tmp_path, child))
        n = records.load("link.state", lambda b: b["n"], -1)
        for _ in range(20):
            n += 1
            records.save("link.state", {"n": n})
            child.report(str(n))

    def check(trial: Trial) -> None:
        records = Records(DirectoryStorage(tmp_path))
        n = records.load("link.state", lambda b: b["n"], -1)
        saved = int(trial.reports[-1]) if trial.reports else state["last"]
        assert records.problems == [], records.problems
        assert n in (saved, saved + 1), f"trial {trial.index}: loaded {n}, saved {saved}"
        state["saves"] += len(trial.reports)
        state["in_flight"] += n == saved + 1
        state["last"] = n

    trials = kill_trials(writer, check, trials=trial_count(150), seed=4, max_delay_s=0.02,
                         max_steps=40)
    assert state["last"] > 100
    tally("flight records (anti-replay counter)", trials, saves_returned=state["saves"],
          loaded_the_save_in_flight=state["in_flight"], lost=0, damaged_copies=0)


def test_the_boot_count_is_kept_and_telemetered(tmp_path) -> None:
    assert boot(tmp_path).system.boots == 1
    sw = boot(tmp_path)
    assert sw.system.boots == 2
    seen: dict[str, Any] = {}
    sw.bus.subscribe("fsw.boot_count", lambda t, s: seen.update(count=s.value))
    sw.bus.subscribe("fsw.boot_cause", lambda t, s: seen.update(cause=s.value))
    sw.run_until(1.0)
    assert seen == {"count": 2, "cause": "power_on"}


def test_a_stored_body_is_msgpack_the_ground_can_read(tmp_path) -> None:
    Records(DirectoryStorage(tmp_path)).save("fsw.boot", {"boots": 7})
    raw = (tmp_path / "fsw.boot.a").read_bytes()
    assert msgpack.unpackb(raw[HEAD.size + 1 + len("fsw.boot"):-4]) == {"boots": 7}


def test_records_nobody_loads_are_scrubbed_round_robin_and_a_lost_one_said_once(
        tmp_path) -> None:
    records = Records(DirectoryStorage(tmp_path))
    for i in range(10):
        records.save(f"job-{i}.result", {"job": i})
    (tmp_path / "job-3.result.a").write_bytes(b"rot")
    (tmp_path / "job-7.result.a").write_bytes(b"rot")
    (tmp_path / "job-7.result.b").write_bytes(b"rot")
    fresh = Records(DirectoryStorage(tmp_path))
    assert [fresh.scrub(4) for _ in range(4)] == [4, 4, 2, 4]  # a pass of 10, then again
    problems = fresh.take_problems()
    assert [(p.file, p.fallback) for p in problems] == [
        ("job-3.result.a", "the other copy"), ("job-7.result.a", "defaults"),
        ("job-7.result.b", "defaults")]
    assert (tmp_path / "job-3.result.a").read_bytes() == (tmp_path / "job-3.result.b").read_bytes()
    for _ in range(5):
        fresh.scrub(4)
    assert fresh.take_problems() == []  # repaired, and the lost one not said again


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """What a fuzzer does to a file: flips, overwrites, insertions, deletions, cuts."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        how = rng.randrange(5)
        at = rng.randrange(len(out) + 1)
        if how == 0 and out:
            out[at % len(out)] ^= 1 << rng.randrange(8)
        elif how == 1 and out:
            out[at % len(out)] = rng.randrange(256)
        elif how == 2:
            out[at:at] = rng.randbytes(rng.randint(1, 8))
        elif how == 3:
            del out[at:at + rng.randint(1, 8)]
        else:
            out = out[:at]
    return bytes(out)


def test_mutated_copies_of_the_link_state_never_stop_the_boot(tmp_path, stored) -> None:
    """Both copies of the link state fuzzed at once (SKYRACK_CRASH_TRIALS scales the
    count): every boot succeeds and keeps the counters when a copy survived, and names
    each damaged copy."""
    files, kept = stored
    rng = random.Random(14)
    survived = lost = 0
    for _ in range(trial_count(300)):
        a, b = (mutate_bytes(files[f"link.state.{c}"], rng) if rng.random() < 0.8
                else files[f"link.state.{c}"] for c in "ab")
        sw = boot_on(tmp_path, {**files, "link.state.a": a, "link.state.b": b})
        link_problems = [p for p in sw.system.problems if p.file.startswith("link.state")]
        if any(p.fallback == "defaults" for p in link_problems):
            lost += 1
            assert sw.space_link.ring.counters == {}
        else:
            survived += 1
            assert sw.space_link.ring.counters == kept["counters"]
        assert len(link_problems) == (a != files["link.state.a"]) + (b != files["link.state.b"])
    assert survived > 0 and lost > 0
    tally("fuzzed link state, both copies", [], boots=survived + lost, boot_failures=0,
          a_good_copy_used=survived, both_copies_lost=lost)
