"""A driver on a pyserial port that is a pseudo-terminal, with a board on the far end:
the same path a USB serial adapter takes."""

import os
import select
import sys
import threading

import pytest

from drivers.thermal import ThermalDriver
from hal.transport import SerialTransport
from sim.boards import EmulatedThermalBoard
from tests.conftest import spec

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ptys on Linux")


def serve(fd: int, receive, stop: threading.Event) -> None:
    while not stop.is_set():
        ready, _, _ = select.select([fd], [], [], 0.02)
        if ready:
            reply = receive(os.read(fd, 4096))
            if reply:
                os.write(fd, reply)


def test_a_driver_talks_to_a_board_over_a_pty(world) -> None:
    board = EmulatedThermalBoard(spec("thermal"), world)
    controller, peripheral = os.openpty()
    stop = threading.Event()
    server = threading.Thread(target=serve, args=(controller, board.receive, stop), daemon=True)
    server.start()
    port = SerialTransport(os.ttyname(peripheral))
    try:
        driver = ThermalDriver("thermal", port, timeout_s=1.0)
        assert driver.info().serial_number.startswith("SIM-")
        driver.set_heater(1, True)
        hk = driver.housekeeping()
        assert hk.heaters == (False, True) and "radiator" in hk.temps_c
        assert driver.link.stats()["retries"] == 0
    finally:
        stop.set()
        server.join(timeout=2)
        port.close()
        os.close(controller)
        os.close(peripheral)
