"""The board-side protocol server: frames in, requests dispatched, replies out.

Every board answers `ping`, `info`, `tlm` and `reset`; its firmware adds ops in its
handler table. Each op is declared once in hal.boardops, which the drivers use too: the
server decodes a request into its declared dataclass before the handler sees it, and
encodes the handler's reply by its declaration. Nothing a host sends can crash the
server: undecodable frames are counted and dropped, bad requests get an error reply.

Duplicates: a host retries a request with the same sequence number when a reply was
lost. The server keeps its last reply and, for a request repeating the last sequence
number and op, sends that reply again without running the op a second time, so even a
non-idempotent op runs once however often it is retried.

Every reply carries the board's boot count (kept in NVM by the bootloader, when there
is one), so a host can tell that the board restarted, and with it forgot its last reply.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from typing import Any, Protocol

import msgpack

from hal.boardops import Op, Uptime, WireError, ops_for
from hal.boards import BoardInfo
from hal.errors import ProtocolError, SkyrackError
from hal.framing import Deframer, encode_frame, frame_buffer
from hal.protocol import Reply, Request, decode_request, encode_reply

log = logging.getLogger(__name__)

FIRMWARE_VERSION = "0.1.0"

Handler = Callable[[Any], Any]  # the decoded request (or None) -> the reply (or None)


class OpError(SkyrackError):
    """Raised by a handler to refuse a request; the message goes back to the host."""


class Platform(Protocol):
    """What every board's hardware offers its firmware."""

    serial_number: str

    def uptime_s(self) -> float:
        """Seconds since this board last booted."""
        ...

    def reboot(self) -> None:
        """Restart the board (uptime starts again from zero)."""
        ...


class Firmware(Protocol):
    kind: str
    platform: Platform
    ops: dict[str, Op]  # its own ops, as hal.boardops declares them

    def handlers(self) -> dict[str, Handler]:
        """The board's own ops; `tlm` is expected among them."""
        ...


def within(name: str, value: int, lo: int, hi: int) -> int:
    """A request field checked against what this board has (hal.boardops bounds what
    any board may be sent; this board may have fewer channels or heaters)."""
    if not lo <= value <= hi:
        raise OpError(f"{name} = {value} out of range [{lo}, {hi}]")
    return value


class ProtocolServer:
    """Serves one board's firmware over any byte stream.

    `receive(rx) -> tx` is the whole interface: bytes the host sent in, bytes the board
    sends back out. A pty, a UART interrupt or an in-process transport drive it alike.
    """

    def __init__(self, name: str, firmware: Firmware, bootloader: Any = None) -> None:
        self.name = name
        self.firmware = firmware
        self.bootloader = bootloader  # boards.firmware.bootloader.Bootloader, if it has NVM
        self.boot_count = bootloader.boots if bootloader is not None else 1
        self.counters: collections.Counter[str] = collections.Counter()
        self._deframer = Deframer()
        # One stream, served one request at a time.
        self._packer, self._frame = msgpack.Packer(), frame_buffer()
        self._handlers: dict[str, Handler] = {
            "ping": self._ping,
            "info": self._info,
            "reset": self._reset,
            **(bootloader.handlers() if bootloader is not None else {}),
            **firmware.handlers(),
        }
        self._ops = ops_for(firmware.ops)
        undeclared = sorted(set(self._handlers) - set(self._ops))
        if undeclared:
            raise ValueError(f"{name}: ops {', '.join(undeclared)} are not declared in "
                             "hal.boardops")
        self._pending_reset = False
        self._last: tuple[int, str, bytes] | None = None  # seq, op, reply frame

    @property
    def ops(self) -> list[str]:
        return sorted(self._handlers)

    def receive(self, data: bytes) -> bytes:
        out = bytearray()
        for payload in self._deframer.feed(data):
            try:
                request = decode_request(payload)
            except ProtocolError as e:
                # Without a readable seq there is nobody to answer; count it.
                self.counters["bad_requests"] += 1
                log.debug("%s: dropped request: %s", self.name, e)
                continue
            if self._last is not None and self._last[:2] == (request.seq, request.op):
                self.counters["duplicates"] += 1
                out += self._last[2]  # a retry: the same answer, the op not run again
                continue
            frame = encode_frame(encode_reply(self._handle(request), self._packer),
                                 scratch=self._frame)
            self._last = (request.seq, request.op, frame)
            out += frame
            if self._pending_reset:
                self._reboot()
                break  # a rebooting board drops whatever else was in flight
        return bytes(out)

    def _handle(self, request: Request) -> Reply:
        handler = self._handlers.get(request.op)
        if handler is None:
            self.counters["unknown_ops"] += 1
            return Reply(request.seq, False, error=f"unknown op {request.op!r} "
                         f"(supported: {', '.join(self.ops)})", boot=self.boot_count)
        spec = self._ops[request.op]
        try:
            reply = handler(spec.decode_request(request.args))
        except (OpError, WireError) as e:  # refused, or a request off its declaration
            self.counters["refused"] += 1
            return Reply(request.seq, False, error=str(e), boot=self.boot_count)
        except Exception as e:  # firmware must answer, not die
            return self._internal_error(request, e)
        try:
            result = spec.encode_reply(reply)
        except WireError as e:  # the firmware's reply is off its declaration
            return self._internal_error(request, e)
        self.counters["served"] += 1
        if request.op == "flash_activate":
            self._pending_reset = True  # boot the new image once the reply is out
        if request.op == "tlm":
            result = {**result, **self._status()}
        return Reply(request.seq, True, result=result, boot=self.boot_count)

    def _internal_error(self, request: Request, error: Exception) -> Reply:
        self.counters["internal_errors"] += 1
        log.error("%s: op %s failed: %s", self.name, request.op, error, exc_info=error)
        return Reply(request.seq, False, error=f"internal error in {request.op}: {error}",
                     boot=self.boot_count)

    def _status(self) -> dict[str, Any]:
        return {
            "uptime_s": self.firmware.platform.uptime_s(),
            "boot_count": self.boot_count,
            "rx_frames_rejected": self._deframer.rejected_total,
            "rx_bad_requests": self.counters.get("bad_requests", 0),
        }

    def _ping(self, _: None) -> Uptime:
        return Uptime(self.firmware.platform.uptime_s())

    def _info(self, _: None) -> BoardInfo:
        return BoardInfo(
            name=self.name,
            kind=self.firmware.kind,
            firmware_version=(self.bootloader.version if self.bootloader is not None
                              else FIRMWARE_VERSION),
            serial_number=self.firmware.platform.serial_number,
        )

    def _reset(self, _: None) -> None:
        self._pending_reset = True  # after the reply is on the wire

    def _reboot(self) -> None:
        self._pending_reset = False
        self._last = None  # a rebooted board remembers no replies
        self.counters.clear()
        self._deframer = Deframer()
        self.firmware.platform.reboot()
        if self.bootloader is not None:
            self.bootloader.boot()
            self.boot_count = self.bootloader.boots
        else:
            self.boot_count += 1

    def tick(self) -> None:
        """The board's timer interrupt: its firmware's, and the bootloader's trial window."""
        tick = getattr(self.firmware, "tick", None)
        if tick is not None:
            tick()
        if self.bootloader is not None and self.bootloader.tick():
            self._reboot()  # the new image never confirmed: reboot, and so roll back
