"""Emulated boards on serial lines: the same bytes as in process, through a real
serial-port path that pyserial opens like /dev/ttyUSB0.

`PtyBoard` makes a pseudo-terminal pair and serves the board on it; `PortBoard` serves
it on a serial port that exists (a USB-serial adapter wired to a flight computer on
the bench). Either runs a thread that reads what the host writes, hands it to the
board's firmware and writes back the reply. Requests are strictly sequential (a driver
waits for each reply), so in `skyrack sim --serial` the board thread touches the world
only while the flight software's thread is blocked on that reply: runs stay
deterministic.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Callable

from hal.errors import TransportError
from hal.transport import SerialTransport

POLL_S = 0.05


class _ServedBoard:
    """A thread serving `receive(rx) -> tx` until `close()`."""

    path: str

    def __init__(self, name: str, receive: Callable[[bytes], bytes]) -> None:
        self.name = name
        self._receive = receive
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"serve-{name}", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._read()
                if data:
                    self._write(self._receive(data))
            except (OSError, TransportError):
                return  # the line went away; anything else is a bug and should be seen

    def _read(self) -> bytes:
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)


class PtyEnd:
    """The controller end of a new pseudo-terminal, raw (bytes, not lines); `path` is
    the end a host opens as it would /dev/ttyUSB0."""

    def __init__(self) -> None:
        if not sys.platform.startswith(("linux", "darwin")):
            raise OSError("pseudo-terminals need Linux or macOS")
        self._controller, self._peripheral = os.openpty()
        tty.setraw(self._peripheral, termios.TCSANOW)  # bytes, not lines: no echo, no edits
        os.set_blocking(self._controller, False)
        self.path = os.ttyname(self._peripheral)
        self.dropped_bytes = 0  # written while nobody read, once the line's buffer was full

    def read(self, timeout_s: float = POLL_S) -> bytes:
        ready, _, _ = select.select([self._controller], [], [], timeout_s)
        try:
            return os.read(self._controller, 65536) if ready else b""
        except BlockingIOError:
            return b""

    def write(self, data: bytes, stopping: Callable[[], bool] = lambda: False) -> None:
        """Onto the line. A host that stops reading fills the tty's buffer; what does not
        fit within POLL_S is dropped, as a UART without flow control drops it, rather
        than leave the writer stuck (deaf to the next host, and unable to stop)."""
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self._controller, view):]
            except BlockingIOError:
                _, ready, _ = select.select([], [self._controller], [], POLL_S)
                if not ready or stopping():
                    self.dropped_bytes += len(view)
                    return

    def close(self) -> None:
        for fd in (self._controller, self._peripheral):
            try:
                termios.tcflush(fd, termios.TCIOFLUSH)  # close need not wait for a drain
            except (OSError, termios.error):
                pass
            try:
                os.close(fd)
            except OSError:
                pass


class PtyBoard(_ServedBoard):
    """Serve a board on a new pseudo-terminal; `path` is the end a host opens."""

    def __init__(self, name: str, receive: Callable[[bytes], bytes]) -> None:
        self._line = PtyEnd()
        super().__init__(name, receive)
        self.path = self._line.path
        self._thread.start()

    @property
    def dropped_bytes(self) -> int:
        """Replies nobody read, once the line's buffer was full."""
        return self._line.dropped_bytes

    def _read(self) -> bytes:
        return self._line.read(POLL_S)

    def _write(self, data: bytes) -> None:
        self._line.write(data, self._stop.is_set)

    def close(self) -> None:
        super().close()
        self._line.close()


class PortBoard(_ServedBoard):
    """Serve a board on an existing serial port (any pyserial URL). Raises
    TransportError when the port cannot be opened."""

    def __init__(self, name: str, receive: Callable[[bytes], bytes], url: str,
                 baudrate: int = 115200) -> None:
        super().__init__(name, receive)
        self._port = SerialTransport(url, baudrate)
        self.path = url
        self._thread.start()

    def _read(self) -> bytes:
        return self._port.read(POLL_S)

    def _write(self, data: bytes) -> None:
        self._port.write(data)

    def close(self) -> None:
        super().close()
        self._port.close()
