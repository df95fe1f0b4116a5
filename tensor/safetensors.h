/* safetensors.h - reading and writing named tensors in the safetensors format (MODELS.md section 12.1).
 *
 * File layout: 8 bytes N (u64 little-endian), N bytes of UTF-8 JSON header (an object, first byte '{',
 * padded with spaces), then the data buffer (little-endian, row-major). Each header entry is
 *     "name": {"dtype": "F32", "shape": [d0, ...], "data_offsets": [begin, end]}
 * with byte offsets relative to the data buffer; "__metadata__" is an optional object of strings.
 *
 * Three entry points:
 *  - ox_safetensors_write: F32 and I32 tensors of any strides (their logical row-major contents), sorted
 *    by name, written atomically (temp file "path.tmp.<pid>", fflush + fsync, rename over path).
 *  - ox_safetensors_read_strict: checkpoints. The caller names every tensor the file must hold and gives
 *    the tensor (of the expected shape) that receives it; the whole header is validated before any data
 *    is read, and every kind of malformed or mismatching file has its own OX_ERR_FORMAT message.
 *  - ox_safetensors_load: test vectors. Loads every tensor of the file (F32 or I32, any names) into an
 *    owned ox_st_file with lookup by name; the header is validated the same way, except that no fixed
 *    tensor set or dtype F32-only rule is imposed.
 *
 * Errors: every function records OX_ERR_IO (open/read/write/rename failed), OX_ERR_FORMAT (malformed or
 * mismatching file), OX_ERR_ARG (bad caller input) or OX_ERR_NOMEM in ctx, with a message that starts
 * with the file name, and returns the status (or NULL). Sticky: nothing is done if ctx->status is set.
 * Memory: the functions use ox_malloc for transient buffers (freed before they return) and for the owned
 * results documented below; they never use the context arena. The host must be little-endian.
 *
 *   ox_st_entry ents[] = { { "embed.weight", E }, { "norm_f.weight", w } };      // E, w: [V, D], [D]
 *   ox_st_kv meta[] = { { "format_version", "1" }, { "arch", "oryx" } };
 *   ox_safetensors_write(ctx, "model.safetensors", ents, 2, meta, 2);
 *   ox_st_meta *m = NULL;                                    // later: fill E and w back from the file
 *   if (ox_safetensors_read_strict(ctx, "model.safetensors", ents, 2, &m) == OX_OK)
 *       printf("arch %s\n", ox_st_meta_get(m, "arch"));
 *   ox_st_meta_free(m);
 *   ox_st_file *f = ox_safetensors_load(ctx, "tests/data/golden/mixer_gdn.safetensors");
 *   ox_tensor *x = ox_st_file_get(f, "x");                   // [B, T, D], owned by f
 *   ox_st_file_free(f);
 */
#ifndef OX_SAFETENSORS_H
#define OX_SAFETENSORS_H

#include <stdint.h>

#include "tensor/tensor.h"

/* Largest header length N a reader accepts (the reference reader's limit). */
#define OX_ST_MAX_HEADER 100000000

/* A named tensor. Borrowed: the name string and the tensor belong to the caller. */
typedef struct ox_st_entry {
    const char *name;
    ox_tensor *tensor;
} ox_st_entry;

/* One metadata string pair (UTF-8). */
typedef struct ox_st_kv {
    const char *key;
    const char *value;
} ox_st_kv;

/* Metadata returned by the readers: n pairs in file order. Owned: one heap block holding the struct,
 * the array and the strings, freed with ox_st_meta_free. */
typedef struct ox_st_meta {
    int64_t n;
    ox_st_kv *kv;
} ox_st_meta;

/* The value stored under key, or NULL (also for m == NULL). Points into m. */
const char *ox_st_meta_get(const ox_st_meta *m, const char *key);
void ox_st_meta_free(ox_st_meta *m);

/* Writes entries[0..n-1] and the metadata meta[0..n_meta-1] (n_meta may be 0: no "__metadata__") to path.
 * Tensors: F32 or I32, any strides (expanded views included); the file holds each one's logical row-major
 * contents with its shape. Names: non-empty UTF-8, distinct, not "__metadata__"; they are written sorted
 * by byte order with offsets contiguous from 0. Metadata keys must be distinct. The header is padded with
 * spaces to a multiple of 8 bytes.
 * Atomic: the bytes go to "path.tmp.<pid>" in the same directory, which is flushed, fsync'ed and renamed
 * over path (then the directory is fsync'ed, best effort). On any failure the temp file is removed and
 * an existing file at path is left as it was. Returns OX_OK or the recorded status. */
ox_status ox_safetensors_write(ox_ctx *ctx, const char *path, const ox_st_entry *entries, int64_t n,
                               const ox_st_kv *meta, int64_t n_meta);

/* Checkpoint reader. expected[0..n_expected-1] names every tensor the file must hold; each
 * expected[i].tensor is a caller-provided F32 tensor (owned or arena; contiguous or strided, but without
 * stride-0 axes of size > 1) whose shape is the expected shape and which receives the file's values in
 * logical row-major order. The file must hold exactly these names, all F32, with exactly these shapes.
 * Before any data is read the header is checked: file of at least 8 bytes, N <= OX_ST_MAX_HEADER,
 * N + 8 <= file size, header UTF-8 starting with '{', valid JSON object followed only by whitespace,
 * every entry an object with exactly "dtype" (string), "shape" (array of integers >= 0, at most
 * OX_MAX_DIMS) and "data_offsets" (two integers, begin <= end), dtype F32, shape equal to the expected one,
 * offsets inside the data buffer, end - begin = 4 * numel, no overlaps or holes, data ending at the
 * end of the file, no duplicate, unknown or missing names, "__metadata__" an object of strings.
 * So on a format error the tensors are untouched; only an I/O error while reading data can leave them
 * partly filled.
 * meta_out (may be NULL): on success *meta_out is the file's metadata (owned, n = 0 if there is none;
 * free with ox_st_meta_free); on failure it is set to NULL. */
ox_status ox_safetensors_read_strict(ox_ctx *ctx, const char *path, const ox_st_entry *expected,
                                     int64_t n_expected, ox_st_meta **meta_out);

/* Only the metadata of path: the header is validated as by ox_safetensors_load (dtype F32 or I32, any names
 * and shapes) and no tensor data is read. On success *meta_out is the file's metadata (owned, n = 0 if
 * there is none; free with ox_st_meta_free); on failure it is set to NULL. */
ox_status ox_safetensors_read_meta(ox_ctx *ctx, const char *path, ox_st_meta **meta_out);

/* Everything in one file, as loaded by ox_safetensors_load. */
typedef struct ox_st_file {
    int64_t n;                /* number of tensors */
    ox_st_entry *entries;     /* sorted by name; each tensor owned (ox_tensor_new_owned), contiguous */
    ox_st_meta *meta;         /* never NULL (n = 0 when the file has no metadata) */
} ox_st_file;

/* Lenient reader for test vectors: every tensor of the file, F32 or I32, any names and shapes (scalars as
 * [] or [1]). The structure is validated exactly as in ox_safetensors_read_strict (everything except the
 * expected names and shapes; dtype may be F32 or I32). Returns an owned object (free with
 * ox_st_file_free, which frees the tensors, names and metadata) or NULL on error. */
ox_st_file *ox_safetensors_load(ox_ctx *ctx, const char *path);
/* The tensor called name, or NULL (also for f == NULL). Owned by f. */
ox_tensor *ox_st_file_get(const ox_st_file *f, const char *name);
/* The metadata value under key, or NULL. Owned by f. */
const char *ox_st_file_meta(const ox_st_file *f, const char *key);
void ox_st_file_free(ox_st_file *f);

#endif
