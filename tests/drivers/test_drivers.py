"""Every driver against its emulated board, and against boards that misbehave."""

import subprocess
import sys

import pytest

from drivers.accelerator import AcceleratorDriver
from drivers.power import PowerDriver
from drivers.thermal import ThermalDriver
from hal.boardops import WireError
from hal.boards import AcceleratorState
from hal.errors import BoardError, BoardFault, BoardMalformed, BoardTimeout
from hal.transport import InProcessTransport
from sim.boards import EmulatedAcceleratorBoard, EmulatedPowerBoard, EmulatedThermalBoard
from tests.conftest import spec
from tests.doubles import Babbling, Misbehaving

DRIVERS = {
    "power": (PowerDriver, EmulatedPowerBoard, None),
    "thermal": (ThermalDriver, EmulatedThermalBoard, 1),
    "accelerator": (AcceleratorDriver, EmulatedAcceleratorBoard, 2),
}


def attach(world, kind: str, mode: str | None = None, times: int | None = None):
    driver_cls, emulator, channel = DRIVERS[kind]
    board = emulator(spec(kind, power_channel=channel), world)
    peer = board.receive if mode is None else Misbehaving(board.receive, mode, times)
    return driver_cls(kind, InProcessTransport(peer), timeout_s=0.1, retries=2), board


def test_power_driver_reads_typed_housekeeping_and_switches_loads(world) -> None:
    power, _ = attach(world, "power")
    hk = power.housekeeping()
    assert 28.0 < hk.batt_v < 34.0 and 85.0 < hk.soc_pct < 95.0
    assert hk.switches[0] and not hk.switches[2]
    power.set_switch(2, True)
    assert world.switches[2] and power.housekeeping().switches[2]
    with pytest.raises(ValueError, match="channel 8 out of range"):
        power.set_switch(8, True)


def test_the_power_board_reports_its_adc_conversion_of_the_step(world) -> None:
    # One conversion a physics step: the timer interrupt's protection and a reply in
    # the same step read the same samples; the next step converts afresh; a rail
    # switched in between is seen at once (its current is gone).
    power, _ = attach(world, "power")
    attach(world, "thermal")  # a load on channel 1
    power.set_switch(1, True)
    first, again = power.housekeeping(), power.housekeeping()
    assert first.channel_a == again.channel_a and first.batt_v == again.batt_v
    assert first.channel_a[1] > 0.0
    world.clock.sleep_until(world.t_s + world.STEP_S)
    later = power.housekeeping()
    assert later.batt_v != first.batt_v  # fresh noise: a new conversion
    power.set_switch(1, False)
    assert power.housekeeping().channel_a[1] == 0.0


def test_thermal_driver_reads_every_sensor_and_drives_heaters(world) -> None:
    thermal, _ = attach(world, "thermal")
    hk = thermal.housekeeping()
    assert set(hk.temps_c) == {"accelerator", "radiator", "structure", "flight_computer",
                               "battery"}
    assert all(abs(t - 20.0) < 2.0 for t in hk.temps_c.values())
    thermal.set_heater(0, True)
    assert world.heaters[0] and thermal.housekeeping().heaters == (True, False)
    with pytest.raises(BoardFault, match="heater = 5 out of range"):
        thermal.set_heater(5, True)


def test_accelerator_driver_changes_state_and_clock_on_a_powered_board(world) -> None:
    acc, _ = attach(world, "accelerator")
    world.set_switch(2, True)
    acc.set_state(AcceleratorState.ON)
    acc.set_clock(50)
    hk = acc.housekeeping()
    assert hk.state is AcceleratorState.ON and hk.clock_pct == 50
    assert 350.0 < hk.power_w < 430.0
    sent = acc.link.stats()["requests"]
    with pytest.raises(WireError, match="set_clock request: clock_pct: 5 is outside 10..100"):
        acc.set_clock(5)  # refused by the declaration before anything is sent
    assert acc.link.stats()["requests"] == sent
    # A host that ignores the declaration meets the board's own check of it.
    with pytest.raises(BoardFault, match="set_clock request: clock_pct: 5 is outside"):
        acc.link.call("set_clock", {"clock_pct": 5})


def test_an_unpowered_board_is_silent_and_boots_afresh_when_powered(world) -> None:
    acc, board = attach(world, "accelerator")
    with pytest.raises(BoardTimeout, match="accelerator: tlm: .*board silent"):
        acc.housekeeping()
    world.set_switch(2, True)
    world.clock.sleep_until(30.0)
    assert acc.ping() == 30.0
    world.set_switch(2, False)
    world.set_switch(2, True)
    assert acc.ping() == 0.0  # rebooted on the new power-up
    assert acc.info().kind == "accelerator"


@pytest.mark.parametrize("kind", sorted(DRIVERS))
@pytest.mark.parametrize("mode", ["silent", "flip", "drop"])
def test_every_driver_times_out_cleanly_on_a_board_that_stays_broken(world, kind, mode) -> None:
    driver, _ = attach(world, kind, mode)
    world.set_switch(2, True)
    with pytest.raises(BoardTimeout) as e:
        driver.housekeeping()
    assert e.value.board == kind and e.value.op == "tlm"


@pytest.mark.parametrize("kind", sorted(DRIVERS))
@pytest.mark.parametrize("mode", ["silent", "flip", "drop", "garbage", "lose", "slow"])
def test_every_driver_rides_through_one_bad_reply(world, kind, mode) -> None:
    driver, _ = attach(world, kind, mode, times=1)
    world.set_switch(2, True)
    assert driver.housekeeping().uptime_s >= 0.0


@pytest.mark.parametrize("kind", sorted(DRIVERS))
def test_every_driver_gets_through_to_a_board_slower_than_its_timeout(world, kind) -> None:
    """Every reply arrives late, with the next exchange: each call succeeds on its first
    retry (the board answers it from its last reply) and the late leftovers are
    discarded as stale."""
    driver, board = attach(world, kind, "slow")
    world.set_switch(2, True)
    for _ in range(3):
        assert driver.housekeeping().uptime_s >= 0.0
    stats = driver.link.stats()
    assert stats["timeouts"] == 0 and stats["retries"] == 3 and stats["stale_replies"] >= 2
    assert board.server.counters["duplicates"] == 3


def test_a_reply_of_the_wrong_shape_is_a_board_error_naming_the_field(world) -> None:
    def liar(rx: bytes) -> bytes:
        from hal.framing import Deframer, encode_frame
        from hal.protocol import Reply, decode_request, encode_reply

        (payload,) = Deframer().feed(rx)
        request = decode_request(payload)
        return encode_frame(encode_reply(Reply(request.seq, True, result={"batt_v": "high"})))

    power = PowerDriver("power", InProcessTransport(liar))
    with pytest.raises(BoardError, match="power: tlm: reply does not decode: tlm reply: "
                       "batt_v: expected a finite number, got 'high'"):
        power.housekeeping()


@pytest.mark.parametrize("kind", sorted(DRIVERS))
def test_a_board_babbling_in_valid_frames_is_a_board_error_not_a_crash(world, kind) -> None:
    driver_cls, emulator, channel = DRIVERS[kind]
    board = emulator(spec(kind, power_channel=channel), world)
    world.set_switch(2, True)
    world.set_switch(1, True)
    driver = driver_cls(kind, InProcessTransport(Babbling(board.receive)), timeout_s=0.1)
    with pytest.raises(BoardMalformed, match=f"^{kind}: tlm: "):
        driver.housekeeping()


HEAP_CHURN = """
import resource, sys
import numpy as np
if sys.argv[1] == "kept":
    from drivers.compute import keep_heap
    assert keep_heap() and keep_heap()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():  # a job step's temporaries: made, used, all freed
    arrays = [np.ones(1 << 18, np.float32) for _ in range(4)]  # 1 MiB each
    del arrays
for _ in range(3):
    step()
before = faults()
for _ in range(50):
    step()
print(faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_data_plane_keeps_its_heap_instead_of_faulting_pages_in_each_step() -> None:
    # Each process starts with glibc's defaults: 50 steps of four 1 MiB temporaries
    # trim the heap and fault its pages in again every step (~256 faults a MiB).
    faults = {how: int(subprocess.run([sys.executable, "-c", HEAP_CHURN, how],
                                      capture_output=True, text=True, check=True).stdout)
              for how in ("plain", "kept")}
    assert faults["plain"] > 50 * 256  # the pattern that cost the transformer's steps
    assert faults["kept"] < 256  # pages faulted once, then reused
