import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flight.shield import ShieldError, crc32c, hardware_crc
from flight.shield._kernel import ffi, lib

PATHS = [False] + ([True] if hardware_crc() else [])

# RFC 3720 (iSCSI), appendix B.4, plus the CRC catalogue's check value.
ISCSI_READ_PDU = bytes.fromhex(
    "01c00000000000000000000000000000"
    "14000000000004000000001400000018"
    "28000000000000000200000000000000")
VECTORS = [
    (b"123456789", 0xE3069283),
    (bytes(32), 0x8A9136AA),
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
    (ISCSI_READ_PDU, 0xD9963A56),
]


@pytest.mark.parametrize("hardware", PATHS)
@pytest.mark.parametrize("data,expected", VECTORS)
def test_published_vectors_on_every_path(data: bytes, expected: int, hardware: bool) -> None:
    assert crc32c(data, hardware=hardware) == expected


def test_hardware_and_table_paths_agree_on_every_length_and_offset() -> None:
    if not hardware_crc():
        pytest.skip("this CPU has no CRC32C instruction")
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, 4096 + 16, dtype=np.uint8).tobytes()
    view = memoryview(data)
    for length in range(4097):
        offset = length % 8
        chunk = view[offset:offset + length]
        assert crc32c(chunk, hardware=True) == crc32c(chunk, hardware=False), (length, offset)


@pytest.mark.parametrize("size", [255, 256, 257, 511, 3 * 256 + 3, 3 * 8192, 3 * 8192 + 5,
                                  65536, 200_003])
def test_every_kernel_path_agrees_across_folds_and_interleaved_stretches(size: int) -> None:
    """0: table, 1: fastest (AVX-512 fold where present), 2: the crc32 instruction alone."""
    data = np.random.default_rng(size).integers(0, 256, size + 7, dtype=np.uint8)
    for offset in range(8):
        view = ffi.from_buffer("uint8_t[]", data[offset:offset + size])
        results = {lib.sk_crc32c(0x1234, view, size, path) for path in (0, 1, 2)}
        assert len(results) == 1, (size, offset)


@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=3000))
def test_crc_continues_across_a_split_like_zlib(data: bytes, cut: int) -> None:
    cut = min(cut, len(data))
    assert crc32c(data[cut:], crc32c(data[:cut])) == crc32c(data)
    assert zlib.crc32(data[cut:], zlib.crc32(data[:cut])) == zlib.crc32(data)  # same convention


def test_numpy_arrays_of_any_numeric_dtype_are_read_as_bytes() -> None:
    a = np.arange(1000, dtype=np.float32)
    assert crc32c(a) == crc32c(a.tobytes())


@pytest.mark.parametrize("bad,reason", [
    (np.arange(10)[::2], "C-contiguous"),
    (np.array([object(), 1]), "Python objects"),
    ("text", "not a contiguous byte buffer"),
])
def test_bad_buffers_are_refused_with_the_reason(bad, reason: str) -> None:
    with pytest.raises(ShieldError, match=reason):
        crc32c(bad)


def test_a_crc_value_out_of_range_is_refused() -> None:
    with pytest.raises(ShieldError, match="32-bit"):
        crc32c(b"x", value=1 << 32)
