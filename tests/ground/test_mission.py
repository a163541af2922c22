"""A mission of several satellites on one ground server: the mission file, each
satellite's link, keys and archive rows its own, and "what happened between two UTC
times on satellite 2" answered from the one archive."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import subprocess

import pytest

from boards.definition import default_path, load
from ground import mission
from ground.archive import Archive
from ground.client import Signer
from ground.server import GroundServer
from hal.auth import KeyFile
from hal.errors import InputError
from hal.packetlink import InProcessLink
from skyrack.assembly import assemble

aiohttp = pytest.importorskip("aiohttp")
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from ground.web import make_app  # noqa: E402
from tests.ground.test_server import SKYRACK, start_mission  # noqa: E402


def _keys(tmp_path, spacecraft: int) -> str:
    path = tmp_path / f"k{spacecraft}.json"
    KeyFile.generate(spacecraft=spacecraft).save_new(path)
    return str(path)


def test_a_mission_file_names_each_satellite_its_link_and_its_keys(tmp_path) -> None:
    k1, k2 = _keys(tmp_path, 1), _keys(tmp_path, 2)
    path = tmp_path / "m.toml"
    path.write_text('name = "pathfinder"\narchive = "m.sqlite"\nsource_id = 7\n'
                    '[[satellite]]\nname = "a"\nlink = "tcp://h:1"\nkeys = "k1.json"\n'
                    '[[satellite]]\nname = "b"\nlink = "tcp://h:2"\nkeys = "k2.json"\nkey_id = 2\n'
                    '[[satellite]]\nname = "c"\nlink = "serial:/dev/ttyUSB0"\nspacecraft = 9\n')
    m = mission.load(str(path))
    assert m.name == "pathfinder" and m.archive == str(tmp_path / "m.sqlite")
    assert m.source_id == 7 and m.listen is None
    assert [(s.name, s.spacecraft, s.keys, s.key_id) for s in m.satellites] == [
        ("a", 1, k1, None), ("b", 2, k2, 2), ("c", 9, None, None)]


@pytest.mark.parametrize("text, message", [
    ('archive = "a"\n[[satellite]]\nname = "a"\nlink = "x"\nspacecraft = 1\n', "name missing"),
    ('name = "m"\narchive = "a"\n', "no [[satellite]]"),
    ('name = "m"\narchive = "a"\ncolour = 1\n[[satellite]]\n', "unknown key 'colour'"),
    ('name = "m"\narchive = "a"\n[[satellite]]\nname = "a"\nspacecraft = 1\n',
     "satellite 'a': link missing"),
    ('name = "m"\narchive = "a"\n[[satellite]]\nname = "a"\nlink = "x"\n',
     "give keys (its key file names its spacecraft) or spacecraft"),
    ('name = "m"\narchive = "a"\n[[satellite]]\nname = "a"\nlink = "x"\nkeys = "k1.json"\n'
     'spacecraft = 3\n', "spacecraft = 3, but its key file is for spacecraft 1"),
    ('name = "m"\narchive = "a"\n[[satellite]]\nname = "a"\nlink = "x"\nkeys = "none.json"\n',
     "none.json: No such file"),
    ('name = "m"\narchive = "a"\n[[satellite]]\nname = "a"\nlink = "x"\nspacecraft = 1\n'
     '[[satellite]]\nname = "a"\nlink = "y"\nspacecraft = 2\n', "the same name"),
    ('name = "m"\narchive = "a"\n[[satellite]]\nname = "a"\nlink = "x"\nspacecraft = 1\n'
     '[[satellite]]\nname = "b"\nlink = "y"\nspacecraft = 1\n', "the same spacecraft (1)"),
    ('name = "m"\narchive = "a"\n[[satellite]]\nname = "a"\nlink = "x"\nspacecraft = 1024\n',
     "spacecraft id 1024 outside"),
    ('name = "m"\narchive = "a"\n[[satellite]]\nname = "a"\nlink = "x"\nspacecraft = 1\n'
     'paint = "red"\n', "unknown key 'paint'"),
    ('name = "m" archive', "not TOML"),
])
def test_a_bad_mission_file_is_refused_in_one_line(tmp_path, text, message) -> None:
    _keys(tmp_path, 1)
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        mission.load(str(path))
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


@pytest.fixture
def two(tmp_path):
    """Two in-process satellites (spacecraft 1 and 2, keys of their own), each with
    its ground server, sharing command ids and one archive file."""
    import itertools

    ids = itertools.count(1)
    rig = {}
    for n in (1, 2):
        keys = KeyFile(1, {1: bytes([n]) * 32}, spacecraft=n)
        flight_end, ground_end = InProcessLink.pair()
        definition = dataclasses.replace(load(default_path()), spacecraft_id=n)
        sat = assemble(definition, seed=n, link=flight_end, keys=keys)
        server = GroundServer(ground_end, sat.flight.dictionary(),
                              Signer(1, keys.keys[1], spacecraft=n),
                              str(tmp_path / "mission.sqlite"), name=f"sat-{n}", ids=ids)
        rig[f"sat-{n}"] = (sat, server)
    yield rig
    for sat, server in rig.values():
        server.close()
        sat.close()


def test_one_api_for_two_satellites_each_commanded_and_archived_as_itself(two) -> None:
    servers = {name: server for name, (_, server) in two.items()}

    async def scenario() -> None:
        client = TestClient(TestServer(make_app(servers)))
        await client.start_server()
        try:
            listed = (await (await client.get("/api/satellites")).json())["satellites"]
            assert [(s["name"], s["spacecraft"]) for s in listed] == [("sat-1", 1), ("sat-2", 2)]
            ws = await client.ws_connect("/api/stream?client=op&satellite=sat-2")
            sent = await client.post("/api/commands", json={
                "sender": "op", "satellite": "sat-2", "command": "power.switch",
                "args": {"channel": 3, "on": True}})
            assert sent.status == 202
            other = await client.post("/api/commands?satellite=sat-1", json={
                "sender": "op", "command": "fsw.noop"})
            ids = {(await sent.json())["id"], (await other.json())["id"]}
            assert len(ids) == 2  # the mission's ids: no two satellites share one
            missing = await client.get("/api/telemetry?satellite=sat-9")
            assert missing.status == 404
            assert "no satellite 'sat-9' in this mission (it has sat-1, sat-2)" in (
                await missing.json())["error"]
            seen: list[dict] = []
            for _ in range(60):
                for sat, _ in two.values():
                    sat.run_until(sat.clock.now_s() + 0.1)
                await asyncio.sleep(0.03)
                while True:
                    try:
                        seen += await ws.receive_json(timeout=0.01)
                    except TimeoutError:
                        break
                if any(m["type"] == "hk" and (m["values"].get("power.switches") or 0) & 0b1000
                       for m in seen):
                    break
            assert seen and {m["satellite"] for m in seen} == {"sat-2"}
            done = [m for m in seen if m["type"] == "command" and m["done"]]
            assert done[-1]["command"] == "power.switch" and done[-1]["ok"]
            for command_id in ids:  # any satellite's command, by its id alone
                assert (await client.get(f"/api/commands/{command_id}")).status == 200
            await ws.close()
        finally:
            await client.close()

    asyncio.run(scenario())
    on_board = {name: server.client.values["power.switches"][1]
                for name, (_, server) in two.items()}
    assert on_board["sat-2"] & 0b1000 and not on_board["sat-1"] & 0b1000
    archive = Archive(two["sat-1"][1].archive.path)  # the servers closed with the app
    window = archive.timeline(0, 1e12, spacecraft=2, names=["power.switches"])
    assert window["telemetry"] and {r["spacecraft"] for r in window["telemetry"]} == {2}
    assert [c["command"] for c in window["commands"]] == ["power.switch"]
    assert {e["spacecraft"] for e in window["events"]} == {2}
    mine = archive.query("power.switches", spacecraft=2)
    assert mine[-1][1] & 0b1000 and not archive.query("power.switches",
                                                      spacecraft=1)[-1][1] & 0b1000


def test_ground_serve_mission_from_the_cli(tmp_path) -> None:
    """Two flying sims, one `ground serve --mission`: each operator's command goes to
    the satellite named, and the archive says what happened on satellite 2."""
    from tests.skyrack.test_ground_cli import Sim

    sims = {"sat-1": Sim(), "sat-2": Sim("--spacecraft-id", "2")}
    serve, url = start_mission(sims, tmp_path)
    try:
        def ground(*argv: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([SKYRACK, "ground", "--server", url, *argv],
                                  capture_output=True, text=True, timeout=60)

        sent = ground("--satellite", "sat-2", "send", "compute.cancel", "job=7", "--json")
        assert sent.returncode == 1 and json.loads(sent.stdout)["stages"] == [
            "accepted", "started", "failed"]
        wrong = ground("--satellite", "sat-3", "send", "fsw.noop")
        assert wrong.returncode == 1 and "no satellite 'sat-3'" in wrong.stderr
        timeline = ground("timeline", "--spacecraft", "2", "--point", "fsw.ticks", "--json")
        assert timeline.returncode == 0, timeline.stderr
        window = json.loads(timeline.stdout)
        assert [c["command"] for c in window["commands"]] == ["compute.cancel"]
        assert window["telemetry"] and {r["spacecraft"] for r in window["telemetry"]} == {2}
        both = ground("timeline", "--point", "fsw.ticks", "--json")
        assert {r["spacecraft"] for r in json.loads(both.stdout)["telemetry"]} == {1, 2}
        refused = subprocess.run([SKYRACK, "ground", "--link", "tcp://127.0.0.1:1", "serve",
                                  "--mission", str(tmp_path / "mission.toml")],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 1 and "--link is not for it" in refused.stderr
    finally:
        serve.terminate()
        assert serve.wait(30) == 0
        for sim in sims.values():
            sim.stop()


def test_the_example_mission_loads_beside_its_key_files(tmp_path) -> None:
    import shutil
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "mission.toml"
    shutil.copy(example, tmp_path / "mission.toml")
    for n in (1, 2):
        KeyFile.generate(spacecraft=n).save_new(tmp_path / f"sat-{n}.keys.json")
    m = mission.load(str(tmp_path / "mission.toml"))
    assert [(s.name, s.spacecraft, s.link) for s in m.satellites] == [
        ("sat-1", 1, "tcp://127.0.0.1:5561"), ("sat-2", 2, "tcp://127.0.0.1:5562")]
    assert m.listen == "http://127.0.0.1:8600" and m.archive == str(tmp_path / "pathfinder.sqlite")
