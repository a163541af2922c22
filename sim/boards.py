"""Emulated boards: the boards/ firmware, unchanged, on platforms made of simulated
physics. Each is reached through `receive(rx) -> tx`, the same bytes a UART carries,
so a driver cannot tell it from a real board.

Sensors read the world with noise drawn from the board's own seeded stream.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from boards.definition import BoardSpec
from boards.firmware.accelerator import AcceleratorFirmware
from boards.firmware.bootloader import Bootloader
from boards.firmware.power import PowerFirmware, PowerSense
from boards.firmware.server import Firmware, ProtocolServer
from boards.firmware.thermal import ThermalFirmware
from hal import image
from sim.nvm import DirectoryNvm
from sim.world import CHANNEL_COUNT, HEATER_NODES, World

# Sensor noise, one standard deviation, typical of a 12-bit ADC front end.
BATT_V_SIGMA = 0.01
CURRENT_A_SIGMA = 0.02
SOC_PCT_SIGMA = 0.1
SOLAR_W_SIGMA = 2.0
TEMP_C_SIGMA = 0.2
POWER_W_SIGMA = 1.0
JUNCTION_W_K = 100.0  # die to cold plate
NOISE_BLOCK = 1024


class SimPlatform:
    """What every emulated board shares: a serial number, uptime on the world clock,
    and the power rail that feeds it (None: always powered)."""

    def __init__(self, world: World, spec: BoardSpec) -> None:
        self.world = world
        self.channel = spec.power_channel
        self.serial_number = f"SIM-{zlib.crc32(spec.name.encode()):08X}"
        self.rng = world.rng(f"board:{spec.name}")
        self._pool: list[float] = []  # noise drawn ahead (normals)
        self._at = 0
        self._boot_s = world.t_s
        # Survives reboots and power cuts; in a directory, the serving process too.
        self.nvm: dict[str, bytes] | DirectoryNvm = (
            DirectoryNvm(world.nvm_dir / spec.name) if world.nvm_dir is not None else {})
        self.nvm_crash: Callable[[str], None] | None = None  # tests cut power before a write

    def nvm_read(self, key: str) -> bytes | None:
        return self.nvm.get(key)

    def nvm_write(self, key: str, data: bytes) -> None:
        if self.nvm_crash is not None:
            self.nvm_crash(key)
        self.nvm[key] = bytes(data)

    # Boards keep the world's physics time: it advances step by step while the flight
    # software sleeps, so a board's timers run even when nothing talks to it.
    def uptime_s(self) -> float:
        return self.world.t_s - self._boot_s

    def reboot(self, at_s: float | None = None) -> None:
        self._boot_s = self.world.t_s if at_s is None else at_s

    def normals(self, n: int) -> list[float]:
        """The next `n` draws of this board's sensor-noise stream. Drawn NOISE_BLOCK at
        a time (a call to the generator costs more than the numbers it makes), they are
        the numbers one draw a call would give, in the same order."""
        pool, at = self._pool, self._at
        if at + n > len(pool):
            pool = self._pool = pool[at:] + self.rng.standard_normal(
                max(NOISE_BLOCK, n)).tolist()
            at = 0
        self._at = at + n
        return pool[at:at + n]

    def noisy(self, value: float, sigma: float) -> float:
        return float(value + sigma * self.normals(1)[0])

    def powered(self) -> bool:
        return self.world.rail_on(self.channel)

    def power_ups(self) -> int:
        return 0 if self.channel is None else self.world.power_ups[self.channel]

    def powered_since_s(self) -> float:
        return self.world.power_up_s[self.channel] if self.channel is not None else 0.0


class SimPowerPlatform(SimPlatform):
    """The power board's ADC converts once a physics step: the protection in its timer
    interrupt and a housekeeping reply in the same step read the same conversion, as a
    board's firmware reports its latest samples. A switch it has thrown since is seen
    at once (its rail's current is gone)."""

    channel_count = CHANNEL_COUNT

    def __init__(self, world: World, spec: BoardSpec) -> None:
        super().__init__(world, spec)
        self._sample: tuple[float, tuple[bool, ...], PowerSense] | None = None

    def sense(self) -> PowerSense:
        w = self.world
        at, switches = w.t_s, tuple(w.switches)
        if self._sample is not None and self._sample[:2] == (at, switches):
            return self._sample[2]
        sense = self._convert()
        self._sample = (at, switches, sense)
        return sense

    def _convert(self) -> PowerSense:
        w = self.world
        battery = w.battery
        v = battery.terminal_v()
        channels = w.channel_power_w()
        # Every sensor's noise (the channels' too, used where they carry current).
        noise = self.normals(4 + len(channels))
        # `0.0 if x < 0.0 else x` is max(x, 0.0) (NaN and -0.0 kept alike), without a call.
        solar = w.solar_w + SOLAR_W_SIGMA * noise[3]
        currents = [(p / v + CURRENT_A_SIGMA * n) if p else 0.0
                    for p, n in zip(channels, noise[4:], strict=True)]
        return PowerSense(
            v + BATT_V_SIGMA * noise[0],
            battery.current_a + CURRENT_A_SIGMA * noise[1],
            100.0 * battery.soc + SOC_PCT_SIGMA * noise[2],
            0.0 if solar < 0.0 else solar,
            tuple([0.0 if a < 0.0 else a for a in currents]),
        )

    def switches(self) -> tuple[bool, ...]:
        return tuple(self.world.switches)

    def set_switch(self, channel: int, on: bool) -> None:
        if self.world.browned_out:
            return  # a bus without power switches nothing (its board is down too)
        self.world.set_switch(channel, on)


class SimThermalPlatform(SimPlatform):
    heater_count = len(HEATER_NODES)

    def temperatures_c(self) -> dict[str, float]:
        nodes = self.world.thermal.nodes
        noise = self.normals(len(nodes))
        return {name: node.temp_c + TEMP_C_SIGMA * n
                for (name, node), n in zip(nodes.items(), noise, strict=True)}

    def heaters(self) -> tuple[bool, ...]:
        return tuple(self.world.heaters)

    def set_heater(self, heater: int, on: bool) -> None:
        self.world.heaters[heater] = on


class SimAcceleratorPlatform(SimPlatform):
    def state(self) -> str:
        return self.world.accelerator.state

    def set_state(self, state: str) -> None:
        self.world.accelerator.state = state

    def clock_pct(self) -> int:
        return self.world.accelerator.clock_pct

    def set_clock_pct(self, pct: int) -> None:
        self.world.accelerator.clock_pct = pct

    def temp_c(self) -> float:
        # The die runs above its cold plate by power over the junction conductance.
        plate_c = self.world.thermal.nodes["accelerator"].temp_c
        return self.noisy(plate_c + self.world.accelerator.power_w() / JUNCTION_W_K, TEMP_C_SIGMA)

    def power_w(self) -> float:
        return max(self.noisy(self.world.accelerator.power_w(), POWER_W_SIGMA), 0.0)

    def error_count(self) -> int:
        return self.world.accelerator.error_count


class EmulatedBoard:
    """One board's firmware served on a sim platform. An unpowered board hears
    nothing and says nothing; when its rail comes back it boots afresh."""

    def __init__(self, spec: BoardSpec, platform: SimPlatform,
                 firmware: Callable[[SimPlatform], Firmware]) -> None:
        self.name = spec.name
        self.kind = spec.kind
        self.platform = platform
        self.server = ProtocolServer(spec.name, firmware(platform), self._bootloader())
        platform.world.timers.append(self.tick)
        self._power_ups = platform.power_ups()
        # A single-event latch-up: the board stops answering until its power is cycled.
        self.latched = False
        self.failed = False  # a dead board: nothing brings it back
        self.noise = b""  # garbage the line carries ahead of the board's next words

    def receive(self, data: bytes) -> bytes:
        if not self.platform.powered():
            return b""
        if self.platform.power_ups() != self._power_ups:
            self._power_ups = self.platform.power_ups()
            self.latched = False
            self.platform.reboot(at_s=self.platform.powered_since_s())
            self.server = ProtocolServer(self.name, self.server.firmware, self._bootloader())
        noise, self.noise = self.noise, b""
        if self.latched or self.failed:
            return noise
        return noise + self.server.receive(data)

    def tick(self) -> None:
        """The board's timer interrupt, once a physics step, while it has power."""
        if self.platform.powered() and not self.failed:
            self.server.tick()

    def _bootloader(self) -> Bootloader:
        """Booted from NVM: on first power-up it installs the factory image."""
        factory = image.build(self.kind, "1.0.0", f"factory firmware: {self.kind}".encode())
        return Bootloader(self.kind, self.platform, factory)


def EmulatedPowerBoard(spec: BoardSpec, world: World) -> EmulatedBoard:  # noqa: N802
    return EmulatedBoard(spec, SimPowerPlatform(world, spec), PowerFirmware)


def EmulatedThermalBoard(spec: BoardSpec, world: World) -> EmulatedBoard:  # noqa: N802
    if spec.power_channel is not None:
        world.attach_rail(spec.power_channel, "thermal")
    return EmulatedBoard(spec, SimThermalPlatform(world, spec), ThermalFirmware)


def EmulatedAcceleratorBoard(spec: BoardSpec, world: World) -> EmulatedBoard:  # noqa: N802
    if spec.power_channel is not None:
        world.attach_rail(spec.power_channel, "accelerator")
    else:
        world.accelerator.powered = True  # fed straight from the bus
    return EmulatedBoard(spec, SimAcceleratorPlatform(world, spec), AcceleratorFirmware)
