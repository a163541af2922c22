import os
import select
import socket
import sys
import termios
import threading
import time
import tty

import pytest

from hal.packetlink import (
    MAX_QUEUED,
    InProcessLink,
    PacketSplitter,
    SerialPacketLink,
    TcpClientLink,
    TcpServerLink,
    open_link,
)
from hal.spacepacket import Telecommand, Telemetry, encode_tc, encode_tm

TC = encode_tc(Telecommand(0x10, 17, 1, b"x" * 40))
TM = encode_tm(Telemetry(0x10, 17, 2, b"y" * 300, 5.0))


def wait_for(fn, timeout_s: float = 3.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = fn()
        if out:
            return out
        time.sleep(0.01)
    return fn()


def test_the_splitter_cuts_packets_at_any_chunking_and_skips_garbage() -> None:
    stream = b"\xff\xfe" + TC + TM + TC
    for size in (1, 3, 7, 64, len(stream)):
        splitter = PacketSplitter()
        out = []
        for i in range(0, len(stream), size):
            out += splitter.feed(stream[i:i + size])
        assert out == [TC, TM, TC] and splitter.skipped_bytes == 2


def test_in_process_links_deliver_both_ways_and_bound_what_waits() -> None:
    a, b = InProcessLink.pair()
    a.send(TC)
    b.send(TM)
    assert b.receive() == [TC] and a.receive() == [TM] and a.receive() == []


def test_tcp_carries_packets_both_ways_and_the_ground_reconnects_after_a_drop() -> None:
    server = TcpServerLink("127.0.0.1", 0)
    client = TcpClientLink(*server.address)
    try:
        client.send(TC + TC)  # two packets in one write
        assert wait_for(server.receive) == [TC, TC]
        server.send(TM)
        assert wait_for(lambda: client.receive(0.1)) == [TM]
        server.hang_up()  # the satellite side hangs up
        assert wait_for(lambda: client.receive(0.1) or client._sock is None)
        client.send(TC)  # reconnects, and gets through
        assert client.reconnects == 1
        assert wait_for(server.receive) == [TC]
        assert server.counters["connections"] == 2
    finally:
        client.close()
        server.close()


def test_tm_with_no_ground_connected_is_counted_not_blocking() -> None:
    server = TcpServerLink("127.0.0.1", 0)
    try:
        started = time.monotonic()
        for _ in range(100):
            server.send(TM)
        assert server.counters["dropped"] == 100 and time.monotonic() - started < 1.0
    finally:
        server.close()


def test_an_unreachable_ground_link_says_so() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
    with pytest.raises(ConnectionError, match=f"cannot reach tcp://127.0.0.1:{port}"):
        TcpClientLink("127.0.0.1", port, connect_timeout_s=1.0)
    with pytest.raises(ValueError, match="expected tcp://HOST:PORT or serial:PORT"):
        open_link("udp://x:1", listen=False)


def test_serial_links_frame_packets_and_resynchronise_after_noise() -> None:
    link = open_link("serial:loop://", listen=False)
    assert isinstance(link, SerialPacketLink)
    link.send(TC)
    link.transport.write(b"\x13\x37noise\x00")
    link.send(TM)
    assert wait_for(link.receive) == [TC, TM]
    assert sum(link.deframer.rejected.values()) == 1  # the noise, counted
    link.close()


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")
def test_a_serial_link_over_a_pty() -> None:
    controller, peripheral = os.openpty()
    tty.setraw(peripheral, termios.TCSANOW)
    link = SerialPacketLink(os.ttyname(peripheral))
    try:
        link.send(TM)
        received = b""
        while select.select([controller], [], [], 1.0)[0] and len(received) < len(TM) + 4:
            received += os.read(controller, 4096)
        os.write(controller, b"garbage\x00" + received)  # echo it back after line noise
        assert wait_for(link.receive) == [TM]
        assert sum(link.deframer.rejected.values()) == 1
    finally:
        link.close()
        os.close(controller)
        os.close(peripheral)



@pytest.mark.parametrize("sent", [3000, 3 * MAX_QUEUED])
def test_an_in_process_link_loses_nothing_to_a_sender_on_another_thread(sent) -> None:
    """What is not received is counted dropped (oldest first, when the reader lags more
    than MAX_QUEUED packets), and what is received comes in order."""
    a, b = InProcessLink.pair()
    received: list[bytes] = []
    done = threading.Event()

    def sender() -> None:
        for i in range(sent):
            a.send(i.to_bytes(4, "big"))
        done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch often: a race has every chance to show
    try:
        thread = threading.Thread(target=sender)
        thread.start()
        while not done.is_set():
            received += b.receive()
        thread.join()
        received += b.receive()
    finally:
        sys.setswitchinterval(interval)
    numbers = [int.from_bytes(p, "big") for p in received]
    assert len(numbers) + b.dropped == sent
    assert numbers == sorted(set(numbers)) and numbers[-1] == sent - 1
    if sent < MAX_QUEUED:
        assert b.dropped == 0 and numbers == list(range(sent))


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs pseudo-terminals")
def test_serial_frames_are_what_tmtccmd_sends_and_reads() -> None:
    """The space link on a serial line frames one packet as 0x00 + COBS(packet) + 0x00,
    as tmtccmd's SerialCobsComIF does with the `cobs` package: nothing else inside."""
    from cobs import cobs

    controller, peripheral = os.openpty()
    tty.setraw(peripheral, termios.TCSANOW)
    link = SerialPacketLink(os.ttyname(peripheral))
    try:
        link.send(TM)
        received = b""
        while select.select([controller], [], [], 1.0)[0] and received.count(b"\x00") < 2:
            received += os.read(controller, 4096)
        frames = [f for f in received.split(b"\x00") if f]
        assert [cobs.decode(f) for f in frames] == [TM]  # exactly the packet, its own CRC
        os.write(controller, b"\x00" + cobs.encode(TC) + b"\x00" + cobs.encode(TM) + b"\x00")
        assert wait_for(link.receive) == [TC, TM]
        assert sum(link.deframer.rejected.values()) == 0
    finally:
        link.close()
        os.close(controller)



def test_two_grounds_at_once_each_hear_the_telemetry_and_both_are_heard() -> None:
    server = TcpServerLink("127.0.0.1", 0)
    first, second = TcpClientLink(*server.address), TcpClientLink(*server.address)
    try:
        first.send(TC)
        second.send(TC + TC)
        got: list[bytes] = []
        deadline = time.monotonic() + 5
        while len(got) < 3 and time.monotonic() < deadline:
            got += server.receive()
        assert got == [TC, TC, TC] and server.connected == 2
        server.send(TM)
        assert wait_for(lambda: first.receive(0.1)) == [TM]
        assert wait_for(lambda: second.receive(0.1)) == [TM]
    finally:
        first.close()
        second.close()
        server.close()


def test_a_ground_that_never_reads_cannot_stall_the_flight_loop() -> None:
    server = TcpServerLink("127.0.0.1", 0, max_queued_bytes=64 * 1024)
    silent = socket.create_connection(server.address)  # connects, never reads
    reader = TcpClientLink(*server.address)
    try:
        wait_for(lambda: server.receive() == [] and server.connected == 2)
        started = time.monotonic()
        for _ in range(20000):  # ~0.7 MB of telemetry
            server.send(TM)
        assert time.monotonic() - started < 2.0  # never waited on the silent one
        assert server.counters["dropped"] > 0  # what it could not take was dropped, for it
        received = []
        deadline = time.monotonic() + 5
        while len(received) < 20 and time.monotonic() < deadline:
            received += reader.receive(0.1)
            server.receive()  # the flight loop goes on, flushing what each can take
        assert received[:20] == [TM] * 20  # the other ground is served
    finally:
        silent.close()
        reader.close()
        server.close()


def test_a_connection_flood_is_capped_and_the_ground_already_there_keeps_its_link() -> None:
    server = TcpServerLink("127.0.0.1", 0, max_connections=4)
    ground = TcpClientLink(*server.address)
    flood = []
    try:
        wait_for(lambda: server.receive() == [] and server.connected == 1)
        for _ in range(50):
            flood.append(socket.create_connection(server.address))
            server.receive()
        assert server.connected == 4 and server.counters["refused"] == 47
        ground.send(TC)
        assert wait_for(server.receive) == [TC]
        server.send(TM)
        assert wait_for(lambda: ground.receive(0.1)) == [TM]
    finally:
        for sock in flood:
            sock.close()
        ground.close()
        server.close()


def test_connections_held_open_and_never_read_cannot_lock_a_ground_out() -> None:
    """Every place taken by a connection that never reads: a ground arriving later
    takes the place of the one that lost the most telemetry, and is served."""
    server = TcpServerLink("127.0.0.1", 0, max_connections=4, max_queued_bytes=4096)
    squatters = [socket.create_connection(server.address) for _ in range(4)]
    try:
        wait_for(lambda: server.receive() == [] and server.connected == 4)
        big = encode_tm(Telemetry(0x010, 3, 25, bytes(4000)))
        for _ in range(20000):  # until the kernel's buffers are full too
            server.send(big)  # none of them reads: each loses telemetry
            if server.counters["dropped"] >= 4 * 10:
                break
        assert server.counters["dropped"] >= 40
        ground = TcpClientLink(*server.address)
        wait_for(lambda: server.receive() == [] and server.counters["evicted"] == 1)
        assert server.connected == 4 and server.counters["refused"] == 0
        server.send(TM)
        assert wait_for(lambda: ground.receive(0.1)) == [TM]
        ground.send(TC)
        assert wait_for(server.receive) == [TC]
        ground.close()
    finally:
        for sock in squatters:
            sock.close()
        server.close()


def test_a_reconnect_flood_leaves_the_ground_served_and_the_loop_on_time() -> None:
    """A thread connects and hangs up as fast as it can while the flight loop sends
    telemetry and the ground commands: the ground hears every packet and is heard, and
    no pass of the loop waits."""
    server = TcpServerLink("127.0.0.1", 0)
    ground = TcpClientLink(*server.address)
    stop = threading.Event()
    floods = [0]

    def flood() -> None:
        while not stop.is_set():
            try:
                socket.create_connection(server.address, timeout=1).close()
                floods[0] += 1
            except OSError:
                pass

    thread = threading.Thread(target=flood, daemon=True)
    try:
        wait_for(lambda: server.receive() == [] and server.connected == 1)
        thread.start()
        heard, received, slowest, sent = [], [], 0.0, 0
        deadline = time.monotonic() + 10
        while sent < 200 or (floods[0] < 50 and time.monotonic() < deadline):
            started = time.monotonic()
            heard += server.receive()
            server.send(TM)
            slowest = max(slowest, time.monotonic() - started)
            if sent % 20 == 0:
                ground.send(TC)
            sent += 1
            received += ground.receive(0.005)
        stop.set()
        thread.join(5)
        deadline = time.monotonic() + 5
        while (len(received) < sent or len(heard) < (sent + 19) // 20) \
                and time.monotonic() < deadline:
            heard += server.receive()
            received += ground.receive(0.05)
        assert floods[0] >= 50  # it did flood
        assert received == [TM] * sent and heard == [TC] * ((sent + 19) // 20)
        assert slowest < 0.5  # a pass of the flight loop never waited on the flood
    finally:
        stop.set()
        ground.close()
        server.close()
