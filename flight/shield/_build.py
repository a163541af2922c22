"""cffi build script (API mode) for the shield kernel, run by the install step through
`cffi_modules` in setup.py. Paths are relative to the repository root, where setup.py runs.
"""

from cffi import FFI

ffibuilder = FFI()
ffibuilder.cdef("""
    void sk_init(void);
    int sk_crc32c_hw_kind(void);
    int sk_crc32c_fold_available(void);
    uint32_t sk_crc32c(uint32_t crc, const uint8_t *buf, size_t len, int hw);
    void sk_crc_blocks(const uint8_t *buf, size_t len, size_t block, size_t first,
                       size_t count, uint32_t *out, int hw);
    size_t sk_verify_blocks(const uint8_t *buf, size_t len, size_t block, size_t first,
                            size_t count, const uint32_t *table, uint32_t *bad, int hw);
    void sk_pq_encode(const uint8_t *buf, size_t len, size_t block, size_t k, size_t stripe,
                      uint8_t *p, uint8_t *q);
    int sk_pq_rebuild(const uint8_t *buf, size_t len, size_t block, size_t k, size_t stripe,
                      const uint8_t *p, const uint8_t *q, int x, int y, uint8_t *outx,
                      uint8_t *outy);
""")
ffibuilder.set_source(
    "flight.shield._kernel",
    '#include "shield.h"',
    sources=["flight/shield/shield.c"],
    include_dirs=["flight/shield"],
    extra_compile_args=["-O3", "-std=c11", "-Wall"],
)
