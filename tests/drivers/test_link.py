import pytest

from drivers.link import BoardLink
from hal.errors import BoardFault, BoardLinkError, BoardReset, BoardTimeout, TransportError
from hal.transport import InProcessTransport
from tests.doubles import Misbehaving, make_server


def link_to(mode: str | None = None, times: int | None = None, retries: int = 2):
    server = make_server()
    peer = server.receive if mode is None else Misbehaving(server.receive, mode, times, server)
    link = BoardLink("testboard", InProcessTransport(peer), timeout_s=0.2, retries=retries)
    return link, server, peer


def test_a_good_board_answers_first_time() -> None:
    link, _, _ = link_to()
    assert link.call("echo", {"a": 1}) == {"a": 1}
    assert link.stats()["requests"] == 1 and link.stats()["retries"] == 0


def test_a_silent_board_times_out_after_bounded_retries_naming_board_and_op() -> None:
    link, _, peer = link_to("silent")
    with pytest.raises(BoardTimeout) as e:
        link.call("tlm")
    assert e.value.board == "testboard" and e.value.op == "tlm"
    assert "after 3 attempts: board silent" in str(e.value)
    assert peer.calls == 3 and link.stats()["timeouts"] == 1


@pytest.mark.parametrize("mode", ["flip", "drop", "silent", "lose", "slow"])
def test_a_transient_fault_is_retried_to_success(mode: str) -> None:
    link, _, _ = link_to(mode, times=1)
    assert link.call("tlm")["value"] == 42
    assert link.stats()["retries"] == 1


@pytest.mark.parametrize("mode", ["flip", "drop"])
def test_a_persistent_corruption_times_out_with_the_frame_error(mode: str) -> None:
    link, _, _ = link_to(mode)
    with pytest.raises(BoardTimeout, match="frame.*rejected"):
        link.call("tlm")
    assert link.stats()["frames_rejected"] == 3


def test_garbage_before_a_reply_is_skipped() -> None:
    link, _, _ = link_to("garbage")
    assert link.call("tlm")["value"] == 42
    assert link.stats()["frames_rejected"] >= 1 and link.stats()["retries"] == 0


def test_a_late_reply_to_an_earlier_request_is_discarded() -> None:
    link, _, _ = link_to("stale")
    assert link.call("echo", {"n": 1}) == {"n": 1}
    assert link.call("echo", {"n": 2}) == {"n": 2}
    assert link.stats()["stale_replies"] == 1


def test_a_board_fault_is_raised_at_once_and_not_retried() -> None:
    link, _, _ = link_to()
    with pytest.raises(BoardFault, match="testboard: fail: refused on purpose"):
        link.call("fail")
    assert link.stats()["requests"] == 1


def test_a_lost_reply_is_retried_and_a_non_idempotent_op_still_runs_once() -> None:
    link, server, _ = link_to("lose", times=2)
    assert link.call("bump", idempotent=False) == {"bumps": 1}
    assert server.firmware.bumps == 1  # the board answered the retries from its last reply
    assert server.counters["duplicates"] == 2 and link.stats()["retries"] == 2


def test_a_board_reset_mid_request_is_a_clear_error_for_a_non_idempotent_op() -> None:
    link, server, peer = link_to("reset", times=0)
    assert link.call("ping") is not None  # boot 1: what the link knows before the reset
    peer.remaining = 1
    with pytest.raises(BoardReset) as e:
        link.call("bump", idempotent=False)
    assert str(e.value) == ("testboard: bump: the board restarted during the request "
                            "(boot 1 -> 2): the restarted board ran it, and it may have "
                            "run before the restart too")
    assert server.firmware.bumps == 2  # which is exactly why it must not pass silently
    assert link.stats()["resets"] == 1 and link.boot == 2
    assert link.call("bump", idempotent=False) == {"bumps": 3}  # the link carries on


def test_a_board_reset_mid_request_is_counted_for_an_idempotent_op() -> None:
    link, server, peer = link_to("reset", times=0)
    link.call("ping")
    peer.remaining = 1
    assert link.call("tlm")["value"] == 42  # running it twice is harmless
    assert link.stats()["resets"] == 1 and link.stats()["retries"] == 1


def test_a_reset_between_requests_is_counted_not_raised() -> None:
    link, server, _ = link_to()
    link.call("ping")
    server._reboot()
    assert link.call("bump", idempotent=False) == {"bumps": 1}
    assert link.stats()["resets"] == 1


def test_a_transport_failure_is_a_link_error() -> None:
    def broken(rx: bytes) -> bytes:
        raise TransportError("USB cable pulled")

    link = BoardLink("testboard", InProcessTransport(broken))
    with pytest.raises(BoardLinkError, match="testboard: ping: USB cable pulled"):
        link.call("ping")


def test_sequence_numbers_wrap_at_16_bits() -> None:
    link, _, _ = link_to()
    link._seq = 65534
    for _ in range(3):
        assert link.call("echo", {}) == {}
    assert link._seq == 1
