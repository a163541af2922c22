/* The shield kernel. See shield.h for the contract.
 *
 * CRC32C: on x86-64 the SSE4.2 crc32 instruction has a latency of 3 cycles and a
 * throughput of 1, so one dependency chain runs at a third of the unit's speed. We run
 * three chains over three adjacent stretches and join them with the CRC "shift by n zero
 * bytes" operator (a 32x32 GF(2) matrix applied through four byte tables), after Mark
 * Adler's crc32c.c. From DRAM those chains keep too few cache lines in flight, so where
 * the CPU has AVX-512 VPCLMULQDQ, long buffers are instead folded 256 bytes at a time with
 * carry-less multiplies (Intel, "Fast CRC Computation for Generic Polynomials Using
 * PCLMULQDQ") and the last 16 bytes handed to the crc32 instruction. The portable path is
 * slicing-by-8.
 *
 * Parity: RAID-6 as in H. Peter Anvin, "The mathematics of RAID-6": P = xor of the data
 * blocks, Q = sum of g^i * D_i over GF(2^8) with g = 2 and polynomial 0x11D. Multiplying
 * eight bytes by g at once is a shift and a masked xor on a 64-bit word.
 */
#include "shield.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(_M_X64)
#define SK_X86 1
#include <immintrin.h>
#elif defined(__aarch64__)
#define SK_ARM 1
#include <arm_acle.h>
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif

#define POLY 0x82f63b78u /* CRC32C, reflected */
#define LONG_BYTES 8192
#define SHORT_BYTES 256

static uint32_t sw_table[8][256];
static uint32_t zeros_long[4][256];
static uint32_t zeros_short[4][256];
static uint8_t gf_exp[512];
static uint8_t gf_log[256];
static int hw_kind = -1;
static int have_fold = 0;
/* reflect(x^n mod P) << 1 for the fold distances used; see fold_constant(). */
static uint64_t k_2048[2], k_512[2], k_384[2], k_256[2], k_128[2];
#define FOLD_MIN_BYTES 256
#define FOLD_PREFETCH_BYTES 1024

/* ---- CRC32C, portable ------------------------------------------------------------ */

static void sw_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ POLY : crc >> 1;
        sw_table[0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = sw_table[0][n];
        for (int k = 1; k < 8; k++) {
            crc = sw_table[0][crc & 0xff] ^ (crc >> 8);
            sw_table[k][n] = crc;
        }
    }
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len) {
    crc = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        crc = sw_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
        len--;
    }
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        w ^= crc;
        crc = sw_table[7][w & 0xff] ^ sw_table[6][(w >> 8) & 0xff] ^
              sw_table[5][(w >> 16) & 0xff] ^ sw_table[4][(w >> 24) & 0xff] ^
              sw_table[3][(w >> 32) & 0xff] ^ sw_table[2][(w >> 40) & 0xff] ^
              sw_table[1][(w >> 48) & 0xff] ^ sw_table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len--) crc = sw_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- the zero-shift operator that joins parallel CRC streams ---------------------- */

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1) sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_times(mat, mat[n]);
}

/* Operator that appends len zero bytes (len a power of two) to a CRC register. */
static void zeros_op(uint32_t *even, size_t len) {
    uint32_t odd[32];
    uint32_t row = 1;
    odd[0] = POLY; /* one zero bit */
    for (int n = 1; n < 32; n++) {
        odd[n] = row;
        row <<= 1;
    }
    gf2_square(even, odd); /* two bits */
    gf2_square(odd, even); /* four bits */
    do {
        gf2_square(even, odd); /* doubles: 1 byte on the first pass */
        len >>= 1;
        if (len == 0) return;
        gf2_square(odd, even);
        len >>= 1;
    } while (len);
    memcpy(even, odd, sizeof odd);
}

static void zeros_tables(uint32_t zeros[4][256], size_t len) {
    uint32_t op[32];
    zeros_op(op, len);
    for (uint32_t n = 0; n < 256; n++) {
        zeros[0][n] = gf2_times(op, n);
        zeros[1][n] = gf2_times(op, n << 8);
        zeros[2][n] = gf2_times(op, n << 16);
        zeros[3][n] = gf2_times(op, n << 24);
    }
}

static inline uint32_t shift(uint32_t zeros[4][256], uint32_t crc) {
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^
           zeros[3][crc >> 24];
}

/* ---- CRC32C, hardware --------------------------------------------------------------- */

#if SK_X86
#define CRC8(c, b) _mm_crc32_u8((uint32_t)(c), (b))
#define CRC64(c, w) _mm_crc32_u64((c), (w))
#define HW_ATTR __attribute__((target("sse4.2")))
#elif SK_ARM
#define CRC8(c, b) __crc32cb((uint32_t)(c), (b))
#define CRC64(c, w) __crc32cd((uint32_t)(c), (w))
#define HW_ATTR __attribute__((target("+crc")))
#endif

static inline uint64_t load64(const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

#if SK_X86 || SK_ARM

/* Three chains over stretches of `stretch` bytes each, joined by `zeros`. (Unrolling to
 * a cache line per chain with software prefetch measured no faster, from cache or DRAM.) */
#define THREE_WAY(stretch, zeros)                                         \
    while (len >= 3 * (stretch)) {                                        \
        uint64_t c1 = 0, c2 = 0;                                          \
        const uint8_t *end = p + (stretch);                               \
        do {                                                              \
            c0 = CRC64(c0, load64(p));                                    \
            c1 = CRC64(c1, load64(p + (stretch)));                        \
            c2 = CRC64(c2, load64(p + 2 * (stretch)));                    \
            p += 8;                                                       \
        } while (p < end);                                                \
        c0 = shift(zeros, (uint32_t)c0) ^ (uint32_t)c1;                   \
        c0 = shift(zeros, (uint32_t)c0) ^ (uint32_t)c2;                   \
        p += 2 * (stretch);                                               \
        len -= 3 * (stretch);                                             \
    }

HW_ATTR static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t len) {
    uint64_t c0 = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c0 = CRC8(c0, *p++);
        len--;
    }
    THREE_WAY(LONG_BYTES, zeros_long)
    THREE_WAY(SHORT_BYTES, zeros_short)
    while (len >= 8) {
        c0 = CRC64(c0, load64(p));
        p += 8;
        len -= 8;
    }
    while (len--) c0 = CRC8(c0, *p++);
    return ~(uint32_t)c0;
}
#endif

#if SK_X86
/* x^n mod P in the reflected bit order the CRC uses, shifted left one: the multiplier
 * that carries a 64-bit half-lane n bits further along the message. */
static uint64_t fold_constant(unsigned n) {
    uint64_t r = 1;
    const uint64_t poly = 0x11EDC6F41ull; /* CRC32C, normal order, with its x^32 term */
    for (unsigned i = 0; i < n; i++) {
        r <<= 1;
        if (r & (1ull << 32)) r ^= poly;
    }
    uint32_t v = (uint32_t)r, rev = 0;
    for (int b = 0; b < 32; b++) rev |= ((v >> b) & 1u) << (31 - b);
    return (uint64_t)rev << 1;
}

/* Fold across d bits: low half times x^(d+32), high half times x^(d-32). */
static void fold_pair(uint64_t k[2], unsigned d) {
    k[0] = fold_constant(d + 32);
    k[1] = fold_constant(d - 32);
}

#define FOLD_ATTR __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.2")))

FOLD_ATTR static inline __m512i fold512(__m512i x, __m512i k, __m512i next) {
    __m512i lo = _mm512_clmulepi64_epi128(x, k, 0x00);
    __m512i hi = _mm512_clmulepi64_epi128(x, k, 0x11);
    return _mm512_ternarylogic_epi64(lo, hi, next, 0x96); /* lo ^ hi ^ next */
}

FOLD_ATTR static inline __m128i fold128(__m128i x, const uint64_t k[2]) {
    __m128i kk = _mm_set_epi64x((long long)k[1], (long long)k[0]);
    return _mm_xor_si128(_mm_clmulepi64_si128(x, kk, 0x00), _mm_clmulepi64_si128(x, kk, 0x11));
}

FOLD_ATTR static uint32_t crc_fold(uint32_t crc, const uint8_t *p, size_t len) {
    __m512i k4 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)k_2048[1],
                                                       (long long)k_2048[0]));
    __m512i k1 = _mm512_broadcast_i32x4(_mm_set_epi64x((long long)k_512[1],
                                                       (long long)k_512[0]));
    __m512i z0 = _mm512_loadu_si512((const void *)p);
    __m512i z1 = _mm512_loadu_si512((const void *)(p + 64));
    __m512i z2 = _mm512_loadu_si512((const void *)(p + 128));
    __m512i z3 = _mm512_loadu_si512((const void *)(p + 192));
    /* Starting from register c is the same as xoring c into the first four bytes. */
    z0 = _mm512_xor_si512(z0, _mm512_inserti32x4(_mm512_setzero_si512(),
                                                   _mm_cvtsi32_si128((int)~crc), 0));
    p += 256;
    len -= 256;
    while (len >= 256) {
        /* Run ahead into the next block too: verify calls this once per block, and
         * without it each block boundary stalls the stream (measured: 0.88x numpy's read
         * at 64 KiB blocks without, 0.98x with). A prefetch never faults, so reaching
         * past the buffer is harmless. */
        for (int line = 0; line < 256; line += 64)
            _mm_prefetch((const char *)p + FOLD_PREFETCH_BYTES + line, _MM_HINT_T0);
        z0 = fold512(z0, k4, _mm512_loadu_si512((const void *)p));
        z1 = fold512(z1, k4, _mm512_loadu_si512((const void *)(p + 64)));
        z2 = fold512(z2, k4, _mm512_loadu_si512((const void *)(p + 128)));
        z3 = fold512(z3, k4, _mm512_loadu_si512((const void *)(p + 192)));
        p += 256;
        len -= 256;
    }
    z0 = fold512(z0, k1, z1);
    z0 = fold512(z0, k1, z2);
    z0 = fold512(z0, k1, z3);
    __m128i x = _mm512_extracti32x4_epi32(z0, 3);
    x = _mm_xor_si128(x, fold128(_mm512_extracti32x4_epi32(z0, 0), k_384));
    x = _mm_xor_si128(x, fold128(_mm512_extracti32x4_epi32(z0, 1), k_256));
    x = _mm_xor_si128(x, fold128(_mm512_extracti32x4_epi32(z0, 2), k_128));
    /* The folded 128 bits have the CRC residue of everything so far. */
    uint64_t r = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));
    r = _mm_crc32_u64(r, (uint64_t)_mm_extract_epi64(x, 1));
    return crc_hw(~(uint32_t)r, p, len);
}
#endif

static int detect_hw(void) {
#if SK_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
#elif SK_ARM
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 2 : 0;
#else
    return 0;
#endif
}

/* ---- GF(2^8) ------------------------------------------------------------------------ */

static void gf_init(void) {
    unsigned x = 1;
    for (int i = 0; i < 255; i++) {
        gf_exp[i] = (uint8_t)x;
        gf_log[x] = (uint8_t)i;
        x <<= 1;
        if (x & 0x100) x ^= 0x11d;
    }
    for (int i = 255; i < 512; i++) gf_exp[i] = gf_exp[i - 255];
    gf_log[0] = 0; /* never used: zero has no logarithm */
}

static inline uint8_t gf_mul(uint8_t a, uint8_t b) {
    return (a && b) ? gf_exp[gf_log[a] + gf_log[b]] : 0;
}

static inline uint8_t gf_inv(uint8_t a) { return gf_exp[255 - gf_log[a]]; }

static inline uint8_t gf_pow2(int i) { return gf_exp[((i % 255) + 255) % 255]; }

/* Eight bytes times g (=2) at once. */
static inline uint64_t mul2_x8(uint64_t v) {
    uint64_t hi = v & 0x8080808080808080ull;
    uint64_t mask = (hi << 1) - (hi >> 7); /* 0xff in each byte whose top bit was set */
    return ((v << 1) & 0xfefefefefefefefeull) ^ (mask & 0x1d1d1d1d1d1d1d1dull);
}

/* ---- public ------------------------------------------------------------------------- */

void sk_init(void) {
    if (hw_kind >= 0) return;
    sw_init();
    zeros_tables(zeros_long, LONG_BYTES);
    zeros_tables(zeros_short, SHORT_BYTES);
    gf_init();
    hw_kind = detect_hw();
#if SK_X86
    if (hw_kind == 1 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul")) {
        fold_pair(k_2048, 2048);
        fold_pair(k_512, 512);
        fold_pair(k_384, 384);
        fold_pair(k_256, 256);
        fold_pair(k_128, 128);
        have_fold = 1;
    }
#endif
}

int sk_crc32c_fold_available(void) { return have_fold; }

int sk_crc32c_hw_kind(void) { return hw_kind; }

uint32_t sk_crc32c(uint32_t crc, const uint8_t *buf, size_t len, int hw) {
#if SK_X86
    if (hw && have_fold && hw != 2 && len >= FOLD_MIN_BYTES) return crc_fold(crc, buf, len);
#endif
#if SK_X86 || SK_ARM
    if (hw && hw_kind > 0) return crc_hw(crc, buf, len);
#endif
    (void)hw;
    return crc_sw(crc, buf, len);
}

static inline size_t block_len(size_t len, size_t block, size_t index) {
    size_t off = index * block;
    if (off >= len) return 0;
    return len - off < block ? len - off : block;
}

void sk_crc_blocks(const uint8_t *buf, size_t len, size_t block, size_t first, size_t count,
                   uint32_t *out, int hw) {
    for (size_t i = 0; i < count; i++) {
        size_t b = first + i;
        out[i] = sk_crc32c(0, buf + b * block, block_len(len, block, b), hw);
    }
}

size_t sk_verify_blocks(const uint8_t *buf, size_t len, size_t block, size_t first,
                        size_t count, const uint32_t *table, uint32_t *bad, int hw) {
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        size_t b = first + i;
        if (sk_crc32c(0, buf + b * block, block_len(len, block, b), hw) != table[b])
            bad[n++] = (uint32_t)b;
    }
    return n;
}

/* One Horner step over a whole block: q = q*g ^ d, p ^= d, branch-free so that it
 * vectorises (byte buffers of any alignment: loads and stores through memcpy). */
#if SK_X86
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void pq_step(uint8_t *p, uint8_t *q, const uint8_t *d, size_t words) {
    for (size_t w = 0; w < words; w++) {
        uint64_t qw, pw, dw;
        memcpy(&qw, q + 8 * w, 8);
        memcpy(&pw, p + 8 * w, 8);
        memcpy(&dw, d + 8 * w, 8);
        qw = mul2_x8(qw) ^ dw;
        pw ^= dw;
        memcpy(q + 8 * w, &qw, 8);
        memcpy(p + 8 * w, &pw, 8);
    }
}

/* P and Q of the stripe with data blocks at stripe-relative indices x and y left out
 * (-1: none). Horner's rule from the highest index: q = q*g ^ D_i. With crcs, each data
 * block's CRC32C too, taken while the block is in cache from its step; with copy_to,
 * each block is first copied there (the same offset in a region of len bytes), so that
 * the copy and the encode read it once. */
static void pq_partial(const uint8_t *buf, size_t len, size_t block, size_t k, size_t stripe,
                       int x, int y, uint8_t *p, uint8_t *q, uint32_t *crcs, int hw,
                       uint8_t *copy_to) {
    size_t words = block / 8;
    memset(p, 0, block);
    memset(q, 0, block);
    size_t first = stripe * k;
    /* Horner from the last block the stripe has: beyond it Q would stay zero. */
    size_t blocks = (len + block - 1) / block, have = first < blocks ? blocks - first : 0;
    for (int i = (int)(have < k ? have : k) - 1; i >= 0; i--) {
        size_t n = block_len(len, block, first + (size_t)i);
        int skip = (i == x || i == y || n == 0);
        const uint8_t *d = buf + (first + (size_t)i) * block;
        if (copy_to) memcpy(copy_to + (first + (size_t)i) * block, d, n);
        if (crcs) crcs[i] = sk_crc32c(0, d, n, hw);
        if (!skip && n == block && block % 8 == 0) {  /* the usual block: the fast step */
            pq_step(p, q, d, words);
            continue;
        }
        size_t full = skip ? 0 : n / 8;
        for (size_t w = 0; w < words; w++) {
            uint64_t qw, pw, dw = 0;
            memcpy(&qw, q + 8 * w, 8);
            qw = mul2_x8(qw);
            if (w < full) {
                dw = load64(d + 8 * w);
            } else if (!skip && 8 * w < n) {
                memcpy(&dw, d + 8 * w, n - 8 * w); /* the short last block's tail */
            }
            if (dw) {
                memcpy(&pw, p + 8 * w, 8);
                pw ^= dw;
                memcpy(p + 8 * w, &pw, 8);
                qw ^= dw;
            }
            memcpy(q + 8 * w, &qw, 8);
        }
    }
}

void sk_pq_encode(const uint8_t *buf, size_t len, size_t block, size_t k, size_t stripe,
                  uint8_t *p, uint8_t *q) {
    pq_partial(buf, len, block, k, stripe, -1, -1, p, q, NULL, 0, NULL);
}

void sk_pq_encode_crc(const uint8_t *buf, size_t len, size_t block, size_t k, size_t stripe,
                      uint8_t *p, uint8_t *q, uint32_t *crcs, int hw) {
    pq_partial(buf, len, block, k, stripe, -1, -1, p, q, crcs, hw, NULL);
}

void sk_pq_copy_encode_crc(uint8_t *dst, const uint8_t *src, size_t len, size_t block,
                           size_t k, size_t stripe, uint8_t *p, uint8_t *q, uint32_t *crcs,
                           int hw) {
    pq_partial(src, len, block, k, stripe, -1, -1, p, q, crcs, hw, dst);
}

/* One word (len <= 8 bytes, zero-padded) of the change: P ^= D, Q ^= g^index D; only
 * its own len bytes of P and Q are read and written. */
static inline void pq_update_word(uint8_t *p, uint8_t *q, const uint8_t *before,
                                  const uint8_t *after, size_t len, size_t index) {
    uint64_t b = 0, a = 0, pw = 0, qw = 0;
    memcpy(&b, before, len);
    memcpy(&a, after, len);
    uint64_t d = a ^ b;
    if (!d) return;
    memcpy(&pw, p, len);
    pw ^= d;
    memcpy(p, &pw, len);
    for (size_t i = 0; i < index; i++) d = mul2_x8(d);
    memcpy(&qw, q, len);
    qw ^= d;
    memcpy(q, &qw, len);
}

void sk_pq_update(uint8_t *p, uint8_t *q, const uint8_t *before, const uint8_t *after,
                  size_t n, size_t index) {
    size_t off = 0;
    for (; off + 8 <= n; off += 8)
        pq_update_word(p + off, q + off, before + off, after + off, 8, index);
    if (off < n)  /* a tail shorter than a word: the range may end anywhere */
        pq_update_word(p + off, q + off, before + off, after + off, n - off, index);
}

int sk_region_write(uint8_t *buf, size_t len, size_t block, size_t k, size_t offset,
                    const uint8_t *src, size_t n, uint32_t *crcs, uint8_t *parity,
                    uint32_t *parity_crcs, int mode) {
    if (!n || offset + n > len || offset / block != (offset + n - 1) / block) return -1;
    size_t b = offset / block, stripe = b / k, start = b * block;
    size_t blen = block_len(len, block, b);
    uint8_t *p = parity + 2 * stripe * block, *q = p + block;
    if (mode & SK_WRITE_CHECK) {
        if (sk_crc32c(0, buf + start, blen, 1) != crcs[b]) return 1;
        if (sk_crc32c(0, p, block, 1) != parity_crcs[2 * stripe]
            || sk_crc32c(0, q, block, 1) != parity_crcs[2 * stripe + 1]) return 2;
    }
    if (!(mode & SK_WRITE_COMMIT)) return 0;
    /* GF(2^8) acts on each byte alone, so the change of any byte range updates P and Q
     * at the same offsets. */
    size_t at = offset - start;
    sk_pq_update(p + at, q + at, buf + offset, src, n, b % k);
    memcpy(buf + offset, src, n);
    crcs[b] = sk_crc32c(0, buf + start, blen, 1);
    parity_crcs[2 * stripe] = sk_crc32c(0, p, block, 1);
    parity_crcs[2 * stripe + 1] = sk_crc32c(0, q, block, 1);
    return 0;
}

int sk_pq_rebuild(const uint8_t *buf, size_t len, size_t block, size_t k, size_t stripe,
                  const uint8_t *p, const uint8_t *q, int x, int y, uint8_t *outx,
                  uint8_t *outy) {
    if (x < 0 || x >= (int)k || y >= (int)k || x == y || !outx || !outy) return -1;
    if (y >= 0 && (!p || !q)) return -1;
    if (y < 0 && !p && !q) return -1;
    /* The survivors' P and Q, into outx and outy (outy is scratch for a single loss). */
    pq_partial(buf, len, block, k, stripe, x, y, outx, outy, NULL, 0, NULL);
    if (y < 0) {
        if (p) { /* D_x = P ^ P(survivors) */
            for (size_t i = 0; i < block; i++) outx[i] ^= p[i];
        } else { /* D_x = (Q ^ Q(survivors)) * g^-x */
            uint8_t t[256];
            uint8_t c = gf_inv(gf_pow2(x));
            for (int b = 0; b < 256; b++) t[b] = gf_mul(c, (uint8_t)b);
            for (size_t i = 0; i < block; i++) outx[i] = t[outy[i] ^ q[i]];
        }
        return 0;
    }
    /* Two lost: Pd = D_x ^ D_y and Qd = g^x D_x ^ g^y D_y, so
     * D_x = (Qd ^ g^y Pd) / (g^x ^ g^y) and D_y = Pd ^ D_x. */
    uint8_t gy = gf_pow2(y);
    uint8_t inv = gf_inv(gf_pow2(x) ^ gy);
    uint8_t tq[256], tp[256];
    for (int b = 0; b < 256; b++) {
        tq[b] = gf_mul(inv, (uint8_t)b);
        tp[b] = gf_mul(gf_mul(gy, inv), (uint8_t)b);
    }
    for (size_t i = 0; i < block; i++) {
        uint8_t pd = outx[i] ^ p[i];
        uint8_t qd = outy[i] ^ q[i];
        uint8_t dx = tq[qd] ^ tp[pd];
        outx[i] = dx;
        outy[i] = pd ^ dx;
    }
    return 0;
}

/* ---- ABFT scan ---------------------------------------------------------------------- */

/* Elementwise work only (no floating-point reduction the compiler must keep in order),
 * so it vectorises; target_clones builds AVX-512, AVX2 and baseline versions and picks
 * one at load time. (Row sums in lane accumulators here measured 4x slower than BLAS.) */
#if SK_X86
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
size_t sk_abft_scan(double *c, size_t rows, size_t cols, double *col_sum, double *col_wsum) {
    const double big = 4503599627370496.0; /* 2^52: adding it rounds away any fraction */
    size_t bad = 0, negative_zeros = 0;
    if (col_sum) {
        for (size_t j = 0; j < cols; j++) col_sum[j] = col_wsum[j] = 0.0;
    }
    for (size_t i = 0; i < rows; i++) {
        const double *r = c + i * cols;
        for (size_t j = 0; j < cols; j++) {
            double x = r[j], ax = __builtin_fabs(x);
            uint64_t bits;
            memcpy(&bits, &r[j], sizeof bits); /* -0.0 by its bit pattern: vectorises */
            bad += (size_t)((ax >= big) | ((ax + big) - big != ax));
            negative_zeros += (size_t)(bits == 0x8000000000000000ull);
        }
        if (col_sum) {
            const double wi = (double)(i + 1);
            for (size_t j = 0; j < cols; j++) {
                col_sum[j] += r[j];
                col_wsum[j] += wi * r[j];
            }
        }
    }
    /* Read-only in the common case; a -0.0 (a sign flipped on a zero) is rare enough
     * for a second pass. */
    if (negative_zeros) {
        for (size_t k = 0; k < rows * cols; k++) c[k] += 0.0;
    }
    return bad;
}

/* Sum and weighted sum (weights 1..n) of n float64 integers. Integer sums below 2^53
 * are exact in any order, so eight independent lanes may carry them: they vectorise,
 * where one accumulator would wait on each add. */
#define SK_DLANES 8
__attribute__((noinline, target_clones("avx512f", "avx2", "default")))
static void sums_lanes(const double *x, size_t n, double *sum, double *wsum) {
    /* sum_j (j + 1) x_j = sum over lanes l of (l + 1) s_l + u_l, where s_l sums the
     * lane's entries and u_l the same weighted by each block's first index j: one
     * broadcast factor a block, so both reductions vectorise in one loop. */
    double s[SK_DLANES] = {0}, u[SK_DLANES] = {0}, base = 0.0;
    size_t j = 0;
    for (; j + SK_DLANES <= n; j += SK_DLANES, base += (double)SK_DLANES)
        for (size_t l = 0; l < SK_DLANES; l++) {
            s[l] += x[j + l];
            u[l] += base * x[j + l];
        }
    double ts = 0.0, tw = 0.0;
    for (size_t l = 0; l < SK_DLANES; l++) {
        ts += s[l];
        tw += (double)(l + 1) * s[l] + u[l];
    }
    for (; j < n; j++) {
        ts += x[j];
        tw += (double)(j + 1) * x[j];
    }
    *sum = ts;
    *wsum = tw;
}

/* x . (the even entries of s2) and x . (the odd ones): a's row against b's sums. */
static inline void dot_pairs(const double *x, const double *s2, size_t n, double *d0,
                             double *d1) {
    double s[SK_DLANES] = {0}, w[SK_DLANES] = {0};
    size_t j = 0;
    for (; j + SK_DLANES <= n; j += SK_DLANES)
        for (size_t l = 0; l < SK_DLANES; l++) {
            s[l] += x[j + l] * s2[2 * (j + l)];
            w[l] += x[j + l] * s2[2 * (j + l) + 1];
        }
    double ts = 0.0, tw = 0.0;
    for (; j < n; j++) {
        ts += x[j] * s2[2 * j];
        tw += x[j] * s2[2 * j + 1];
    }
    for (size_t l = 0; l < SK_DLANES; l++) {
        ts += s[l];
        tw += w[l];
    }
    *d0 = ts;
    *d1 = tw;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
size_t sk_abft_product(const double *a, const double *b, const double *sums,
                       int sums_each, double *c, size_t batch, size_t rows, size_t k,
                       size_t cols, size_t *mismatched) {
    size_t bad = sk_abft_scan(c, batch * rows, cols, NULL, NULL), off = 0;
    double local[2 * 1024], *taken = local;
    if (!sums && k > 1024 && !(taken = malloc(2 * k * sizeof(double)))) {
        *mismatched = batch * rows;  /* no room to check: the product is not vouched for */
        return bad;
    }
    for (size_t h = 0; h < batch; h++) {
        const double *s2 = sums && sums_each ? sums + h * k * 2 : sums;
        if (!sums) {  /* b's sums as it is now: B e and B w, k x 2 */
            const double *bh = b + h * k * cols;
            for (size_t kk = 0; kk < k; kk++)
                sums_lanes(bh + kk * cols, cols, &taken[2 * kk], &taken[2 * kk + 1]);
            s2 = taken;
        }
        for (size_t i = 0; i < rows; i++) {
            double want, wantw, s, w;
            dot_pairs(a + (h * rows + i) * k, s2, k, &want, &wantw);
            sums_lanes(c + (h * rows + i) * cols, cols, &s, &w);
            off += (size_t)((s != want) | (w != wantw));
        }
    }
    if (taken != local) free(taken);
    *mismatched = off;
    return bad;
}

size_t sk_abft_appended(double *c, size_t rows, size_t cols, size_t *mismatched) {
    size_t bad = sk_abft_scan(c, rows, cols, NULL, NULL), off = 0;
    if (cols < 2) {
        *mismatched = rows;
        return bad;
    }
    for (size_t i = 0; i < rows; i++) {
        const double *r = c + i * cols;
        double s, w;
        sums_lanes(r, cols - 2, &s, &w);
        off += (size_t)((s != r[cols - 2]) | (w != r[cols - 1]));
    }
    *mismatched = off;
    return bad;
}

/* ---- float32 ABFT comparison --------------------------------------------------------- */

#define SK_LANES 16

/* The float32 sum of n values: sixteen independent lanes, so that it vectorises without
 * licence to reassociate (the error bound holds for every summation order). */
static inline float sum_lanes(const float *x, size_t n) {
    float v[SK_LANES] = {0};
    size_t k = 0;
    for (; k + SK_LANES <= n; k += SK_LANES)
        for (size_t l = 0; l < SK_LANES; l++) v[l] += x[k + l];
    float s = 0.0f;
    for (; k < n; k++) s += x[k];
    for (size_t l = 0; l < SK_LANES; l++) s += v[l];
    return s;
}

/* A block of 64, the usual one, in GCC's generic vectors (lowered to whatever the clone
 * targets): four 16-wide adds, then halves added down to one value. */
typedef float sk_v16 __attribute__((vector_size(64)));
typedef float sk_v8 __attribute__((vector_size(32)));
typedef float sk_v4 __attribute__((vector_size(16)));
typedef uint32_t sk_u16 __attribute__((vector_size(64)));

static inline float reduce_16(sk_v16 v) {
    sk_v8 lo8, hi8;
    memcpy(&lo8, &v, sizeof lo8);
    memcpy(&hi8, (const char *)&v + sizeof lo8, sizeof hi8);
    sk_v8 w = lo8 + hi8;
    sk_v4 lo4, hi4;
    memcpy(&lo4, &w, sizeof lo4);
    memcpy(&hi4, (const char *)&w + sizeof lo4, sizeof hi4);
    sk_v4 u = lo4 + hi4;
    return (u[0] + u[2]) + (u[1] + u[3]);
}

/* The sum of a block of 64 and the sum of its absolute values (the sign bits cleared),
 * in one read. */
static inline void sums_64(const float *x, float *sum, float *abs_sum) {
    sk_v16 a, b, c, d;
    memcpy(&a, x, sizeof a);
    memcpy(&b, x + 16, sizeof b);
    memcpy(&c, x + 32, sizeof c);
    memcpy(&d, x + 48, sizeof d);
    *sum = reduce_16((a + b) + (c + d));
    sk_u16 ua, ub, uc, ud;
    memcpy(&ua, &a, sizeof ua);
    memcpy(&ub, &b, sizeof ub);
    memcpy(&uc, &c, sizeof uc);
    memcpy(&ud, &d, sizeof ud);
    ua &= 0x7fffffffu;
    ub &= 0x7fffffffu;
    uc &= 0x7fffffffu;
    ud &= 0x7fffffffu;
    memcpy(&a, &ua, sizeof a);
    memcpy(&b, &ub, sizeof b);
    memcpy(&c, &uc, sizeof c);
    memcpy(&d, &ud, sizeof d);
    *abs_sum = reduce_16((a + b) + (c + d));
}

/* |x| summed the same way as sum_lanes. */
static inline float abs_sum_lanes(const float *x, size_t n) {
    float v[SK_LANES] = {0};
    size_t k = 0;
    for (; k + SK_LANES <= n; k += SK_LANES)
        for (size_t l = 0; l < SK_LANES; l++) v[l] += __builtin_fabsf(x[k + l]);
    float s = 0.0f;
    for (; k < n; k++) s += __builtin_fabsf(x[k]);
    for (size_t l = 0; l < SK_LANES; l++) s += v[l];
    return s;
}

#if SK_X86
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
size_t sk_float_block_check(const float *c, size_t rows, size_t cols, size_t block,
                            const float *sums, double fp, double fq) {
    const size_t nb = (cols + block - 1) / block;
    size_t bad = 0;
    for (size_t i = 0; i < rows; i++) {
        const float *r = c + i * cols;
        const float *t = sums + i * nb;
        for (size_t j = 0; j < nb; j++) {
            const size_t n = cols - j * block < block ? cols - j * block : block;
            float sf, qf;
            if (n == 64) {
                sums_64(r + j * block, &sf, &qf);
            } else {
                sf = sum_lanes(r + j * block, n);
                qf = abs_sum_lanes(r + j * block, n);
            }
            const double s = sf, q = qf, tj = t[j], at = __builtin_fabs(tj);
            const double low = fp * (at > q ? at : q) + fq * q;
            /* An infinite bound or a NaN anywhere fails: no comparison with NaN holds. */
            bad += (size_t)(!(__builtin_fabs(s - tj) <= low) | !(low < __builtin_inf()));
        }
    }
    return bad;
}

#if SK_X86
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void sk_float_block_sums(const float *b, size_t rows, size_t cols, size_t block, float *out) {
    const size_t nb = (cols + block - 1) / block;
    for (size_t i = 0; i < rows; i++) {
        const float *r = b + i * cols;
        float *o = out + i * nb;
        for (size_t j = 0; j < nb; j++) {
            const size_t n = cols - j * block < block ? cols - j * block : block;
            o[j] = sum_lanes(r + j * block, n);
        }
    }
}

/* Rows of X added into a k-long accumulator a block at a time: each add is a vector add
 * along k, so it vectorises as it stands. */
#if SK_X86
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void sk_float_block_sums_t(const float *x, size_t batches, size_t n, size_t k, size_t block,
                           float *out) {
    const size_t nb = (n + block - 1) / block;
    float acc[2048];
    for (size_t t = 0; t < batches; t++) {
        const float *xt = x + t * n * k;
        float *ot = out + t * k * nb;
        for (size_t c0 = 0; c0 < k; c0 += 2048) { /* k in strips that fit acc */
            const size_t w = k - c0 < 2048 ? k - c0 : 2048;
            for (size_t j = 0; j < nb; j++) {
                const size_t r1 = (j + 1) * block < n ? (j + 1) * block : n;
                for (size_t c = 0; c < w; c++) acc[c] = 0.0f;
                for (size_t r = j * block; r < r1; r++) {
                    const float *row = xt + r * k + c0;
                    for (size_t c = 0; c < w; c++) acc[c] += row[c];
                }
                for (size_t c = 0; c < w; c++) ot[(c0 + c) * nb + j] = acc[c];
            }
        }
    }
}

#define COPY_CHUNK 16384

uint32_t sk_copy_crc32c(uint8_t *dst, const uint8_t *src, size_t n) {
    uint32_t crc = 0;
    for (size_t off = 0; off < n; off += COPY_CHUNK) {
        size_t len = n - off < COPY_CHUNK ? n - off : COPY_CHUNK;
        memcpy(dst + off, src + off, len);
        crc = sk_crc32c(crc, dst + off, len, 1);
    }
    return crc;
}

/* The transformer's non-GEMM checks (shield.h). */

static inline void sum_and_squares(const float *x, size_t n, double *sum, double *squares) {
    float v[SK_LANES] = {0}, w[SK_LANES] = {0};
    size_t k = 0;
    for (; k + SK_LANES <= n; k += SK_LANES)
        for (size_t l = 0; l < SK_LANES; l++) {
            v[l] += x[k + l];
            w[l] += x[k + l] * x[k + l];
        }
    double s = 0.0, q = 0.0;
    for (; k < n; k++) {
        s += x[k];
        q += (double)x[k] * x[k];
    }
    for (size_t l = 0; l < SK_LANES; l++) {
        s += v[l];
        q += w[l];
    }
    *sum = s;
    *squares = q;
}

#if SK_X86
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
long sk_layernorm_check(const float *xhat, const float *mu, const float *rstd,
                        const float *var, size_t rows, size_t cols, float eps) {
    const double gamma = 4.0 * (double)cols * 0x1p-24;
    for (size_t r = 0; r < rows; r++) {
        double s, q;
        sum_and_squares(xhat + r * cols, cols, &s, &q);
        const double mean = s / (double)cols, square = q / (double)cols;
        const double e = (double)(var[r] / (var[r] + eps));
        const double mean_bound = gamma * (2.0 + __builtin_fabs((double)mu[r]) * rstd[r]);
        if (!(__builtin_fabs(mean) <= mean_bound)
            || !(__builtin_fabs(square - e) <= 2.0 * gamma * (1.0 + e)))
            return (long)r;
    }
    return -1;
}

#if SK_X86
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
long sk_softmax_check(const float *p, size_t rows, size_t cols, double tol) {
    for (size_t r = 0; r < rows; r++) {
        const float *x = p + r * cols;
        /* sum_lanes' sum, with each lane's least and largest entry beside it; a NaN
         * makes the sum NaN, which fails. */
        float v[SK_LANES] = {0}, lo[SK_LANES], hi[SK_LANES] = {0};
        for (size_t l = 0; l < SK_LANES; l++) lo[l] = 1.0f;
        size_t k = 0;
        for (; k + SK_LANES <= cols; k += SK_LANES)
            for (size_t l = 0; l < SK_LANES; l++) {
                const float a = x[k + l];
                v[l] += a;
                lo[l] = a < lo[l] ? a : lo[l];
                hi[l] = a > hi[l] ? a : hi[l];
            }
        float s = 0.0f, least = 1.0f, most = 0.0f;
        for (; k < cols; k++) {
            s += x[k];
            least = x[k] < least ? x[k] : least;
            most = x[k] > most ? x[k] : most;
        }
        for (size_t l = 0; l < SK_LANES; l++) {
            s += v[l];
            least = lo[l] < least ? lo[l] : least;
            most = hi[l] > most ? hi[l] : most;
        }
        if (!(least >= 0.0f && most <= 1.0f && __builtin_fabs((double)s - 1.0) <= tol))
            return (long)r;
    }
    return -1;
}

#if SK_X86
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
int sk_gelu_check(const float *x, const float *y, size_t n, float lo) {
    /* The largest input (0 at least) and the least and largest output, sixteen lanes at
     * a time; z adds x 0 and y 0, which is NaN once either met a NaN or an infinity. */
    float top[SK_LANES] = {0}, ylo[SK_LANES], yhi[SK_LANES] = {0}, z[SK_LANES] = {0};
    for (size_t l = 0; l < SK_LANES; l++) ylo[l] = lo;
    size_t k = 0;
    for (; k + SK_LANES <= n; k += SK_LANES)
        for (size_t l = 0; l < SK_LANES; l++) {
            const float a = x[k + l], b = y[k + l];
            top[l] = a > top[l] ? a : top[l];
            ylo[l] = b < ylo[l] ? b : ylo[l];
            yhi[l] = b > yhi[l] ? b : yhi[l];
            z[l] += a * 0.0f + b * 0.0f;
        }
    float t = 0.0f, least = lo, most = 0.0f, zero = 0.0f;
    for (; k < n; k++) {
        t = x[k] > t ? x[k] : t;
        least = y[k] < least ? y[k] : least;
        most = y[k] > most ? y[k] : most;
        zero += x[k] * 0.0f + y[k] * 0.0f;
    }
    for (size_t l = 0; l < SK_LANES; l++) {
        t = top[l] > t ? top[l] : t;
        least = ylo[l] < least ? ylo[l] : least;
        most = yhi[l] > most ? yhi[l] : most;
        zero += z[l];
    }
    return zero == 0.0f && least >= lo && most <= t;
}

/* Whether new values (w1, m1, v1) of one parameter are what an AdamW step can make of
 * (w, m, v, gs): see sk_adamw. Rounding moves each bound by a few ulps; the margins are
 * 2^-20 relative (16 ulps) and, for the parameter, 2^-22 of it. */
static inline int adamw_holds(float w, float m, float v, float gs, float mask, float w1,
                              float m1, float v1, const float *k) {
    const float up = 1.0f + 0x1p-20f, down = 1.0f - 0x1p-20f;
    const float aw = __builtin_fabsf(w);
    const float moved = __builtin_fabsf(w1 - w);
    const float most = k[9] + (k[8] * mask * aw) * up + 0x1p-22f * aw;
    const float m_most = (k[1] * __builtin_fabsf(m) + k[2] * __builtin_fabsf(gs)) * up;
    const float v_most = (k[3] * v + k[4] * (gs * gs)) * up, v_least = k[3] * v * down;
    /* x - x is 0 for a finite x and NaN otherwise; every comparison is false for NaN. */
    return (moved <= most) & (__builtin_fabsf(m1) <= m_most) & (v1 <= v_most)
        & (v1 >= v_least) & (v1 >= 0.0f) & ((w1 - w1) + (m1 - m1) + (v1 - v1) == 0.0f);
}

__attribute__((target_clones("avx512f", "avx2", "default")))
long sk_adamw(const float *restrict w, const float *restrict m, const float *restrict v,
              const float *restrict g, const float *restrict mask, size_t n,
              const float *restrict k, float *restrict nw, float *restrict nm,
              float *restrict nv, int check) {
    const float s = k[0], b1 = k[1], c1 = k[2], b2 = k[3], c2 = k[4], bc2 = k[5],
                eps = k[6], bc1 = k[7], lrwd = k[8];
    size_t failed = 0;
    /* One loop for each case, so that neither holds a branch and both vectorise. */
#define SK_ADAMW_ONE(i)                                                              \
    const float gs = g[i] * s;                                                       \
    const float m1 = m[i] * b1 + c1 * gs;                                            \
    const float v1 = v[i] * b2 + (gs * gs) * c2;                                     \
    const float den = __builtin_sqrtf(v1 * bc2) + eps;                               \
    const float w1 = w[i] - ((m1 * bc1) / den + (mask[i] * lrwd) * w[i]);            \
    nm[i] = m1;                                                                      \
    nv[i] = v1;                                                                      \
    nw[i] = w1;
    if (check) {
        for (size_t i = 0; i < n; i++) {
            SK_ADAMW_ONE(i)
            failed += (size_t)!adamw_holds(w[i], m[i], v[i], gs, mask[i], w1, m1, v1, k);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            SK_ADAMW_ONE(i)
        }
    }
#undef SK_ADAMW_ONE
    if (!failed) return -1;
    for (size_t i = 0; i < n; i++)
        if (!adamw_holds(w[i], m[i], v[i], g[i] * s, mask[i], nw[i], nm[i], nv[i], k))
            return (long)i;
    return -1;  /* not reached: the same arithmetic fails the same index */
}
