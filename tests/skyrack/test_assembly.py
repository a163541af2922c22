from pathlib import Path

import pytest

from boards.definition import DefinitionError, default_path, load
from hal.boards import AcceleratorState
from sim.clock import VirtualClock
from skyrack.assembly import assemble

GOOD = Path(default_path()).read_text()


def assemble_text(tmp_path: Path, text: str):
    path = tmp_path / "sat.toml"
    path.write_text(text)
    return path, assemble(load(path))


def test_the_default_definition_becomes_a_flying_satellite() -> None:
    sat = assemble(load(default_path()), seed=3)
    assert isinstance(sat.clock, VirtualClock)
    assert set(sat.drivers) == {"power", "thermal", "accelerator"}
    sat.flight.run_until(70.0)  # the plan is not run by assembly: nothing switched yet
    assert not sat.world.switches[2]
    sat.flight.submit("power.switch", {"channel": 2, "on": True})
    sat.flight.submit("accelerator.set_state", {"state": "on"})
    sat.flight.run_until(75.0)
    assert sat.world.accelerator.state == AcceleratorState.ON.value
    assert sat.world.load_w > 700.0


def test_a_driver_that_cannot_be_imported_names_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError) as e:
        assemble_text(tmp_path, GOOD.replace("drivers.power:", "drivers.powr:"))
    assert str(e.value).startswith(f"{tmp_path / 'sat.toml'}: boards.power.driver: cannot import "
                                   "'drivers.powr'")


def test_a_driver_class_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="boards.thermal.driver: module 'drivers.thermal' "
                                              "has no 'ThermalDrive'"):
        assemble_text(tmp_path, GOOD.replace(":ThermalDriver", ":ThermalDrive"))


def test_a_driver_for_another_kind_of_board_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="boards.power.driver: drivers.thermal:ThermalDriver "
                                              "drives 'thermal' boards, not 'power'"):
        assemble_text(tmp_path, GOOD.replace("drivers.power:PowerDriver",
                                             "drivers.thermal:ThermalDriver"))


def test_an_emulator_that_cannot_be_imported(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="boards.accelerator.emulator: cannot import"):
        assemble_text(tmp_path, GOOD.replace("sim.boards:EmulatedAcceleratorBoard",
                                             "sim.nothing:EmulatedAcceleratorBoard"))


def test_a_real_board_on_a_missing_port_names_the_port_key(tmp_path: Path) -> None:
    text = GOOD.replace('emulator = "sim.boards:EmulatedPowerBoard"', 'port = "/dev/skyrack-none"')
    text = text.replace('emulator = "sim.boards:EmulatedThermalBoard"', 'port = "loop://"')
    text = text.replace('emulator = "sim.boards:EmulatedAcceleratorBoard"', 'port = "loop://"')
    with pytest.raises(DefinitionError, match="boards.power.port: cannot open serial port"):
        assemble_text(tmp_path, text)


def test_mixing_emulated_and_real_boards_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace('emulator = "sim.boards:EmulatedPowerBoard"', 'port = "loop://"')
    with pytest.raises(DefinitionError, match="boards: mixes emulated and real boards"):
        assemble_text(tmp_path, text)


def test_running_to_a_time_between_two_ticks_returns() -> None:
    sat = assemble(load(default_path()), seed=1)
    try:
        sat.run_until(10.05)  # ticks fall on tenths: this must stop at 10.0, not spin
        assert sat.clock.now_s() == pytest.approx(10.0)
        sat.run_until(10.05)  # and again, with nothing left to run
        assert sat.flight.executive.ticks == 100
    finally:
        sat.close()


def test_a_state_directory_is_kept_locked_and_carries_the_satellite(tmp_path) -> None:
    definition = load(default_path())
    state = tmp_path / "sat"
    first = assemble(definition, state=state)
    try:
        with pytest.raises(DefinitionError, match="in use by another running flight software"):
            assemble(definition, state=state)
        first.flight.submit("compute.submit", {"workload": "mlp"})
        first.run_until(1.0)
    finally:
        first.close()
    assert (state / "storage" / "compute.jobs.a").exists()  # kept, not removed on close
    again = assemble(definition, state=state)
    try:
        assert again.flight.system.boots == 2
        assert list(again.flight.component("compute").jobs) == [1]
    finally:
        again.close()
