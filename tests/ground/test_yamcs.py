"""YAMCS 5.12, run from examples/yamcs with the exported XTCE, on the simulated
satellite through the signing gateway: it decodes every housekeeping point to the
value our ground decodes from the same packets, with the same limit state, names
every event, and its commands complete (or fail with the flight software's reason)
through its own PUS-1 verifiers.

Needs a Java 17 runtime and the fprime-yamcs-bundle wheel (the YAMCS jars); skipped
without them, unless SKYRACK_REQUIRE_YAMCS is set (CI's .ci/yamcs sets it).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from flight.software import FlightSoftware
from ground.client import GroundClient
from hal.packetlink import TcpClientLink
from hal.xtce import UNSAMPLED, xtce_name

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DICTIONARY = FlightSoftware.dictionary()
STATE = {"ok": "IN_LIMITS", "yellow": "WARNING", "red": "CRITICAL"}


def _missing() -> str | None:
    if shutil.which("java") is None:
        return "no Java runtime (apt-get install openjdk-17-jre-headless)"
    try:
        import fprime_yamcs_bundle  # noqa: F401
    except ImportError:
        return "no YAMCS jars (pip install fprime-yamcs-bundle)"
    return None


if (why := _missing()) is not None:
    if os.environ.get("SKYRACK_REQUIRE_YAMCS"):
        raise RuntimeError(f"SKYRACK_REQUIRE_YAMCS is set, but there is {why}")
    pytest.skip(why, allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _started(argv: list[str]) -> tuple[subprocess.Popen[str], dict]:
    """A skyrack process and the JSON line it prints once it is listening."""
    proc = subprocess.Popen([str(BIN / "skyrack"), *argv, "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else ""
    return proc, json.loads(line)


class Yamcs:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}/api"

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.base + path, timeout=10) as r:
            return json.loads(r.read())

    def post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(self.base + path, json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())

    def link_counts(self) -> dict[str, int]:
        return {link["name"]: int(link.get("dataInCount", 0))
                for link in self.get("/links/skyrack")["links"]}

    def command(self, name: str, args: dict) -> str:
        return self.post(f"/processors/skyrack/realtime/commands/skyrack/{xtce_name(name)}",
                         {"args": args})["id"]

    def history(self, command_id: str) -> dict[str, str]:
        entry = self.get(f"/archive/skyrack/commands/{command_id}")
        return {a["name"]: a["value"].get("stringValue", "") for a in entry.get("attr", [])}


def _wait(what: str, done, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = done()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout_s:g} s")


@pytest.fixture(scope="module")
def mission(tmp_path_factory) -> Iterator[tuple]:
    """(YAMCS, our ground on the gateway, the sim process): the sim at 5x real time,
    the gateway, YAMCS from examples/yamcs/run, and our ground as a second tool."""
    work = tmp_path_factory.mktemp("yamcs")
    procs: list[subprocess.Popen] = []
    try:
        sim, info = _started(["sim", "--ground", "tcp://127.0.0.1:0", "--speed", "5",
                              "--days", "1"])
        procs.append(sim)
        gateway, bound = _started(["ground", "--link", info["ground"], "--keys", info["keys"],
                                   "--source-id", "7", "gateway", "--listen",
                                   "tcp://127.0.0.1:0", "--listen-tc", "tcp://127.0.0.1:0"])
        procs.append(gateway)
        http = _free_port()
        env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", "YAMCS_WORK": str(work),
               "YAMCS_HTTP_PORT": str(http),
               "SKYRACK_GATEWAY_PORT": bound["listen"].rsplit(":", 1)[1],
               "SKYRACK_GATEWAY_TC_PORT": bound["listen_tc"].rsplit(":", 1)[1]}
        log = open(work / "yamcs.log", "w")
        procs.append(subprocess.Popen([str(ROOT / "examples" / "yamcs" / "run")], env=env,
                                      stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
        yamcs = Yamcs(http)
        _wait("YAMCS receiving TM", lambda: yamcs.link_counts().get("tm", 0) > 0, 120)
        _, host, port = bound["listen"].split(":")
        ours = GroundClient(TcpClientLink(host.removeprefix("//"), int(port)), DICTIONARY,
                            None)
        yield yamcs, ours, sim, work
    finally:
        for proc in reversed(procs):  # YAMCS (the run script's JVM: its session) first
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGTERM) if proc.pid == os.getpgid(proc.pid) \
                    else proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_yamcs_commands_complete_through_its_own_pus1_verifiers(mission) -> None:
    yamcs, ours, _, _ = mission
    ok = yamcs.command("power.switch", {"channel": 2, "on": True})
    noop = yamcs.command("fsw.noop", {})
    failing = yamcs.command("compute.cancel", {"job": 7})
    done = [_wait(f"command {c}", lambda c=c: (h := yamcs.history(c)).get(
        "CommandComplete_Status") and h) for c in (ok, noop, failing)]
    for history in done[:2]:
        assert [history.get(f"Verifier_{s}_Status") for s in ("Accepted", "Started",
                                                              "Completed")] == ["OK"] * 3
        assert history["CommandComplete_Status"] == "OK"
    assert done[2]["Verifier_Accepted_Status"] == "OK"
    assert done[2]["CommandComplete_Status"] == "NOK"
    assert done[2]["CommandComplete_Message"] == "failed: no job 7"


def test_yamcs_decodes_every_point_as_our_ground_does_with_its_limit_state(mission) -> None:
    """The sim is held still (SIGSTOP) so that the latest packet of each structure is
    the same for YAMCS and for our ground; every point is then compared."""
    yamcs, ours, sim, _ = mission
    _wait("our ground's housekeeping", lambda: ours.poll() is not None and len(ours.values)
          == len(DICTIONARY.telemetry), 60)
    sim.send_signal(signal.SIGSTOP)
    try:
        # Until both have taken in every packet that was on its way (on a busy machine
        # YAMCS may be seconds behind): their counts stand still for a second.
        last = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.5)
            ours.poll()
            now = (yamcs.link_counts().get("tm"), ours.received)
            if now == last:
                break
            last = now
        time.sleep(1.0)  # YAMCS decodes after it counts
        names = [p.name for p in DICTIONARY.telemetry]
        got = yamcs.post("/processors/skyrack/realtime/parameters:batchGet",
                         {"id": [{"name": f"/skyrack/{xtce_name(n)}"} for n in names]})
        theirs = {v["id"]["name"].rsplit("/", 1)[-1]: v for v in got["value"]}
    finally:
        sim.send_signal(signal.SIGCONT)
    for point in DICTIONARY.telemetry:
        value = theirs[xtce_name(point.name)]
        eng = next(iter(v for k, v in value["engValue"].items() if k != "type"))
        _, expected = ours.values[point.name]
        if expected is None:  # not sampled since boot: its type's marker (hal.valuetype)
            # A float's is NaN, which YAMCS's JSON writes as the string "NaN"; a point
            # with no value has no limit state to compare.
            assert eng in (UNSAMPLED, "", "NaN") or eng == str(-(2**63)) or eng != eng, \
                (point.name, eng)
            continue
        if point.type == "float":
            assert math.isclose(eng, expected, rel_tol=0, abs_tol=0), (point.name, eng, expected)
        elif point.type == "int":
            assert int(eng) == expected, (point.name, eng, expected)
        else:
            assert eng == (str(expected).lower() if point.type == "bool" else expected), \
                (point.name, eng, expected)
        if point.yellow or point.red:
            assert value.get("monitoringResult") == STATE[point.limit_state(expected)], \
                (point.name, expected, value.get("monitoringResult"))
    # Every point our ground shows outside its limits is an alarm in YAMCS.
    alarms = {a["id"]["name"]: a["severity"]
              for a in yamcs.get("/processors/skyrack/realtime/alarms").get("alarms", [])}
    for point in DICTIONARY.telemetry:
        state = point.limit_state(ours.values[point.name][1])
        if state != "ok":
            assert alarms.get(xtce_name(point.name)) == STATE[state], (point.name, alarms)


def test_yamcs_names_every_event_our_ground_saw(mission) -> None:
    yamcs, ours, _, _ = mission
    ours.poll()
    seen = {e.name for e in ours.events}
    assert seen  # the commands above raised some

    def archived() -> list[dict]:
        return yamcs.get("/archive/skyrack/events?limit=1000").get("events", [])

    def caught_up() -> list[dict] | None:
        events = archived()
        return events if seen <= {e["type"] for e in events} else None

    # The sim flies on: an event our ground has just taken in may still be on its way
    # into YAMCS's archive, so wait for it there (a name that never comes fails below).
    try:
        events = _wait("YAMCS's archive of the events our ground saw", caught_up, 20)
    except AssertionError:
        events = archived()
    named = {e["type"] for e in events}
    assert seen <= named, seen - named
    known = {e.name for e in DICTIONARY.events}
    assert named <= known, named - known  # and nothing YAMCS could not decode
    switched = next(e for e in events if e["type"] == "power.switch_changed")
    assert switched["message"] == "power.switch_changed: channel=2 on=true"
