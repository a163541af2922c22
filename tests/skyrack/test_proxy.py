"""The serial fault proxy between a host and a served board: every fault it is told to
do is counted, and what it did is what the host's board link saw; the CLI's proxy
takes its faults from `skyrack board fault` and says what it did under --json."""

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from boards.definition import default_path, load
from drivers.link import BoardLink
from hal.errors import BoardTimeout, InputError
from hal.framing import encode_frame
from hal.protocol import Request, encode_request
from hal.transport import SerialTransport
from skyrack.proxy import ControlServer, FaultProxy, ProxyControl, command
from skyrack.serve import BoardServer

pytestmark = pytest.mark.skipif(not sys.platform.startswith(("linux", "darwin")),
                                reason="pseudo-terminals need Linux or macOS")

SKYRACK = str(Path(sys.executable).parent / "skyrack")
TIMEOUT_S = 0.3


@pytest.fixture
def served() -> Iterator[str]:
    """The emulated thermal board on a pty, its world in real time, in this process."""
    server = BoardServer(load(default_path()), ["thermal"])
    stop = threading.Event()
    thread = threading.Thread(target=server.run, args=(None, stop), daemon=True)
    thread.start()
    try:
        yield server.paths["thermal"]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


@pytest.fixture
def proxied(served: str) -> Iterator[tuple[FaultProxy, BoardLink]]:
    proxy = FaultProxy(served, seed=3)
    link = BoardLink("thermal", SerialTransport(proxy.path), timeout_s=TIMEOUT_S, retries=2)
    try:
        link.call("ping")  # the line is up
        yield proxy, link
    finally:
        link.transport.close()
        proxy.close()


def changed(link: BoardLink, before: dict[str, int]) -> dict[str, int]:
    """What moved in the link's counters but `requests` (one a try)."""
    return {k: v - before[k] for k, v in link.stats().items()
            if v != before[k] and k != "requests"}


def test_what_the_proxy_does_to_replies_is_what_the_link_sees(proxied) -> None:
    proxy, link = proxied
    before = link.stats()
    proxy.drop("to_host", frames=2)  # two tries' replies lost: the third gets through
    link.call("ping")
    assert changed(link, before) == {"retries": 2}

    before = link.stats()
    proxy.corrupt("to_host")  # its CRC no longer holds: rejected, and tried again
    link.call("ping")
    assert changed(link, before) == {"retries": 1, "frames_rejected": 1}

    before = link.stats()
    proxy.duplicate("to_host")  # the copy is read before the next reply, and discarded
    link.call("ping")
    link.call("ping")
    assert changed(link, before) == {"stale_replies": 1}

    before = link.stats()
    proxy.delay("to_host", seconds=TIMEOUT_S * 1.5)  # late: tried again, then discarded
    link.call("ping")
    time.sleep(TIMEOUT_S)
    link.call("ping")
    assert changed(link, before) == {"retries": 1, "stale_replies": 1}

    before = link.stats()
    proxy.garbage("to_host", nbytes=40)  # noise on the idle line ends as one fragment
    time.sleep(0.1)
    link.call("ping")
    assert changed(link, before) == {"frames_rejected": 1}

    before = link.stats()
    proxy.silence("to_host")  # until spoken to: every try goes unanswered
    with pytest.raises(BoardTimeout):
        link.call("ping")
    proxy.speak("to_host")
    link.call("ping")
    assert changed(link, before) == {"retries": 2, "timeouts": 1}

    before = link.stats()
    proxy.drop("to_board")  # the request lost: the board never ran it
    link.call("ping")
    assert changed(link, before) == {"retries": 1}

    counts = proxy.counters()
    assert {k: counts["to_host"][k] for k in ("dropped", "corrupted", "duplicated",
                                              "delayed", "garbage_bytes", "silenced")} == {
        "dropped": 2, "corrupted": 1, "duplicated": 1, "delayed": 1, "garbage_bytes": 40,
        "silenced": 3}
    assert counts["to_board"]["dropped"] == 1
    assert counts["to_host"].get("crc_fixed", 0) == 0
    # Every frame either way is accounted for: passed, or what was done to it.
    for way in counts.values():
        done = sum(way.get(k, 0) for k in ("passed", "dropped", "corrupted", "duplicated",
                                            "delayed", "silenced"))
        assert done == way["frames"]


def test_a_corruption_with_its_crc_fixed_passes_the_crc_for_the_layer_above(proxied) -> None:
    """Flipped bits under a CRC made afresh: no frame is rejected, and what the proxy
    sent differs from what the board said, whatever the link then makes of it."""
    proxy, link = proxied
    before = link.stats()
    for _ in range(5):
        proxy.corrupt("to_host", bits=3, fix_crc=True)
        try:
            link.call("ping")
        except BoardTimeout:
            pass
    assert link.stats()["frames_rejected"] == before["frames_rejected"]
    assert proxy.counters()["to_host"]["crc_fixed"] == 5


def test_random_faults_at_a_rate_are_drawn_from_the_seed(served) -> None:
    """The same seed and the same traffic: the same frames dropped and corrupted."""
    seen = []
    for _ in range(2):
        proxy = FaultProxy(served, seed=11)
        link = BoardLink("thermal", SerialTransport(proxy.path), timeout_s=TIMEOUT_S,
                         retries=6)
        try:
            link.call("ping")
            proxy.rates("to_host", drop=0.2, corrupt=0.2)
            for _ in range(15):
                link.call("ping")
            counts = proxy.counters()["to_host"]
            seen.append((counts.get("dropped", 0), counts.get("corrupted", 0)))
        finally:
            link.transport.close()
            proxy.close()
    assert seen[0] == seen[1] and sum(seen[0]) > 0


def test_bad_fault_requests_are_refused_with_the_reason(proxied) -> None:
    proxy, _ = proxied
    for request, reason in (
            ({"fault": "explode"}, "expected one of"),
            ({"fault": "drop", "direction": "sideways"}, "direction 'sideways'"),
            ({"fault": "drop", "frames": 0}, "frames 0"),
            ({"fault": "drop", "frames": True}, "frames True"),
            ({"fault": "delay", "seconds": -1}, "seconds -1"),
            ({"fault": "delay", "seconds": float("inf")}, "seconds inf"),
            ({"fault": "corrupt", "bits": 65}, "bits 65"),
            ({"fault": "corrupt", "fix_crc": "yes"}, "fix_crc 'yes'"),
            ({"fault": "garbage", "nbytes": 10**7}, "nbytes"),
            ({"fault": "drop", "rows": 3}, "not its own"),
            ({"fault": "rates", "drop": 1.5}, "probability"),
            ({"fault": "rates", "stall": 0.5}, "rate 'stall'"),
            ([1, 2], "JSON object")):
        answer = command(proxy, request)
        assert answer["ok"] is False and reason in answer["error"], (request, answer)
    assert proxy.pending("to_host") == 0  # nothing refused was kept
    with pytest.raises(InputError):
        proxy.silence("to_host", seconds=float("nan"))


def test_bytes_that_are_no_frame_pass_through_raw(proxied) -> None:
    """A run longer than any frame without a delimiter is not held back: it reaches the
    board as it came (and the board's deframer drops it), and the line still works."""
    proxy, link = proxied
    noise = b"\x01" * 9000
    link.transport.write(noise)
    time.sleep(0.2)
    assert proxy.counters()["to_board"]["raw_bytes"] >= len(noise) - 4096
    link.transport.write(encode_frame(encode_request(Request(999, "ping", {}))))
    time.sleep(0.2)
    link.call("ping")


def skyrack(*argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SKYRACK, *argv], capture_output=True, text=True, timeout=timeout)


def test_the_cli_proxy_takes_faults_from_board_fault_and_reports_them(served) -> None:
    definition = str(default_path())
    proc = subprocess.Popen([SKYRACK, "board", "proxy", "--board", f"{definition}:thermal",
                             "--port", served, "--json", "--seconds", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        up = json.loads(line)
        assert up["ok"] and up["board"] == "thermal" and up["port"] == served
        link = BoardLink("thermal", SerialTransport(up["listen"]), timeout_s=TIMEOUT_S,
                         retries=2)
        try:
            link.call("ping")
            done = skyrack("board", "fault", "drop", "--control", up["control"],
                           "--frames", "2", "--json")
            assert done.returncode == 0, done.stderr
            assert json.loads(done.stdout)["request"] == {"fault": "drop",
                                                          "direction": "to_host", "frames": 2}
            before = link.stats()
            link.call("ping")
            assert changed(link, before) == {"retries": 2}
            counts = skyrack("board", "fault", "counters", "--control", up["control"],
                             "--json")
            assert json.loads(counts.stdout)["counters"]["to_host"]["dropped"] == 2
            refused = skyrack("board", "fault", "corrupt", "--control", up["control"],
                              "--bits", "99")
            assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
            delay = skyrack("board", "fault", "delay", "--control", up["control"])
            assert delay.returncode == 1 and "--seconds" in delay.stderr
        finally:
            link.transport.close()
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["ok"] and summary["counters"]["to_host"]["dropped"] == 2
    gone = skyrack("board", "fault", "counters", "--control", up["control"])
    assert gone.returncode == 1 and "cannot reach the proxy" in gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1


def test_the_cli_proxy_refuses_what_it_cannot_proxy() -> None:
    definition = str(default_path())
    emulated = skyrack("board", "proxy", "--board", f"{definition}:thermal")
    assert emulated.returncode == 1 and "board serve" in emulated.stderr
    nameless = skyrack("board", "proxy", "--board", definition, "--port", "/dev/null")
    assert nameless.returncode == 1 and "TOML:NAME" in nameless.stderr
    missing = skyrack("board", "proxy", "--board", f"{definition}:thermal", "--port",
                      "/dev/no-such-port")
    assert missing.returncode == 1 and "cannot open serial port" in missing.stderr
    rate = skyrack("board", "proxy", "--board", f"{definition}:thermal", "--port",
                   "/dev/null", "--drop-rate", "2")
    assert rate.returncode == 2 and "outside 0..1" in rate.stderr


def test_the_control_socket_answers_every_line_with_one_line_whatever_it_is(proxied) -> None:
    """Fuzzed lines (random bytes, JSON of every shape, requests with wrong arguments)
    each get one answer, the socket stays up, and the line through the proxy works."""
    import random
    import socket

    proxy, link = proxied
    control = ControlServer(proxy, "127.0.0.1", 0)
    rng = random.Random(9)
    shapes = ['{"fault": "drop", "frames": %s}', '{"fault": "%s"}', '[%s]', '%s',
              '{"counters": %s}', '{"fault": "silence", "seconds": %s}']
    values = ["1e400", "-1", "null", '"x"', "{}", "[1]", "true", "0", "3.5", '"\u0000"']
    try:
        host, port = control.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            f = sock.makefile("rwb")
            for n in range(300):
                if n % 3 == 0:
                    line = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 60)))
                    line = line.replace(b"\n", b" ")
                else:
                    line = (rng.choice(shapes) % rng.choice(values)).encode()
                f.write(line + b"\n")
                f.flush()
                answer = json.loads(f.readline())
                assert isinstance(answer.get("ok"), bool), (line, answer)
                if not answer["ok"]:
                    assert answer["error"], line
        proxy.clear()
        client = ProxyControl(control.address)
        assert client.send(counters=True)["ok"]
        client.close()
        link.call("ping")
    finally:
        control.close()
