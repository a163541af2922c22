/* The shield kernel: CRC32C and RAID-6 (P+Q Reed-Solomon) parity over memory blocks.
 * Pure functions on caller-owned buffers; no allocation, no global state after sk_init. */
#ifndef SKYRACK_SHIELD_H
#define SKYRACK_SHIELD_H

#include <stddef.h>
#include <stdint.h>

void sk_init(void);

/* 0: none, 1: x86-64 SSE4.2 crc32, 2: ARMv8 CRC32C. */
int sk_crc32c_hw_kind(void);

/* 1 when long buffers are folded with AVX-512 VPCLMULQDQ on the hardware path. */
int sk_crc32c_fold_available(void);

/* CRC32C (Castagnoli) of buf continuing from crc (0 to start). hw: 0 the portable table
 * path; 1 the fastest the CPU offers; 2 the crc32 instruction alone, without folding. */
uint32_t sk_crc32c(uint32_t crc, const uint8_t *buf, size_t len, int hw);

/* CRC32C of blocks [first, first+count) of a buffer of len bytes cut into block-byte
 * blocks (the last may be short). */
void sk_crc_blocks(const uint8_t *buf, size_t len, size_t block, size_t first, size_t count,
                   uint32_t *out, int hw);

/* Indices of blocks in [first, first+count) whose CRC differs from table[index]; returns
 * how many were written to bad (capacity count). */
size_t sk_verify_blocks(const uint8_t *buf, size_t len, size_t block, size_t first,
                        size_t count, const uint32_t *table, uint32_t *bad, int hw);

/* P (xor) and Q (sum of g^i * D_i in GF(2^8), poly 0x11D) of stripe `stripe`: data blocks
 * stripe*k .. stripe*k+k-1 that exist, shorter blocks zero-padded. p and q hold block bytes. */
void sk_pq_encode(const uint8_t *buf, size_t len, size_t block, size_t k, size_t stripe,
                  uint8_t *p, uint8_t *q);

/* sk_pq_encode and the CRC32C of each of the stripe's data blocks (into crcs, one per
 * block the stripe has), in one read of the data. */
void sk_pq_encode_crc(const uint8_t *buf, size_t len, size_t block, size_t k, size_t stripe,
                      uint8_t *p, uint8_t *q, uint32_t *crcs, int hw);

/* sk_pq_encode_crc of the stripe's blocks as they are copied from src into dst (both
 * regions of len bytes): each block read once, for the copy, its CRC and the parity. */
void sk_pq_copy_encode_crc(uint8_t *dst, const uint8_t *src, size_t len, size_t block,
                           size_t k, size_t stripe, uint8_t *p, uint8_t *q, uint32_t *crcs,
                           int hw);

/* Write n bytes of src at `offset` of a region (buf, len bytes; blocks of `block`
 * bytes, k to a stripe) and commit them, when they lie within one block: that block's
 * CRC and its stripe's P and Q parity CRCs are checked first, P and Q are brought up to
 * date by the change of those bytes alone, and the block's and the parity's CRCs are
 * taken anew. crcs holds a CRC per block; parity the stripes' P and Q (stripes x 2 x
 * block), parity_crcs their CRCs (stripes x 2). Returns 0 when written; 1 when the block
 * was hit since its commit, 2 when a parity block of its stripe was (nothing written
 * either way); -1 for a range that is empty, outside the region or across blocks.
 * mode: SK_WRITE_CHECK and/or SK_WRITE_COMMIT (the checks alone, src not read; the
 * write alone, for a range whose checks just passed; or both). */
#define SK_WRITE_CHECK 1
#define SK_WRITE_COMMIT 2
int sk_region_write(uint8_t *buf, size_t len, size_t block, size_t k, size_t offset,
                    const uint8_t *src, size_t n, uint32_t *crcs, uint8_t *parity,
                    uint32_t *parity_crcs, int mode);

/* Rebuild lost data blocks x (and y, or -1) of a stripe into outx (and outy) from the
 * surviving blocks and whichever parity is usable (p or q NULL when not). Stripe-relative
 * indices; outx and outy both hold block bytes (outy is scratch for a single loss).
 * Returns 0, or -1 when the loss is beyond what the usable parity can rebuild. */
int sk_pq_rebuild(const uint8_t *buf, size_t len, size_t block, size_t k, size_t stripe,
                  const uint8_t *p, const uint8_t *q, int x, int y, uint8_t *outx,
                  uint8_t *outy);

/* Bring P and Q of a stripe up to date after block `index` (stripe-relative) changed
 * from `before` to `after` (n bytes, the block's length): P ^= D, Q ^= g^index D with
 * D = before ^ after. Only the changed block is read, not the rest of the stripe; any
 * byte range of a block updates the same range of P and Q (GF(2^8) acts bytewise). */
void sk_pq_update(uint8_t *p, uint8_t *q, const uint8_t *before, const uint8_t *after,
                  size_t n, size_t index);

/* One pass over a row-major rows x cols matrix of integer-valued doubles (the ABFT scan).
 * Turns -0.0 into 0.0 in place and returns how many entries are not integers below 2^52
 * in magnitude (NaN included); when col_sum is not NULL, also fills column sums and
 * column sums weighted 1..rows (exact for integers while they stay below 2^53). Row sums
 * are a reduction and go faster through BLAS. */
size_t sk_abft_scan(double *c, size_t rows, size_t cols, double *col_sum, double *col_wsum);

/* The float32 ABFT comparison, one pass over C (rows x cols, row-major float32). For row
 * i and block j of `block` columns: s = the float32 sum of the block and q = that of its
 * absolute values (lanes, any order: the bound covers every order); t = sums[i][j]
 * (rows x nb, nb the number of blocks: A fl(B e_b)); the block passes when
 * |s - t| <= fp * max(|t|, q) + fq * q, in double and finite. Returns the number of
 * blocks that fail (NaN fails). */
size_t sk_float_block_check(const float *c, size_t rows, size_t cols, size_t block,
                            const float *sums, double fp, double fq);

/* Block sums of a float32 right operand B for that check: for row i of B (rows x cols,
 * row-major) and block j of `block` columns, out[i][j] = the float32 sum of the block
 * (out is rows x nb). */
void sk_float_block_sums(const float *b, size_t rows, size_t cols, size_t block, float *out);

/* The same of B = X^T for each of `batches` row-major n x k matrices X (B is k x n):
 * sums over blocks of `block` rows of X, into out (batches x k x nb, nb from n). */
void sk_float_block_sums_t(const float *x, size_t batches, size_t n, size_t k, size_t block,
                           float *out);

/* The row checksums of a small product c = a b in one call, with sk_abft_scan of c:
 * a is batch x rows x k, c batch x rows x cols (row-major float64 integers); b's row
 * sums B e and B w (w = 1..cols) come from `sums` (k x 2, taken when b was committed:
 * the same for every member of the batch, or with sums_each one k x 2 for each; b is
 * then not read) or, with sums NULL, from b (batch x k x cols) as it is now. For each
 * row of c, its sum and its weighted sum against a's row times those (all exact for
 * integers while they stay below 2^53); -0.0 made 0.0. Returns the entries of c that
 * are not integers below 2^52; *mismatched gets the rows whose sums differ. For
 * products small enough that the BLAS and numpy calls of a separate check cost more
 * than its arithmetic. */
size_t sk_abft_product(const double *a, const double *b, const double *sums,
                       int sums_each, double *c, size_t batch, size_t rows, size_t k,
                       size_t cols, size_t *mismatched);

/* The check of a product by a right operand that carries its own row checksums,
 * B' = [B | B e | B w] (w = 1..m): each row of c = a B' (rows x cols, the last two
 * columns those the GEMM made from the checksums) sums, plain and weighted, to its last
 * two entries; with sk_abft_scan of all of c. Returns the entries that are not integers
 * below 2^52; *mismatched gets the rows whose sums differ. */
size_t sk_abft_appended(double *c, size_t rows, size_t cols, size_t *mismatched);

/* The transformer's non-GEMM checks (flight.compute.transformer), each one pass over
 * float32 rows (row-major) in one call, sums in 16 float lanes, comparisons in double;
 * a NaN anywhere fails. Each returns the first row that fails, or -1. */

/* Layer norm: row r of xhat (rows x cols) has mean 0 and mean square e = var/(var+eps)
 * (e in float32, as computed) within gamma = 4 cols 2^-24:
 * |mean| <= gamma (2 + |mu| rstd) and |square - e| <= 2 gamma (1 + e). */
long sk_layernorm_check(const float *xhat, const float *mu, const float *rstd,
                        const float *var, size_t rows, size_t cols, float eps);

/* Softmax: each row of p sums to 1 within tol and every entry is in [0, 1]. */
long sk_softmax_check(const float *p, size_t rows, size_t cols, double tol);

/* GELU's range over n values: every y >= lo and y <= max(max x, 0), and every x and y
 * finite. Returns 1 when it holds, 0 when it does not (not a row: GELU is elementwise). */
int sk_gelu_check(const float *x, const float *y, size_t n, float lo);

/* One AdamW step over n float32 parameters: the formula that adamw's docstring
 * (flight/compute/transformer.py) states, one operation at a time in its order, each
 * rounded to float32 (no contraction into FMAs: ISO C), so the result is numpy's
 * float32 arithmetic of the same formula bit for bit (tests hold it to that). k holds
 * the step's constants: clip scale, beta1, 1 - beta1, beta2, 1 - beta2,
 * 1 / (1 - beta2^t), eps, lr / (1 - beta1^t), lr wd, and for the check: the most Adam's
 * step can move a parameter (lr K(t), margin included). With check, every new value is
 * held in the same pass to what the step can make of its inputs: parameters finite and
 * moved by at most that plus their decay, each moment within its recurrence's bounds.
 * No two of the vectors may overlap. Returns the first index that fails, or -1 (always
 * -1 without check). */
long sk_adamw(const float *restrict w, const float *restrict m, const float *restrict v,
              const float *restrict g, const float *restrict mask, size_t n,
              const float *restrict k, float *restrict nw, float *restrict nm,
              float *restrict nv, int check);

/* Copy n bytes from src to dst and return the CRC32C of what was written, in one pass
 * (each chunk is checksummed while it is still in cache). */
uint32_t sk_copy_crc32c(uint8_t *dst, const uint8_t *src, size_t n);

#endif
