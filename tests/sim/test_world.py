import pytest

from boards.definition import default_path, load
from sim.clock import VirtualClock
from sim.orbit import CircularOrbit
from sim.power import Battery, cell_ocv_v
from sim.world import World
from skyrack.assembly import build_world


def fly_until(world: World, lit: bool) -> None:
    t = world.clock.now_s()
    while world.orbit.in_sunlight(t) != lit:
        t += 1.0
    world.clock.sleep_until(t + 2.0)


def test_state_of_charge_falls_under_load_in_eclipse_and_rises_in_sunlight(world) -> None:
    world.attach_rail(2, "accelerator")
    world.set_switch(2, True)
    world.accelerator.state = "on"
    fly_until(world, lit=False)
    soc_dark = world.battery.soc
    world.clock.sleep_until(world.clock.now_s() + 600.0)
    assert not world.lit and world.battery.soc < soc_dark - 0.02
    assert world.battery.current_a < 0.0
    fly_until(world, lit=True)
    soc_lit = world.battery.soc
    world.clock.sleep_until(world.clock.now_s() + 600.0)
    assert world.lit and world.battery.soc > soc_lit + 0.01


def test_accelerator_temperature_follows_its_power(world) -> None:
    cold = World(VirtualClock(), CircularOrbit(500.0), seed=1)
    world.attach_rail(2, "accelerator")
    world.set_switch(2, True)
    world.accelerator.state = "on"
    for w in (world, cold):
        w.clock.sleep_until(1800.0)
    hot_c = world.thermal.nodes["accelerator"].temp_c
    cold_c = cold.thermal.nodes["accelerator"].temp_c
    assert hot_c > cold_c + 15.0
    assert world.truth.temps_c["accelerator"].high == pytest.approx(hot_c, abs=0.5)


def test_what_the_battery_stored_is_the_bus_energy_balance(world) -> None:
    battery = world.battery
    soc_start = battery.soc
    world.clock.sleep_until(world.orbit.period_s)
    t = world.truth
    assert t.eclipse_s > 0 and t.sunlit_s > 0 and t.shunted_wh > 0  # it filled up
    stored_wh = (battery.soc - soc_start) * battery.capacity_ah * battery.ocv_v()
    # Solar used minus loads is what went into the battery, less its I²R loss; the OCV
    # used to turn charge into energy varies a few percent over the swing.
    assert stored_wh == pytest.approx(t.solar_wh - t.load_wh, rel=0.1)


def test_the_ocv_curve_rises_with_charge_and_a_full_battery_refuses_charge() -> None:
    volts = [cell_ocv_v(s / 100) for s in range(0, 101, 5)]
    assert volts == sorted(volts) and volts[0] == 3.0 and volts[-1] == 4.18
    full = Battery(soc=1.0)
    assert full.step(500.0, 1.0) == 0.0 and full.soc == 1.0


def test_the_same_seed_gives_the_same_noise_and_another_seed_does_not() -> None:
    a = World(VirtualClock(), CircularOrbit(500.0), seed=1).rng("board:power").normal(size=4)
    b = World(VirtualClock(), CircularOrbit(500.0), seed=1).rng("board:power").normal(size=4)
    c = World(VirtualClock(), CircularOrbit(500.0), seed=2).rng("board:power").normal(size=4)
    assert list(a) == list(b) and list(a) != list(c)


def test_the_array_loses_power_with_tracking_error_and_age() -> None:
    from sim.power import SolarArray

    new = SolarArray(incidence_deg=0.0)
    tilted = SolarArray(incidence_deg=60.0)
    assert tilted.power_w(1.0) == pytest.approx(0.5 * new.power_w(1.0))
    ten_years = 10 * 365.25 * 86400.0
    assert new.power_w(1.0, ten_years) == pytest.approx(new.power_w(1.0) * 0.975**10)
    assert new.power_w(0.25) == pytest.approx(0.25 * new.power_w(1.0))  # penumbra


def test_the_array_and_the_radiators_feel_the_suns_distance() -> None:
    """Perihelion (early January) against aphelion (early July): the sun's flux, and so
    the array's power, differ by (1.0167 / 0.9833)^2 = 1.069 (the orbit's eccentricity,
    0.0167)."""
    import dataclasses

    from boards.definition import default_path, load
    from skyrack.assembly import build_world

    definition = load(default_path())
    power = {}
    for epoch in ("2027-01-03", "2027-07-05"):
        sim = dict(definition.sim, ltan="06:00", altitude_km=2000.0)
        world = build_world(dataclasses.replace(definition, sim=sim), epoch=epoch)
        world.advance_to(10.0)
        assert world.illumination == 1.0
        power[epoch] = world.solar_w
    assert power["2027-01-03"] / power["2027-07-05"] == pytest.approx(1.069, abs=0.002)


def test_an_empty_battery_browns_the_bus_out_and_the_sun_restarts_it() -> None:
    """No energy from nowhere: with the battery empty in eclipse the loads get what it
    gives and no more, every rail drops (the flight computer's too) and the satellite
    does not run; in sunlight, once the battery has some charge again, the power board
    restarts the bus and the flight software boots afresh."""
    import dataclasses

    from boards.definition import default_path, load
    from sim.world import FLIGHT_COMPUTER_CHANNEL, RESTART_SOC
    from skyrack.assembly import assemble

    definition = load(default_path())
    satellite = assemble(dataclasses.replace(
        definition, plan=(), sim=dict(definition.sim, ltan="12:00")))
    world = satellite.world
    assert world is not None
    try:
        t = 0.0
        while world.illumination > 0.0:  # to the shadow
            t += 10.0
            satellite.run_until(t)
        world.battery.soc = 0.002  # nearly empty, entering a long eclipse
        stored_wh = world.battery.ocv_v() * world.battery.capacity_ah * 0.002  # at most
        before = world.truth.load_wh, world.truth.solar_wh
        while not world.browned_out:
            t += 1.0
            satellite.run_until(t)
        assert world.truth.brownouts == 1 and not any(world.switches)
        drawn_wh = world.truth.load_wh - before[0]
        assert world.truth.solar_wh == before[1]  # no sun meanwhile
        assert drawn_wh <= stored_wh  # the loads had what the battery held, no more
        reboots, ticks = satellite.reboots, satellite.flight.executive.ticks
        satellite.run_until(t + 600.0)  # still in shadow: nothing runs, nothing is drawn
        assert satellite.flight.executive.ticks == ticks
        assert world.load_w == 0.0 and world.truth.load_wh - before[0] == drawn_wh
        while world.browned_out:  # the sun comes back and charges the battery
            t += 60.0
            satellite.run_until(t)
            assert t < 3 * world.orbit.period_s, "the bus never came back"
        assert world.battery.soc >= RESTART_SOC * 0.99
        assert world.switches[FLIGHT_COMPUTER_CHANNEL] and satellite.reboots == reboots + 1
        # The power board's watchdog slept while the computer had no power: it never bit.
        hk = satellite.drivers["power"].housekeeping()
        assert hk.watchdog_resets == 0 and hk.fc_boot_cause == "power_on"
    finally:
        satellite.close()


def _stored_wh(battery, soc: float, steps: int = 20000) -> float:
    """The battery's chemical energy from empty to `soc`: capacity times the open-circuit
    voltage integrated over the charge."""
    from sim.power import cell_ocv_v

    return battery.capacity_ah * battery.cells_series * soc / steps * sum(
        cell_ocv_v(soc * (k + 0.5) / steps) for k in range(steps))


@pytest.mark.parametrize("soc, compute", [(0.9, False), (0.12, True)])
def test_energy_in_is_energy_out_plus_stored_to_a_thousandth(soc, compute) -> None:
    """Over two noon-midnight orbits: what the array put on the bus equals what the
    loads drew, plus the change in the battery's chemical energy, plus its resistive
    loss, to 0.1 %; also when compute empties the battery and the bus browns out."""
    import dataclasses

    from boards.definition import default_path, load
    from skyrack.assembly import build_world

    definition = load(default_path())
    world = build_world(dataclasses.replace(definition, sim=dict(definition.sim, ltan="12:00")))
    world.battery.soc = soc
    if compute:
        world.attach_rail(2, "accelerator")
        world.set_switch(2, True)
        world.accelerator.powered = True
        world.accelerator.state = "on"  # 700 W: more than the array gives
    start_wh = _stored_wh(world.battery, world.battery.soc)
    world.advance_to(2 * world.orbit.period_s)
    truth = world.truth
    stored_wh = _stored_wh(world.battery, world.battery.soc) - start_wh
    residual = truth.solar_wh - truth.load_wh - stored_wh - truth.battery_loss_wh
    assert abs(residual) < 1e-3 * (truth.solar_wh + truth.load_wh), (residual, truth)
    assert (truth.brownouts > 0) == compute


def test_dawn_dusk_at_2000_km_has_no_eclipse_for_half_a_day() -> None:
    # The default definition's world with `skyrack sim --altitude 2000 --ltan 06:00`.
    world = build_world(load(default_path()), altitude_km=2000.0, ltan="06:00")
    world.clock.sleep_until(43200.0)
    assert world.truth.eclipse_s == 0.0 and world.truth.penumbra_s == 0.0
    assert world.lit and world.illumination == 1.0
    # At noon-midnight the same world is in the Earth's shadow every orbit.
    noon = build_world(load(default_path()), altitude_km=2000.0, ltan="12:00")
    noon.clock.sleep_until(7637.2)
    assert noon.truth.eclipses == 1 and noon.truth.eclipse_s > 1500.0
