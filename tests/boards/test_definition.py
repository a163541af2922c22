import re
import subprocess
import sys
from pathlib import Path

import pytest

from boards.definition import DefinitionError, default_path, load

GOOD = Path(default_path()).read_text()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sat.toml"
    path.write_text(text)
    return path


def fails(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(DefinitionError) as e:
        load(path)
    message = str(e.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    return message


def test_the_default_definition_wires_three_emulated_boards() -> None:
    d = load(default_path())
    assert {b.kind for b in d.boards} == {"power", "thermal", "accelerator"}
    assert d.emulated
    assert d.board("accelerator").power_channel == 2
    assert d.sim["altitude_km"] == 500.0
    assert [s.command for s in d.plan] == ["power.switch", "mode.set"] + ["compute.submit"] * 4
    assert [s.args["workload"] for s in d.plan[2:]] == ["mlp", "transformer", "generate",
                                                        "train"]
    assert d.board("accelerator").compute == "drivers.compute:NumpyDevice"


def test_the_example_bench_puts_every_board_on_a_port_wired_as_the_sim() -> None:
    bench = load(Path(default_path()).with_name("flatsat-example.toml"))
    sim = load(default_path())
    assert not any(b.emulator for b in bench.boards)
    assert all(b.port and b.port.startswith("/dev/serial/by-id/") for b in bench.boards)
    for spec in sim.boards:  # same drivers, same power wiring: the sim can stand in
        on_bench = bench.named(spec.name)
        assert (on_bench.kind, on_bench.driver, on_bench.power_channel) == (
            spec.kind, spec.driver, spec.power_channel)


def test_unknown_board_kind_names_the_key(tmp_path: Path) -> None:
    msg = fails(tmp_path, GOOD.replace('kind = "power"', 'kind = "powr"'))
    assert "boards.power.kind: unknown board kind 'powr' (expected one of power, thermal" in msg


def test_missing_driver_names_the_key(tmp_path: Path) -> None:
    msg = fails(tmp_path, GOOD.replace('driver = "drivers.thermal:ThermalDriver"\n', ""))
    assert msg.endswith("boards.thermal.driver: missing field")


def test_missing_satellite_table(tmp_path: Path) -> None:
    assert fails(tmp_path, GOOD.replace("[satellite]", "[satelite]")).endswith(
        "satelite: unknown table")


def test_unknown_key_is_not_silently_ignored(tmp_path: Path) -> None:
    msg = fails(tmp_path, GOOD.replace("power_channel = 2", "power_chanel = 2"))
    assert "boards.accelerator.power_chanel: unknown key" in msg


def test_a_board_must_be_emulated_or_on_a_port_not_both(tmp_path: Path) -> None:
    msg = fails(tmp_path, GOOD.replace('emulator = "sim.boards:EmulatedPowerBoard"',
                                       'emulator = "sim.boards:EmulatedPowerBoard"\n'
                                       'port = "/dev/ttyUSB0"'))
    assert "boards.power: needs exactly one of 'emulator' or 'port'" in msg


def test_a_missing_board_kind_is_named(tmp_path: Path) -> None:
    start = GOOD.index("[boards.thermal]")
    end = GOOD.index("[boards.accelerator]")
    assert fails(tmp_path, GOOD[:start] + GOOD[end:]).endswith("boards: no board of kind 'thermal'")


@pytest.mark.parametrize("old,new,key", [
    ('kind = "power"', 'kind = "power"\ntimeout_s = -1', "boards.power.timeout_s"),
    ('kind = "power"', 'kind = "power"\nretries = "3"', "boards.power.retries"),
    ("at_s = 60.0", "at_s = -5", "plan[0].at_s"),
    ("altitude_km = 500.0", 'altitude_km = "low"', "sim.altitude_km"),
])
def test_out_of_range_and_wrong_typed_values_name_the_key(tmp_path, old, new, key) -> None:
    assert f": {key}: " in fails(tmp_path, GOOD.replace(old, new, 1))


def test_not_toml_and_no_file(tmp_path: Path) -> None:
    assert "not valid TOML" in fails(tmp_path, "[boards\n")
    with pytest.raises(DefinitionError, match="nowhere.toml: no such file"):
        load(tmp_path / "nowhere.toml")


def test_only_an_accelerator_has_a_compute_backend(tmp_path: Path) -> None:
    msg = fails(tmp_path, GOOD.replace('driver = "drivers.power:PowerDriver"',
                                       'driver = "drivers.power:PowerDriver"\n'
                                       'compute = "drivers.compute:NumpyDevice"'))
    assert "boards.power.compute: only an accelerator has a compute backend" in msg


def test_a_state_directory_is_named_relative_to_the_definition(tmp_path: Path) -> None:
    named = GOOD.replace('name = "skyrack-sim-1"', 'name = "skyrack-sim-1"\nstate = "nv/sat-1"')
    assert load(write(tmp_path, named)).state == str(tmp_path / "nv" / "sat-1")
    assert load(write(tmp_path, GOOD)).state is None
    msg = fails(tmp_path, GOOD.replace('name = "skyrack-sim-1"', 'name = "x"\nstat = "y"'))
    assert msg.endswith("satellite.stat: unknown key (expected name, spacecraft_id, state)")
    assert load(write(tmp_path, GOOD)).spacecraft_id == 1
    msg = fails(tmp_path, GOOD.replace("spacecraft_id = 1 ", "spacecraft_id = 1024 "))
    assert msg.endswith("satellite.spacecraft_id: 1024 is outside 0..1023 (10 bits)")
    msg = fails(tmp_path, GOOD.replace('name = "skyrack-sim-1"', 'name = "x"\nstate = 3'))
    assert "satellite.state" in msg


@pytest.mark.parametrize("step,why", [
    ('command = "power.swich"\nargs = {}', "plan[0]: unknown command 'power.swich'"),
    ('command = "power.switch"\nargs = { channel = 9, on = true }',
     "plan[0]: power.switch: channel = 9 is above the maximum 7"),
    ('command = "fsw.noop"\nargs = { loud = true }', "plan[0]: fsw.noop: unknown argument"),
])
def test_a_plan_step_the_flight_software_would_refuse_stops_the_run_at_load(
        tmp_path: Path, step: str, why: str) -> None:
    from skyrack.assembly import assemble

    text = GOOD.split("[[plan]]")[0] + f"[[plan]]\nat_s = 10.0\n{step}\n"
    with pytest.raises(DefinitionError, match=re.escape(why)):
        assemble(load(write(tmp_path, text)))
    proc = subprocess.run([str(Path(sys.executable).parent / "skyrack"), "sim", "--board",
                           str(tmp_path / "sat.toml"), "--orbits", "0.01"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and why in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("old,new,why", [
    ("memory = \"dram\"", "upsets_per_bit_day = 1e-8",
     "sim.upsets_per_bit_day: no longer a key: rates follow"),
    ("memory = \"dram\"", 'memory = "core"', "'core' is not a memory type"),
    ("solar_cycle = \"min\"", 'solar_cycle = "mid"', "solar must be 'min' or 'max'"),
    ("drag_area_m2 = 1.0", "", "drag needs both mass_kg and drag_area_m2"),
    ("mass_kg = 150.0", "mass_kg = -1.0", "mass_kg must be > 0"),
    ("mass_kg = 150.0", "mass_kg = 150.0\nf107 = 900", "F10.7 900 sfu is outside"),
    ("altitude_km = 500.0", "altitude_km = 4000.0", "outside the radiation model's 150..3000 km"),
])
def test_sim_settings_the_models_cannot_take_are_refused_with_the_reason(
        tmp_path: Path, old: str, new: str, why: str) -> None:
    from skyrack.assembly import build_world

    assert old in GOOD
    with pytest.raises(DefinitionError, match=re.escape(why)):
        build_world(load(write(tmp_path, GOOD.replace(old, new, 1))))
