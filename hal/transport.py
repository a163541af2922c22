"""Byte transports under the board protocol: in-process and pyserial.

A driver sees only `Transport`; whether the far end is a USB serial port, a pty
served by the sim or a function call in this process is decided by the board
definition, not by the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from hal.errors import TransportError


class Transport(Protocol):
    def write(self, data: bytes) -> None:
        """Send all of `data`. Raises TransportError."""
        ...

    def read(self, timeout_s: float) -> bytes:
        """Bytes received so far, waiting up to `timeout_s` for at least one.

        Returns b"" when nothing arrived in time. Raises TransportError.
        """
        ...

    def close(self) -> None: ...


class InProcessTransport:
    """A transport whose far end is a callable in this process.

    `peer(rx_bytes) -> tx_bytes` is the board's UART: it is handed what we send and
    returns what the board sends back. The peer answers before `write` returns, so a
    `read` never has to wait: when nothing is buffered, nothing is coming.
    """

    def __init__(self, peer: Callable[[bytes], bytes]) -> None:
        self._peer = peer
        self._rx = bytearray()
        self._closed = False

    def write(self, data: bytes) -> None:
        if self._closed:
            raise TransportError("in-process transport is closed")
        self._rx += self._peer(bytes(data))

    def read(self, timeout_s: float) -> bytes:
        if self._closed:
            raise TransportError("in-process transport is closed")
        data = bytes(self._rx)
        self._rx.clear()
        return data

    def close(self) -> None:
        self._closed = True


class SerialTransport:
    """A pyserial port: any URL `serial.serial_for_url` takes (`/dev/ttyUSB0`, a pty
    path, `loop://`, `socket://host:port`)."""

    def __init__(self, url: str, baudrate: int = 115200) -> None:
        import serial  # imported here so in-process use never needs pyserial loaded

        self.url = url
        self._serial_error = serial.SerialException
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=0)
        except (serial.SerialException, ValueError, OSError) as e:
            raise TransportError(f"cannot open serial port {url!r}: {e}") from e

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (self._serial_error, OSError) as e:
            raise TransportError(f"write to {self.url!r} failed: {e}") from e

    def read(self, timeout_s: float) -> bytes:
        try:
            self._port.timeout = max(timeout_s, 0.0)
            first = self._port.read(1)
            if not first:
                return b""
            waiting = self._port.in_waiting
            return first + (self._port.read(waiting) if waiting else b"")
        except (self._serial_error, OSError) as e:
            raise TransportError(f"read from {self.url!r} failed: {e}") from e

    def close(self) -> None:
        self._port.close()
