"""The ground server: one owner of the link and the archive, many clients. Its logic
on an in-process satellite, its HTTP and WebSocket API through aiohttp's own test
client, and the CLI against a flying sim."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from boards.definition import default_path, load
from ground.client import Signer
from ground.server import GroundServer
from hal.auth import KeyFile
from hal.packetlink import InProcessLink
from skyrack.assembly import assemble

aiohttp = pytest.importorskip("aiohttp")
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from ground.web import make_app  # noqa: E402

KEYS = KeyFile(1, {1: bytes(range(32))})


@pytest.fixture
def rig(tmp_path):
    """(satellite, ground server) joined by an in-process link."""
    flight_end, ground_end = InProcessLink.pair()
    satellite = assemble(load(default_path()), seed=1, link=flight_end, keys=KEYS)
    server = GroundServer(ground_end, satellite.flight.dictionary(),
                          Signer(1, KEYS.keys[1]), str(tmp_path / "archive.sqlite"))
    yield satellite, server
    server.close()
    satellite.close()


def run(satellite, server, seconds: float = 2.0) -> None:
    end = satellite.clock.now_s() + seconds
    while satellite.clock.now_s() < end:
        satellite.run_until(satellite.clock.now_s() + 0.1)
        server.step()


def test_each_sender_is_told_of_its_own_commands_and_every_client_hears_everything(
        rig, tmp_path) -> None:
    satellite, server = rig
    alice, bob, console = server.attach("alice"), server.attach("bob"), server.attach("web")
    mine = server.send("alice", "power.switch", {"channel": 2, "on": True})
    theirs = server.send("bob", "compute.cancel", {"job": 7})
    run(satellite, server)
    assert mine.sent.stages == ["accepted", "started", "completed"]
    assert theirs.sent.stages == ["accepted", "started", "failed"]
    for stream in (alice, bob, console):
        messages = stream.take()
        kinds = {m["type"] for m in messages}
        assert kinds == {"hk", "event", "command"}
        finals = {m["sender"]: m for m in messages if m["type"] == "command" and m["done"]}
        assert finals["alice"]["ok"] and finals["bob"]["failure"] == "failed: no job 7"
        assert any(m["type"] == "event" and m["name"] == "power.switch_changed"
                   for m in messages)
    assert server.counts.by_sender == {"alice": 1, "bob": 1}
    server.archive.flush()
    db = sqlite3.connect(server.archive.path)
    stages = dict(db.execute("SELECT name, stages FROM commands"))
    assert stages == {"power.switch": "accepted started completed",
                      "compute.cancel": "accepted started failed"}
    assert db.execute("SELECT count(*) FROM packets").fetchone()[0] == server.counts.tm > 0


def test_a_client_that_does_not_read_is_coalesced_then_loses_its_own_oldest_only(rig) -> None:
    satellite, server = rig
    slow, fast = server.attach("slow", limit=10), server.attach("fast")
    fast_seen: list[dict] = []
    for _ in range(6):
        run(satellite, server, 0.5)
        fast_seen += fast.take()
    taken = slow.take()
    # behind, its housekeeping is the latest packet of each structure: values current
    assert slow.coalesced > 0 and fast.coalesced == 0 and fast.dropped == 0
    def last_of_each_structure(messages: list[dict]) -> dict[tuple, dict]:
        return {tuple(m["values"]): m for m in messages if m["type"] == "hk"}

    assert last_of_each_structure(taken) == last_of_each_structure(fast_seen)
    assert len(fast_seen) > len(taken) > 0
    # events and command updates are never coalesced: past the limit the oldest go
    tiny = server.attach("tiny", limit=4)
    for job in range(6):
        server.send("alice", "compute.cancel", {"job": 100 + job})
    assert tiny.dropped == 2 and [m["args"]["job"] for m in tiny.take()] == [102, 103,
                                                                             104, 105]


def test_a_command_the_dictionary_refuses_is_not_sent(rig) -> None:
    satellite, server = rig
    with pytest.raises(ValueError, match="channel = 9 is above the maximum 7"):
        server.send("alice", "power.switch", {"channel": 9, "on": True})
    assert server.counts.refused == 1 and server.commands == {}
    run(satellite, server, 0.5)
    assert satellite.flight.space_link.counters["tc_received"] == 0


def test_the_http_and_websocket_api(rig) -> None:
    satellite, server = rig

    async def scenario() -> None:
        client = TestClient(TestServer(make_app(server)))
        await client.start_server()
        try:
            ws = await client.ws_connect("/api/stream?client=console")
            bad = await client.post("/api/commands", json={"sender": "x", "command": "nope"})
            assert bad.status == 400 and "unknown command 'nope'" in (await bad.json())["error"]
            assert (await client.post("/api/commands", data=b"{")).status == 400
            assert (await client.get("/api/commands/99")).status == 404
            sent = await client.post("/api/commands", json={
                "sender": "alice", "command": "power.switch", "args": {"channel": 2, "on": True}})
            assert sent.status == 202
            command_id = (await sent.json())["id"]
            seen: list[dict] = []
            for _ in range(100):  # the server's own loop runs the link; run the satellite
                satellite.run_until(satellite.clock.now_s() + 0.1)
                await asyncio.sleep(0.03)
                while True:
                    try:
                        seen += await ws.receive_json(timeout=0.01)  # a frame: a list
                    except TimeoutError:
                        break
                if any(m["type"] == "command" and m["done"] for m in seen) and any(
                        m["type"] == "hk" and "power.switches" in m["values"]
                        and (m["values"]["power.switches"] or 0) & 0b100 for m in seen):
                    break
            final = await (await client.get(f"/api/commands/{command_id}")).json()
            assert final["stages"] == ["accepted", "started", "completed"]
            assert {m["type"] for m in seen} >= {"hk", "command"}
            points = (await (await client.get("/api/telemetry")).json())["points"]
            assert points["power.switches"]["value"] & 0b100
            events = (await (await client.get("/api/events?severity=info")).json())["events"]
            assert "power.switch_changed" in {e["name"] for e in events}
            assert (await client.get("/api/events?severity=loud")).status == 400
            status = await (await client.get("/api/status")).json()
            assert status["clients"] == ["console"] and status["by_sender"] == {"alice": 1}
            spec = await (await client.get("/api/openapi.json")).json()
            assert spec["openapi"].startswith("3.") and "/api/stream" in spec["paths"]
            await ws.close()
        finally:
            await client.close()

    asyncio.run(scenario())


SKYRACK = str(Path(sys.executable).parent / "skyrack")


def start_server(sim, archive: Path) -> tuple[subprocess.Popen[str], str]:
    """`ground serve` on the sim's link; the process and the URL it serves on."""
    serve = subprocess.Popen([SKYRACK, "ground", "--link", sim.url, "--keys", sim.keys,
                              "--archive", str(archive), "serve", "--listen",
                              "http://127.0.0.1:0", "--json"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert serve.stdout is not None
    line = serve.stdout.readline()
    assert line, serve.stderr.read() if serve.stderr else ""
    return serve, json.loads(line)["listen"]


def start_mission(sims: dict, work: Path) -> tuple[subprocess.Popen[str], str]:
    """`ground serve --mission` for the sims (by name), one archive; the process and
    the URL it serves on."""
    text = f'name = "test mission"\narchive = "{work / "mission.sqlite"}"\n'
    for name, sim in sims.items():
        text += f'\n[[satellite]]\nname = "{name}"\nlink = "{sim.url}"\nkeys = "{sim.keys}"\n'
    (work / "mission.toml").write_text(text)
    with open(work / "serve.err", "w") as err:  # read back if it goes: ended()
        serve = subprocess.Popen([SKYRACK, "ground", "serve", "--mission",
                                  str(work / "mission.toml"), "--listen", "http://127.0.0.1:0",
                                  "--json"], stdout=subprocess.PIPE, stderr=err, text=True)
    assert serve.stdout is not None
    line = serve.stdout.readline()
    assert line, (work / "serve.err").read_text()
    return serve, json.loads(line)["listen"]


def ended(serve: subprocess.Popen[str], work: Path) -> str:
    """How a server that should still run ended ("" while it runs): for a test's report."""
    if serve.poll() is None:
        return ""
    err = work / "serve.err"
    return f"ground serve exited {serve.returncode}: " + (err.read_text() if err.exists() else "")


def wait_attached(url: str, client: str, timeout_s: float = 30.0) -> None:
    """Until the server counts `client` among its stream's clients."""
    deadline = time.monotonic() + timeout_s
    while client not in json.loads(urllib.request.urlopen(url + "/api/status").read())[
            "clients"]:
        assert time.monotonic() < deadline, f"{client} never attached"
        time.sleep(0.1)


def test_operators_send_through_one_server_while_it_archives(tmp_path) -> None:
    """`ground serve` against a flying sim; two operators' `send --server` at once."""
    from tests.skyrack.test_ground_cli import Sim

    sim = Sim()
    serve, url = start_server(sim, tmp_path / "a.sqlite")
    try:

        def send(sender: str, *command: str) -> subprocess.Popen[str]:
            return subprocess.Popen([SKYRACK, "ground", "--server", url, "--sender", sender,
                                     "send", *command, "--json"], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)

        watch = subprocess.Popen([SKYRACK, "ground", "--server", url, "--sender", "carol",
                                  "watch", "--component", "power", "--seconds", "8", "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_attached(url, "carol")
        procs = [send("alice", "fsw.noop"), send("bob", "compute.cancel", "job=7"),
                 send("alice", "power.switch", "channel=2", "on=true"),
                 send("bob", "fsw.noop")]
        results = [(p.wait(60), json.loads(p.communicate()[0])) for p in procs]
        assert [rc for rc, _ in results] == [0, 1, 0, 0]
        assert results[1][1]["error"] == "compute.cancel: failed: no job 7"
        seen, err = watch.communicate(timeout=60)
        assert watch.returncode == 0, err
        lines = [json.loads(line) for line in seen.splitlines()]
        hk = [line["housekeeping"] for line in lines if "housekeeping" in line]
        assert hk and all(k.startswith("power.") for h in hk for k in h)
        assert "power.switch_changed" in {line.get("event") for line in lines}
        # The archive, read through the server that writes it.

        def read(*argv: str) -> dict:
            proc = subprocess.run([SKYRACK, "ground", "--server", url, *argv, "--json"],
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr
            return json.loads(proc.stdout)

        history = read("history")["commands"]
        assert sorted(c["command"] for c in history) == [
            "compute.cancel", "fsw.noop", "fsw.noop", "power.switch"]
        assert all(20 < v < 40 for _, v in read("query", "power.batt_v")["samples"])
        named = read("events", "--name", "power.switch_changed")["events"]
        assert named and {e["spacecraft"] for e in named} == {1}
        timeline = read("timeline", "--since", "2000-01-01T00:00Z", "--point",
                        "power.switches")
        assert {c["sender"] for c in timeline["commands"]} == {"alice", "bob"}
        assert {r["point"] for r in timeline["telemetry"]} == {"power.switches"}
        assert [s["boot"] for s in read("sessions")["sessions"]] == [1]
        refused = subprocess.run([SKYRACK, "ground", "--server", url, "export",
                                  "power.batt_v", "-o", str(tmp_path / "x.csv")],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "reads the archive file" in refused.stderr
        serve.terminate()
        out, err = serve.communicate(timeout=30)
        assert serve.returncode == 0, err
        assert json.loads(out.splitlines()[-1])["commands"] == 4
        db = sqlite3.connect(tmp_path / "a.sqlite")
        assert db.execute("SELECT count(*) FROM commands").fetchone()[0] == 4
    finally:
        if serve.poll() is None:
            serve.kill()
        sim.stop()


def test_two_operators_and_a_console_for_ten_minutes_of_sim_time(tmp_path) -> None:
    """The issue's soak: a sim at 60x, one ground server, two operators sending through
    its API as fast as their commands complete, and a console on its stream, for 600 s
    of on-board time. No crash, no packet lost (by the sequence counts), every event
    the server archived reached the console, and each operator's commands carry its
    own reports."""
    import threading

    from ground.remote import ServerClient
    from tests.skyrack.test_ground_cli import Sim

    sim = Sim("--speed", "60")
    serve, url = start_server(sim, tmp_path / "a.sqlite")
    try:
        server = ServerClient(url)
        console_events: list[dict] = []
        watch = subprocess.Popen([SKYRACK, "ground", "--server", url, "--sender", "console",
                                  "watch", "--seconds", "14", "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_attached(url, "console")
        sent: dict[str, list[int]] = {"alice": [], "bob": []}
        errors: list[str] = []

        until = time.monotonic() + 10.0  # 600 s of on-board time at 60x

        def operator(name: str, commands: list[tuple[str, dict]]) -> None:
            i = 0
            while time.monotonic() < until:
                command, args = commands[i % len(commands)]
                i += 1
                try:
                    answer = server.send(name, command, args)
                    sent[name].append(answer["id"])
                    server.wait(answer["id"], 20)
                except Exception as e:  # any failure of the API fails the test
                    errors.append(f"{name}: {e}")
                    return

        threads = [threading.Thread(target=operator, args=("alice", [
                       ("fsw.noop", {}), ("power.switch", {"channel": 3, "on": True}),
                       ("power.switch", {"channel": 3, "on": False})])),
                   threading.Thread(target=operator, args=("bob", [
                       ("compute.list", {}), ("compute.cancel", {"job": 99}),
                       ("thermal.heater", {"heater": 1, "on": True})]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        out, err = watch.communicate(timeout=60)
        assert watch.returncode == 0, err
        console_events = [json.loads(line) for line in out.splitlines() if '"event"' in line]
        commands = {c["id"]: c for c in server._call("GET", "/api/commands")["commands"]}
        for name, ids in sent.items():
            assert len(ids) >= 20
            for command_id in ids:
                c = commands[command_id]
                assert c["sender"] == name and c["done"], c
                expected = ["accepted", "started", "failed" if c["command"] ==
                            "compute.cancel" else "completed"]
                assert c["stages"] == expected, c
        status = server._call("GET", "/api/status")
        assert status["tm_lost"] == 0 and status["undecoded"] == 0
        assert not any(status["dropped"].values()) and not any(status["coalesced"].values())
        assert status["tm"] > 600  # at least a packet a second of on-board time
        # Every event the server received while the console watched reached the console.
        events = server._call("GET", "/api/events")["events"]
        watched = {(e["t_s"], e["event"]) for e in console_events}
        during = [(e["t_s"], e["name"]) for e in events
                  if console_events and e["t_s"] >= console_events[0]["t_s"]
                  and e["t_s"] <= console_events[-1]["t_s"]]
        assert during and set(during) <= watched
        assert serve.poll() is None  # no crash
    finally:
        serve.terminate()
        serve.wait(30)
        report = sim.stop()
    assert report["space_link"]["tc_rejected"] == 0


def test_an_archive_writer_killed_under_the_server_is_counted_and_the_server_serves_on(
        rig) -> None:
    """kill -9 of the archive's process: each write after it is a counted archive error
    (said once in the log), and the link, the streams and commanding go on; closing
    still lets go of the link."""
    import os
    import signal

    satellite, server = rig
    stream = server.attach("op")
    run(satellite, server, 1.0)
    os.kill(server.archive._writer._process.pid, signal.SIGKILL)
    server.archive._writer._process.wait(10)
    tm_before = server.counts.tm
    sent = server.send("op", "fsw.noop")
    run(satellite, server, 2.0)
    assert server.counts.archive_errors > 0 and "writer has stopped" in server.archive_error
    assert server.counts.tm > tm_before and sent.sent.ok
    assert any(m["type"] == "hk" for m in stream.take())
    server.close()  # no exception: counted
    assert server.client.link.peer is None
