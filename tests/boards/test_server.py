import msgpack

from hal.framing import Deframer, encode_frame
from hal.protocol import Reply, Request, decode_reply, encode_request
from tests.doubles import make_server


def ask(server, op: str, args: dict | None = None, seq: int = 1) -> Reply:
    tx = server.receive(encode_frame(encode_request(Request(seq, op, args or {}))))
    (payload,) = Deframer().feed(tx)
    return decode_reply(payload)


def test_every_board_answers_ping_info_tlm_reset() -> None:
    server = make_server("acc0")
    server.firmware.platform.t_s = 12.5
    assert ask(server, "ping").result == {"uptime_s": 12.5}
    info = ask(server, "info").result
    assert info["name"] == "acc0" and info["kind"] == "test"
    assert info["serial_number"] == "TEST-0001" and info["firmware_version"]
    tlm = ask(server, "tlm").result
    assert tlm["value"] == 42 and tlm["boot_count"] == 1 and tlm["uptime_s"] == 12.5
    assert ask(server, "reset", seq=5) == Reply(5, True, result={}, boot=1)
    assert server.boot_count == 2
    assert server.firmware.platform.reboots == 1
    assert ask(server, "ping").result == {"uptime_s": 0.0}


def test_reply_carries_the_request_seq() -> None:
    server = make_server()
    assert ask(server, "echo", {"x": 1}, seq=40000) == Reply(40000, True, result={"x": 1}, boot=1)


def test_unknown_op_is_refused_with_the_supported_list() -> None:
    reply = ask(make_server(), "warp")
    assert not reply.ok
    assert "unknown op 'warp'" in reply.error and "ping" in reply.error


def test_handler_refusal_and_handler_crash_both_answer() -> None:
    server = make_server()
    assert ask(server, "fail").error == "refused on purpose"
    crash = ask(server, "crash")
    assert not crash.ok and "internal error in crash: firmware bug" in crash.error
    assert ask(server, "ping").ok  # still serving
    assert server.counters["internal_errors"] == 1


def test_garbage_and_undecodable_requests_are_counted_not_answered() -> None:
    server = make_server()
    assert server.receive(b"\x07\x07\x07\x00") == b""  # bad frame
    assert server.receive(encode_frame(msgpack.packb([1, 2]))) == b""  # not a request
    assert server.counters["bad_requests"] == 1
    tlm = ask(server, "tlm").result
    assert tlm["rx_frames_rejected"] == 1 and tlm["rx_bad_requests"] == 1


def test_two_requests_in_one_read_get_two_replies() -> None:
    server = make_server()
    rx = b"".join(encode_frame(encode_request(Request(s, "echo", {"s": s}))) for s in (1, 2))
    replies = [decode_reply(p) for p in Deframer().feed(server.receive(rx))]
    assert [r.seq for r in replies] == [1, 2]


def test_a_repeated_request_is_answered_again_without_running_twice() -> None:
    server = make_server()
    first = ask(server, "bump", seq=7)
    again = ask(server, "bump", seq=7)
    assert first == again == Reply(7, True, result={"bumps": 1}, boot=1)
    assert server.firmware.bumps == 1 and server.counters["duplicates"] == 1
    assert ask(server, "bump", seq=8).result == {"bumps": 2}  # a new number runs again
