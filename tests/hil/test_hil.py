"""The example hardware-in-the-loop suite: written once, run against the sim in process
(`pytest tests/hil --board sim`), over ptys (`--board sim --serial`), on a bench
(`--board boards/flatsat.toml`), or through a ground server (`--ground-server URL`: the
tests that need only `ground`)."""

import statistics
import time

import pytest


def test_a_power_switch_round_trip(ground, board) -> None:
    ground.send_and_verify("power.switch", channel=2, on=True)
    ground.wait_for("power.switches", lambda s: s & 0b100, timeout_s=10)
    assert board("power").housekeeping().switches[2]
    ground.send_and_verify("power.switch", channel=2, on=False)
    ground.wait_for("power.switches", lambda s: not s & 0b100, timeout_s=10)


def test_a_compute_job_runs_to_completion(ground) -> None:
    # Whatever the satellite ran before (through a ground server it is the one flying).
    ground.wait_for("compute.completed", lambda n: n is not None, timeout_s=10)
    completed, failed = ground.value("compute.completed"), ground.value("compute.failed")
    ground.send_and_verify("power.switch", channel=2, on=True)
    ground.send_and_verify("mode.set", mode="compute")
    submitted = ground.send_and_verify("compute.submit", workload="mlp", seed=5)
    (job,) = [a.args["job"] for a in submitted.answers if a.name == "compute.job_submitted"]
    done = ground.expect_event("compute.job_completed", timeout_s=1200, args={"job": job})
    assert done.args["job"] == job
    assert ground.wait_for("compute.completed", lambda n: n > completed,
                           timeout_s=10) == completed + 1
    assert ground.value("compute.failed") == failed


@pytest.mark.sim_only(reason="an eclipse on demand needs the simulated orbit")
def test_compute_is_shed_in_eclipse_and_restored_in_sunlight(ground) -> None:
    ground.send_and_verify("power.switch", channel=2, on=True)
    ground.send_and_verify("mode.set", mode="compute")
    ground.send_and_verify("compute.submit", workload="train", seed=2, steps=20000)
    shed = ground.expect_event("mode.compute_shed", timeout_s=6000)  # within an orbit
    assert shed.args["in_eclipse"] is True
    ground.expect_event("mode.compute_restored", timeout_s=3000)
    assert ground.value("mode.mode") == "compute"


def test_a_silent_board_is_power_cycled_and_answers_again(ground, inject) -> None:
    # On a bench the board's fault proxy holds its replies back until it restarts.
    ground.wait_for("thermal.radiator_temp_c", lambda t: t is not None, timeout_s=5)
    inject.silent_board("thermal")
    ground.expect_event("thermal.board_silent", timeout_s=30)
    ground.expect_event("fdir.board_power_cycled", timeout_s=30)
    ground.expect_event("thermal.board_back", timeout_s=30)
    assert ground.value("thermal.board_errors") >= 1


def test_garbage_on_a_board_line_is_one_rejected_fragment_and_nothing_else(
        ground, board, inject) -> None:
    thermal = board("thermal")
    ground.sleep(2.0)
    before = thermal.link.stats()
    inject.line_garbage("thermal", 40)
    ground.sleep(3.0)  # the flight software's polls meet it
    after = thermal.link.stats()
    assert after["frames_rejected"] == before["frames_rejected"] + 1
    assert after["timeouts"] == before["timeouts"]  # every poll still answered
    assert thermal.ping() > 0


def test_a_latchup_on_a_rail_is_tripped_and_fdir_brings_it_back(ground, board, inject) -> None:
    # On a bench the power board's over-current protection is fired on command (trip).
    ground.send_and_verify("power.switch", channel=2, on=True)
    ground.wait_for("power.switches", lambda s: s & 0b100, timeout_s=10)
    before = board("power").housekeeping().latchups[2]
    inject.load_latchup(2)
    ground.expect_event("power.latchup", timeout_s=30)
    ground.expect_event("fdir.channel_restored", timeout_s=30)
    assert board("power").housekeeping().latchups[2] == before + 1
    assert ground.wait_for("power.switches", lambda s: s & 0b100, timeout_s=10)


@pytest.mark.hardware_only(reason="measures the real UART's round trip")
def test_a_board_answers_within_its_timeout_on_the_bench(board) -> None:
    power = board("power")
    round_trips_s, uptimes_s = [], []
    retries = power.link.stats()["retries"]
    for _ in range(20):
        start = time.monotonic()
        uptimes_s.append(power.ping())
        round_trips_s.append(time.monotonic() - start)
    # Every ping answered on its first try, well inside the link's timeout, in order.
    assert statistics.median(round_trips_s) < power.link.timeout_s / 2
    assert max(round_trips_s) < power.link.timeout_s
    assert power.link.stats()["retries"] == retries
    assert uptimes_s == sorted(uptimes_s)


def test_injected_faults_are_survived(ground, board, inject, satellite) -> None:
    # A brownout: the thermal board loses power for 3 s and boots afresh (on a bench, its
    # rail switched off by the power board).
    uptime_before = board("thermal").housekeeping().uptime_s
    inject.brownout("thermal", seconds=3.0)
    ground.sleep(5.0)
    assert board("thermal").housekeeping().uptime_s < uptime_before + 3.0  # rebooted
    # A dropped space link: nothing gets through; once it is back, commands do.
    inject.link_drop(5.0)
    lost = ground.client.command("fsw.noop")
    ground.sleep(6.0)
    assert not lost.reports and satellite.flight.component("fsw").counters["cmd_accepted"] == 0
    ground.send_and_verify("fsw.noop")
    # Upsets in the accelerator's memory while a job runs: corrected, and the job completes
    # (on a bench, flipped in the compute device's memory between two of its products).
    ground.send_and_verify("power.switch", channel=2, on=True)
    ground.send_and_verify("mode.set", mode="compute")
    ground.send_and_verify("compute.submit", workload="mlp", seed=6)
    started = ground.expect_event("compute.job_started", timeout_s=30)
    # One strike of 60: on a bench each strike lands at the device's next product, so
    # strikes made one after another can meet one step's successive attempts (as no
    # radiation would), and a step has four.
    assert inject.bit_flips(60) == 60
    inject.product_upsets(2)  # and logic upsets in the next two products' outputs
    ground.expect_event("compute.job_completed", timeout_s=1200, since=started.t_s,
                        unless=("compute.job_failed",))
    assert ground.wait_for("compute.faults_corrected", lambda n: n >= 1, timeout_s=10) >= 1
    assert ground.value("compute.failed") == 0
