/* data.h - a byte-level text corpus for training and evaluating Oryx-family models (tokens are bytes, V = 256).
 *
 * The corpus is split once: the first n - floor(n / 10) bytes are the training part, the last floor(n / 10)
 * bytes (10%) the validation part.
 *   training windows    T + 1 consecutive bytes starting at a uniform position in [0, n_train - T - 1], drawn
 *                       from a caller-held seeded ox_rng (so the sampler's whole state is that RNG's state)
 *   validation windows  consecutive non-overlapping windows of T + 1 bytes from the start of the validation
 *                       part; the last, shorter window (at least 2 bytes) is scored too
 * A window of n bytes is a row of n tokens: inputs are tokens 0..n-2, targets tokens 1..n-1.
 *
 * Ownership: ox_oryx_data owns a heap copy of the bytes (free with ox_oryx_data_free).
 *
 *   ox_oryx_data d;
 *   if (ox_oryx_data_load(ctx, "data/tinyshakespeare.txt", 256, &d)) puts(ox_ctx_message(ctx));
 *   ox_rng rng = ox_rng_seed(1);
 *   ox_oryx_data_sample(ctx, &d, &rng, rows);     // rows: I32 [B, T + 1], any storage
 *   ox_oryx_data_free(&d);
 */
#ifndef OX_ORYX_DATA_H
#define OX_ORYX_DATA_H

#include <stdint.h>

#include "tensor/rng.h"

typedef struct ox_oryx_data {
    uint8_t *bytes;     /* owned: the whole corpus */
    int64_t n;          /* corpus length in bytes */
    int64_t n_train;    /* bytes [0, n_train) are the training part */
    int64_t n_val;      /* bytes [n_train, n) are the validation part; n_val = floor(n / 10) */
    uint64_t hash;      /* FNV-1a 64 of the bytes: checkpoints record it to refuse a different corpus */
} ox_oryx_data;

/* Reads the file at path. Errors (the data is left empty): OX_ERR_IO for a missing or unreadable file,
 * OX_ERR_ARG for an empty file or one whose parts are too short for a window of T + 1 bytes (the training
 * part must hold at least T + 1 bytes and the validation part at least 2). T >= 1. */
ox_status ox_oryx_data_load(ox_ctx *ctx, const char *path, int64_t T, ox_oryx_data *d);
/* The same from a caller's buffer (copied). */
ox_status ox_oryx_data_from_bytes(ox_ctx *ctx, const uint8_t *bytes, int64_t n, int64_t T, ox_oryx_data *d);
/* NULL-safe, idempotent. */
void ox_oryx_data_free(ox_oryx_data *d);

/* Fills rows (I32 [B, T + 1], T + 1 <= n_train) with B training windows, row b from start position
 * ox_rng_below(rng, n_train - T) drawn in order b = 0 .. B-1 (one draw per row). */
ox_status ox_oryx_data_sample(ox_ctx *ctx, const ox_oryx_data *d, ox_rng *rng, ox_tensor *rows);

/* FNV-1a 64 of n bytes. */
uint64_t ox_oryx_data_hash(const uint8_t *bytes, int64_t n);

#endif
