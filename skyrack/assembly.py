"""Assembly: a board definition in, a satellite out.

Drivers and emulated boards are loaded by the names written in the definition, so the
definition is the wiring diagram. This module (with the CLI) is the only code allowed
to import every layer.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boards.definition import DefinitionError, SatelliteDefinition, resolve
from drivers.clock import MonotonicClock
from drivers.storage import DirectoryStorage
from flight.software import FlightSoftware
from hal.auth import KeyFile
from hal.clock import Clock
from hal.dictionary import ArgumentError, validate_args
from hal.errors import SkyrackError, TransportError
from hal.packetlink import PacketLink
from hal.transport import InProcessTransport, SerialTransport, Transport
from sim.atmosphere import DEFAULT_DRAG_COEFFICIENT, SOLAR_CYCLE_F107, Drag
from sim.clock import VirtualClock
from sim.contact import ContactLink
from sim.orbit import DEFAULT_EPOCH_UNIX_S, CircularOrbit, parse_epoch, parse_ltan
from sim.pty import PtyBoard
from sim.radiation import IrradiatedDevice, RadiationConfig
from sim.world import FLIGHT_COMPUTER_CHANNEL, World

DEFAULT_ALTITUDE_KM = 500.0
DEFAULT_LTAN = "10:30"


@dataclass
class Satellite:
    definition: SatelliteDefinition
    clock: Clock
    flight: FlightSoftware
    drivers: dict[str, Any]  # by board name
    world: World | None = None
    emulators: dict[str, Any] = field(default_factory=dict)
    transports: list[Transport] = field(default_factory=list)
    work_dir: Path | None = None  # the flight computer's storage and job checkpoints
    keep_work_dir: bool = False  # a --state directory: kept; otherwise removed on close
    state_lock: Any = None  # the open lock file of a kept state directory
    boot: Callable[[], FlightSoftware] | None = None  # starts the flight software afresh
    ptys: list[Any] = field(default_factory=list)  # boards served on pseudo-terminals
    reboots: int = 0
    on_reboot: list[Callable[[FlightSoftware], None]] = field(default_factory=list)
    _fc_power_ups: int = 0

    def run_until(self, t_s: float) -> None:
        """Run the flight software to `t_s`. If the flight computer's power was cycled
        (the power board's watchdog), what ran is gone: boot a fresh flight software,
        as the computer would."""
        # Bounded by the executive's own tick grid: a t_s between two ticks runs the
        # ticks before it and stops, rather than waiting on a tick that never comes.
        while self.flight.executive.next_tick_s() <= t_s + 1e-9:
            if self.world is not None and self.world.browned_out:
                # The flight computer is unpowered (the bus browned out): nothing runs on
                # it; the world goes on until its rail comes back, and it boots afresh.
                if self.clock.now_s() >= t_s:
                    return
                self.clock.sleep_until(min(t_s, self.clock.now_s() + 1.0))
                self._reboot_if_power_cycled()
                continue
            self.flight.run_until(min(t_s, self.clock.now_s() + 1.0))
            self._reboot_if_power_cycled()

    def _reboot_if_power_cycled(self) -> None:
        if self.world is None or self.boot is None:
            return
        ups = self.world.power_ups[FLIGHT_COMPUTER_CHANNEL]
        if ups != self._fc_power_ups:
            self._fc_power_ups = ups
            self.flight = self.boot()
            self.reboots += 1
            for listener in self.on_reboot:
                listener(self.flight)

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        for served in self.ptys:
            served.close()
        if self.state_lock is not None:
            self.state_lock.close()  # and with it the lock
            self.state_lock = None
        if self.work_dir is not None and not self.keep_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)


def build_world(definition: SatelliteDefinition, *, seed: int = 1,
                altitude_km: float | None = None, ltan: str | None = None,
                epoch: str | None = None) -> World:
    """The simulated world a sim definition's [sim] table describes, on a virtual clock.
    Raises DefinitionError (file and key)."""
    where = definition.path
    altitude = altitude_km if altitude_km is not None else definition.sim.get(
        "altitude_km", DEFAULT_ALTITUDE_KM)
    try:
        epoch = epoch if epoch is not None else definition.sim.get("epoch")
        orbit = CircularOrbit(altitude, ltan_h=parse_ltan(
            ltan if ltan is not None else definition.sim.get("ltan", DEFAULT_LTAN)),
            epoch_unix_s=parse_epoch(epoch) if epoch is not None else DEFAULT_EPOCH_UNIX_S)
        radiation = RadiationConfig(
            memory=definition.sim.get("memory", "dram"),
            memory_cross_section_cm2=definition.sim.get("memory_cross_section_cm2"),
            solar=definition.sim.get("solar_cycle", "min"),
            acceleration=definition.sim.get("radiation_acceleration", 1.0),
            hang_acceleration=definition.sim.get("hang_acceleration", 1.0))
        return World(VirtualClock(), orbit, seed, radiation=radiation,
                     drag=_drag(definition.sim, radiation.solar))
    except ValueError as e:
        raise DefinitionError(where, "sim", str(e)) from None


def scratch_root() -> str | None:
    """Where throwaway flight-computer storage goes (a run's without --state, a
    campaign's jobs): memory (/dev/shm) where there is one. It lives for the run only,
    and a process killed mid-write leaves page-cache writes in place, so a disk's
    fsyncs (one a checkpoint) buy nothing there but time. None: the system's
    temporary directory."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def _drag(sim: dict[str, Any], solar_cycle: str) -> Drag | None:
    """Drag, where the definition gives the satellite's mass and drag area."""
    if "mass_kg" not in sim and "drag_area_m2" not in sim:
        return None
    if "mass_kg" not in sim or "drag_area_m2" not in sim:
        raise ValueError("drag needs both mass_kg and drag_area_m2")
    return Drag.of(sim["mass_kg"], sim["drag_area_m2"],
                   sim.get("f107", SOLAR_CYCLE_F107[solar_cycle]),
                   sim.get("drag_coefficient", DEFAULT_DRAG_COEFFICIENT))


def assemble(definition: SatelliteDefinition, *, seed: int = 1,
             altitude_km: float | None = None, ltan: str | None = None,
             epoch: str | None = None, serial: bool = False, link: PacketLink | None = None,
             keys: KeyFile | None = None, state: str | Path | None = None,
             wrap_compute: Callable[[Any], Any] | None = None) -> Satellite:
    """Build the satellite a definition describes. Raises DefinitionError (file and key).

    `serial` serves each emulated board on a pseudo-terminal and talks to it through
    pyserial, exactly as to a board on a USB serial port. `link` is the space link to
    the ground, and `keys` what its telecommands are signed with. `state` (else the
    definition's satellite.state) is the flight computer's non-volatile storage, kept
    across runs; without either, each run starts with a fresh one. `wrap_compute`, when
    given, wraps the accelerator's compute device (a bench's fault injection)."""
    where = definition.path
    check_plan(definition)
    if keys is not None and keys.spacecraft != definition.spacecraft_id:
        raise DefinitionError(where, "satellite.spacecraft_id",
                              f"the key file is for spacecraft {keys.spacecraft}, this "
                              f"satellite is {definition.spacecraft_id}: each satellite "
                              "has its own keys")
    state = state if state is not None else definition.state
    lock = _lock_state(Path(state), where) if state is not None else None
    world = None
    if definition.emulated:
        world = build_world(definition, seed=seed, altitude_km=altitude_km, ltan=ltan,
                            epoch=epoch)
        clock: Clock = world.clock
    elif any(b.emulator for b in definition.boards):
        raise DefinitionError(where, "boards",
                              "mixes emulated and real boards; use all of one or the other")
    else:
        clock = MonotonicClock()
    if world is not None and link is not None and definition.sim.get("contact") == "passes":
        link = ContactLink(link, world, definition.stations)  # up only over a station

    drivers: dict[str, Any] = {}
    by_kind: dict[str, Any] = {}
    emulators: dict[str, Any] = {}
    transports: list[Transport] = []
    ptys: list[PtyBoard] = []
    try:
        for spec in definition.boards:
            key = f"boards.{spec.name}"
            driver_cls = resolve(spec.driver, where, f"{key}.driver")
            driver_kind = getattr(driver_cls, "kind", None)
            if driver_kind != spec.kind:
                raise DefinitionError(where, f"{key}.driver",
                                      f"{spec.driver} drives {driver_kind!r} boards, "
                                      f"not {spec.kind!r}")
            if spec.emulator is not None:
                factory = resolve(spec.emulator, where, f"{key}.emulator")
                emulator = factory(spec, world)
                emulators[spec.name] = emulator
                if serial:
                    served = PtyBoard(spec.name, emulator.receive)
                    ptys.append(served)
                    transport: Transport = SerialTransport(served.path, spec.baudrate)
                else:
                    transport = InProcessTransport(emulator.receive)
            else:
                assert spec.port is not None
                try:
                    transport = SerialTransport(spec.port, spec.baudrate)
                except TransportError as e:
                    raise DefinitionError(where, f"{key}.port", str(e)) from None
            transports.append(transport)
            driver = driver_cls(spec.name, transport, timeout_s=spec.timeout_s,
                                retries=spec.retries)
            drivers[spec.name] = driver
            by_kind[spec.kind] = driver
    except BaseException:
        for transport in transports:
            transport.close()
        for served in ptys:
            served.close()
        if lock is not None:
            lock.close()
        raise

    compute = None
    accelerator = definition.board("accelerator")
    if accelerator.compute is not None:
        compute = resolve(accelerator.compute, where, f"boards.{accelerator.name}.compute")()
        if wrap_compute is not None:
            compute = wrap_compute(compute)
        if world is not None:
            # The sim's radiation and power cuts reach the very memory the flight computes on.
            compute = IrradiatedDevice(compute, world.radiation)
            world.compute = compute
    work_dir = Path(state) if state is not None else Path(
        tempfile.mkdtemp(prefix="skyrack-", dir=scratch_root()))
    if world is not None:
        world.storage_dirs = [work_dir / "jobs"]

    def boot() -> FlightSoftware:
        return FlightSoftware(clock, power=by_kind["power"], thermal=by_kind["thermal"],
                              accelerator=by_kind["accelerator"],
                              rails={b.kind: b.power_channel for b in definition.boards
                                     if b.power_channel is not None},
                              compute=compute, storage=DirectoryStorage(work_dir / "storage"),
                              work_dir=work_dir / "jobs", link=link,
                              keys=keys.keys if keys else None,
                              active_key=keys.active if keys else 1,
                              spacecraft_id=definition.spacecraft_id)

    satellite = Satellite(definition, clock, boot(), drivers, world, emulators, transports,
                          work_dir=work_dir, keep_work_dir=state is not None, state_lock=lock,
                          boot=boot, ptys=ptys)
    if world is not None:
        satellite._fc_power_ups = world.power_ups[FLIGHT_COMPUTER_CHANNEL]
    return satellite


def identify(satellite: Satellite) -> dict[str, dict[str, Any]]:
    """Ask each board who it is (kind, firmware version, serial number); DefinitionError
    naming the port for a board that does not answer, or answers as another kind (a
    cable on the wrong port). A board whose power channel is off is not asked (it
    cannot answer): it is listed as unpowered."""
    found: dict[str, dict[str, Any]] = {}
    rails: list[bool] | None = None
    for spec in sorted(satellite.definition.boards, key=lambda b: b.kind != "power"):
        driver = satellite.drivers[spec.name]
        where = f"boards.{spec.name}.port"
        if spec.power_channel is not None and rails is not None \
                and not rails[spec.power_channel]:
            found[spec.name] = {"kind": spec.kind, "powered": False, "port": spec.port or ""}
            continue
        try:
            info = driver.info()
        except SkyrackError as e:
            raise DefinitionError(satellite.definition.path, where,
                                  f"no {spec.kind} board answers on {spec.port}: {e}") from None
        if info.kind != spec.kind:
            raise DefinitionError(satellite.definition.path, where,
                                  f"{spec.port} answers as a {info.kind} board (serial "
                                  f"{info.serial_number}), not the {spec.kind} board; is it "
                                  "on the wrong port?")
        found[spec.name] = {"kind": info.kind, "firmware_version": info.firmware_version,
                            "serial_number": info.serial_number, "port": spec.port or "",
                            "powered": True}
        if spec.kind == "power":
            try:
                rails = list(driver.housekeeping().switches)
            except SkyrackError:
                rails = None  # then every board is asked
    return {spec.name: found[spec.name] for spec in satellite.definition.boards}


def check_plan(definition: SatelliteDefinition) -> None:
    """Every step of the definition's operations plan names a command of the flight
    software with arguments it accepts; DefinitionError (file, step, why) for the
    first that does not, before anything flies."""
    dictionary = FlightSoftware.dictionary()
    for index, step in enumerate(definition.plan):
        try:
            validate_args(dictionary.command(step.command), step.args)
        except ArgumentError as e:
            raise DefinitionError(definition.path, f"plan[{index}]", str(e)) from None


def _lock_state(directory: Path, where: str) -> Any:
    """Create (if need be) and lock a state directory: two flight softwares writing one
    satellite's storage would each undo the other's counters."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        lock = open(directory / "lock", "a+")
    except OSError as e:
        raise DefinitionError(where, "satellite.state",
                              f"cannot use {directory}: {e.strerror or e}") from None
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise DefinitionError(where, "satellite.state", f"{directory} is in use by another "
                              "running flight software") from None
    return lock
