/* bench_reduce.c - speed of the reductions, softmax, cumsum and tril against naive single-accumulator
 * loops, at 1 and 2 threads.
 *
 * x is [4096, 1024] (16 MiB, beyond the caches) for everything but tril ([16, 512, 512]). Each line gives
 * the median over 15 runs of one forward call at 1 and at 2 threads, the input read rate in GB/s, the
 * ratio of a plain loop computing the same result (one accumulator per output, libm expf, one thread)
 * to the 1-thread time, and the backward pass at 1 thread (ox_ag_backward_seeded with a ones seed,
 * which includes creating y's gradient and the gradient accumulation into x).
 * The naive loops are also checked against the library result (relative error printed). */
#include "bench_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/ops.h"
#include "tensor/rng.h"

#define REPS 15
#define ROWS 4096
#define COLS 1024

enum op { SUM_LAST, SUM_FIRST, SUM_ALL, MAX_LAST, MAX_FIRST, LSE_LAST, SOFTMAX, LOG_SOFTMAX, CUMSUM_LAST,
          CUMSUM_FIRST, TRIL, N_OP };
static const char *const names[] = { "sum axis -1", "sum axis 0", "sum_all", "max axis -1", "max axis 0",
                                     "logsumexp axis -1", "softmax", "log_softmax", "cumsum axis -1",
                                     "cumsum axis 0", "tril -inf" };

static ox_tensor *run_op(ox_ctx *ctx, enum op op, ox_tensor *x)
{
    switch (op) {
    case SUM_LAST: return ox_ag_sum(ctx, x, -1, 0);
    case SUM_FIRST: return ox_ag_sum(ctx, x, 0, 0);
    case SUM_ALL: return ox_ag_sum_all(ctx, x);
    case MAX_LAST: return ox_ag_max(ctx, x, -1, 0);
    case MAX_FIRST: return ox_ag_max(ctx, x, 0, 0);
    case LSE_LAST: return ox_ag_logsumexp(ctx, x, -1, 0);
    case SOFTMAX: return ox_ag_softmax(ctx, x);
    case LOG_SOFTMAX: return ox_ag_log_softmax(ctx, x);
    case CUMSUM_LAST: return ox_ag_cumsum(ctx, x, -1);
    case CUMSUM_FIRST: return ox_ag_cumsum(ctx, x, 0);
    case TRIL: return ox_ag_tril(ctx, x, 0, -INFINITY);
    default: return NULL;
    }
}

/* The naive reference: one accumulator per output, in index order. Returns the number of outputs. */
static int64_t naive(enum op op, const float *x, float *y, int64_t r, int64_t c)
{
    switch (op) {
    case SUM_LAST:
        for (int64_t i = 0; i < r; i++) {
            float s = 0;
            for (int64_t j = 0; j < c; j++)
                s += x[i * c + j];
            y[i] = s;
        }
        return r;
    case SUM_FIRST:
        for (int64_t j = 0; j < c; j++) {
            float s = 0;
            for (int64_t i = 0; i < r; i++)
                s += x[i * c + j];
            y[j] = s;
        }
        return c;
    case SUM_ALL: {
        float s = 0;
        for (int64_t i = 0; i < r * c; i++)
            s += x[i];
        y[0] = s;
        return 1;
    }
    case MAX_LAST:
        for (int64_t i = 0; i < r; i++) {
            float m = x[i * c];
            for (int64_t j = 1; j < c; j++)
                if (x[i * c + j] > m)
                    m = x[i * c + j];
            y[i] = m;
        }
        return r;
    case MAX_FIRST:
        for (int64_t j = 0; j < c; j++) {
            float m = x[j];
            for (int64_t i = 1; i < r; i++)
                if (x[i * c + j] > m)
                    m = x[i * c + j];
            y[j] = m;
        }
        return c;
    case LSE_LAST:
    case SOFTMAX:
    case LOG_SOFTMAX:
        for (int64_t i = 0; i < r; i++) {
            const float *xr = x + i * c;
            float m = xr[0], s = 0;
            for (int64_t j = 1; j < c; j++)
                if (xr[j] > m)
                    m = xr[j];
            for (int64_t j = 0; j < c; j++)
                s += expf(xr[j] - m);
            if (op == LSE_LAST)
                y[i] = m + logf(s);
            else
                for (int64_t j = 0; j < c; j++)
                    y[i * c + j] = op == SOFTMAX ? expf(xr[j] - m) / s : xr[j] - m - logf(s);
        }
        return op == LSE_LAST ? r : r * c;
    case CUMSUM_LAST:
        for (int64_t i = 0; i < r; i++) {
            float s = 0;
            for (int64_t j = 0; j < c; j++)
                y[i * c + j] = s += x[i * c + j];
        }
        return r * c;
    case CUMSUM_FIRST:
        for (int64_t j = 0; j < c; j++) {
            float s = 0;
            for (int64_t i = 0; i < r; i++)
                y[i * c + j] = s += x[i * c + j];
        }
        return r * c;
    case TRIL: {                          /* [16, 512, 512] seen as r = 16 * 512 rows of c = 512 */
        for (int64_t i = 0; i < r; i++)
            for (int64_t j = 0; j < c; j++)
                y[i * c + j] = j <= i % 512 ? x[i * c + j] : -INFINITY;
        return r * c;
    }
    default:
        return 0;
    }
}

int main(void)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 1;
    ox_rng rng = ox_rng_seed(1);
    float *ybuf = malloc(sizeof(float) * ROWS * COLS);
    printf("median of %d runs; x [%d, %d] fp32 (tril: [16, 512, 512]); GB/s = bytes of x read / time\n", REPS,
           ROWS, COLS);
    printf("%-20s %10s %8s %10s %8s %10s %10s %10s %9s\n", "op", "1 thr ms", "GB/s", "2 thr ms", "GB/s",
           "naive ms", "x naive", "bwd 1t ms", "rel err");
    for (int op = 0; op < N_OP; op++) {
        int64_t shape_tril[3] = { 16, 512, 512 }, shape[2] = { ROWS, COLS };
        int nd = op == TRIL ? 3 : 2;
        const int64_t *sh = op == TRIL ? shape_tril : shape;
        ox_tensor *x = ox_tensor_new_owned(ctx, OX_F32, nd, sh);
        if (!x || ox_tensor_fill_normal(ctx, x, &rng, 0, 1))
            return 1;
        int64_t n = ox_tensor_numel(x), r = op == TRIL ? 16 * 512 : ROWS, c = op == TRIL ? 512 : COLS;
        double gb = (double)n * sizeof(float) / 1e9;
        double ms[2];
        for (int th = 1; th <= 2; th++) {
            ox_ctx_set_threads(ctx, th);
            double t[REPS];
            for (int k = 0; k < REPS; k++) {
                double t0 = now();
                ox_tensor *y = run_op(ctx, (enum op)op, x);
                t[k] = now() - t0;
                if (!y) {
                    fprintf(stderr, "%s\n", ox_ctx_message(ctx));
                    return 1;
                }
                ox_ctx_reset(ctx);
            }
            ms[th - 1] = 1e3 * median(t, REPS);
        }
        /* naive reference, and its agreement with the library */
        double t[REPS];
        int64_t m = 0;
        for (int k = 0; k < REPS; k++) {
            double t0 = now();
            m = naive((enum op)op, ox_tensor_f32(x), ybuf, r, c);
            t[k] = now() - t0;
        }
        double naive_ms = 1e3 * median(t, REPS);
        ox_tensor *y = run_op(ctx, (enum op)op, x);
        double num = 0, den = 0;
        for (int64_t i = 0; i < m; i++) {
            float a = ox_tensor_f32(y)[i], b = ybuf[i];
            if (isfinite(b)) {
                num = fmax(num, fabs((double)a - b));
                den = fmax(den, fabs((double)b));
            } else if (a != b) {
                num = INFINITY;
            }
        }
        ox_ctx_reset(ctx);
        /* backward at 1 thread */
        ox_ctx_set_threads(ctx, 1);
        ox_tensor_require_grad(ctx, x);
        double tb[REPS];
        for (int k = 0; k < REPS; k++) {
            ox_tensor *yy = run_op(ctx, (enum op)op, x);
            ox_tensor *seed = ox_tensor_ones(ctx, OX_F32, yy->ndim, yy->shape);
            double t2 = now();
            if (ox_ag_backward_seeded(ctx, yy, seed)) {
                fprintf(stderr, "%s\n", ox_ctx_message(ctx));
                return 1;
            }
            tb[k] = now() - t2;
            ox_ctx_reset(ctx);
        }
        double bwd_ms = 1e3 * median(tb, REPS);
        printf("%-20s %10.3f %8.2f %10.3f %8.2f %10.3f %10.2f %10.3f %9.1e\n", names[op], ms[0], gb / (ms[0] * 1e-3),
               ms[1], gb / (ms[1] * 1e-3), naive_ms, naive_ms / ms[0], bwd_ms, num / (den > 0 ? den : 1));
        ox_tensor_free(x);
    }
    free(ybuf);
    ox_ctx_free(ctx);
    return 0;
}
