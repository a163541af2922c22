"""The bench workflow: `skyrack board serve`, `skyrack flash` and `skyrack fly`, each its
own process, talking over pseudo-terminals exactly as over USB serial ports."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

SKYRACK = str(Path(sys.executable).parent / "skyrack")
BOARDS = Path(__file__).resolve().parents[2] / "boards"
DEFINITION = str(BOARDS / "sim.toml")

pytestmark = pytest.mark.skipif(not sys.platform.startswith(("linux", "darwin")),
                                reason="pseudo-terminals need Linux or macOS")


def skyrack(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SKYRACK, *argv], capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def served_thermal() -> Iterator[str]:
    """The emulated thermal board on a pty, its world at 10x real time (the 10 s trial
    window then passes in 1 s)."""
    proc = subprocess.Popen([SKYRACK, "board", "serve", "--board", f"{DEFINITION}:thermal",
                             "--speed", "10", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        yield json.loads(line)["serving"]["thermal"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["ok"] and summary["served_s"] > 0


def build(tmp_path: Path, version: str, payload: bytes, kind: str = "thermal") -> str:
    (tmp_path / "payload.bin").write_bytes(payload)
    out = str(tmp_path / f"{kind}-{version}.img")
    proc = skyrack("image", "build", str(tmp_path / "payload.bin"), "--kind", kind,
                   "--version", version, "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["payload_bytes"] == len(payload)
    return out


def test_an_image_flashed_over_a_pty_boots_and_confirms(served_thermal, tmp_path) -> None:
    img = build(tmp_path, "2.3.4", bytes(range(256)) * 40)
    proc = skyrack("flash", "--board", f"{DEFINITION}:thermal", "--port", served_thermal,
                   img, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["state"], result["running"], result["slot"]) == ("confirmed", "2.3.4", "b")
    assert result["link"]["timeouts"] == 0
    again = skyrack("flash", "--board", f"{DEFINITION}:thermal", "--port", served_thermal,
                    build(tmp_path, "2.3.5", b"next"))
    assert again.returncode == 0, again.stderr
    assert "flashed 2.3.5" in again.stdout and "slot a" in again.stdout


def test_an_image_that_never_confirms_is_rolled_back(served_thermal, tmp_path) -> None:
    img = build(tmp_path, "9.9.9", b"NOCONFIRM" + b"\x00" * 3000)
    proc = skyrack("flash", "--board", f"{DEFINITION}:thermal", "--port", served_thermal,
                   img, "--json")
    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert (result["state"], result["running"]) == ("rolled_back", "1.0.0")
    assert proc.stderr.strip() == ("skyrack flash: error: the board rolled back to 1.0.0: "
                                   "image 9.9.9 never confirmed itself")


def test_bad_flash_requests_fail_in_one_line_before_touching_the_board(tmp_path) -> None:
    power_img = build(tmp_path, "1.0.1", b"p", kind="power")
    cases = {
        ("--board", f"{DEFINITION}:thermal", "--port", "/dev/null", power_img):
            "is a 'power' image; board 'thermal' is a 'thermal' board",
        ("--board", f"{DEFINITION}:thermal", power_img.replace("power", "nothing")):
            "No such file",
        ("--board", DEFINITION, power_img): "name the board too, as TOML:NAME",
        ("--board", f"{DEFINITION}:radio", power_img): "no board named 'radio'",
        ("--board", f"{DEFINITION}:power", power_img):
            "serve it with `skyrack board serve` and pass its path as --port",
    }
    corrupt = tmp_path / "corrupt.img"
    corrupt.write_bytes(Path(power_img).read_bytes()[:-1] + b"\xff")
    cases[("--board", f"{DEFINITION}:power", "--port", "/dev/null", str(corrupt))] = (
        "payload fails its CRC32")
    for argv, reason in cases.items():
        proc = skyrack("flash", *argv)
        assert proc.returncode == 1, argv
        assert len(proc.stderr.strip().splitlines()) == 1 and reason in proc.stderr, proc.stderr


def test_board_serve_refuses_what_it_cannot_serve() -> None:
    proc = skyrack("board", "serve", "--board", f"{DEFINITION}:thermal", "--on", "power=x",
                   "--seconds", "1")
    assert proc.returncode == 1 and "--on names power, which is not served" in proc.stderr
    proc = skyrack("board", "serve", "--board", f"{DEFINITION}:thermal", "--on",
                   "thermal=/nonexistent/tty", "--seconds", "1", "--json")
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"].startswith("cannot open serial port")


def test_the_flight_software_flies_the_bench_definition_against_served_boards() -> None:
    """What a flight computer on the bench does, with the sim standing in for the boards."""
    serve = subprocess.Popen([SKYRACK, "board", "serve", "--board", DEFINITION, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        ports = json.loads(serve.stdout.readline())["serving"]
        assert set(ports) == {"power", "thermal", "accelerator"}
        proc = skyrack("fly", "--board", str(BOARDS / "flatsat-example.toml"), "--seconds",
                       "11", "--json", *(f"--port={n}={p}" for n, p in ports.items()))
    finally:
        serve.terminate()
        serve.communicate(timeout=10)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["satellite"] == "skyrack-flatsat-1" and "orbit" not in report
    assert 10.5 <= report["duration_s"] <= 12.0
    assert [c["command"] for c in report["flight"]["command_log"]] == [
        "power.switch", "mode.set", "compute.submit"]
    assert report["flight"]["commands"] == {"completed": 3, "rejected": 0, "failed": 0}
    assert report["flight"]["telemetry"]["power.soc_pct"]["samples"] >= 9
    assert report["flight"]["telemetry"]["accelerator.power_w"]["max"] > 100  # switched on
    for name, link in report["boards"].items():
        assert link["requests"] > 0 and link["timeouts"] == 0, name


def test_fly_refuses_a_definition_it_cannot_fly() -> None:
    proc = skyrack("fly", "--board", DEFINITION, "--port", "power=/dev/null", "--seconds", "1")
    assert proc.returncode == 1
    assert "thermal, accelerator emulated in" in proc.stderr
    proc = skyrack("fly", "--board", DEFINITION, "--port", "radio=/dev/null", "--json")
    assert proc.returncode == 1 and "no board named 'radio'" in json.loads(proc.stdout)["error"]
    proc = skyrack("fly", "--board", str(BOARDS / "flatsat-example.toml"), "--seconds", "1")
    assert proc.returncode == 1 and "cannot open serial port" in proc.stderr


def power_up_from(nvm: Path):
    """The thermal board as it boots from `nvm` (what `board serve --nvm` kept)."""
    from boards.definition import load
    from sim.boards import EmulatedThermalBoard
    from skyrack.assembly import build_world

    definition = load(DEFINITION)
    world = build_world(definition)
    world.nvm_dir = nvm
    return EmulatedThermalBoard(definition.named("thermal"), world).server.bootloader


@pytest.mark.crash
def test_flashing_killed_on_either_side_leaves_a_board_that_boots_a_verified_image(
        tmp_path) -> None:
    """`skyrack flash` against `skyrack board serve --nvm`, one of them killed with
    SIGKILL at a random moment; the board, served again from its NVM, boots an image
    that verifies, and a flash after that succeeds."""
    import random
    import signal
    import time

    from tests.crash import tally, trial_count

    rng = random.Random(20)
    killed = {"board": 0, "host": 0}
    nvm = tmp_path / "nvm"
    images = [build(tmp_path, f"3.{i}.0", (b"NOCONFIRM" if i % 3 == 2 else b"") +
                    rng.randbytes(rng.randrange(2000, 9000))) for i in range(6)]
    versions = {"1.0.0"} | {f"3.{i}.0" for i in range(6)}
    for trial in range(max(3, trial_count(40) // 10)):
        serve = subprocess.Popen([SKYRACK, "board", "serve", "--board", f"{DEFINITION}:thermal",
                                  "--speed", "20", "--nvm", str(nvm), "--json"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert serve.stdout is not None
        port = json.loads(serve.stdout.readline())["serving"]["thermal"]
        host = subprocess.Popen([SKYRACK, "flash", "--board", f"{DEFINITION}:thermal",
                                 "--port", port, rng.choice(images), "--timeout", "5"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 1.5))
        victim, other = (serve, host) if trial % 2 else (host, serve)
        killed["board" if victim is serve else "host"] += 1
        victim.kill()
        victim.communicate(timeout=10)
        other.send_signal(signal.SIGTERM) if other is serve else other.kill()
        other.communicate(timeout=30)
        boot = power_up_from(nvm)
        assert boot._slot_ok(boot.running), f"trial {trial}: boots an unverified slot"
        assert boot.boot_cause != "factory" and boot.version in versions, trial
    serve = subprocess.Popen([SKYRACK, "board", "serve", "--board", f"{DEFINITION}:thermal",
                              "--speed", "20", "--nvm", str(nvm), "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        port = json.loads(serve.stdout.readline())["serving"]["thermal"]
        proc = skyrack("flash", "--board", f"{DEFINITION}:thermal", "--port", port,
                       images[0], "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["running"] == "3.0.0"
    finally:
        serve.terminate()
        serve.communicate(timeout=10)
    assert power_up_from(nvm).version == "3.0.0"  # kept in the NVM directory
    tally("flashing, two processes", [], kills=sum(killed.values()),
          board_process_killed=killed["board"], host_process_killed=killed["host"],
          boots_of_an_unverified_image=0)


@pytest.fixture
def served_boards() -> Iterator[dict[str, str]]:
    serve = subprocess.Popen([SKYRACK, "board", "serve", "--board", DEFINITION, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        yield json.loads(serve.stdout.readline())["serving"]
    finally:
        serve.terminate()
        serve.communicate(timeout=10)


def test_boards_say_who_they_are_and_a_cable_on_the_wrong_port_is_refused(
        served_boards) -> None:
    bench = str(BOARDS / "flatsat-example.toml")
    ports = [f"--port={n}={p}" for n, p in served_boards.items()]
    proc = skyrack("board", "info", "--board", bench, *ports, "--json")
    assert proc.returncode == 0, proc.stderr
    boards = json.loads(proc.stdout)["boards"]
    assert boards["power"]["kind"] == "power" and boards["power"]["firmware_version"]
    assert boards["thermal"]["serial_number"].startswith("SIM-")
    assert boards["accelerator"] == {"kind": "accelerator", "powered": False,
                                     "port": served_boards["accelerator"]}
    swapped = [f"--port=power={served_boards['thermal']}",
               f"--port=thermal={served_boards['power']}",
               f"--port=accelerator={served_boards['accelerator']}"]
    for verb in (["board", "info"], ["fly", "--seconds", "1"]):
        proc = skyrack(*verb, "--board", bench, *swapped)
        assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
        assert (f"boards.power.port: {served_boards['thermal']} answers as a thermal board"
                in proc.stderr), proc.stderr


def test_fly_takes_the_ground_on_a_space_link(served_boards) -> None:
    fly = subprocess.Popen([SKYRACK, "fly", "--board", str(BOARDS / "flatsat-example.toml"),
                            "--seconds", "8", "--ground", "tcp://127.0.0.1:0", "--json",
                            *(f"--port={n}={p}" for n, p in served_boards.items())],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert fly.stdout is not None
    info = json.loads(fly.stdout.readline())
    sent = skyrack("ground", "--link", info["ground"], "--keys", info["keys"], "--archive",
                   str(Path(info["keys"]).with_name("a.sqlite")),
                   "send", "fsw.noop", "--json")
    assert sent.returncode == 0, sent.stderr
    out, err = fly.communicate(timeout=60)
    assert fly.returncode == 0, err
    report = json.loads(out)
    assert report["space_link"]["tc_accepted"] == 1
    assert not Path(info["keys"]).exists()  # the throwaway key file is gone
