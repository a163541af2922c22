"""Emulated boards on pseudo-terminals: the same bytes as in process, through a real
serial-port path that pyserial opens like /dev/ttyUSB0.

Each board gets a pty pair and a thread that reads what the host writes, hands it to
the board's firmware and writes back the reply. Requests are strictly sequential (a
driver waits for each reply), so the board thread touches the world only while the
flight software's thread is blocked on that reply: runs stay deterministic.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Callable

POLL_S = 0.05


class PtyBoard:
    """Serve `receive(rx) -> tx` on a new pseudo-terminal until `close()`."""

    def __init__(self, name: str, receive: Callable[[bytes], bytes]) -> None:
        if not sys.platform.startswith(("linux", "darwin")):
            raise OSError("pseudo-terminals need Linux or macOS")
        self.name = name
        self._receive = receive
        self._controller, self._peripheral = os.openpty()
        tty.setraw(self._peripheral, termios.TCSANOW)  # bytes, not lines: no echo, no edits
        self.path = os.ttyname(self._peripheral)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"pty-{name}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._controller], [], [], POLL_S)
            if not ready:
                continue
            try:
                data = os.read(self._controller, 65536)
            except OSError:
                return  # the other end went away
            reply = self._receive(data)
            view = memoryview(reply)
            while view:
                written = os.write(self._controller, view)
                view = view[written:]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        for fd in (self._controller, self._peripheral):
            try:
                os.close(fd)
            except OSError:
                pass
