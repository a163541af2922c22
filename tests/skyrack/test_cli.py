import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from boards.definition import default_path
from skyrack.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# Side by side on two cores, BLAS threads that each wanted both would spin on each other.
ONE_BLAS_THREAD = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                          "MKL_NUM_THREADS")}


def fly_at_once(*seeds: int) -> list[str]:
    """`skyrack sim --orbits 2 --seed S --json` for each seed, the processes run side by
    side (independent of each other: nothing shared but the files they read)."""
    procs = [subprocess.Popen([str(Path(sys.executable).parent / "skyrack"), "sim", "--orbits",
                               "2", "--seed", str(seed), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, **ONE_BLAS_THREAD})
             for seed in seeds]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    return [out for out, _ in outs]


@pytest.fixture(scope="module")
def flights() -> dict[str, str]:
    """Two orbits of the default mission flown three times at once: seed 1 twice, seed 2."""
    one, again, two = fly_at_once(1, 1, 2)
    return {"seed 1": one, "seed 1 again": again, "seed 2": two}


@pytest.fixture(scope="module")
def two_orbits(flights: dict[str, str]) -> str:
    return flights["seed 1"]


def test_two_orbits_at_500_km_report_the_kepler_period(two_orbits: str) -> None:
    report = json.loads(two_orbits)
    assert abs(report["orbit"]["period_s"] - 5684.4) < 0.5  # nodal, with J2
    assert abs(report["orbit"]["keplerian_period_s"] - 5677.0) < 1.0
    assert report["duration_s"] == pytest.approx(2 * report["orbit"]["period_s"], abs=1.0)
    assert report["world"]["eclipses"] == 2


def test_the_default_mission_runs_its_plan_cleanly(two_orbits: str) -> None:
    report = json.loads(two_orbits)
    flight = report["flight"]
    assert flight["commands"] == {"completed": 6, "rejected": 0, "failed": 0}
    compute = report["compute"]
    assert compute["completed"] == 4 and compute["silent_corruptions"] == 0
    assert all(job["matches_reference"] or job.get("benign") for job in compute["jobs"])
    # The transformer learned, and the generation produced its tokens from the prompt.
    jobs = {job["workload"]: job for job in compute["jobs"]}
    loss = jobs["transformer"]["loss"]
    assert len(loss) == 200 and sum(loss[-20:]) / 20 < loss[0] - 1.5
    assert jobs["generate"]["prompt"] == "def run(self" and 0 < len(jobs["generate"]["text"]) <= 20
    assert jobs["generate"]["model_job"] == jobs["transformer"]["id"]  # served what it trained
    # The training job flies through the SAA pass under accelerated radiation.
    radiation = report["radiation"]
    assert radiation["saa_s"] > 600 and radiation["upsets_injected_total"] > 100
    assert compute["faults_corrected"] > 50 and compute["corrected_by"]["scrub"] > 0
    assert flight["executive"]["task_errors"] == 0
    assert flight["executive"]["rates_hz"] == [10, 1]
    # The accelerator drew its 700 W after the plan switched it on, and heated up.
    assert flight["telemetry"]["accelerator.power_w"]["max"] > 690.0
    assert report["world"]["temps_c"]["accelerator"]["max"] > 30.0
    # State of charge fell in eclipse and rose in sunlight.
    soc = report["world"]["soc_pct"]
    assert soc["min"] < 90.0 < soc["max"]
    assert all(b["timeouts"] == 0 for b in report["boards"].values())


def test_the_same_seed_gives_the_same_report_byte_for_byte(flights: dict[str, str]) -> None:
    assert flights["seed 1 again"] == flights["seed 1"]


def test_another_seed_changes_what_is_random(flights: dict[str, str]) -> None:
    one, two = json.loads(flights["seed 1"]), json.loads(flights["seed 2"])
    assert one["flight"]["telemetry"] != two["flight"]["telemetry"]  # sensor noise
    assert one["radiation"] != two["radiation"]  # where and when upsets strike
    assert one["orbit"] == two["orbit"]  # the orbit is not random


@pytest.mark.parametrize("altitude,period_s", [("1000", 6313.9), ("2000", 7637.2)])
def test_altitude_sets_the_period(capsys, altitude: str, period_s: float) -> None:
    code, out, _ = run(capsys, "sim", "--orbits", "0.02", "--altitude", altitude, "--json")
    assert code == 0
    assert abs(json.loads(out)["orbit"]["period_s"] - period_s) < 1.0


def test_a_325_km_orbit_decays_and_the_report_gives_its_lifetime(capsys) -> None:
    code, out, _ = run(capsys, "sim", "--orbits", "0.3", "--altitude", "325", "--json")
    orbit = json.loads(out)["orbit"]
    assert code == 0 and orbit["altitude_km"] == 325.0 and orbit["decay_m"] > 2.0
    assert orbit["altitude_km_end"] < 325.0 and not orbit["reentered"]
    assert 30 < orbit["lifetime_days"] < 400  # months, at solar minimum
    code, out, _ = run(capsys, "sim", "--orbits", "0.3", "--altitude", "325")
    assert "lifetime" in out and "days from 324.9" in out


def test_passes_are_predicted_from_the_cli_and_bad_requests_get_one_line(capsys,
                                                                        tmp_path) -> None:
    code, out, _ = run(capsys, "passes", "--days", "0.5", "--station", "svalbard", "--json")
    found = json.loads(out)["passes"]
    assert code == 0 and len(found) >= 6 and {p["station"] for p in found} == {"svalbard"}
    assert all(0 < p["duration_s"] < 800 and p["aos_utc"] < p["los_utc"] for p in found)
    code, _, err = run(capsys, "passes", "--station", "kiruna")
    assert code == 1 and "no ground station 'kiruna'" in err and len(err.splitlines()) == 1
    bare = tmp_path / "bare.toml"
    text = Path(default_path()).read_text()
    bare.write_text(text[:text.index("[[ground_stations]]")] + text[text.index("[boards.power]"):])
    code, _, err = run(capsys, "passes", "--board", str(bare))
    assert code == 1 and "no [[ground_stations]]" in err
    code, _, err = run(capsys, "sim", "--contact", "passes", "--orbits", "0.01")
    assert code == 1 and "--contact needs --ground" in err


def test_the_epoch_is_set_from_the_cli_or_the_definition(capsys, tmp_path) -> None:
    """A dawn-dusk orbit in its June eclipse-free season, and in the December one that
    is not (at 1000 km the southern eclipse season comes near the December solstice)."""
    code, out, _ = run(capsys, "sim", "--orbits", "0.02", "--epoch", "2027-06-21", "--json")
    june = json.loads(out)["orbit"]
    assert code == 0 and june["epoch_utc"] == "2027-06-21T00:00:00Z"
    default = (Path(__file__).resolve().parents[2] / "boards" / "sim.toml").read_text()
    defined = tmp_path / "sat.toml"
    defined.write_text(default.replace('ltan = "10:30"', 'ltan = "10:30"\nepoch = 2027-12-21'))
    code, out, _ = run(capsys, "sim", "--board", str(defined), "--orbits", "0.02", "--json")
    assert code == 0 and json.loads(out)["orbit"]["epoch_utc"] == "2027-12-21T00:00:00Z"
    assert json.loads(out)["orbit"]["beta_deg_start"] != june["beta_deg_start"]
    with pytest.raises(SystemExit) as refused:
        main(["sim", "--epoch", "tomorrow"])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and "not an ISO 8601 date or time" in err


def test_the_human_report_names_what_matters(capsys) -> None:
    code, out, err = run(capsys, "sim", "--orbits", "0.05")
    assert code == 0
    assert "Mission report: skyrack-sim-1 (seed 1)" in out
    assert "period 5684.4 s" in out and "Battery" in out and "Board links" in out
    assert ": None" not in out  # a command without a reason shows none
    assert "wall time" in err


@pytest.mark.parametrize("argv,code,reason", [
    (["sim", "--orbits", "-1"], 2, "argument --orbits: -1 is outside (0, 1000]"),
    (["sim", "--orbits", "many"], 2, "argument --orbits: 'many' is not a number"),
    (["sim", "--altitude", "10"], 2, "argument --altitude: 10 is outside 100..100000 km"),
    (["sim", "--seed", "-1"], 2, "argument --seed: -1 is outside 0..2^63-1"),
    (["sim", "--board", "/nowhere/sat.toml"], 1, "/nowhere/sat.toml: no such file"),
    (["warp"], 2, "invalid choice: 'warp'"),
])
def test_bad_input_exits_non_zero_with_one_line(capsys, argv, code, reason) -> None:
    if code == 2:  # argparse's own exit
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        got = exit_info.value.code
    else:
        got = main(argv)
    err = capsys.readouterr().err
    assert got == code
    assert reason in err and err.count("\n") == 1


def test_failure_with_json_also_prints_a_json_error(capsys) -> None:
    code, out, err = run(capsys, "sim", "--board", "/nowhere/sat.toml", "--json")
    assert code == 1
    assert json.loads(out) == {"ok": False, "error": "/nowhere/sat.toml: no such file",
                               "schema": 1}


def test_dictionary_json_lists_commands_telemetry_and_events(capsys) -> None:
    code, out, _ = run(capsys, "dictionary", "--json")
    d = json.loads(out)
    assert code == 0
    names = {c["name"] for c in d["commands"]}
    assert {"power.switch", "thermal.heater", "accelerator.set_state", "fsw.noop"} <= names
    assert any(t["name"] == "power.soc_pct" and t["unit"] == "%" for t in d["telemetry"])
    assert any(e["name"] == "power.board_silent" for e in d["events"])
    code, text, _ = run(capsys, "dictionary")
    assert "power.switch channel=<int 0..7> on=<bool>" in text



def test_altitude_ltan_and_days_reach_the_world(capsys) -> None:
    """The flags set the orbit flown, for as long as asked (tests/sim/test_world.py flies
    the same world for half a day: no eclipse at all)."""
    code, out, _ = run(capsys, "sim", "--altitude", "2000", "--ltan", "06:00", "--days",
                       "0.001", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["duration_s"] == pytest.approx(86.4, abs=1.0)
    orbit = report["orbit"]
    assert orbit["altitude_km"] == 2000.0 and orbit["ltan_h"] == 6.0
    assert orbit["period_s"] == pytest.approx(7637.2, abs=0.5)  # nodal
    assert report["world"]["eclipse_s"] == 0.0 and orbit["beta_deg_start"] < -70.0


@pytest.fixture(scope="module")
def noon_midnight() -> dict:
    """`skyrack sim --ltan 12:00 --orbits 3 --json`, flown once for the module."""
    proc = subprocess.run([str(Path(sys.executable).parent / "skyrack"), "sim", "--ltan",
                           "12:00", "--orbits", "3", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_noon_midnight_orbit_sees_an_eclipse_every_orbit(noon_midnight) -> None:
    world = noon_midnight["world"]
    assert world["eclipses"] == 3
    assert world["eclipse_fraction"] == pytest.approx(0.378, abs=0.01)


@pytest.mark.parametrize("argv,reason", [
    (["sim", "--ltan", "25:00"], "argument --ltan: LTAN '25:00' is outside 00:00..23:59"),
    (["sim", "--days", "1", "--orbits", "2"], "not allowed with argument"),
    (["sim", "--days", "40"], "argument --days: 40 is outside (0, 30] days"),
])
def test_bad_orbit_options_exit_2_with_one_line(capsys, argv, reason) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and reason in err and err.count("\n") == 1


def test_a_noon_midnight_orbit_sheds_compute_in_eclipse_above_the_floor(noon_midnight) -> None:
    report = noon_midnight
    modes, world = report["modes"], report["world"]
    assert world["eclipses"] == 3
    assert modes["compute_sheds_in_eclipse"] >= 2 and modes["budget_s"]["shed_power"] > 600
    assert world["soc_pct"]["min"] >= modes["soc_floor_pct"]
    assert report["compute"]["completed"] == 4 and report["compute"]["silent_corruptions"] == 0


def test_plot_draws_a_png_when_matplotlib_is_installed(capsys, tmp_path) -> None:
    from skyrack import plot

    if not plot.available():
        pytest.skip("matplotlib (the 'plot' extra) is not installed")
    target = tmp_path / "mission.png"
    code, _, _ = run(capsys, "sim", "--orbits", "0.2", "--plot", str(target))
    assert code == 0 and target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_mission_plot_draws_each_training_jobs_loss_below_the_mission(tmp_path) -> None:
    from skyrack import plot

    if not plot.available():
        pytest.skip("matplotlib (the 'plot' extra) is not installed")
    series = {"power.soc_pct": [(0.0, 90.0), (10.0, 89.5)], "mode.mode": [(0.0, "nominal")]}
    losses = {"job 2 (transformer)": [5.6, 4.1, 3.2, 2.7]}
    target = tmp_path / "m.png"
    labels = plot.plot_mission(series, str(target), "t", losses)
    assert labels == ["state of charge (%)", "power (W)", "temperature (degC)", "mode",
                      "training loss (nats)"]
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot.plot_mission(series, str(target), "t") == labels[:4]  # no job, no panel


def test_plot_without_matplotlib_says_how_to_get_it_before_flying(capsys, tmp_path,
                                                                   monkeypatch) -> None:
    from skyrack import plot

    monkeypatch.setattr(plot, "available", lambda: False)  # as on a machine without it
    code, out, err = run(capsys, "sim", "--plot", str(tmp_path / "m.png"))
    assert code == 1 and out == ""
    assert err == ("skyrack sim: error: plotting needs matplotlib: pip install -e '.[plot]' "
                   "(in a checkout) or 'skyrack[plot]'\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminals on Linux")
def test_boards_on_ptys_give_the_same_report_as_in_process(capsys) -> None:
    code, serial, _ = run(capsys, "sim", "--serial", "--orbits", "0.3", "--seed", "1", "--json")
    assert code == 0
    code, in_process, _ = run(capsys, "sim", "--orbits", "0.3", "--seed", "1", "--json")
    assert serial == in_process
    assert json.loads(serial)["boards"]["power"]["requests"] > 2000  # real traffic on the ptys


def test_dev_runs_skyrack_from_the_callers_directory(tmp_path) -> None:
    """`./dev` from elsewhere: a relative path is the caller's, not the repository's."""
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "boards" / "sim.toml", tmp_path / "mine.toml")
    proc = subprocess.run([str(root / "dev"), "sim", "--board", "mine.toml", "--orbits",
                           "0.01", "--json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["satellite"] == "skyrack-sim-1"


@pytest.mark.parametrize("signum", ["SIGTERM", "SIGINT"])
def test_a_signal_stops_a_wait_without_taking_a_lock(signum: str) -> None:
    import signal
    import threading
    import time

    from skyrack.cli.options import SignalStop

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stop = SignalStop()
        started = time.monotonic()
        assert stop.wait(0.12) is False and time.monotonic() - started >= 0.12
        # The handler runs in this (the main) thread, in the middle of wait(): it must
        # set the flag without a lock, and wait() must see it within a slice.
        threading.Timer(0.1, os.kill, (os.getpid(), getattr(signal, signum))).start()
        started = time.monotonic()
        assert stop.wait(10) is True
        assert time.monotonic() - started < 0.1 + 4 * SignalStop.SLICE_S
        assert stop.is_set() and stop.wait(0) is True
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
