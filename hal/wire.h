/* The byte-stream framing of hal.framing in C: COBS (Cheshire & Baker, 1999) and
 * CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor).
 * hal/cobs.py and hal/framing.py are the interface; this is their inner loop. */
#include <stddef.h>
#include <stdint.h>

/* CRC-16/CCITT-FALSE of n bytes, continuing from crc (0xFFFF to start). */
uint16_t sk_crc16(const uint8_t *data, size_t n, uint16_t crc);

/* COBS-encode n bytes into out (room for n + n / 254 + 1 bytes); the encoded length.
 * Canonical: no empty group after a final 0xFF block. */
size_t sk_cobs_encode(const uint8_t *data, size_t n, uint8_t *out);

/* A whole frame: 0x00 + COBS(payload [+ its CRC-16, big-endian, when crc]) + 0x00, into
 * out (room for n + 2 + (n + 2) / 254 + 3 bytes); the frame's length. */
size_t sk_frame_encode(const uint8_t *payload, size_t n, int crc, uint8_t *out);

/* Decode one COBS block (no delimiters) of n bytes into out (room for n bytes).
 * Returns the decoded length, or
 *   -1: a zero byte inside the block, at offset *at;
 *   -2: the code at offset *at points past the block's end. */
long sk_cobs_decode(const uint8_t *block, size_t n, uint8_t *out, size_t *at);

/* One frame's payload: decode the COBS block (no delimiters) of n bytes into out (room
 * for n bytes), take off and check its CRC-16 when crc. Returns the payload's length, or
 *   -1, -2: as sk_cobs_decode (*at the offset);
 *   -3: too short to hold its CRC (*at its decoded length);
 *   -4: the CRC does not match (*at = sent << 16 | computed);
 *   -5: the payload is longer than max_payload (*at its length). */
long sk_frame_decode(const uint8_t *block, size_t n, int crc, size_t max_payload,
                     uint8_t *out, size_t *at);
