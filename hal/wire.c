#include "wire.h"

#include <string.h>

/* crc_table[k][b]: the CRC register's change from byte b followed by k zero bytes, so
 * that eight bytes go in one step of eight independent lookups (slicing-by-8) instead
 * of eight dependent ones: the table walk's latency, not its work, bounds a byte loop. */
static uint16_t crc_table[8][256];
static int crc_ready;

static void crc_init(void) {
    for (int b = 0; b < 256; b++) {
        uint16_t r = (uint16_t)(b << 8);
        for (int k = 0; k < 8; k++)
            r = (uint16_t)((r & 0x8000) ? (r << 1) ^ 0x1021 : r << 1);
        crc_table[0][b] = r;
    }
    for (int k = 1; k < 8; k++)
        for (int b = 0; b < 256; b++) {
            uint16_t r = crc_table[k - 1][b];
            crc_table[k][b] = (uint16_t)((r << 8) ^ crc_table[0][r >> 8]);
        }
    crc_ready = 1;  /* two threads racing here write the same tables */
}

uint16_t sk_crc16(const uint8_t *data, size_t n, uint16_t crc) {
    if (!crc_ready)
        crc_init();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint8_t *d = data + i;
        crc = (uint16_t)(crc_table[7][d[0] ^ (crc >> 8)] ^ crc_table[6][d[1] ^ (crc & 0xFF)]
                         ^ crc_table[5][d[2]] ^ crc_table[4][d[3]] ^ crc_table[3][d[4]]
                         ^ crc_table[2][d[5]] ^ crc_table[1][d[6]] ^ crc_table[0][d[7]]);
    }
    for (; i < n; i++)
        crc = (uint16_t)((crc << 8) ^ crc_table[0][(uint8_t)((crc >> 8) ^ data[i])]);
    return crc;
}

/* The encoder over two pieces (payload, then trailer) without joining them. */
static size_t cobs_encode2(const uint8_t *a, size_t na, const uint8_t *b, size_t nb,
                           uint8_t *out) {
    size_t n = na + nb, code_at = 0, o = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t byte = i < na ? a[i] : b[i - na];
        if (byte == 0) {
            out[code_at] = code;
            code_at = o++;
            code = 1;
            continue;
        }
        out[o++] = byte;
        if (++code == 0xFF) {
            out[code_at] = code;
            if (i + 1 == n)
                return o;  /* canonical: no empty group after a final 0xFF block */
            code_at = o++;
            code = 1;
        }
    }
    out[code_at] = code;
    return o;
}

size_t sk_cobs_encode(const uint8_t *data, size_t n, uint8_t *out) {
    return cobs_encode2(data, n, NULL, 0, out);
}

size_t sk_frame_encode(const uint8_t *payload, size_t n, int crc, uint8_t *out) {
    uint8_t trailer[2];
    size_t nt = 0;
    if (crc) {
        uint16_t c = sk_crc16(payload, n, 0xFFFF);
        trailer[0] = (uint8_t)(c >> 8);
        trailer[1] = (uint8_t)c;
        nt = 2;
    }
    out[0] = 0;
    size_t len = cobs_encode2(payload, n, trailer, nt, out + 1);
    out[1 + len] = 0;
    return len + 2;
}

long sk_cobs_decode(const uint8_t *block, size_t n, uint8_t *out, size_t *at) {
    const uint8_t *zero = memchr(block, 0, n);
    if (zero != NULL) {  /* no code and no data byte of a block is ever zero */
        *at = (size_t)(zero - block);
        return -1;
    }
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t code = block[i];
        if (i + code > n) {
            *at = i;
            return -2;
        }
        memcpy(out + o, block + i + 1, code - 1u);
        o += code - 1u;
        i += code;
        if (i < n && code != 0xFF)
            out[o++] = 0;
    }
    return (long)o;
}

long sk_frame_decode(const uint8_t *block, size_t n, int crc, size_t max_payload,
                     uint8_t *out, size_t *at) {
    long m = sk_cobs_decode(block, n, out, at);
    if (m < 0)
        return m;
    size_t payload = (size_t)m;
    if (crc) {
        if (payload < 2) {
            *at = payload;
            return -3;
        }
        payload -= 2;
    }
    if (payload > max_payload) {
        *at = payload;
        return -5;
    }
    if (crc) {
        uint16_t sent = (uint16_t)(out[payload] << 8 | out[payload + 1]);
        uint16_t computed = sk_crc16(out, payload, 0xFFFF);
        if (sent != computed) {
            *at = (size_t)sent << 16 | computed;
            return -4;
        }
    }
    return (long)payload;
}
