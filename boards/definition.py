"""Board definitions: the TOML file that says which boards a satellite has, which
driver talks to each, and where each board is (emulated by the sim, or on a port).

Every error is one line naming the file and the key, e.g.
`boards/sim.toml: boards.power.kind: unknown board kind 'powr' (expected ...)`.
"""

from __future__ import annotations

import datetime
import importlib
import math
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hal.auth import MAX_SPACECRAFT
from hal.errors import InputError, SkyrackError

KINDS = ("power", "thermal", "accelerator")
BOARD_KEYS = {
    "kind", "driver", "emulator", "port", "baudrate", "timeout_s", "retries", "power_channel",
    "compute",
}
SIM_KEYS = {"altitude_km", "ltan", "epoch", "memory", "memory_cross_section_cm2",
            "solar_cycle", "radiation_acceleration", "hang_acceleration", "mass_kg",
            "drag_area_m2", "drag_coefficient", "f107", "contact"}
SIM_TEXT_KEYS = {"ltan", "memory", "solar_cycle", "contact"}
# Keys of earlier definitions, and what took their place.
SIM_REPLACED = {
    "upsets_per_bit_day": "rates follow the AP8 environment now: give memory (a memory "
                          "type) or memory_cross_section_cm2",
    "saa_factor": "the South Atlantic Anomaly comes from the AP8 environment now",
    "hangs_per_day": "hangs follow the environment now; hang_acceleration scales them",
}


class DefinitionError(SkyrackError, ValueError):
    """A board definition is wrong; the message names file and key."""

    def __init__(self, path: str, key: str, reason: str) -> None:
        super().__init__(f"{path}: {key}: {reason}" if key else f"{path}: {reason}")
        self.path = path
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class BoardSpec:
    name: str
    kind: str
    driver: str  # "module:Class"
    emulator: str | None = None  # "module:Class", when the sim plays this board
    port: str | None = None  # pyserial URL, when the board is real
    baudrate: int = 115200
    timeout_s: float = 0.25
    retries: int = 2
    power_channel: int | None = None  # power-board output that feeds this board
    compute: str | None = None  # "module:Class" of an accelerator's data-plane backend


@dataclass(frozen=True, slots=True)
class PlanStep:
    """A command the operator sends at a mission elapsed time."""

    at_s: float
    command: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroundStation:
    """A ground station the sim's space link goes through (sim/stations.py): where it
    is, the elevation it sees down to, and its link rates."""

    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    min_elevation_deg: float = 5.0
    uplink_bps: float = 64_000.0
    downlink_bps: float = 1_000_000.0

    def __post_init__(self) -> None:
        if not -90.0 <= self.lat_deg <= 90.0:
            raise InputError(f"station {self.name}: lat_deg {self.lat_deg} is outside -90..90")
        if not -180.0 <= self.lon_deg <= 360.0:
            raise InputError(f"station {self.name}: lon_deg {self.lon_deg} is outside -180..360")
        if not -500.0 <= self.alt_m <= 9000.0:
            raise InputError(f"station {self.name}: alt_m {self.alt_m} is outside -500..9000")
        if not 0.0 <= self.min_elevation_deg < 90.0:
            raise InputError(f"station {self.name}: min_elevation_deg "
                             f"{self.min_elevation_deg} is outside 0..90")
        for key in ("uplink_bps", "downlink_bps"):
            if not getattr(self, key) > 0.0:
                raise InputError(f"station {self.name}: {key} must be > 0, got "
                                 f"{getattr(self, key)}")


@dataclass(frozen=True, slots=True)
class SatelliteDefinition:
    path: str
    name: str
    boards: tuple[BoardSpec, ...]
    sim: dict[str, Any]
    plan: tuple[PlanStep, ...]
    # The flight computer's non-volatile storage (a directory; relative to the file);
    # None: a fresh one for each run.
    state: str | None = None
    # Its CCSDS spacecraft id (10 bits): what its telecommands are signed for.
    spacecraft_id: int = 1
    # The ground stations of its mission ([[ground_stations]]): passes, and in the sim
    # with contact = "passes", the only times the space link is up.
    stations: tuple[GroundStation, ...] = ()

    def board(self, kind: str) -> BoardSpec:
        for spec in self.boards:
            if spec.kind == kind:
                return spec
        raise DefinitionError(self.path, "boards", f"no board of kind {kind!r}")

    def named(self, name: str) -> BoardSpec:
        for spec in self.boards:
            if spec.name == name:
                return spec
        raise DefinitionError(self.path, "boards", f"no board named {name!r} (it has "
                              f"{', '.join(b.name for b in self.boards)})")

    @property
    def emulated(self) -> bool:
        return all(b.emulator is not None for b in self.boards)


def default_path() -> str:
    """The packaged default: every board emulated."""
    return str(resources.files("boards").joinpath("sim.toml"))


def load(path: str | Path) -> SatelliteDefinition:
    """Read and check a board definition. Raises DefinitionError."""
    where = str(path)
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise DefinitionError(where, "", "no such file") from None
    except OSError as e:
        raise DefinitionError(where, "", f"cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise DefinitionError(where, "", f"not valid TOML: {e}") from None
    return parse(doc, where)


def with_ports(definition: SatelliteDefinition, ports: dict[str, str]) -> SatelliteDefinition:
    """The definition with the boards named in `ports` on those ports (pyserial URLs),
    no longer emulated. DefinitionError for a board it does not have."""
    boards = []
    for spec in definition.boards:
        if spec.name in ports:
            spec = replace(spec, port=ports[spec.name], emulator=None)
        boards.append(spec)
    for name in ports:
        definition.named(name)  # raises: no such board
    return replace(definition, boards=tuple(boards))


def parse(doc: dict[str, Any], where: str) -> SatelliteDefinition:
    unknown = sorted(set(doc) - {"satellite", "sim", "boards", "plan", "ground_stations"})
    if unknown:
        raise DefinitionError(where, unknown[0], "unknown table")
    satellite = _table(doc, "satellite", where)
    name = _get(satellite, "name", str, where, "satellite.name")
    for key in sorted(set(satellite) - {"name", "state", "spacecraft_id"}):
        raise DefinitionError(where, f"satellite.{key}",
                              "unknown key (expected name, spacecraft_id, state)")
    spacecraft_id = _get(satellite, "spacecraft_id", int, where, "satellite.spacecraft_id") \
        if "spacecraft_id" in satellite else 1
    if not 0 <= spacecraft_id <= MAX_SPACECRAFT:
        raise DefinitionError(where, "satellite.spacecraft_id",
                              f"{spacecraft_id} is outside 0..{MAX_SPACECRAFT} (10 bits)")
    state = None
    if "state" in satellite:  # the flight computer's non-volatile storage: a directory
        state = str(Path(where).parent / _get(satellite, "state", str, where, "satellite.state"))

    boards_doc = _table(doc, "boards", where)
    if not boards_doc:
        raise DefinitionError(where, "boards", "no boards defined")
    boards = tuple(_board(n, b, where) for n, b in boards_doc.items())
    for kind in KINDS:
        of_kind = [b.name for b in boards if b.kind == kind]
        if not of_kind:
            raise DefinitionError(where, "boards", f"no board of kind {kind!r}")
        if len(of_kind) > 1:
            raise DefinitionError(where, f"boards.{of_kind[1]}.kind",
                                  f"a second {kind} board; one of each kind is supported")

    sim_doc = doc.get("sim", {})
    if not isinstance(sim_doc, dict):
        raise DefinitionError(where, "sim", "must be a table")
    sim: dict[str, Any] = {}
    for key, value in sim_doc.items():
        if key in SIM_REPLACED:
            raise DefinitionError(where, f"sim.{key}", f"no longer a key: {SIM_REPLACED[key]}")
        if key not in SIM_KEYS:
            raise DefinitionError(where, f"sim.{key}",
                                  f"unknown key (expected one of {', '.join(sorted(SIM_KEYS))})")
        if key in SIM_TEXT_KEYS:  # "HH:MM", a memory type, min or max: checked by the sim
            sim[key] = _get(sim_doc, key, str, where, f"sim.{key}")
        elif key == "epoch":  # a TOML date or date-time, or its ISO text; checked by the sim
            sim[key] = value.isoformat() if isinstance(value, (datetime.date,
                                                               datetime.datetime)) \
                else _get(sim_doc, key, str, where, "sim.epoch")
        else:
            sim[key] = _number(value, where, f"sim.{key}")

    plan_doc = doc.get("plan", [])
    if not isinstance(plan_doc, list):
        raise DefinitionError(where, "plan", "must be an array of tables ([[plan]])")
    plan = tuple(_plan_step(i, step, where) for i, step in enumerate(plan_doc))
    stations_doc = doc.get("ground_stations", [])
    if not isinstance(stations_doc, list):
        raise DefinitionError(where, "ground_stations",
                              "must be an array of tables ([[ground_stations]])")
    stations = tuple(_station(i, st, where) for i, st in enumerate(stations_doc))
    names = [st.name for st in stations]
    for i, station_name in enumerate(names):
        if station_name in names[:i]:
            raise DefinitionError(where, f"ground_stations[{i}].name",
                                  f"{station_name!r} is named twice")
    if sim.get("contact", "always") not in ("always", "passes"):
        raise DefinitionError(where, "sim.contact",
                              f"must be 'always' or 'passes', got {sim['contact']!r}")
    if sim.get("contact") == "passes" and not stations:
        raise DefinitionError(where, "sim.contact",
                              "'passes' needs [[ground_stations]] to pass over")
    return SatelliteDefinition(where, name, boards, sim, plan, state, spacecraft_id, stations)


STATION_KEYS = {"name", "lat_deg", "lon_deg", "alt_m", "min_elevation_deg", "uplink_bps",
                "downlink_bps"}


def _station(index: int, doc: Any, where: str) -> GroundStation:
    prefix = f"ground_stations[{index}]"
    _known_keys(doc, STATION_KEYS, where, prefix)
    name = _get(doc, "name", str, where, f"{prefix}.name")
    values = {key: _number(doc[key], where, f"{prefix}.{key}")
              for key in STATION_KEYS - {"name"} if key in doc}
    for key in ("lat_deg", "lon_deg"):
        if key not in doc:
            raise DefinitionError(where, f"{prefix}.{key}", "missing field")
    try:
        return GroundStation(name, **values)
    except InputError as e:
        raise DefinitionError(where, prefix, str(e)) from None


def resolve(ref: str, where: str, key: str) -> Any:
    """Import `module:attribute` named at `key` of a definition. Raises DefinitionError."""
    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise DefinitionError(where, key, f"{ref!r} is not of the form 'module:Class'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise DefinitionError(where, key, f"cannot import {module_name!r}: {e}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise DefinitionError(where, key, f"module {module_name!r} has no {attr!r}") from None


def _table(doc: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    if key not in doc:
        raise DefinitionError(where, key, "missing table")
    if not isinstance(doc[key], dict):
        raise DefinitionError(where, key, "must be a table")
    return doc[key]


def _get(table: dict[str, Any], key: str, kind: type, where: str, dotted: str) -> Any:
    if key not in table:
        raise DefinitionError(where, dotted, "missing field")
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DefinitionError(where, dotted, f"must be {kind.__name__}, got {value!r}")
    return value


def _number(value: Any, where: str, dotted: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DefinitionError(where, dotted, f"must be a finite number, got {value!r}")
    return float(value)


def _known_keys(doc: Any, keys: set[str], where: str, prefix: str) -> None:
    """`doc` is a table of none but `keys`, or DefinitionError naming the first other."""
    if not isinstance(doc, dict):
        raise DefinitionError(where, prefix, "must be a table")
    unknown = sorted(set(doc) - keys)
    if unknown:
        raise DefinitionError(where, f"{prefix}.{unknown[0]}",
                              f"unknown key (expected one of {', '.join(sorted(keys))})")


def _board(name: str, doc: Any, where: str) -> BoardSpec:
    prefix = f"boards.{name}"
    _known_keys(doc, BOARD_KEYS, where, prefix)
    kind = _get(doc, "kind", str, where, f"{prefix}.kind")
    if kind not in KINDS:
        raise DefinitionError(where, f"{prefix}.kind",
                              f"unknown board kind {kind!r} (expected one of {', '.join(KINDS)})")
    driver = _get(doc, "driver", str, where, f"{prefix}.driver")
    emulator = doc.get("emulator")
    port = doc.get("port")
    if (emulator is None) == (port is None):
        raise DefinitionError(where, prefix, "needs exactly one of 'emulator' or 'port'")
    if emulator is not None:
        emulator = _get(doc, "emulator", str, where, f"{prefix}.emulator")
    if port is not None:
        port = _get(doc, "port", str, where, f"{prefix}.port")
    spec = BoardSpec(name=name, kind=kind, driver=driver, emulator=emulator, port=port)
    overrides: dict[str, Any] = {}
    if "baudrate" in doc:
        overrides["baudrate"] = _positive_int(doc, "baudrate", where, prefix)
    if "retries" in doc:
        overrides["retries"] = _get(doc, "retries", int, where, f"{prefix}.retries")
        if not 0 <= overrides["retries"] <= 10:
            raise DefinitionError(where, f"{prefix}.retries", "must be in 0..10")
    if "timeout_s" in doc:
        timeout_s = _number(doc["timeout_s"], where, f"{prefix}.timeout_s")
        if not 0 < timeout_s <= 60:
            raise DefinitionError(where, f"{prefix}.timeout_s", "must be in (0, 60] s")
        overrides["timeout_s"] = timeout_s
    if "compute" in doc:
        if kind != "accelerator":
            raise DefinitionError(where, f"{prefix}.compute", "only an accelerator has a compute "
                                  "backend")
        overrides["compute"] = _get(doc, "compute", str, where, f"{prefix}.compute")
    if "power_channel" in doc:
        overrides["power_channel"] = _get(doc, "power_channel", int, where,
                                          f"{prefix}.power_channel")
        if overrides["power_channel"] < 0:
            raise DefinitionError(where, f"{prefix}.power_channel", "must be >= 0")
    return replace(spec, **overrides)


def _positive_int(doc: dict[str, Any], key: str, where: str, prefix: str) -> int:
    value = _get(doc, key, int, where, f"{prefix}.{key}")
    if value <= 0:
        raise DefinitionError(where, f"{prefix}.{key}", "must be positive")
    return value


def _plan_step(index: int, doc: Any, where: str) -> PlanStep:
    prefix = f"plan[{index}]"
    if not isinstance(doc, dict):
        raise DefinitionError(where, prefix, "must be a table")
    unknown = sorted(set(doc) - {"at_s", "command", "args"})
    if unknown:
        raise DefinitionError(where, f"{prefix}.{unknown[0]}", "unknown key")
    if "at_s" not in doc:
        raise DefinitionError(where, f"{prefix}.at_s", "missing field")
    at_s = _number(doc["at_s"], where, f"{prefix}.at_s")
    if at_s < 0:
        raise DefinitionError(where, f"{prefix}.at_s", "must be >= 0")
    command = _get(doc, "command", str, where, f"{prefix}.command")
    args = doc.get("args", {})
    if not isinstance(args, dict):
        raise DefinitionError(where, f"{prefix}.args", "must be a table")
    return PlanStep(at_s, command, dict(args))
