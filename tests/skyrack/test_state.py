"""One satellite across runs: `skyrack sim --ground --state DIR` restarted with the same
keys refuses every telecommand it already accepted and every retired key, and lets
the ground go on where it stopped."""

from __future__ import annotations

import subprocess
import time

import pytest

from flight.software import FlightSoftware
from ground.client import GroundClient, Signer
from hal.auth import KeyFile
from hal.packetlink import open_link
from tests.skyrack.test_ground_cli import SKYRACK, Sim, skyrack

FINAL = {(1, 2): "accept_failed", (1, 7): "completed", (1, 8): "failed"}


class Capture:
    """A link that keeps what is sent: telecommands as an eavesdropper records them."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def send(self, packet: bytes) -> None:
        self.packets.append(packet)


def captured(keys: KeyFile, key_id: int, first_counter: int, count: int) -> list[bytes]:
    client = GroundClient(Capture(), FlightSoftware.dictionary(),  # type: ignore[arg-type]
                          Signer(key_id, keys.keys[key_id], first_counter - 1))
    for _ in range(count):
        client.command("fsw.noop")
    return client.link.packets  # type: ignore[attr-defined]


def exchange(url: str, packets: list[bytes], timeout_s: float = 30.0) -> list[str]:
    """Send raw packets on the link; the final verification stage of each."""
    link = open_link(url, listen=False)
    client = GroundClient(link, FlightSoftware.dictionary(), None)
    outcomes: list[str] = []
    try:
        for packet in packets:
            link.send(packet)
        deadline = time.monotonic() + timeout_s
        while len(outcomes) < len(packets) and time.monotonic() < deadline:
            outcomes += [FINAL[(tm.service, tm.subtype)] for tm in client.poll()
                         if (tm.service, tm.subtype) in FINAL]
            time.sleep(0.02)
    finally:
        link.close()
    return outcomes


def stateful_sim(state: str, keys: str | None = None) -> Sim:
    return Sim("--state", state, *(["--keys", keys] if keys else []))


def test_a_restarted_satellite_refuses_replays_and_retired_keys(tmp_path) -> None:
    keys = KeyFile.generate()
    key_path = tmp_path / "keys.json"
    keys.save_new(key_path)
    state = str(tmp_path / "state")
    under_key_1 = captured(keys, 1, 100, 5)
    under_key_2 = captured(keys, 2, 50, 3)
    # The operator's ground carries on from the counters the captured TCs used.
    (tmp_path / "keys.json.counter-1").write_text("104\n")
    (tmp_path / "keys.json.counter-2").write_text("52\n")

    def ground(url: str) -> list[str]:
        return ["ground", "--link", url, "--keys", str(key_path),
                "--archive", str(tmp_path / "archive.sqlite")]

    sim = stateful_sim(state, str(key_path))
    try:
        assert exchange(sim.url, under_key_1) == ["completed"] * 5
        proc = skyrack(*ground(sim.url), "send", "link.use_key", "key_id=2", "--yes")
        assert proc.returncode == 0, proc.stderr  # key 1 is retired from here on
        assert exchange(sim.url, under_key_2) == ["completed"] * 3
    finally:
        first = sim.stop()
    assert first["space_link"]["tc_accepted"] == 9 and not first["space_link"]["rejected"]

    sim = stateful_sim(state, str(key_path))
    try:
        assert exchange(sim.url, under_key_2 + under_key_1) == ["accept_failed"] * 8
        proc = skyrack(*ground(sim.url), "--key-id", "2", "send", "fsw.noop", "--json")
        assert proc.returncode == 0, proc.stderr  # the ground is not locked out
        proc = skyrack(*ground(sim.url), "send", "fsw.noop")  # key 1, the key file's "active"
        assert proc.returncode == 1 and "key id 1 is retired" in proc.stderr
        blocked = subprocess.run([SKYRACK, "sim", "--state", state, "--orbits", "0.01"],
                                 capture_output=True, text=True, timeout=60)
        assert blocked.returncode != 0 and "in use by another" in blocked.stderr
    finally:
        second = sim.stop()
    link = second["space_link"]
    assert link["rejected"] == {"replayed": 3, "unknown_key": 6}, link
    assert link["tc_accepted"] == 1


@pytest.mark.crash
def test_a_flight_computer_killed_at_any_moment_keeps_every_promise(tmp_path) -> None:
    """The whole flight software on a state directory, commanded from the ground, killed
    with SIGKILL at random moments (half of them exactly at a storage write). Booted
    again each time on the same directory: no record is damaged, every telecommand the
    ground saw completed stays refused as a replay, and no job id is given twice."""
    from boards.definition import default_path, load
    from hal.packetlink import InProcessLink
    from skyrack.assembly import assemble
    from tests.crash import Child, kill_trials, tally, trial_count

    keys = KeyFile.generate()
    definition = load(default_path())
    state = tmp_path / "state"
    seen = {"counter": 0, "job": 0, "completed": 0, "jobs": 0}

    def writer(child: Child) -> None:
        child.step_at_storage_writes()
        flight_end, ground_end = InProcessLink.pair()
        satellite = assemble(definition, link=flight_end, keys=keys, state=state)
        ground = GroundClient(ground_end, satellite.flight.dictionary(),
                              Signer(1, keys.keys[1], seen["counter"]),
                              clock=satellite.clock.now_s)
        for _ in range(60):
            name = child.rng.choice(["fsw.noop", "compute.submit"])
            args = {"workload": "mlp", "seed": 1, "steps": 2} if name == "compute.submit" else {}
            sent = ground.command(name, args)
            counter = ground.signer.counter  # type: ignore[union-attr]
            for _ in range(20):
                satellite.run_until(satellite.clock.now_s() + 0.2)
                ground.poll()
                if sent.done:
                    break
            if sent.stages[-1:] == ["completed"]:
                child.report(f"completed {counter}")
            for event in ground.events:
                if event.name == "compute.job_submitted":
                    child.report(f"job {event.args['job']}")

    def check(trial) -> None:
        for line in trial.reports:
            what, value = line.split()
            if what == "completed":
                seen["counter"] = max(seen["counter"], int(value))
                seen["completed"] += 1
            else:
                seen["job"] = max(seen["job"], int(value))
        satellite = assemble(definition, keys=keys, state=state)
        try:
            flight = satellite.flight
            assert flight.system.problems == [], f"trial {trial.index}: {flight.system.problems}"
            accepted = flight.space_link.ring.counters.get(1, -1)
            assert accepted >= seen["counter"], f"trial {trial.index}: counter went back"
            compute = flight.component("compute")
            assert compute._next_id > seen["job"], f"trial {trial.index}: a job id repeats"
            seen["jobs"] = compute._next_id - 1
            seen["counter"] = max(seen["counter"], accepted)  # the ground goes on above it
        finally:
            satellite.close()

    trials = kill_trials(writer, check, trials=trial_count(150) // 5, seed=21,
                         max_delay_s=1.0, max_steps=60)
    assert seen["completed"] > 10 and seen["jobs"] > 3, seen
    tally("flight software on a state directory", trials,
          telecommands_completed=seen["completed"], jobs_submitted=seen["jobs"],
          damaged_records=0, replays_possible=0, repeated_job_ids=0)


def test_a_satellite_kept_in_a_state_directory_keeps_its_keys_there(tmp_path) -> None:
    state = tmp_path / "sat"
    first = stateful_sim(str(state))
    assert first.keys == str(state / "keys.json")
    assert (state / "keys.json").stat().st_mode & 0o777 == 0o600
    kept = (state / "keys.json").read_text()
    proc = skyrack("ground", "--link", first.url, "--keys", first.keys, "--archive",
                   str(tmp_path / "a.sqlite"), "send", "fsw.noop")
    assert proc.returncode == 0, proc.stderr
    first.stop()
    proc = skyrack("sim", "--ground", "tcp://127.0.0.1:0", "--state", str(state),
                   "--keys", str(tmp_path / "missing.json"))
    assert proc.returncode == 1 and "missing.json: no such key file" in proc.stderr
    again = stateful_sim(str(state))
    assert again.stop()["space_link"]["tc_accepted"] == 0
    assert (state / "keys.json").read_text() == kept
