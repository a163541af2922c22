"""What declaring each board op once costs the host: decoding a power board's `tlm`
reply (msgpack bytes to a checked PowerHousekeeping) through hal.boardops, against the
hand-written field-by-field decode the drivers had before it (kept here as the
baseline), and against msgspec's typed msgpack decoder where it is installed.

    python bench/boardops.py [--calls 20000] [--repeats 5] [--json out.json]

Ratios are taken in the same run on the same bytes. For scale, the table also gives the
time the same reply takes on a 115200-baud UART (8N1), which is what a real board call
waits for.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import msgpack
from table import report

from hal.boardops import BY_KIND
from hal.boards import PowerHousekeeping
from hal.framing import encode_frame

REPLY = {"batt_v": 30.1, "batt_a": 1.5, "soc_pct": 81.0, "solar_power_w": 1020.0,
         "load_power_w": 480.0, "switches": [True, True, False, False, False, False, False,
                                              False],
         "channel_a": [1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "uptime_s": 1234.5,
         "fc_boot_cause": "power_on", "watchdog_resets": 0, "latchups": [0] * 8,
         "lvd_trips": 0, "boot_count": 1, "rx_frames_rejected": 0, "rx_bad_requests": 0}
NUMBER = (int, float)


def _field(r: Any, key: str, kind: Any) -> Any:
    if not isinstance(r, dict) or key not in r:
        raise ValueError(key)
    value = r[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise ValueError(key)
    return value


def _items(r: Any, key: str, kind: Any) -> list:
    items = _field(r, key, list)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for item in items:
        if type(item) not in kinds:
            raise ValueError(key)
    return items


def by_hand(raw: bytes) -> PowerHousekeeping:
    """The drivers' decode before hal.boardops, as it was."""
    r = msgpack.unpackb(raw)
    return PowerHousekeeping(
        batt_v=float(_field(r, "batt_v", NUMBER)), batt_a=float(_field(r, "batt_a", NUMBER)),
        soc_pct=float(_field(r, "soc_pct", NUMBER)),
        solar_power_w=float(_field(r, "solar_power_w", NUMBER)),
        load_power_w=float(_field(r, "load_power_w", NUMBER)),
        switches=tuple(_items(r, "switches", bool)),
        channel_a=tuple(float(a) for a in _items(r, "channel_a", NUMBER)),
        uptime_s=float(_field(r, "uptime_s", NUMBER)),
        fc_boot_cause=_field(r, "fc_boot_cause", str),
        watchdog_resets=_field(r, "watchdog_resets", int),
        latchups=tuple(_items(r, "latchups", int)), lvd_trips=_field(r, "lvd_trips", int))


def declared(raw: bytes) -> PowerHousekeeping:
    result: PowerHousekeeping = BY_KIND["power"]["tlm"].decode_reply(msgpack.unpackb(raw))
    return result


def _msgspec() -> Callable[[bytes], Any] | None:
    try:
        import msgspec
    except ImportError:
        return None

    class Tlm(msgspec.Struct, frozen=True):
        batt_v: float
        batt_a: float
        soc_pct: float
        solar_power_w: float
        load_power_w: float
        switches: tuple[bool, ...]
        channel_a: tuple[float, ...]
        uptime_s: float
        fc_boot_cause: str = "power_on"
        watchdog_resets: int = 0
        latchups: tuple[int, ...] = ()
        lvd_trips: int = 0

    return msgspec.msgpack.Decoder(Tlm).decode


def _time(decode: Callable[[bytes], Any], raw: bytes, calls: int, repeats: int) -> float:
    """Median seconds per decode."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            decode(raw)
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    raw = msgpack.packb(REPLY)
    assert by_hand(raw) == declared(raw)
    hand_s = _time(by_hand, raw, args.calls, args.repeats)
    declared_s = _time(declared, raw, args.calls, args.repeats)
    wire_s = len(encode_frame(raw)) * 10 / 115200
    results: dict[str, Any] = {
        "reply_bytes": len(raw),
        "by_hand_us": hand_s * 1e6,
        "declared_us": declared_s * 1e6,
        "declared_over_by_hand": declared_s / hand_s,
        "uart_115200_us": wire_s * 1e6,
        "declared_over_uart": declared_s / wire_s,
    }
    fast = _msgspec()
    if fast is not None:
        assert fast(raw).batt_v == REPLY["batt_v"]
        fast_s = _time(fast, raw, args.calls, args.repeats)
        results["msgspec_us"] = fast_s * 1e6
        results["msgspec_over_by_hand"] = fast_s / hand_s
    report(results, {"declared_over_uart": ("<=", 0.01)}, args.json)


if __name__ == "__main__":
    main()
