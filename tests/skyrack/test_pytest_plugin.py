"""The HIL pytest plugin, run the way its users run it: pytest inside pytest."""

import textwrap
import threading
from pathlib import Path

import pytest

from boards.definition import default_path, load
from skyrack.serve import BoardServer

BENCH = Path(default_path()).with_name("flatsat-example.toml")


def run(pytester, *args: str):
    # The outer run imported skyrack already, so the inner one cannot rewrite its asserts.
    return pytester.runpytest("-W", "ignore::pytest.PytestAssertRewriteWarning", *args)


def test_the_options_are_in_pytest_help(pytester) -> None:
    result = run(pytester, "--help")
    result.stdout.fnmatch_lines(["*skyrack hardware-in-the-loop*", "*--board=sim|TOML*",
                                 "*--serial*"])


def test_a_failing_hil_test_prints_the_last_telemetry_and_events(pytester) -> None:
    pytester.makepyfile("""
        def test_fails(ground):
            ground.send_and_verify("fsw.noop")
            ground.wait_for("power.batt_v", lambda v: v > 100, timeout_s=3)
    """)
    result = run(pytester, "--board", "sim")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*wait power.batt_v: not met in 3 s (last value: 3*",
        "*skyrack: what the ground saw last*",
        "*last telemetry (on-board time, point, value):*",
        "*power.batt_v*",
        "*last events:*",
        "*info     fsw.noop*",
    ])


def test_markers_skip_with_their_reason(pytester) -> None:
    pytester.makepyfile("""
        import pytest

        @pytest.mark.hardware_only(reason="needs the real UART")
        def test_hw():
            pass

        @pytest.mark.sim_only
        def test_sim():
            pass
    """)
    result = run(pytester, "--board", "sim", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*hardware_only (--board sim): needs the real UART*"])
    result = run(pytester, "--board", str(BENCH), "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines([f"*sim_only (--board {BENCH})*"])


def test_waits_on_the_sim_advance_the_virtual_clock(pytester) -> None:
    pytester.makepyfile("""
        import time

        def test_an_hour(ground, satellite):
            started = time.monotonic()
            ground.wait_for("fsw.ticks", lambda n: n >= 36000, timeout_s=4000)
            assert satellite.clock.now_s() >= 3600
            assert time.monotonic() - started < 60
    """)
    run(pytester, "--board", "sim").assert_outcomes(passed=1)


@pytest.fixture
def bench_of_served_boards(tmp_path):
    """A 'bench' whose boards are the sim's, served on ptys in real time: the plugin
    meets them through real serial ports, as it would dev boards."""
    server = BoardServer(load(default_path()))
    stop = threading.Event()
    thread = threading.Thread(target=server.run, kwargs={"stop": stop}, daemon=True)
    thread.start()
    text = BENCH.read_text()
    for name, path in server.paths.items():
        text = text.replace(f"/dev/serial/by-id/usb-skyrack_{name}_board-if00", path)
    bench = tmp_path / "bench.toml"
    bench.write_text(text)
    yield bench
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_the_same_test_runs_against_boards_on_serial_ports(pytester,
                                                           bench_of_served_boards) -> None:
    pytester.makepyfile(textwrap.dedent("""
        def test_switch(ground, board):
            ground.send_and_verify("power.switch", channel=2, on=True, timeout_s=10)
            ground.wait_for("power.switches", lambda s: s & 0b100, timeout_s=10)
            assert board("power").housekeeping().switches[2]

        def test_a_link_drop(inject):
            inject.link_drop(1.0)  # the bench's space link is the test's: it can drop

        def test_a_board_without_a_proxy(inject):
            inject.silent_board("thermal")
            raise AssertionError("a silent board without a proxy: not a no-op")

        def test_the_power_physics(inject):
            inject.drain_battery(0.2)
            raise AssertionError("a drained battery on a bench: not a no-op")
    """))
    result = run(pytester, "--board", str(bench_of_served_boards), "-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines(["*silent_board: board 'thermal' has no fault proxy on its "
                                 "line (run pytest with --proxy)*",
                                 "*drain_battery: draining the battery at once needs the "
                                 "sim's power physics*"])


def test_on_a_bench_with_proxies_a_dead_board_is_what_the_flight_software_sees(
        pytester, bench_of_served_boards) -> None:
    """--proxy puts a fault proxy on every board's line: a dead board's replies never
    reach the flight computer, whose link counts the tries that went unanswered, and
    the proxy counts each reply it held back; --proxy on the sim is refused once."""
    pytester.makepyfile(textwrap.dedent("""
        def test_dead(ground, inject, board):
            ground.wait_for("thermal.radiator_temp_c", lambda t: t is not None, timeout_s=10)
            link = board("thermal").link
            before = link.stats()
            inject.dead_board("thermal")
            ground.expect_event("thermal.board_silent", timeout_s=30)
            held = inject.proxies["thermal"].counters()["to_host"]["silenced"]
            after = link.stats()
            assert held >= 1
            # Every reply held back was a try the link saw go unanswered (a try or two
            # more may be on the line as this looks).
            unanswered = sum(after[k] - before[k] for k in ("retries", "timeouts"))
            assert held <= unanswered + 2
            assert after["timeouts"] > before["timeouts"]
    """))
    result = run(pytester, "--board", str(bench_of_served_boards), "--proxy", "-rs")
    result.assert_outcomes(passed=1)
    bad = run(pytester, "--board", "sim", "--proxy")
    assert bad.ret != 0
    assert len([line for line in bad.stderr.lines if "--proxy is for a bench" in line]) == 1


def test_ports_given_on_the_command_line_and_a_bad_option_said_once(pytester) -> None:
    """The flatsat example as it is, its boards put on served ptys with --port; a
    --port naming no board stops the run once, before any test."""
    server = BoardServer(load(default_path()))
    stop = threading.Event()
    thread = threading.Thread(target=server.run, kwargs={"stop": stop}, daemon=True)
    thread.start()
    try:
        pytester.makepyfile("""
            def test_noop(ground):
                ground.send_and_verify("fsw.noop", timeout_s=10)
                ground.expect_event("fsw.noop", args={}, since=0.0)

            def test_again(ground):
                ground.send_and_verify("fsw.noop", timeout_s=10)
        """)
        ports = [f"--port={name}={path}" for name, path in server.paths.items()]
        run(pytester, "--board", str(BENCH), *ports).assert_outcomes(passed=2)
        bad = run(pytester, "--board", str(BENCH), *ports, "--port", "radio=/dev/null")
        assert bad.ret != 0
        errors = [line for line in bad.stderr.lines if "no board named 'radio'" in line]
        assert len(errors) == 1
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def test_the_ground_fixture_through_a_ground_server(pytester, tmp_path) -> None:
    """--ground-server: `ground` is an operator of the server's satellite; what needs
    the satellite itself is skipped, saying why; a server that is not there is said once."""
    from tests.ground.test_server import start_server
    from tests.skyrack.test_ground_cli import Sim

    pytester.makepyfile("""
        import pytest

        def test_through(ground):
            sent = ground.send_and_verify("fsw.noop")
            assert sent.stages == ["accepted", "started", "completed"]
            ground.expect_event("fsw.noop", timeout_s=10)
            assert 20 < ground.wait_for("power.batt_v", lambda v: v is not None) < 40
            with pytest.raises(Exception, match="above the maximum 7"):
                ground.send_and_verify("power.switch", channel=9, on=True)

        def test_needs_the_board(ground, board):
            pass

        @pytest.mark.sim_only(reason="physics on demand")
        def test_sim(ground):
            pass
    """)
    sim = Sim()
    serve, url = start_server(sim, tmp_path / "a.sqlite")
    try:
        result = run(pytester, "--ground-server", url, "-rs")
        result.assert_outcomes(passed=1, skipped=2)
        result.stdout.fnmatch_lines([
            "*with --ground-server the satellite is the server's*",
            f"*sim_only (ground server {url}): physics on demand*"])
        result = run(pytester, "--ground-server", url, "--satellite", "nope")
        assert result.ret != 0
        result.stderr.fnmatch_lines(["*--satellite 'nope': the server at * has sc1*"])
    finally:
        serve.terminate()
        serve.wait(30)
        sim.stop()
    result = run(pytester, "--ground-server", "http://127.0.0.1:1")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--ground-server: cannot reach the ground server at*"])
