"""Boards served on pseudo-terminals (sim.pty) behave as boards on a UART do when the
host misbehaves: a host that stops reading costs replies, never the board."""

import os
import sys
import time

import pytest

from sim.pty import PtyBoard

pytestmark = pytest.mark.skipif(not sys.platform.startswith(("linux", "darwin")),
                                reason="pseudo-terminals need Linux or macOS")


def test_a_host_that_stops_reading_costs_replies_not_the_board() -> None:
    board = PtyBoard("echo", lambda data: data * 4)  # replies larger than requests
    host = os.open(board.path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.set_blocking(host, False)
        deadline = time.monotonic() + 10
        while board.dropped_bytes == 0 and time.monotonic() < deadline:
            try:  # requests, and never a read: the tty buffer fills with replies
                os.write(host, b"x" * 256)
            except BlockingIOError:
                time.sleep(0.01)
        assert board.dropped_bytes > 0  # dropped, as a UART without flow control drops
        quiet_since = time.monotonic()  # the host catches up with what is left
        while time.monotonic() - quiet_since < 0.5:
            try:
                if os.read(host, 65536):
                    quiet_since = time.monotonic()
            except BlockingIOError:
                time.sleep(0.01)
        os.write(host, b"ping")  # and the board answers the next request
        reply, deadline = b"", time.monotonic() + 5
        while reply != b"ping" * 4 and time.monotonic() < deadline:
            try:
                reply += os.read(host, 65536)
            except BlockingIOError:
                time.sleep(0.01)
        assert reply == b"ping" * 4
    finally:
        started = time.monotonic()
        board.close()
        os.close(host)
    assert time.monotonic() - started < 1.0  # its thread was not stuck in a write
