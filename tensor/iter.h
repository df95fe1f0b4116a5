/* iter.h - walking several equally-shaped strided operands together, in segments.
 *
 * Every elementwise kernel is written as a function over one segment: n elements along the innermost
 * axis, with one start offset and one stride per operand. ox_iter merges axes that are contiguous for
 * every operand (so a contiguous [B, T, D] add is one segment of B*T*D) and splits the flat index range
 * between threads. The per-segment call is the only indirect call: the inner loop is plain C that the
 * compiler vectorises (stride 1 is the common case).
 *
 *   static void add_seg(void *arg, int64_t n, const int64_t *off, const int64_t *st) {
 *       struct args *a = arg;
 *       for (int64_t i = 0; i < n; i++)
 *           a->y[off[0] + i * st[0]] = a->a[off[1] + i * st[1]] + a->b[off[2] + i * st[2]];
 *   }
 *   ox_iter it; ox_iter_init(&it, 3, (const ox_tensor *[]){ y, a_expanded, b_expanded });
 *   ox_iter_run(&it, ctx->n_threads, add_seg, &args);
 */
#ifndef OX_ITER_H
#define OX_ITER_H

#include "tensor/tensor.h"

#define OX_ITER_MAX_OPS 4
/* Alignment of the thread split (elements): a multiple of every vector width the kernels use. */
#define OX_ITER_ALIGN 64

typedef struct ox_iter {
    int ndim;                                   /* after merging; >= 1 */
    int n_ops;
    int64_t numel;
    int64_t shape[OX_MAX_DIMS];
    int64_t stride[OX_ITER_MAX_OPS][OX_MAX_DIMS];
} ox_iter;

/* All operands must have ops[0]'s shape (expand them first). Offsets passed to the segment function
 * are relative to ox_tensor_f32(ops[k]) (i.e. already past each tensor's own offset). */
void ox_iter_init(ox_iter *it, int n_ops, const ox_tensor *const *ops);

typedef void (*ox_iter_fn)(void *arg, int64_t n, const int64_t *off, const int64_t *stride);

/* Calls fn over all elements, in segments. With n_threads > 1 and enough elements the flat range is
 * split into contiguous parts (about 4 per thread) handed out to the threads one at a time, so fn must not
 * write one element from two segments (never pass n_threads > 1 when an output has stride-0 axes). Parts
 * start at a row start or at a multiple of OX_ITER_ALIGN elements from their row's start (and a row is split
 * only when its length is such a multiple or it is the only row), so a kernel whose vector blocks are at most
 * OX_ITER_ALIGN wide and start at its segment's start gives bit-identical results at any thread count. */
void ox_iter_run(const ox_iter *it, int n_threads, ox_iter_fn fn, void *arg);

/* Element count below which loops stay on one thread: waking threads costs more than the work. */
#define OX_PARALLEL_MIN 32768

#endif
