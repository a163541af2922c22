"""The board link: round-trip latency and goodput over a pseudo-terminal versus in
process, framing overhead in wire bytes per payload byte, and flash throughput.

    python bench/link.py [--calls 400] [--repeats 5] [--json out.json]

Round trips use an `echo` op on a protocol server (the firmware's own server, with a
one-op firmware) through the full host path: BoardLink, msgpack, CRC-16, COBS, and
either an in-process transport or pyserial on a pty served by a thread (`sim.pty`, as
`skyrack sim --serial` and `skyrack board serve` use). Goodput counts payload bytes
both ways per second. Medians over repeats; the ratios pty / in-process are taken in
the same run.

A pty has no baud rate, so flash throughput over it is the software's ceiling. The
table also projects flash throughput on a real UART (8N1, so 10 bits a byte) from the
bytes the flash actually put on the wire both ways, which a half-duplex
request/reply exchange has to wait for; board-side processing time is not included.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any

from table import report

from boards.definition import default_path, load
from boards.firmware.server import ProtocolServer
from drivers.flash import flash
from drivers.link import BoardLink
from hal import image
from hal.boardops import Op
from hal.framing import encode_frame
from hal.protocol import Request, encode_request
from hal.transport import InProcessTransport, SerialTransport
from sim.boards import EmulatedThermalBoard
from sim.pty import PtyBoard
from skyrack.assembly import build_world

SIZES = (16, 64, 256, 1024, 3072)
FLASH_BYTES = 256 * 1024
BAUDS = (115_200, 921_600)


class _Platform:
    serial_number = "BENCH"

    def uptime_s(self) -> float:
        return 0.0

    def reboot(self) -> None:
        pass


class EchoFirmware:
    kind = "bench"
    ops = {"echo": Op("echo", dict, dict)}  # any map, returned as it came

    def __init__(self) -> None:
        self.platform = _Platform()

    def handlers(self) -> dict[str, Any]:
        return {"echo": lambda args: args}


class Counting:
    """A transport that counts the bytes each way."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.tx = self.rx = 0

    def write(self, data: bytes) -> None:
        self.tx += len(data)
        self.inner.write(data)

    def read(self, timeout_s: float) -> bytes:
        data = self.inner.read(timeout_s)
        self.rx += len(data)
        return data

    def close(self) -> None:
        self.inner.close()


def sample(size: int) -> bytes:
    """Seeded random bytes: about one zero in 256, as in compressed or measured data.
    (COBS spends Python time per zero, so all-zero payloads cost up to 2x more.)"""
    return random.Random(size).randbytes(size)


def connect(receive: Any, kind: str) -> tuple[BoardLink, Counting, PtyBoard | None]:
    if kind == "inproc":
        transport = Counting(InProcessTransport(receive))
        return BoardLink("bench", transport, timeout_s=1.0), transport, None
    served = PtyBoard("bench", receive)
    transport = Counting(SerialTransport(served.path))
    return BoardLink("bench", transport, timeout_s=1.0), transport, served


def round_trip_s(kind: str, size: int, calls: int) -> float:
    """Median seconds per echo round trip of a `size`-byte payload."""
    link, transport, served = connect(ProtocolServer("bench", EchoFirmware()).receive, kind)
    data = sample(size)
    try:
        link.call("echo", {"d": data})  # warm up
        times = []
        for _ in range(calls):
            started = time.perf_counter()
            link.call("echo", {"d": data})
            times.append(time.perf_counter() - started)
        return statistics.median(times)
    finally:
        transport.close()
        if served:
            served.close()


def flash_once(kind: str) -> tuple[float, int, int]:
    """Wall seconds, and wire bytes out and in, to flash a FLASH_BYTES image."""
    definition = load(default_path())
    board = EmulatedThermalBoard(definition.named("thermal"), build_world(definition))
    link, transport, served = connect(board.receive, kind)
    img = image.build("thermal", "2.0.0", bytes(range(256)) * (FLASH_BYTES // 256))
    try:
        started = time.perf_counter()
        result = flash(link, img)
        wall_s = time.perf_counter() - started
        assert result.ok and result.version == "2.0.0", result
        return wall_s, transport.tx, transport.rx
    finally:
        transport.close()
        if served:
            served.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()

    results: dict[str, float] = {}
    targets: dict[str, tuple[str, float]] = {}
    for size in SIZES:
        payload = sample(size)
        results[f"framing_overhead_{size}B"] = (len(encode_frame(payload)) - size) / size
        message = encode_request(Request(1, "flash_chunk", {"d": payload}))
        results[f"message_overhead_{size}B"] = (len(encode_frame(message)) - size) / size
        if size >= 256:
            targets[f"framing_overhead_{size}B"] = ("<=", 0.05)
    for size in SIZES:
        rtt = {kind: statistics.median(round_trip_s(kind, size, args.calls)
                                       for _ in range(args.repeats))
               for kind in ("inproc", "pty")}
        for kind, seconds in rtt.items():
            results[f"rtt_{kind}_{size}B_us"] = seconds * 1e6
            results[f"goodput_{kind}_{size}B_MBps"] = 2 * size / seconds / 1e6
        results[f"rtt_pty_over_inproc_{size}B"] = rtt["pty"] / rtt["inproc"]
    for kind in ("inproc", "pty"):
        runs = [flash_once(kind) for _ in range(args.repeats)]
        wall_s = statistics.median(r[0] for r in runs)
        results[f"flash_{kind}_KiBps"] = FLASH_BYTES / wall_s / 1024
        _, tx, rx = runs[0]
        if kind == "pty":
            results["flash_wire_efficiency"] = FLASH_BYTES / (tx + rx)
            for baud in BAUDS:
                line_bytes_s = baud / 10
                results[f"flash_projected_{baud}baud_KiBps"] = (
                    FLASH_BYTES / ((tx + rx) / line_bytes_s) / 1024)
    report(results, targets, args.json)


if __name__ == "__main__":
    main()
