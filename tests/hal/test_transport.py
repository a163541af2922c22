import time

import pytest

from hal.errors import TransportError
from hal.transport import InProcessTransport, SerialTransport


def test_serial_transport_over_a_pyserial_loop_url() -> None:
    port = SerialTransport("loop://")
    try:
        port.write(b"\x01\x02\x00")
        assert port.read(0.5) == b"\x01\x02\x00"
        started = time.monotonic()
        assert port.read(0.05) == b""
        assert time.monotonic() - started >= 0.04
    finally:
        port.close()


def test_serial_transport_names_a_port_it_cannot_open() -> None:
    with pytest.raises(TransportError, match="cannot open serial port '/dev/skyrack-none'"):
        SerialTransport("/dev/skyrack-none")


def test_in_process_transport_hands_bytes_to_its_peer_and_back() -> None:
    seen = []
    t = InProcessTransport(lambda rx: seen.append(rx) or rx[::-1])
    t.write(b"abc")
    assert seen == [b"abc"]
    assert t.read(1.0) == b"cba"
    assert t.read(1.0) == b""
    t.close()
    with pytest.raises(TransportError, match="closed"):
        t.write(b"x")
