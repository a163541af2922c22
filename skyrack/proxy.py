"""A serial fault proxy: sits between the flight computer and a board's port (a real
board's, or a `board serve` pty) and, on command, does to the frames crossing it what a
bad line, a noisy connector or a latched board would.

    proxy = FaultProxy("/dev/ttyUSB0")        # the board's port; the host side is a pty
    proxy.path                                # what the flight computer opens instead
    proxy.drop("to_host", frames=2)           # the board's next two replies are lost
    proxy.corrupt("to_host", fix_crc=True)    # one reply wrong but well-formed
    proxy.silence("to_host", seconds=8.0)     # the board says nothing for 8 s
    proxy.counters()                          # what it did, by direction and fault

It works frame by frame: it cuts each direction's stream at the 0x00 delimiters of the
board protocol's COBS framing (hal.framing) and passes each frame on, or does the next
pending fault to it. Faults, each for the next `frames` frames of a direction:
- drop: the frame is lost;
- delay: the frame is held `seconds` and then sent (later frames are not held: a late
  reply, not a slow line);
- duplicate: the frame is sent twice;
- corrupt: `bits` payload bits flipped; the frame's CRC left as it was (the receiver
  rejects the frame), or with `fix_crc` computed afresh (a wrong frame that the CRC
  cannot see, for what lies above it to catch);
and, apart from frames:
- garbage: `nbytes` random bytes onto the line now;
- silence: every frame one way is dropped for `seconds` (None: until `speak`), or,
  for a latched board, until its replies show it restarted (its power was cycled).
Random faults at a rate (`rates`, seeded) come after the pending ones. Bytes that are
no frame at all (a run longer than any frame without a delimiter) pass through raw.
Every frame and every fault is counted; `counters()` is what `skyrack board proxy
--json` prints.

The CLI's proxy takes commands on a control socket (`--control HOST:PORT`): one JSON
object a line, {"fault": KIND, ...keyword arguments of the method of that name}, or
{"counters": true}; each answered by one JSON line, {"ok": true, "counters": ...} or
{"ok": false, "error": REASON}. `ProxyControl` is its client.
"""

from __future__ import annotations

import collections
import heapq
import json
import math
import random
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hal import cobs
from hal.errors import FrameError, InputError, ProtocolError, TransportError
from hal.framing import (
    CRC_BYTES,
    DELIMITER,
    MAX_PAYLOAD_BYTES,
    decode_frame,
    encode_frame,
    max_encoded_bytes,
)
from hal.protocol import decode_reply
from hal.transport import SerialTransport

DIRECTIONS = ("to_board", "to_host")
POLL_S = 0.01
FRAME_LIMIT = max_encoded_bytes(MAX_PAYLOAD_BYTES)  # longer without a 0x00: not a frame
KINDS = ("drop", "delay", "duplicate", "corrupt")
MAX_BITS = 64
MAX_GARBAGE_BYTES = 65536


class Line(Protocol):
    def read(self, timeout_s: float) -> bytes: ...
    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...


@dataclass
class _Pending:
    kind: str
    frames: int
    seconds: float = 0.0
    bits: int = 1
    fix_crc: bool = False


@dataclass
class _Direction:
    """One way through the proxy: what it holds and what it has done."""

    name: str
    source: Line
    sink: Line
    buf: bytearray = field(default_factory=bytearray)
    pending: collections.deque[_Pending] = field(default_factory=collections.deque)
    silent_until: float = -math.inf
    until_restart: bool = False  # silent until a reply shows a new boot count
    silent_boot: int | None = None  # the boot count the silence began under
    rates: dict[str, float] = field(default_factory=dict)
    delayed: list[tuple[float, int, bytes]] = field(default_factory=list)
    counters: collections.Counter[str] = field(default_factory=collections.Counter)


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise InputError(f"direction {direction!r}: expected one of {', '.join(DIRECTIONS)}")
    return direction


def _check_count(what: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{what} {value!r}: expected a whole number in {low}..{high}")
    return value


def _check_seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0.0 <= value < math.inf:
        raise InputError(f"seconds {value!r}: expected a finite number >= 0")
    return float(value)


class FaultProxy:
    """The proxy between a board's port (`board_url`, any pyserial URL) and the host:
    `host` is a line already open (a Line), or None for a new pseudo-terminal whose
    `path` the host opens. Runs until `close()`."""

    def __init__(self, board_url: str, host: Line | str | None = None, *, seed: int = 0,
                 baudrate: int = 115200, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._board = SerialTransport(board_url, baudrate)
        self.board_url = board_url
        try:
            line: Line
            if host is None:
                from sim.pty import PtyEnd  # a pty of our own: only where it is asked for

                line = PtyEnd()
            elif isinstance(host, str):
                line = SerialTransport(host, baudrate)
            else:
                line = host
        except (OSError, TransportError):
            self._board.close()
            raise
        self._host = line
        self.path: str = host if isinstance(host, str) else getattr(line, "path", "(line)")
        self._ways = {"to_board": _Direction("to_board", self._host, self._board),
                      "to_host": _Direction("to_host", self._board, self._host)}
        self._seq = 0
        self._threads = [threading.Thread(target=self._pump, args=(way,), daemon=True,
                                          name=f"proxy-{way.name}")
                         for way in self._ways.values()]
        for thread in self._threads:
            thread.start()

    # -- faults -----------------------------------------------------------------------

    def drop(self, direction: str = "to_host", frames: int = 1) -> None:
        self._add(direction, _Pending("drop", _check_count("frames", frames, 1, 10**6)))

    def delay(self, direction: str = "to_host", seconds: float = 1.0, frames: int = 1) -> None:
        self._add(direction, _Pending("delay", _check_count("frames", frames, 1, 10**6),
                                      seconds=_check_seconds(seconds)))

    def duplicate(self, direction: str = "to_host", frames: int = 1) -> None:
        self._add(direction, _Pending("duplicate", _check_count("frames", frames, 1, 10**6)))

    def corrupt(self, direction: str = "to_host", frames: int = 1, bits: int = 1,
                fix_crc: bool = False) -> None:
        if not isinstance(fix_crc, bool):
            raise InputError(f"fix_crc {fix_crc!r}: expected true or false")
        self._add(direction, _Pending("corrupt", _check_count("frames", frames, 1, 10**6),
                                      bits=_check_count("bits", bits, 1, MAX_BITS),
                                      fix_crc=fix_crc))

    def garbage(self, direction: str = "to_host", nbytes: int = 16) -> None:
        """`nbytes` random bytes onto the line now (no delimiter among them, so they end
        as one rejected fragment at the next frame's leading 0x00)."""
        way = self._ways[_check_direction(direction)]
        n = _check_count("nbytes", nbytes, 1, MAX_GARBAGE_BYTES)
        with self._lock:  # sent by the pump, between frames, not into one
            noise = bytes(self._rng.randrange(1, 256) for _ in range(n))
            way.counters["garbage_bytes"] += n
            self._seq += 1
            heapq.heappush(way.delayed, (-math.inf, self._seq, noise))

    def silence(self, direction: str = "to_host", seconds: float | None = None,
                until_restart: bool = False) -> None:
        """Drop every frame going `direction` for `seconds` (None: until `speak`). With
        `until_restart` (replies only): a latched board, silent until its power is
        cycled, which the proxy sees as the first reply with another boot count."""
        until = math.inf if seconds is None else self._clock() + _check_seconds(seconds)
        if not isinstance(until_restart, bool):
            raise InputError(f"until_restart {until_restart!r}: expected true or false")
        if until_restart and direction != "to_host":
            raise InputError("until_restart: a restart shows in the board's replies "
                             "(direction to_host)")
        with self._lock:
            way = self._ways[_check_direction(direction)]
            way.silent_until, way.until_restart, way.silent_boot = until, until_restart, None

    def speak(self, direction: str = "to_host") -> None:
        """End a silence."""
        with self._lock:
            way = self._ways[_check_direction(direction)]
            way.silent_until, way.until_restart = -math.inf, False

    def rates(self, direction: str = "to_host", **rates: float) -> None:
        """Random faults on every frame going `direction`, each kind at its probability
        (drop, duplicate, corrupt; 0 turns one off), drawn from the proxy's seed."""
        way = self._ways[_check_direction(direction)]
        for kind, p in rates.items():
            if kind not in ("drop", "duplicate", "corrupt"):
                raise InputError(f"rate {kind!r}: expected drop, duplicate or corrupt")
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise InputError(f"rate {kind}={p!r}: expected a probability in 0..1")
        with self._lock:
            way.rates.update({k: float(p) for k, p in rates.items()})

    def clear(self) -> None:
        """Forget every pending fault, silence and rate (counters stay)."""
        with self._lock:
            for way in self._ways.values():
                way.pending.clear()
                way.rates.clear()
                way.silent_until = -math.inf

    def counters(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {name: dict(sorted(way.counters.items()))
                    for name, way in self._ways.items()}

    def pending(self, direction: str = "to_host") -> int:
        """Frames the pending faults of `direction` still wait for."""
        with self._lock:
            return sum(p.frames for p in self._ways[_check_direction(direction)].pending)

    def _add(self, direction: str, fault: _Pending) -> None:
        with self._lock:
            self._ways[_check_direction(direction)].pending.append(fault)

    # -- the pumps --------------------------------------------------------------------

    def _pump(self, way: _Direction) -> None:
        while not self._stop.is_set():
            try:
                data = way.source.read(POLL_S)
                for out in self._take(way, data):
                    self._send(way, out)
                for out in self._due(way):
                    self._send(way, out)
            except (OSError, TransportError):
                if self._stop.is_set():
                    return
                with self._lock:
                    way.counters["line_errors"] += 1
                time.sleep(POLL_S)

    def _send(self, way: _Direction, data: bytes) -> None:
        try:
            way.sink.write(data)
        except (OSError, TransportError):
            with self._lock:
                way.counters["line_errors"] += 1

    def _take(self, way: _Direction, data: bytes) -> list[bytes]:
        """What to send now for `data` read from the source."""
        if not data:
            return []
        out: list[bytes] = []
        with self._lock:
            chunks = (bytes(way.buf) + data).split(DELIMITER)
            way.buf = bytearray(chunks.pop())  # not yet closed by a delimiter
            for chunk in chunks:
                if chunk:
                    out += self._frame(way, chunk)
            if len(way.buf) > FRAME_LIMIT:  # no frame is this long: pass it through
                way.counters["raw_bytes"] += len(way.buf)
                out.append(bytes(way.buf))
                way.buf.clear()
        return out

    def _frame(self, way: _Direction, chunk: bytes) -> list[bytes]:
        """The fate of one frame (its bytes between delimiters), under the lock."""
        c = way.counters
        c["frames"] += 1
        frame = DELIMITER + chunk + DELIMITER
        if self._clock() < way.silent_until and not self._restarted(way, chunk):
            c["silenced"] += 1
            return []
        fault = None
        if way.pending:
            fault = way.pending[0]
            fault.frames -= 1
            if fault.frames == 0:
                way.pending.popleft()
        else:
            for kind in ("drop", "duplicate", "corrupt"):
                if self._rng.random() < way.rates.get(kind, 0.0):
                    fault = _Pending(kind, 1)
                    break
        if fault is None:
            c["passed"] += 1
            return [frame]
        if fault.kind == "drop":
            c["dropped"] += 1
            return []
        if fault.kind == "duplicate":
            c["duplicated"] += 1
            return [frame, frame]
        if fault.kind == "delay":
            c["delayed"] += 1
            self._seq += 1
            heapq.heappush(way.delayed, (self._clock() + fault.seconds, self._seq, frame))
            return []
        c["corrupted"] += 1
        corrupted, fixed = self._corrupted(chunk, fault.bits, fault.fix_crc)
        c["crc_fixed"] += fixed
        return [corrupted]

    @staticmethod
    def _restarted(way: _Direction, chunk: bytes) -> bool:
        """Whether a silence until the board restarts ends at this reply (it carries
        another boot count than the first reply silenced)."""
        if not way.until_restart:
            return False
        try:
            boot = decode_reply(decode_frame(chunk)).boot
        except (FrameError, ProtocolError):
            return False  # not a reply: it stays silent
        if boot is None:
            return False
        if way.silent_boot is None:
            way.silent_boot = boot
            return False
        if boot == way.silent_boot:
            return False
        way.silent_until, way.until_restart = -math.inf, False
        way.counters["restarts_seen"] += 1
        return True

    def _corrupted(self, chunk: bytes, bits: int, fix_crc: bool) -> tuple[bytes, bool]:
        """The frame with `bits` bits of its payload flipped, and whether its CRC was
        computed afresh (only a frame that decodes can have one)."""
        try:
            raw = bytearray(cobs.decode(chunk))
        except Exception:  # not a frame: flip bits in the bytes as they came
            raw = bytearray(chunk)
            self._flip(raw, len(raw), bits)
            return DELIMITER + bytes(raw) + DELIMITER, False
        payload = len(raw) - CRC_BYTES
        if payload <= 0:
            self._flip(raw, len(raw), bits)
            return DELIMITER + cobs.encode(bytes(raw)) + DELIMITER, False
        self._flip(raw, payload, bits)
        if fix_crc:
            return encode_frame(bytes(raw[:payload]), max(MAX_PAYLOAD_BYTES, payload)), True
        return DELIMITER + cobs.encode(bytes(raw)) + DELIMITER, False

    def _flip(self, raw: bytearray, nbytes: int, bits: int) -> None:
        for bit in self._rng.sample(range(nbytes * 8), min(bits, nbytes * 8)):
            raw[bit // 8] ^= 1 << (bit % 8)

    def _due(self, way: _Direction) -> list[bytes]:
        out = []
        with self._lock:
            now = self._clock()
            while way.delayed and way.delayed[0][0] <= now:
                out.append(heapq.heappop(way.delayed)[2])
        return out

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        for line in (self._host, self._board):
            try:
                line.close()
            except (OSError, TransportError):
                pass


# -- the control socket -----------------------------------------------------------------

FAULTS = {"drop", "delay", "duplicate", "corrupt", "garbage", "silence", "speak", "rates",
          "clear"}


def command(proxy: FaultProxy, request: Any) -> dict[str, Any]:
    """One control request (a decoded JSON object) carried out; the answer to send."""
    if not isinstance(request, dict):
        return {"ok": False, "error": "a request is a JSON object"}
    if request.get("counters") is True and len(request) == 1:
        return {"ok": True, "counters": proxy.counters()}
    kind = request.get("fault")
    if kind not in FAULTS:
        return {"ok": False, "error": f"fault {kind!r}: expected one of "
                                      f"{', '.join(sorted(FAULTS))}"}
    args = {k: v for k, v in request.items() if k != "fault"}
    try:
        getattr(proxy, kind)(**args)
    except InputError as e:
        return {"ok": False, "error": str(e)}
    except TypeError:
        return {"ok": False, "error": f"fault {kind}: arguments {sorted(args)} are not its own"}
    return {"ok": True, "counters": proxy.counters()}


class ControlServer:
    """The proxy's control socket on HOST:PORT (port 0: any free one, in `address`)."""

    MAX_LINE = 4096

    def __init__(self, proxy: FaultProxy, host: str, port: int) -> None:
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in iter(lambda: self.rfile.readline(outer.MAX_LINE + 1), b""):
                    if len(line) > outer.MAX_LINE:
                        answer = {"ok": False, "error": f"a line over {outer.MAX_LINE} bytes"}
                        self.wfile.write(json.dumps(answer).encode() + b"\n")
                        return
                    try:
                        answer = command(proxy, json.loads(line))
                    except ValueError:
                        answer = {"ok": False, "error": "not JSON"}
                    self.wfile.write(json.dumps(answer).encode() + b"\n")

        self._server = socketserver.ThreadingTCPServer((host, port), Handler)
        self._server.daemon_threads = True
        bound_host, bound_port = self._server.server_address[:2]
        self.address = f"{bound_host}:{bound_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="proxy-control")
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ProxyControl:
    """A client of a proxy's control socket: control.send(fault="drop", frames=2)."""

    def __init__(self, address: str, timeout_s: float = 5.0) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise InputError(f"control address {address!r}: expected HOST:PORT")
        try:
            self._sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        except OSError as e:
            raise TransportError(f"cannot reach the proxy's control at {address}: {e}") from e
        self._file = self._sock.makefile("rwb")

    def send(self, **request: Any) -> dict[str, Any]:
        """One request; its answer. Raises InputError with the proxy's reason when it
        refuses."""
        try:
            self._file.write(json.dumps(request).encode() + b"\n")
            self._file.flush()
            line = self._file.readline()
        except OSError as e:
            raise TransportError(f"the proxy's control went away: {e}") from e
        if not line:
            raise TransportError("the proxy's control closed the connection")
        answer = json.loads(line)
        if not answer.get("ok"):
            raise InputError(answer.get("error", "refused"))
        return answer

    def close(self) -> None:
        self._file.close()
        self._sock.close()
