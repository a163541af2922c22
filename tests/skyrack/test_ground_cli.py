"""`skyrack sim --ground` in one process, `skyrack ground` in others: the operator's
commands, verification and telemetry over TCP, and a link that survives garbage."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hal.auth import KeyFile

SKYRACK = str(Path(sys.executable).parent / "skyrack")


def skyrack(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SKYRACK, *argv], capture_output=True, text=True, timeout=timeout)


class Sim:
    """A simulated satellite at 20x real time, listening for the ground; `options` go to
    `skyrack sim` as well."""

    archive = ""

    def __init__(self, *options: str) -> None:
        self.proc = subprocess.Popen([SKYRACK, "sim", "--ground", "tcp://127.0.0.1:0", "--speed",
                                      "20", "--json", *options], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, self.proc.stderr.read() if self.proc.stderr else ""
        info = json.loads(line)
        self.url, self.keys = info["ground"], info["keys"]

    def stop(self) -> dict:
        """Stop it (as an operator would, with SIGTERM); its mission report."""
        self.proc.terminate()
        out, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err
        return json.loads(out)


@pytest.fixture
def satellite(tmp_path) -> Iterator[Sim]:
    sim = Sim()
    sim.archive = str(tmp_path / "archive.sqlite")
    try:
        yield sim
    finally:
        if sim.proc.poll() is None:
            sim.stop()


def ground(sat: Sim, *argv: str, keys: bool = True) -> subprocess.CompletedProcess[str]:
    return skyrack("ground", "--link", sat.url, "--archive", sat.archive,
                   *(["--keys", sat.keys] if keys else []), *argv)


def test_an_operator_commands_power_and_compute_and_sees_telemetry(satellite, tmp_path) -> None:
    proc = ground(satellite, "send", "power.switch", "channel=2", "on=true", "--json")
    assert proc.returncode == 0, proc.stderr
    sent = json.loads(proc.stdout)
    assert sent["stages"] == ["accepted", "started", "completed"]
    # the same keys whatever happened: null where there is nothing to say
    keys = {"ok", "schema", "command", "args", "id", "stages", "answers", "job", "error"}
    assert set(sent) == keys and sent["job"] is None and sent["error"] is None
    proc = ground(satellite, "send", "compute.submit", "workload=mlp", "seed=3", "--json")
    assert proc.returncode == 0, proc.stderr
    watch = ground(satellite, "watch", "--seconds", "1.5", "--json")
    assert watch.returncode == 0, watch.stderr
    hk: dict = {}
    for line in watch.stdout.splitlines():
        record = json.loads(line)
        hk.update(record.get("housekeeping", {}))
        if "housekeeping" in record:  # points outside limits are marked, with the limit
            assert set(record["limits"].values()) <= {"yellow", "red"}
    assert hk["power.switches"] & 0b100 and 20 < hk["power.batt_v"] < 40
    # the job waits, runs, or (on a loaded machine, before the watch began) is done
    assert hk["compute.queued"] + hk["compute.active_job"] + hk["compute.completed"] >= 1
    checkout = Path(__file__).resolve().parents[2] / "examples" / "checkout.txt"
    proc = ground(satellite, "script", str(checkout), "--json")
    assert proc.returncode == 0, proc.stderr
    steps = [json.loads(s) for s in proc.stdout.splitlines()]
    assert [s["step"].split()[0] for s in steps] == ["send", "send", "wait", "send", "send",
                                                     "expect", "wait"]
    # Everything the ground received is in the archive.
    proc = ground(satellite, "query", "power.batt_v", "--json")
    assert proc.returncode == 0, proc.stderr
    samples = json.loads(proc.stdout)["samples"]
    assert len(samples) >= 2 and all(20 < v < 40 for _, v in samples)
    csv_path = tmp_path / "out.csv"
    proc = ground(satellite, "export", "power.soc_pct", "power.switches", "-o", str(csv_path))
    assert proc.returncode == 0, proc.stderr
    assert csv_path.read_text().startswith("utc,t_s,session,point,value,unit\n")
    # What happened, by UTC, with the sender of each command and its events.
    timeline = json.loads(ground(satellite, "timeline", "--since", "2000-01-01T00:00Z",
                                 "--point", "power.switches", "--json").stdout)
    assert {c["command"] for c in timeline["commands"]} >= {"power.switch", "fsw.noop"}
    assert all(c["sender"] and c["spacecraft"] == 1 for c in timeline["commands"])
    assert {r["point"] for r in timeline["telemetry"]} == {"power.switches"}
    assert "power.switch_changed" in {e["name"] for e in timeline["events"]}
    events = json.loads(ground(satellite, "events", "--name", "power.switch_changed",
                               "--json").stdout)["events"]
    assert events and {e["name"] for e in events} == {"power.switch_changed"}
    (session,) = json.loads(ground(satellite, "sessions", "--json").stdout)["sessions"]
    assert session["spacecraft"] == 1 and session["boot"] == 1
    proc = ground(satellite, "query", "power.nothing")
    assert proc.returncode == 1 and "no samples of 'power.nothing'" in proc.stderr
    proc = ground(satellite, "plot", "power.batt_v", "-o", str(tmp_path / "v.png"))
    try:
        import matplotlib  # noqa: F401
        assert proc.returncode == 0 and (tmp_path / "v.png").stat().st_size > 0
    except ImportError:
        assert proc.returncode == 1 and "plotting needs matplotlib" in proc.stderr
    history = json.loads(ground(satellite, "history", "--json").stdout)["commands"]
    assert [c["command"] for c in history] == ["power.switch", "compute.submit", "fsw.noop",
                                               "power.switch", "mode.set", "compute.submit"]
    assert history[0]["stages"] == ["accepted", "started", "completed"]
    assert history[0]["args"] == {"channel": 2, "on": True}
    failed = ground(satellite, "send", "compute.cancel", "job=99", "--json")
    assert failed.returncode == 1 and set(json.loads(failed.stdout)) == keys
    assert json.loads(failed.stdout)["error"].startswith("compute.cancel: failed")


def test_unsigned_and_bad_commands_fail_in_one_line(satellite, tmp_path) -> None:
    proc = ground(satellite, "send", "fsw.noop", "--json", keys=False)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["stages"] == ["accept_failed"]
    assert "unsigned" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = ground(satellite, "send", "power.switch", "channel=9", "on=true")
    assert proc.returncode == 1 and "channel = 9 is above the maximum 7" in proc.stderr
    proc = ground(satellite, "send", "link.use_key", "key_id=2")
    assert proc.returncode == 1 and "hazardous: pass --yes" in proc.stderr
    script = tmp_path / "fail.txt"
    script.write_text("send fsw.noop\nwait power.soc_pct < 0 timeout=0.5\n")
    proc = ground(satellite, "script", str(script))
    assert proc.returncode == 1
    assert "line 2: wait power.soc_pct: not met in 0.5 s (last value:" in proc.stderr


def test_garbage_on_the_link_is_counted_and_never_crashes_either_side(satellite) -> None:
    host, port = satellite.url.removeprefix("tcp://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as raw:
        raw.sendall(b"\xff" * 50)  # no packet starts here
        raw.sendall(bytes.fromhex("1810c0000006") + b"\x00" * 7)  # a header, a bad CRC
    assert ground(satellite, "send", "fsw.noop").returncode == 0  # a new ground connects
    assert ground(satellite, "send", "fsw.noop", keys=False).returncode == 1
    report = satellite.stop()
    link = report["space_link"]
    assert link["rejected"] == {"malformed": 1, "unsigned": 1}
    assert link["tc_accepted"] == 1 and link["tm_sent"] > 10
    assert report["flight"]["command_log"][-1]["command"] == "fsw.noop"


def watching(sat: Sim) -> subprocess.Popen[str]:
    return subprocess.Popen([SKYRACK, "ground", "--link", sat.url, "--archive", sat.archive,
                             "watch", "--seconds", "120", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_lines(proc: subprocess.Popen[str], seconds: float) -> list[tuple[float, dict]]:
    """What the watch prints in its first `seconds`, each line with the wall time it was
    read."""
    import time

    assert proc.stdout is not None
    lines: list[tuple[float, dict]] = []
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        lines.append((time.monotonic(), json.loads(line)))
    return lines


def archived_hk_times(path: str) -> list[float]:
    import sqlite3

    with sqlite3.connect(path) as db:
        return [t for (t,) in db.execute(
            "SELECT t_s FROM packets WHERE service = 3 AND subtype = 25")]


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_watch_stopped_by_a_signal_archives_every_packet_it_received(satellite, sig) -> None:
    import signal
    import sqlite3

    watch = watching(satellite)
    printed = read_lines(watch, 1.0)
    watch.send_signal(getattr(signal, sig))
    out, err = watch.communicate(timeout=30)
    assert watch.returncode == 0, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"watch stopped by {sig}" in err and "all archived" in err
    received = int(err.split("; ")[1].split()[0])
    with sqlite3.connect(satellite.archive) as db:
        (total,) = db.execute("SELECT count(*) FROM packets").fetchone()
    assert total == received > 0
    hk = [record["t_s"] for _, record in printed if "housekeeping" in record]
    assert set(hk) <= set(archived_hk_times(satellite.archive)) and hk


def test_a_ground_killed_outright_loses_at_most_about_a_second(satellite) -> None:
    import time

    watch = watching(satellite)
    printed = read_lines(watch, 3.5)
    watch.kill()
    killed = time.monotonic()
    watch.communicate(timeout=30)
    archived = set(archived_hk_times(satellite.archive))
    older = [r["t_s"] for read_s, r in printed if "housekeeping" in r and read_s < killed - 1.5]
    assert older and set(older) <= archived


def test_a_damaged_ground_counter_file_is_named_and_nothing_is_sent(satellite) -> None:
    Path(f"{satellite.keys}.counter-1").write_text("12ab\n")
    proc = ground(satellite, "send", "fsw.noop")
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert f"{satellite.keys}.counter-1 is damaged ('12ab')" in proc.stderr
    assert satellite.stop()["space_link"]["tc_received"] == 0


def test_keys_new_makes_a_private_file_and_never_overwrites_one(tmp_path) -> None:
    path = tmp_path / "ops.json"
    made = skyrack("keys", "new", str(path), "--count", "3", "--spacecraft-id", "5", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout) == {"ok": True, "file": str(path), "spacecraft_id": 5,
                                       "keys": [1, 2, 3], "active": 1, "schema": 1}
    assert KeyFile.load(path).spacecraft == 5
    assert os.stat(path).st_mode & 0o777 == 0o600
    before = path.read_text()
    again = skyrack("keys", "new", str(path))
    assert again.returncode == 1 and "is never overwritten" in again.stderr
    assert path.read_text() == before


def test_a_key_file_others_can_read_is_refused_by_the_ground(satellite, tmp_path) -> None:
    leaky = tmp_path / "leaky.json"
    leaky.write_text(open(satellite.keys).read())
    os.chmod(leaky, 0o644)
    proc = skyrack("ground", "--link", satellite.url, "--archive", satellite.archive,
                   "--keys", str(leaky), "send", "fsw.noop")
    assert proc.returncode == 1
    assert "mode 0644 lets other users read or change the keys" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_sims_throwaway_keys_go_when_it_stops() -> None:
    sim = Sim()
    keys = sim.keys
    assert os.path.exists(keys) and os.stat(keys).st_mode & 0o777 == 0o600
    sim.stop()
    assert not os.path.exists(keys) and not os.path.exists(os.path.dirname(keys))


def test_operators_sending_at_once_each_get_their_own_reports(satellite) -> None:
    """Eight ground processes at once, two stations (source ids 1 and 2), each of the
    first station's sharing one key file: every one ends on its own command's outcome,
    none on another's, and none is refused as a replay."""
    def start(source: int, ok: bool) -> subprocess.Popen[str]:
        command = ["fsw.noop"] if ok else ["link.use_key", "key_id=9", "--yes"]
        return subprocess.Popen(
            [SKYRACK, "ground", "--link", satellite.url, "--archive", satellite.archive,
             "--keys", satellite.keys, "--source-id", str(source), "send", *command,
             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    plan = [(source, ok) for source in (1, 2) for ok in (True, False, True, False)]
    procs = [start(source, ok) for source, ok in plan]
    for (_, ok), proc in zip(plan, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        result = json.loads(out)
        if ok:
            assert proc.returncode == 0, err
            assert result["stages"] == ["accepted", "started", "completed"]
        else:
            assert proc.returncode == 1 and "key 9 is not on board" in err, err
            assert result["stages"] == ["accepted", "started", "failed"]
    # Each station's sequence counts, taken under the key file's lock, never repeat.
    assert {Path(f"{satellite.keys}.seq-{s}").read_text() for s in (1, 2)} == {"3\n"}
    link = satellite.stop()["space_link"]
    assert link["tc_accepted"] == len(plan) and link["tc_rejected"] == 0


def test_a_stock_tool_commands_the_satellite_through_the_signing_gateway(satellite) -> None:
    """tmtccmd's TCP client, sending spacepackets' unsigned TCs as YAMCS would, through
    `skyrack ground gateway`: its TC completes, and the TM it reads is the satellite's."""
    from spacepackets.ccsds.spacepacket import PacketId, PacketType
    from spacepackets.ecss import PusTc, PusTm
    from tmtccmd.com.tcp import TcpSpacepacketsClient
    from tmtccmd.com.tcpip_utils import EthAddr

    from hal.pus import APID
    from tests.doubles import subtype_of

    gateway = subprocess.Popen([SKYRACK, "ground", "--link", satellite.url, "--keys",
                                satellite.keys, "--source-id", "4", "gateway", "--listen",
                                "tcp://127.0.0.1:0", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert gateway.stdout is not None
    started = json.loads(gateway.stdout.readline())
    _, host, port = started["listen"].rsplit(":", 2)
    tool = TcpSpacepacketsClient("yamcs-like", [PacketId(PacketType.TM, True, APID)], 0.01,
                                 EthAddr(host.removeprefix("//"), int(port)))
    tool.open()
    try:
        tc = PusTc(17, 1, apid=APID, seq_count=300).pack()
        tool.send(tc)
        stages: list[int] = []
        deadline = time.monotonic() + 20
        while 7 not in stages and time.monotonic() < deadline:
            time.sleep(0.05)
            for raw in tool.receive():
                tm = PusTm.unpack(raw, timestamp_len=6)
                if tm.service == 1 and tm.source_data[:4] == tc[:4]:
                    stages.append(subtype_of(tm))
        assert stages == [1, 3, 7]
    finally:
        tool.close()
        gateway.terminate()
    out, err = gateway.communicate(timeout=30)
    assert gateway.returncode == 0, err
    counters = json.loads(out.splitlines()[-1])["counters"]
    assert counters["tc_signed"] == 1 and counters["tm_forwarded"] >= 3


def test_every_pus_service_has_a_verb(satellite) -> None:
    def run(*argv: str) -> dict:
        proc = ground(satellite, *argv, "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    assert run("ping")["round_trip_s"] > 0
    once = run("hk", "once", "power")["housekeeping"]
    assert 20 < once["power.batt_v"] < 40
    assert run("hk", "interval", "power", "--ms", "500")["stages"][-1] == "completed"
    assert run("hk", "disable", "thermal")["components"] == ["thermal"]
    assert run("hk", "enable", "thermal")["stages"][-1] == "completed"
    assert run("param", "set", "link.replay_window=2048")["set"] == {"link.replay_window": 2048}
    assert run("param", "get", "link.replay_window")["parameters"] == {
        "link.replay_window": 2048}
    listed = run("param", "list")["parameters"]
    assert listed["link.replay_window"] == {
        "value": 2048, "default": 1024, "unit": None,
        "description": "How far above the last counter a TC's counter may jump"}
    assert len(listed) == 33
    assert run("schedule", "at", "100000", "fsw.noop")["release_s"] == 100000
    (item,) = run("schedule", "list")["scheduled"]
    assert item["command"] == "fsw.noop" and item["release_s"] == 100000
    run("schedule", "delete", f"{item['apid']}:{item['seq_count']}")
    assert run("schedule", "list")["scheduled"] == []
    refused = ground(satellite, "schedule", "delete", "16:9999")
    assert refused.returncode == 1 and "not scheduled" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    store = run("store", "summary")["store"]
    assert store["capacity_octets"] == 4096 * 1024 and store["packets"] == 0
    for action in ("disable", "enable", "playback", "clear"):
        assert run("store", action)["stages"][-1] == "completed"


def test_script_check_catches_a_typo_on_the_last_line_before_the_first_is_sent(
        satellite, tmp_path) -> None:
    script = tmp_path / "pass.txt"
    script.write_text("send power.switch channel=2 on=true\nwait power.batt_v > 20\n"
                      "expect power.switch_changed\nsend fsw.nop\n")
    checked = skyrack("ground", "script", "--check", str(script))
    assert checked.returncode == 1 and "line 4: unknown command 'fsw.nop'" in checked.stderr
    ran = ground(satellite, "script", str(script))
    assert ran.returncode == 1 and "line 4: unknown command 'fsw.nop'" in ran.stderr
    for bad, why in [("wait mode.mode > 2", "mode.mode is enum, not a number"),
                     ("wait power.bat_v > 2", "unknown telemetry point 'power.bat_v'"),
                     ("expect power.latchupp", "unknown event 'power.latchupp'"),
                     ("send power.switch channel=9 on=true", "above the maximum 7"),
                     ("sleep -1", "outside 0..86400"), ("fly me", "cannot read")]:
        script.write_text(f"send fsw.noop\n{bad}\n")
        proc = skyrack("ground", "script", "--check", str(script), "--json")
        assert proc.returncode == 1 and "line 2: " in proc.stderr and why in proc.stderr, \
            (bad, proc.stderr)
    script.write_text("send fsw.noop\nexpect fsw.noop timeout=5\n")
    assert json.loads(skyrack("ground", "script", "--check", str(script), "--json")
                      .stdout) == {"ok": True, "file": str(script), "steps": 2, "schema": 1}
    assert satellite.stop()["space_link"]["tc_received"] == 0  # nothing was ever sent


def test_send_shows_what_a_command_answers(satellite) -> None:
    submitted = json.loads(ground(satellite, "send", "compute.submit", "workload=mlp",
                                  "seed=4", "--json").stdout)
    job = submitted["job"]
    assert job >= 1 and submitted["answers"][0]["name"] == "compute.job_submitted"
    proc = ground(satellite, "send", "compute.query", f"job={job}")
    assert proc.returncode == 0, proc.stderr
    assert f"compute.job_status job={job} workload=mlp" in proc.stdout
    listed = json.loads(ground(satellite, "send", "compute.list", "--json").stdout)
    assert job in {a["args"]["job"] for a in listed["answers"]}
