"""One satellite across runs: `skyrack sim --ground --state DIR` restarted with the same
keys refuses every telecommand it already accepted and every retired key, and lets
the ground go on where it stopped."""

from __future__ import annotations

import json
import subprocess
import time

from flight.software import FlightSoftware
from ground.client import GroundClient, Signer
from hal.auth import KeyFile
from hal.packetlink import open_link
from tests.skyrack.test_ground_cli import SKYRACK, skyrack

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


class StatefulSim:
    def __init__(self, state: str, keys: str) -> None:
        self.proc = subprocess.Popen([SKYRACK, "sim", "--ground", "tcp://127.0.0.1:0",
                                      "--speed", "20", "--json", "--state", state,
                                      "--keys", keys],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read() if self.proc.stderr else ""
        self.url = json.loads(line)["ground"]

    def stop(self) -> dict:
        self.proc.terminate()
        out, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err
        return json.loads(out)


def test_a_restarted_satellite_refuses_replays_and_retired_keys(tmp_path) -> None:
    keys = KeyFile.generate()
    key_path = tmp_path / "keys.json"
    key_path.write_text(keys.to_text())
    state = str(tmp_path / "state")
    under_key_1 = captured(keys, 1, 100, 5)
    under_key_2 = captured(keys, 2, 50, 3)
    # The operator's ground carries on from the counters the captured TCs used.
    (tmp_path / "keys.json.counter-1").write_text("104\n")
    (tmp_path / "keys.json.counter-2").write_text("52\n")

    def ground(url: str) -> list[str]:
        return ["ground", "--link", url, "--keys", str(key_path),
                "--archive", str(tmp_path / "archive.sqlite")]

    sim = StatefulSim(state, str(key_path))
    try:
        assert exchange(sim.url, under_key_1) == ["completed"] * 5
        proc = skyrack(*ground(sim.url), "send", "link.use_key", "key_id=2", "--yes")
        assert proc.returncode == 0, proc.stderr  # key 1 is retired from here on
        assert exchange(sim.url, under_key_2) == ["completed"] * 3
    finally:
        first = sim.stop()
    assert first["space_link"]["tc_accepted"] == 9 and not first["space_link"]["rejected"]

    sim = StatefulSim(state, str(key_path))
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
