import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.auth import REORDER, KeyFile, KeyRing, sign
from hal.errors import PacketError
from hal.spacepacket import Telecommand, decode_tc, encode_tc

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))
TC = Telecommand(0x20, 8, 1, b"\x12\x34payload", seq_count=3)


def check(ring: KeyRing, packet: bytes):
    return ring.verify(decode_tc(packet), packet)


def test_a_signed_tc_verifies_and_gives_back_its_data() -> None:
    ring = KeyRing({1: KEY})
    verified = check(ring, sign(TC, 1, 7, KEY))
    assert verified.tc == TC and (verified.key_id, verified.counter) == (1, 7)
    assert ring.counters == {1: 7}


@pytest.mark.parametrize("make,kind,reason", [
    (lambda: encode_tc(TC), "unsigned", "unsigned"),
    (lambda: encode_tc(Telecommand(0x20, 8, 1, bytes(6) + b"x" * 20)), "unsigned", "key id 0"),
    (lambda: sign(TC, 9, 1, KEY), "unknown_key", "key id 9 is not on board"),
    (lambda: sign(TC, 1, 1, OTHER), "tampered", "MAC does not verify under key 1"),
    (lambda: sign(TC, 1, 5, KEY), "replayed", "counter 5 under key 1 is not above"),
    (lambda: sign(TC, 1, 5 + 1025, KEY), "out_of_window", "more than 1024 above"),
])
def test_every_bad_tc_is_refused_with_its_kind(make, kind, reason) -> None:
    ring = KeyRing({1: KEY}, counters={1: 5})
    with pytest.raises(PacketError) as e:
        check(ring, make())
    assert e.value.kind == kind and reason in str(e.value)
    assert ring.counters == {1: 5}  # a refused TC changes nothing


def test_a_tc_signed_for_one_spacecraft_verifies_on_no_other_even_under_its_key() -> None:
    """SDLS security associations are per spacecraft: the MAC covers the spacecraft id,
    so a TC captured on one satellite's uplink cannot be replayed to its sister."""
    packet = sign(TC, 1, 1, KEY, spacecraft=7)
    assert check(KeyRing({1: KEY}, spacecraft=7), packet).counter == 1
    sister = KeyRing({1: KEY}, spacecraft=8)
    with pytest.raises(PacketError, match="signed for another satellite") as e:
        check(sister, packet)
    assert e.value.kind == "tampered" and sister.counters == {}


def test_counters_arriving_out_of_order_are_each_accepted_once() -> None:
    """Ground processes of one station take counters 1..8 in one order and their TCs
    arrive in another: each is accepted once, a repeat of any is a replay, and one
    older than the window is refused."""
    ring = KeyRing({1: KEY})
    for counter in (2, 4, 1, 8, 3, 7, 5, 6):
        assert check(ring, sign(TC, 1, counter, KEY)).counter == counter
    for counter in (1, 5, 8):
        with pytest.raises(PacketError, match="was accepted before"):
            check(ring, sign(TC, 1, counter, KEY))
    check(ring, sign(TC, 1, 8 + REORDER, KEY))
    with pytest.raises(PacketError, match=f"older than the {REORDER}"):
        check(ring, sign(TC, 1, 8, KEY))
    # Restored from its highest counter alone (older software): nothing below it.
    with pytest.raises(PacketError, match="accepted before"):
        check(KeyRing({1: KEY}, counters={1: 9}), sign(TC, 1, 8, KEY))


@given(st.permutations(range(1, 41)), st.integers(1, 40))
def test_any_arrival_order_within_the_window_accepts_each_counter_once(order, again) -> None:
    ring = KeyRing({1: KEY})
    assert [check(ring, sign(TC, 1, c, KEY)).counter for c in order] == list(order)
    with pytest.raises(PacketError) as e:
        check(ring, sign(TC, 1, again, KEY))
    assert e.value.kind == "replayed"


def test_a_replayed_tc_is_refused_the_second_time() -> None:
    ring = KeyRing({1: KEY})
    packet = sign(TC, 1, 1, KEY)
    check(ring, packet)
    with pytest.raises(PacketError, match="not above the last accepted, 1"):
        check(ring, packet)


@given(st.integers(6 * 8, (len(sign(TC, 1, 1, KEY)) - 2) * 8 - 1))
def test_any_flipped_bit_past_the_primary_header_is_tampering(bit: int) -> None:
    """With the CRC recomputed, as an attacker would: only the MAC stands in the way."""
    from hal.crc import crc16_ccitt_false

    body = bytearray(sign(TC, 1, 1, KEY)[:-2])
    body[bit // 8] ^= 1 << (bit % 8)
    packet = bytes(body) + crc16_ccitt_false(bytes(body)).to_bytes(2, "big")
    ring = KeyRing({1: KEY})
    try:
        tc = decode_tc(packet)
    except PacketError:
        return  # the flip broke the PUS header itself
    with pytest.raises(PacketError) as e:
        ring.verify(tc, packet)
    assert e.value.kind in ("tampered", "unknown_key", "unsigned", "out_of_window")


def test_key_files_round_trip_and_bad_ones_say_why_without_the_key() -> None:
    keys = KeyFile.generate(3)
    assert KeyFile.parse(keys.to_text(), "k.json") == keys
    assert len(set(keys.keys.values())) == 3 and keys.active == 1
    key = '"' + "00" * 32 + '"'
    for text, reason in [("{", "not a key file"),
                         ('{"spacecraft": 1, "active": 1, "keys": {"1": "abcd"}}',
                          "key 1 is 2 octets"),
                         ('{"spacecraft": 1, "active": 2, "keys": {}}',
                          "active key 2 is not in the file"),
                         ('{"spacecraft": 1, "active": 0, "keys": {"0": ' + key + '}}',
                          "key id 0"),
                         ('{"active": 1, "keys": {"1": ' + key + '}}', "names no spacecraft"),
                         ('{"spacecraft": 1024, "active": 1, "keys": {"1": ' + key + '}}',
                          "spacecraft id 1024 outside 0..1023")]:
        with pytest.raises(ValueError, match=reason) as e:
            KeyFile.parse(text, "k.json")
        assert str(e.value).startswith("k.json: ")
