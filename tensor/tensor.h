/* tensor.h - the n-d tensor: storage, shape, strides, views, creation, copies.
 *
 * A tensor is a header (shape, strides in elements, offset) over a block of storage. Views (reshape,
 * permute, narrow, select, expand) make a new header over the same storage; nothing is copied. The
 * functions here do not record anything for autograd: the differentiable versions that user code
 * normally calls are in autograd/ops.h (ox_ag_reshape, ox_ag_transpose, ...).
 *
 * Ownership, stated once for the whole library:
 *  - ox_tensor_empty/zeros/ones/full/arange/from_buffer and every op return arena tensors: header and
 *    data belong to the context's step arena and are valid until ox_ctx_reset. Never free them.
 *  - ox_tensor_new_owned returns a heap tensor (parameters, optimizer state): the caller frees it with
 *    ox_tensor_free, which also frees its gradient.
 *  - from_buffer borrows the caller's buffer, which must outlive the tensor.
 *  - A view never owns: it must not outlive the tensor it looks at.
 *
 *   ox_tensor *x = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 3));     // [2, 3] of 0.0f
 *   ox_tensor *xt = ox_tensor_view_transpose(ctx, x, 0, 1);         // [3, 2], strides {1, 3}
 *   float v = ox_tensor_f32(xt)[2 * xt->stride[0] + 1 * xt->stride[1]];
 */
#ifndef OX_TENSOR_H
#define OX_TENSOR_H

#include <stdint.h>

#include "tensor/ctx.h"

#define OX_MAX_DIMS 6

typedef enum ox_dtype {
    OX_F32 = 0,   /* float: everything that is computed */
    OX_I32 = 1    /* int32_t: token ids, indices, mode maps */
} ox_dtype;

typedef struct ox_tensor {
    void *data;                      /* storage base (element 0 of the storage, not of the view) */
    int64_t offset;                  /* index of element [0, ..., 0] in storage, in elements */
    int64_t shape[OX_MAX_DIMS];
    int64_t stride[OX_MAX_DIMS];     /* in elements; 0 on an expanded (broadcast) axis */
    int ndim;                        /* 0 (a scalar) .. OX_MAX_DIMS */
    ox_dtype dtype;
    int requires_grad;               /* gradients flow into this tensor (set on leaves, inherited by op results) */
    int owned;                       /* 1 for ox_tensor_new_owned tensors: data and grad are heap-owned */
    struct ox_tensor *grad;          /* contiguous, same shape; NULL until a gradient is needed */
    const char *name;                /* optional (parameters): a static or owned-elsewhere string */
} ox_tensor;

/* Shape literal for creation calls: ox_tensor_zeros(ctx, OX_F32, OX_DIMS(B, T, D)). */
#define OX_DIMS(...) \
    (int)(sizeof((int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)), (const int64_t[]){ __VA_ARGS__ }

static inline float *ox_tensor_f32(const ox_tensor *t) { return (float *)t->data + t->offset; }
static inline int32_t *ox_tensor_i32(const ox_tensor *t) { return (int32_t *)t->data + t->offset; }

int64_t ox_tensor_numel(const ox_tensor *t);
/* Row-major contiguous (size-1 axes may have any stride). */
int ox_tensor_is_contiguous(const ox_tensor *t);
int ox_tensor_same_shape(const ox_tensor *a, const ox_tensor *b);
/* Writes "[2, 3, 4]" into buf (at least 112 bytes) and returns buf, for error messages. */
const char *ox_shape_str(const ox_tensor *t, char *buf);
#define OX_SHAPE_BUF 112

/* ---- creation: arena tensors, contiguous ---------------------------------------------------------- */

ox_tensor *ox_tensor_empty(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape);
ox_tensor *ox_tensor_zeros(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape);
ox_tensor *ox_tensor_ones(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape);
ox_tensor *ox_tensor_full(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape, double value);
/* [n]: start, start + step, ... */
ox_tensor *ox_tensor_arange(ox_ctx *ctx, ox_dtype dtype, int64_t n, double start, double step);
/* Contiguous tensor over the caller's buffer (borrowed, not copied). */
ox_tensor *ox_tensor_from_buffer(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape, void *data);
/* Same dtype and shape as t, contiguous, uninitialised / zeroed. */
ox_tensor *ox_tensor_empty_like(ox_ctx *ctx, const ox_tensor *t);
ox_tensor *ox_tensor_zeros_like(ox_ctx *ctx, const ox_tensor *t);

/* ---- heap tensors (parameters, optimizer state) ----------------------------------------------------- */

/* Zero-filled, contiguous, owned by the caller: free with ox_tensor_free. */
ox_tensor *ox_tensor_new_owned(ox_ctx *ctx, ox_dtype dtype, int ndim, const int64_t *shape);
/* Frees an owned tensor and its gradient. Does nothing for NULL or for arena tensors. */
void ox_tensor_free(ox_tensor *t);
/* Makes t a leaf that receives gradients: sets requires_grad and gives it a zeroed gradient
 * (heap-owned for an owned tensor, arena-owned otherwise). F32 only. */
ox_status ox_tensor_require_grad(ox_ctx *ctx, ox_tensor *t);

/* ---- views (no copy, not recorded) ------------------------------------------------------------------ */

/* New shape over contiguous data; one entry may be -1 (inferred). Error if t is not contiguous. */
ox_tensor *ox_tensor_view_reshape(ox_ctx *ctx, const ox_tensor *t, int ndim, const int64_t *shape);
/* Axis i of the result is axis perm[i] of t. */
ox_tensor *ox_tensor_view_permute(ox_ctx *ctx, const ox_tensor *t, const int *perm);
ox_tensor *ox_tensor_view_transpose(ox_ctx *ctx, const ox_tensor *t, int d0, int d1);
/* Elements start .. start+len-1 of axis `dim`. */
ox_tensor *ox_tensor_view_narrow(ox_ctx *ctx, const ox_tensor *t, int dim, int64_t start, int64_t len);
/* Element `index` of axis `dim`; the axis is removed. */
ox_tensor *ox_tensor_view_select(ox_ctx *ctx, const ox_tensor *t, int dim, int64_t index);
/* Broadcast to `shape` (numpy rules: leading axes added, size-1 axes get stride 0). */
ox_tensor *ox_tensor_view_expand(ox_ctx *ctx, const ox_tensor *t, int ndim, const int64_t *shape);

/* numpy broadcast of two shapes into out (OX_MAX_DIMS entries); returns the rank or -1 if they do not
 * broadcast. */
int ox_broadcast_shape(const ox_tensor *a, const ox_tensor *b, int64_t *out);

/* ---- copies and fills (not recorded) ----------------------------------------------------------------- */

/* dst = src element by element; src is broadcast to dst's shape. Same dtype. */
ox_status ox_tensor_copy(ox_ctx *ctx, ox_tensor *dst, const ox_tensor *src);
/* t itself if it is contiguous, else a contiguous arena copy. */
ox_tensor *ox_tensor_contiguous(ox_ctx *ctx, ox_tensor *t);
ox_status ox_tensor_fill(ox_ctx *ctx, ox_tensor *t, double value);
/* dst += src (F32). src has dst's shape, or broadcasts to it; dst may itself be an expanded view
 * (stride-0 axes), in which case all the src elements that map to one dst element are summed into it
 * (in a fixed order: results do not depend on threads). This is how gradients are reduced to the shape
 * of a broadcast input. */
ox_status ox_tensor_add_into(ox_ctx *ctx, ox_tensor *dst, const ox_tensor *src);
/* dst (shape S) += src summed over the axes along which S was broadcast to src's shape. */
ox_status ox_tensor_sum_into(ox_ctx *ctx, ox_tensor *dst, const ox_tensor *src);

/* ---- checks used by every op (each records an error naming the shapes and returns nonzero) ---------- */

int ox_check_f32(ox_ctx *ctx, const char *op, const ox_tensor *t);
int ox_check_i32(ox_ctx *ctx, const char *op, const ox_tensor *t);
/* Normalises a possibly negative axis; records OX_ERR_ARG and returns -1 when out of range. */
int ox_check_axis(ox_ctx *ctx, const char *op, const ox_tensor *t, int axis);

#endif
