"""Our space packets against an independent CCSDS/PUS implementation (spacepackets),
both directions, and every kind of damage."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from spacepackets.ecss import PusTc, PusTm

from hal.errors import PacketError
from hal.spacepacket import (
    Telecommand,
    Telemetry,
    cuc,
    decode_tc,
    decode_tm,
    encode_tc,
    encode_tm,
    from_cuc,
    packet_length,
)
from tests.doubles import subtype_of

apids = st.integers(0, 0x7FE)
u8 = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
seqs = st.integers(0, 0x3FFF)
data = st.binary(max_size=600)


@given(apids, u8, u8, data, seqs, u16, st.integers(0, 15))
def test_telecommands_match_spacepackets_both_ways(apid, service, subtype, app_data, seq,
                                                   source, ack) -> None:
    ours = encode_tc(Telecommand(apid, service, subtype, app_data, seq, source, ack))
    theirs = PusTc(service, subtype, apid=apid, app_data=app_data,
                   seq_count=seq, source_id=source, ack_flags=ack)
    assert ours == theirs.pack()
    parsed = PusTc.unpack(ours)  # their parser checks our CRC
    assert (parsed.apid, parsed.service, subtype_of(parsed), parsed.app_data,
            parsed.seq_count, parsed.source_id) == (apid, service, subtype, app_data, seq, source)
    assert decode_tc(theirs.pack()) == Telecommand(apid, service, subtype, app_data, seq,
                                                   source, ack)


@given(apids, u8, u8, data, st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF), seqs, u16, u16)
def test_telemetry_matches_spacepackets_both_ways(apid, service, subtype, source_data, coarse,
                                                  fine, seq, counter, destination) -> None:
    time_s = coarse + fine / 65536
    ours = encode_tm(Telemetry(apid, service, subtype, source_data, time_s, seq, counter,
                               destination))
    theirs = PusTm(service, subtype, timestamp=cuc(time_s),
                   source_data=source_data, apid=apid, seq_count=seq, message_counter=counter,
                   destination_id=destination)
    assert ours == theirs.pack()
    parsed = PusTm.unpack(ours, timestamp_len=6)
    assert (parsed.apid, parsed.service, subtype_of(parsed), parsed.source_data,
            parsed.seq_count, parsed.timestamp) == (apid, service, subtype, source_data, seq,
                                                    cuc(time_s))
    assert decode_tm(theirs.pack()) == Telemetry(apid, service, subtype, source_data, time_s,
                                                 seq, counter, destination)


def test_cuc_counts_seconds_and_two_to_the_minus_16() -> None:
    assert cuc(1.5) == bytes.fromhex("00000001 8000")
    assert from_cuc(cuc(86400.25)) == 86400.25
    with pytest.raises(ValueError, match="outside the CUC"):
        cuc(-1.0)


def test_a_packet_says_its_own_length() -> None:
    packet = encode_tc(Telecommand(1, 17, 1))
    assert packet_length(packet[:6]) == len(packet) == 6 + 5 + 2


GOOD_TC = encode_tc(Telecommand(0x10, 8, 1, b"\x00\x01abc", seq_count=9))
GOOD_TM = encode_tm(Telemetry(0x10, 3, 25, b"hk", 5.0))


@pytest.mark.parametrize("packet,kind,reason", [
    (GOOD_TC[:10], "truncated", "too short for a PUS TC"),
    (GOOD_TC[:-1], "length", "the header says"),
    (GOOD_TC + b"\x00", "length", "the header says"),
    (GOOD_TC[:-1] + bytes([GOOD_TC[-1] ^ 1]), "crc", "CRC-16"),
    (GOOD_TM, "header", "a TM where a TC was expected"),
    (bytes([GOOD_TC[0] | 0x20]) + GOOD_TC[1:], "header", "packet version 1"),
    (bytes([GOOD_TC[0] & ~0x08]) + GOOD_TC[1:], "header", "no secondary header"),
    (GOOD_TC[:2] + bytes([GOOD_TC[2] & 0x3F]) + GOOD_TC[3:], "header", "sequence flags 00"),
])
def test_a_bad_telecommand_is_refused_with_its_kind_and_reason(packet, kind, reason) -> None:
    with pytest.raises(PacketError) as e:
        decode_tc(packet)
    assert e.value.kind == kind and reason in str(e.value)


def test_a_pus_a_header_is_refused() -> None:
    from hal.crc import crc16_ccitt_false

    body = bytearray(GOOD_TC[:-2])
    body[6] = (1 << 4) | (body[6] & 0xF)  # PUS version 1
    packet = bytes(body) + crc16_ccitt_false(bytes(body)).to_bytes(2, "big")
    with pytest.raises(PacketError, match="PUS version 1; this link speaks PUS-C"):
        decode_tc(packet)


@given(st.binary(max_size=80))
def test_arbitrary_bytes_raise_only_packet_error(raw: bytes) -> None:
    for decode in (decode_tc, decode_tm):
        try:
            decode(raw)
        except PacketError:
            pass


@given(st.integers(0, len(GOOD_TC) * 8 - 1))
def test_every_single_bit_flip_in_a_telecommand_is_caught(bit: int) -> None:
    damaged = bytearray(GOOD_TC)
    damaged[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(PacketError):
        decode_tc(bytes(damaged))


def test_the_time_code_the_dictionary_states_is_the_one_on_the_wire() -> None:
    from spacepackets.ccsds.time.common import CcsdsTimeCodeId

    from hal.spacepacket import TIME_CODE

    p_field = int(TIME_CODE["implicit_p_field"], 16)
    assert p_field >> 7 == 0  # no extension octet
    assert (p_field >> 4) & 0b111 == CcsdsTimeCodeId.CUC_AGENCY_EPOCH
    assert ((p_field >> 2) & 0b11) + 1 == TIME_CODE["coarse_octets"] == 4
    assert p_field & 0b11 == TIME_CODE["fine_octets"] == 2
    raw = cuc(70000.25)
    assert len(raw) == 6 and int.from_bytes(raw[:4], "big") == 70000
    assert int.from_bytes(raw[4:], "big") * TIME_CODE["resolution_s"] == 0.25
