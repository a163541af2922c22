"""The simulated world: orbit, sunlight, power and heat, stepped on the virtual clock.

Boards act on the world only through what real hardware could do (switch a rail,
drive a heater, change an accelerator's state); the world answers with what real
sensors would read. It also keeps the truth that the mission report compares with
what the flight software saw.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.accelerator import AcceleratorModel
from sim.atmosphere import REENTRY_KM, Drag
from sim.clock import VirtualClock
from sim.environment import TrappedProtons
from sim.orbit import AU_KM, R_EARTH_KM, CircularOrbit, illumination_at, sun_vector
from sim.power import SOLAR_CONSTANT_W_M2, Battery, SolarArray
from sim.radiation import RadiationConfig, RadiationModel
from sim.thermal import ThermalModel, default_model, view_factors

CHANNEL_COUNT = 8
FLIGHT_COMPUTER_CHANNEL = 0
# Fixed loads by power-board channel; the accelerator's channel is set by its board.
FLIGHT_COMPUTER_W = 120.0  # channel 0: flight computer, radios and attitude control
FLIGHT_COMPUTER_HEAT_W = 30.0  # the computer's own share; the rest heats the structure
THERMAL_BOARD_W = 5.0
HEATER_W = 15.0
LATCHUP_W = 1500.0  # what a latched-up load draws on top of its own
HEATER_NODES = ("battery", "structure")
# The state of charge at which the power board restarts a browned-out bus (with the
# array in sun): enough to boot and carry the bus avionics for a while.
RESTART_SOC = 0.05


@dataclass(slots=True)
class Extremes:
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, value: float) -> None:
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value


@dataclass(slots=True)
class Truth:
    """What really happened, accumulated every physics step."""

    sunlit_s: float = 0.0
    eclipse_s: float = 0.0  # less than half the sun's disc visible
    penumbra_s: float = 0.0  # part of the disc hidden
    eclipses: int = 0
    solar_wh: float = 0.0
    load_wh: float = 0.0
    shunted_wh: float = 0.0
    brownouts: int = 0  # times the battery could not carry the loads and the bus went down
    battery_loss_wh: float = 0.0  # heat in the battery's series resistance
    soc: Extremes = field(default_factory=Extremes)
    temps_c: dict[str, Extremes] = field(default_factory=dict)


class World:
    """Physics on a fixed 1 s step, kept up with the virtual clock."""

    STEP_S = 1.0

    STORAGE_STEP_S = 10.0  # radiation on stored files, batched: listing them costs more

    DECAY_STEP_S = 60.0  # the orbit is moved to its decayed altitude this often

    def __init__(self, clock: VirtualClock, orbit: CircularOrbit, seed: int,
                 thermal: ThermalModel | None = None,
                 radiation: RadiationConfig | None = None,
                 drag: Drag | None = None) -> None:
        self.clock = clock
        self.orbit = orbit
        self.start_orbit = orbit  # before drag moved it
        self.start_altitude_km = orbit.altitude_km
        self.drag = drag
        self.reentered = False
        self._decay_due_s = self.DECAY_STEP_S
        self.seed = seed
        self.array = SolarArray()
        self.battery = Battery()
        self.thermal = thermal or default_model()
        self.accelerator = AcceleratorModel()
        self.accelerator_channel: int | None = None
        self.compute: Any = None  # the accelerator's data plane (a hal ComputeDevice)
        self.storage_dirs: list[Path] = []  # the flight computer's files, under radiation
        self.nvm_dir: Path | None = None  # where emulated boards keep their NVM; None: RAM
        radiation = radiation or RadiationConfig()
        self.radiation = RadiationModel(radiation, self.rng("radiation"))
        self.protons = TrappedProtons(radiation.solar, orbit.epoch_unix_s)
        self.protons.flux(0.0, 0.0, orbit.altitude_km)  # refuses an orbit it does not cover
        self._storage_dt_s = 0.0
        self.timers: list[Any] = []  # board firmware timer interrupts, once a step
        self.thermal_board_channel: int | None = None
        self.switches = [False] * CHANNEL_COUNT
        self.switches[FLIGHT_COMPUTER_CHANNEL] = True
        self.browned_out = False  # the bus down for want of energy (see _step)
        self.power_ups = [0] * CHANNEL_COUNT  # rising edges per channel: boards reboot on them
        self.power_up_s = [clock.now_s()] * CHANNEL_COUNT  # time of each channel's last edge
        self.latched_loads = [False] * CHANNEL_COUNT  # a latch-up draws extra until unpowered
        self.heaters = [False] * len(HEATER_NODES)
        self.illumination = orbit.illumination(clock.now_s())  # fraction of the sun's disc
        self.lit = self.illumination > 0.5
        self.solar_w = 0.0
        self.load_w = 0.0
        self.truth = Truth(temps_c={n: Extremes() for n in self.thermal.nodes})
        self._view_r, self._views = 0.0, (0.0, 0.0)  # Earth view factors at radius _view_r
        self._steps = 0
        self._t0_s = clock.now_s()
        self._next_s = self.t_s + self.STEP_S  # when the next step is due: ticks ask often
        clock.on_advance(self.advance_to)

    @property
    def t_s(self) -> float:
        return self._t0_s + self._steps * self.STEP_S

    def rng(self, stream: str) -> np.random.Generator:
        """An independent, reproducible random stream for one named part of the world."""
        return np.random.default_rng([self.seed, zlib.crc32(stream.encode())])

    def attach_rail(self, channel: int, board_kind: str) -> None:
        """A board of `board_kind` is fed by power-board output `channel`."""
        if not 0 <= channel < CHANNEL_COUNT:
            raise ValueError(f"power channel {channel} outside 0..{CHANNEL_COUNT - 1}")
        if board_kind == "accelerator":
            self.accelerator_channel = channel
        elif board_kind == "thermal":
            self.thermal_board_channel = channel
            self.set_switch(channel, True)  # bus avionics boot powered

    def _brown_out(self) -> None:
        self.browned_out = True
        self.truth.brownouts += 1
        for channel, on in enumerate(self.switches):
            if on:
                self.set_switch(channel, False)

    def _restart(self) -> None:
        """The power board's power-on reset, once the array charges the battery past
        RESTART_SOC: the flight computer's rail and the bus avionics' come back (and
        with them a fresh boot of the flight software)."""
        self.browned_out = False
        self.set_switch(FLIGHT_COMPUTER_CHANNEL, True)
        if self.thermal_board_channel is not None:
            self.set_switch(self.thermal_board_channel, True)

    def set_switch(self, channel: int, on: bool) -> None:
        if on and not self.switches[channel]:
            self.power_ups[channel] += 1
            self.power_up_s[channel] = self.t_s
        if not on:
            self.latched_loads[channel] = False  # cutting the power clears a latch-up
        self.switches[channel] = on
        if channel == self.accelerator_channel:
            if on:
                self.accelerator.powered = True
            else:
                self.accelerator.power_lost()
                if self.compute is not None:
                    self.compute.reset()  # device memory does not survive a power cut

    def rail_on(self, channel: int | None) -> bool:
        return channel is None or self.switches[channel]

    def channel_power_w(self) -> list[float]:
        power = [0.0] * CHANNEL_COUNT
        power[FLIGHT_COMPUTER_CHANNEL] += FLIGHT_COMPUTER_W
        switches, thermal = self.switches, self.thermal_board_channel
        if thermal is not None and switches[thermal]:
            power[thermal] += THERMAL_BOARD_W + HEATER_W * sum(self.heaters)
        if self.accelerator_channel is not None:
            power[self.accelerator_channel] += self.accelerator.power_w()
        if True in self.latched_loads:
            for channel, latched in enumerate(self.latched_loads):
                if latched:
                    power[channel] += LATCHUP_W
        return [p if on else 0.0 for p, on in zip(power, switches, strict=True)]

    def advance_to(self, t_s: float) -> None:
        while self._next_s <= t_s + 1e-9:
            self._step(self.STEP_S)

    def _decay(self, t_s: float) -> None:
        """Drag over the last DECAY_STEP_S: the orbit sinks to its new altitude, the
        satellite where it was along it (its argument of latitude kept). It stays
        sun-synchronous (the inclination follows the altitude); a real orbit keeps its
        inclination and lets its node drift off the sun's rate, by about 0.005 deg a day for
        each 10 km it has sunk."""
        orbit, drag = self.orbit, self.drag
        assert drag is not None
        altitude = orbit.altitude_km - drag.decay_km_s(orbit.altitude_km) * self.DECAY_STEP_S
        if altitude <= REENTRY_KM:
            altitude, self.reentered = REENTRY_KM, True
        u_deg = orbit.phase_deg + math.degrees(orbit.mean_motion_rad_s * t_s)
        moved = CircularOrbit(altitude, orbit.ltan_h, orbit.epoch_unix_s)
        phase = (u_deg - math.degrees(moved.mean_motion_rad_s * t_s)) % 360.0
        self.orbit = CircularOrbit(altitude, orbit.ltan_h, orbit.epoch_unix_s, phase)

    def _step(self, dt_s: float) -> None:
        t = self.t_s
        if self.drag is not None and not self.reentered and t >= self._decay_due_s:
            self._decay(t)
            self._decay_due_s += self.DECAY_STEP_S
        orbit, mid_s = self.orbit, t + dt_s / 2
        x, y, z = position = orbit.position_km(mid_s)
        (sx, sy, sz), sun_km = sun = sun_vector(orbit.epoch_unix_s + mid_s)
        illumination = illumination_at(position, *sun)
        lit = illumination > 0.5
        truth = self.truth
        if self.lit and not lit:
            truth.eclipses += 1
        self.lit = lit
        self.illumination = illumination

        flux_w_m2 = SOLAR_CONSTANT_W_M2 * (AU_KM / sun_km) ** 2  # +-3.4 % over the year
        self.solar_w = self.array.power_w(illumination, t, flux_w_m2)
        if self.browned_out and self.solar_w > 0.0 and self.battery.soc >= RESTART_SOC:
            self._restart()
        channels = self.channel_power_w()
        self.load_w = sum(channels)
        taken_w = self.battery.step(self.solar_w - self.load_w, dt_s)
        surplus_w = self.solar_w - self.load_w
        shunted_w = max(surplus_w - taken_w, 0.0) if surplus_w > 0 else 0.0
        if surplus_w < 0.0 and taken_w > surplus_w * (1.0 - 1e-9) + 1e-9:
            # The battery cannot carry the loads: the bus browns out. The loads had
            # what the array and the battery gave (no more), then every rail drops,
            # the flight computer's too, until the battery can restart the bus.
            self.load_w = self.solar_w - taken_w
            self._brown_out()

        accelerator_w = self.accelerator.power_w()
        heater_on = self.rail_on(self.thermal_board_channel)
        heater_w = [HEATER_W if (on and heater_on) else 0.0 for on in self.heaters]
        avionics_w = self.load_w - accelerator_w - sum(heater_w)
        heat = {
            "accelerator": accelerator_w,
            "flight_computer": min(avionics_w, FLIGHT_COMPUTER_HEAT_W),
            "structure": max(avionics_w - FLIGHT_COMPUTER_HEAT_W, 0.0),  # other avionics
            "battery": self.battery.current_a**2 * self.battery.resistance_ohm,
        }
        for node, w in zip(HEATER_NODES, heater_w, strict=True):
            heat[node] += w
        r = math.sqrt(x * x + y * y + z * z)
        if abs(r - self._view_r) > 0.1:  # km
            self._view_r, self._views = r, view_factors(r / R_EARTH_KM)
        nadir_view, edge_view = self._views
        self.thermal.step(dt_s, heat, illumination, earth_view=nadir_view,
                          albedo_cos=max(0.0, (x * sx + y * sy + z * sz) / r),
                          solar_w_m2=flux_w_m2, edge_view=edge_view)

        lat, lon = orbit.lat_lon(position, mid_s)
        self.radiation.set_flux(self.protons.flux(lat, lon, self.orbit.altitude_km))
        self._storage_dt_s += dt_s
        storage: list[Path] = []
        if self._storage_dt_s >= self.STORAGE_STEP_S:
            storage, self._storage_dt_s = self.storage_dirs, 0.0
        hung_before = getattr(self.compute, "hung", False)
        self.radiation.step(dt_s, self.compute, [])
        channel = self.radiation.latchup(dt_s, [c for c, on in enumerate(self.switches)
                                                if on and c != FLIGHT_COMPUTER_CHANNEL])
        if channel is not None:
            self.latched_loads[channel] = True
        if not hung_before and getattr(self.compute, "hung", False):
            self.accelerator.error_count += 1  # the board's controller sees its device hang
        if storage:
            self.radiation.step_storage(self.STORAGE_STEP_S, storage)

        hours = dt_s / 3600.0
        if lit:
            truth.sunlit_s += dt_s
        else:
            truth.eclipse_s += dt_s
        if 0.0 < illumination < 1.0:
            truth.penumbra_s += dt_s
        truth.solar_wh += (self.solar_w - shunted_w) * hours
        truth.shunted_wh += shunted_w * hours
        truth.load_wh += self.load_w * hours
        truth.battery_loss_wh += heat["battery"] * hours
        truth.soc.add(self.battery.soc)
        for name, node in self.thermal.nodes.items():
            truth.temps_c[name].add(node.temp_c)
        self._steps += 1
        self._next_s = self.t_s + self.STEP_S
        for timer in self.timers:
            timer()
