"""A mission: the satellites one ground server owns the links of (`skyrack ground
serve --mission FILE`), in TOML:

    name = "pathfinder"
    archive = "pathfinder.sqlite"      # one archive for every satellite
    listen = "http://127.0.0.1:8600"   # optional (--listen overrides it)
    source_id = 1                      # optional: this station's PUS source id

    [[satellite]]
    name = "sat-1"                     # how operators and the console name it
    link = "tcp://127.0.0.1:5001"      # its space link (tcp:// or serial:)
    keys = "sat-1.keys.json"           # its key file, which names its spacecraft id
    # key_id = 2                       # optional: a key other than the file's active one
    # spacecraft = 1                   # without keys: its spacecraft id (then unsigned)
    # dictionary = "sat-1.dict.json"   # optional: its flight software's dictionary

Paths are relative to the mission file. Every error names the file, the satellite and
the key at fault, in one line.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hal.auth import KeyFile, check_spacecraft
from hal.errors import InputError

SATELLITE_KEYS = {"name", "link", "keys", "key_id", "spacecraft", "dictionary"}
MISSION_KEYS = {"name", "archive", "listen", "source_id", "satellite"}


@dataclass(frozen=True)
class Satellite:
    name: str
    link: str
    spacecraft: int
    keys: str | None = None
    key_id: int | None = None
    dictionary: str | None = None


@dataclass(frozen=True)
class Mission:
    name: str
    archive: str
    satellites: tuple[Satellite, ...]
    listen: str | None = None
    source_id: int = 1


def load(path: str) -> Mission:
    """The mission in the TOML file at `path`. Raises InputError saying what is wrong."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: not TOML: {e}") from None
    base = Path(path).resolve().parent
    unknown = sorted(set(data) - MISSION_KEYS)
    if unknown:
        raise InputError(f"{path}: unknown key {unknown[0]!r} (a mission has "
                         f"{', '.join(sorted(MISSION_KEYS))})")
    entries = data.get("satellite")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{path}: no [[satellite]]: a mission has one or more")
    archive = _text(data, "archive", path)
    satellites = tuple(_satellite(entry, n, path, base) for n, entry in
                       enumerate(entries, 1))
    for what in ("name", "spacecraft"):
        seen: dict[Any, str] = {}
        for sat in satellites:
            value = getattr(sat, what)
            if value in seen:
                raise InputError(f"{path}: satellites {seen[value]!r} and {sat.name!r} have "
                                 f"the same {what} ({value})")
            seen[value] = sat.name
    source_id = data.get("source_id", 1)
    if isinstance(source_id, bool) or not isinstance(source_id, int) \
            or not 1 <= source_id <= 0xFFFF:
        raise InputError(f"{path}: source_id = {source_id!r}: expected 1..65535")
    listen = data.get("listen")
    if listen is not None and not isinstance(listen, str):
        raise InputError(f"{path}: listen = {listen!r}: expected http://HOST:PORT")
    return Mission(_text(data, "name", path), str(base / archive), satellites, listen,
                   source_id)


def _text(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}: {key} missing or not a string")
    return value


def _satellite(entry: Any, n: int, path: str, base: Path) -> Satellite:
    if not isinstance(entry, dict):
        raise InputError(f"{path}: satellite {n} is not a table")
    where = f"{path}: satellite {n}"
    unknown = sorted(set(entry) - SATELLITE_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (a satellite has "
                         f"{', '.join(sorted(SATELLITE_KEYS))})")
    name = _text(entry, "name", where)
    where = f"{path}: satellite {name!r}"
    link = _text(entry, "link", where)
    keys = str(base / _text(entry, "keys", where)) if "keys" in entry else None
    dictionary = str(base / _text(entry, "dictionary", where)) if "dictionary" in entry \
        else None
    key_id = entry.get("key_id")
    if key_id is not None and (isinstance(key_id, bool) or not isinstance(key_id, int)):
        raise InputError(f"{where}: key_id = {key_id!r}: expected an integer")
    spacecraft = entry.get("spacecraft")
    if keys is not None:
        try:
            kept = KeyFile.load(keys).spacecraft
        except OSError as e:
            raise InputError(f"{where}: keys {keys}: {e.strerror or e}") from None
        except (InputError, ValueError) as e:
            raise InputError(f"{where}: {e}") from None
        if spacecraft is not None and spacecraft != kept:
            raise InputError(f"{where}: spacecraft = {spacecraft}, but its key file is for "
                             f"spacecraft {kept}")
        spacecraft = kept
    elif spacecraft is None:
        raise InputError(f"{where}: give keys (its key file names its spacecraft) or "
                         "spacecraft")
    try:
        spacecraft = check_spacecraft(spacecraft)
    except InputError as e:
        raise InputError(f"{where}: {e}") from None
    return Satellite(name, link, spacecraft, keys, key_id, dictionary)
