/* iter.c - segment walker over strided operands (see iter.h). */
#include "tensor/iter.h"

#include <omp.h>

void ox_iter_init(ox_iter *it, int n_ops, const ox_tensor *const *ops)
{
    const ox_tensor *t0 = ops[0];
    it->n_ops = n_ops;
    it->numel = 1;
    int nd = 0;
    /* drop size-1 axes, then merge neighbours that are contiguous for every operand */
    for (int d = 0; d < t0->ndim; d++) {
        it->numel *= t0->shape[d];
        if (t0->shape[d] == 1)
            continue;
        int merge = nd > 0;
        for (int k = 0; k < n_ops && merge; k++)
            merge = it->stride[k][nd - 1] == ops[k]->stride[d] * t0->shape[d];
        if (merge) {
            it->shape[nd - 1] *= t0->shape[d];
            for (int k = 0; k < n_ops; k++)
                it->stride[k][nd - 1] = ops[k]->stride[d];
        } else {
            it->shape[nd] = t0->shape[d];
            for (int k = 0; k < n_ops; k++)
                it->stride[k][nd] = ops[k]->stride[d];
            nd++;
        }
    }
    if (nd == 0) {      /* a scalar or all axes of size 1 */
        it->shape[0] = 1;
        for (int k = 0; k < n_ops; k++)
            it->stride[k][0] = 0;
        nd = 1;
    }
    it->ndim = nd;
}

static void run_range(const ox_iter *it, int64_t begin, int64_t end, ox_iter_fn fn, void *arg)
{
    int last = it->ndim - 1;
    int64_t inner = it->shape[last];
    int64_t st[OX_ITER_MAX_OPS], off[OX_ITER_MAX_OPS];
    for (int k = 0; k < it->n_ops; k++)
        st[k] = it->stride[k][last];
    for (int64_t i = begin; i < end;) {
        int64_t row = i / inner, col = i % inner;
        int64_t n = inner - col < end - i ? inner - col : end - i;
        for (int k = 0; k < it->n_ops; k++)
            off[k] = col * st[k];
        int64_t r = row;
        for (int d = last - 1; d >= 0; d--) {
            int64_t idx = r % it->shape[d];
            r /= it->shape[d];
            for (int k = 0; k < it->n_ops; k++)
                off[k] += idx * it->stride[k][d];
        }
        fn(arg, n, off, st);
        i += n;
    }
}

void ox_iter_run(const ox_iter *it, int n_threads, ox_iter_fn fn, void *arg)
{
    if (it->numel == 0)
        return;
    if (n_threads <= 1 || it->numel < OX_PARALLEL_MIN) {
        run_range(it, 0, it->numel, fn, arg);
        return;
    }
    /* Contiguous blocks, each written by exactly one thread, handed out one at a time (a dynamic schedule: a
     * thread that the OS has not scheduled takes fewer blocks instead of holding the others up, see ctx.h).
     * A block starts where a one-thread run would start a vector block too (see iter.h): at a row start when
     * rows are enough to share, else at a multiple of OX_ITER_ALIGN elements from its row's start, so the same
     * elements go through the same vector or scalar code whatever the thread count. */
    int64_t inner = it->shape[it->ndim - 1], rows = it->numel / inner;
    int64_t unit = inner % OX_ITER_ALIGN == 0 || rows == 1 ? OX_ITER_ALIGN : inner;
    int64_t nb = 4 * (int64_t)n_threads;
    int64_t blk = ((it->numel + nb - 1) / nb + unit - 1) / unit * unit;
    nb = (it->numel + blk - 1) / blk;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
    for (int64_t i = 0; i < nb; i++) {
        int64_t begin = i * blk, end = begin + blk < it->numel ? begin + blk : it->numel;
        run_range(it, begin, end, fn, arg);
    }
}
