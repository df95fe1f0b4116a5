/* lanes.h - row kernels with several independent accumulators, combined in a fixed order.
 *
 * Internal to the library (autograd's reductions and softmax; lanes_dot is the library's one dot-product
 * kernel, used also by nn/attention.c, nn/attention_cache.c, nn/chunk.c and nn/linear_step.c, the
 * projections of the decoding step): not installed, not public API. Summing a row with one
 * accumulator is bound by the latency of one add per element and cannot be vectorised without
 * reordering. These kernels keep OX_LANES = 16 partial results (two AVX2 registers): element i goes to
 * lane i % 16 for the whole 16-aligned body of the row, the tail goes to lanes 0, 1, ..., and the lanes
 * are combined by a fixed pairwise tree (16 -> 8 -> 4 -> 2 -> 1). The order of every addition depends
 * only on n, so a row gives the same bits on any thread, in any run.
 *
 * The lane loops carry `omp simd` (a vectorisation hint, not a parallel region: each lane is still
 * one sequential accumulator) because gcc does not vectorise the compare-and-select loops of max
 * without it. expf calls vectorise through tensor/vmath.h (glibc's libmvec): about 10x faster on AVX2 than a
 * scalar call per element, and still bit-reproducible.
 *
 * Max follows IEEE max with NaN propagation: a NaN anywhere in the row makes the result NaN (as in
 * PyTorch), and argmax then points at the first NaN. Otherwise argmax is the FIRST maximal element.
 *
 *   float s = lanes_sum(row, n);                   // sum_i row[i]
 *   float m = lanes_argmax(row, n, &i);            // row[i] == m, i smallest such
 */
#ifndef OX_LANES_H
#define OX_LANES_H

#include <math.h>
#include <stdint.h>

#include "tensor/vmath.h"

#define OX_LANES 16


/* Fixed pairwise combination of the 16 lanes. */
static inline float lanes_combine(float *acc)
{
    for (int w = OX_LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            acc[j] += acc[j + w];
    return acc[0];
}

/* sum_i x[i] */
static inline float lanes_sum(const float *x, int64_t n)
{
    float acc[OX_LANES] = { 0 };
    int64_t i = 0;
    for (; i + OX_LANES <= n; i += OX_LANES)
#pragma omp simd
        for (int j = 0; j < OX_LANES; j++)
            acc[j] += x[i + j];
    for (int j = 0; i < n; i++, j++)
        acc[j] += x[i];
    return lanes_combine(acc);
}

/* sum_i a[i] b[i] */
static inline float lanes_dot(const float *a, const float *b, int64_t n)
{
    float acc[OX_LANES] = { 0 };
    int64_t i = 0;
    for (; i + OX_LANES <= n; i += OX_LANES)
#pragma omp simd
        for (int j = 0; j < OX_LANES; j++)
            acc[j] += a[i + j] * b[i + j];
    for (int j = 0; i < n; i++, j++)
        acc[j] += a[i] * b[i];
    return lanes_combine(acc);
}

/* sum_i exp(x[i] - shift) */
static inline float lanes_sum_exp(const float *x, int64_t n, float shift)
{
    float acc[OX_LANES] = { 0 };
    int64_t i = 0;
    for (; i + OX_LANES <= n; i += OX_LANES)
#pragma omp simd
        for (int j = 0; j < OX_LANES; j++)
            acc[j] += expf(x[i + j] - shift);
    for (int j = 0; i < n; i++, j++)
        acc[j] += expf(x[i] - shift);
    return lanes_combine(acc);
}

/* v replaces the running maximum m: v is larger, or v is the first NaN seen. */
static inline int lanes_takes(float v, float m)
{
    return v > m || (v != v && m == m);
}

/* max_i x[i] (-INFINITY for n == 0; NaN if any x[i] is NaN). */
static inline float lanes_max(const float *x, int64_t n)
{
    float m[OX_LANES];
    for (int j = 0; j < OX_LANES; j++)
        m[j] = -INFINITY;
    int64_t i = 0;
    for (; i + OX_LANES <= n; i += OX_LANES)
#pragma omp simd
        for (int j = 0; j < OX_LANES; j++) {
            float v = x[i + j];
            m[j] = lanes_takes(v, m[j]) ? v : m[j];
        }
    for (int j = 0; i < n; i++, j++)
        m[j] = lanes_takes(x[i], m[j]) ? x[i] : m[j];
    float r = m[0];
    for (int j = 1; j < OX_LANES; j++)
        r = lanes_takes(m[j], r) ? m[j] : r;
    return r;
}

/* max_i x[i] for n >= 1, with *arg = the first index where it occurs (the first NaN if any).
 * Indices are int32: the caller passes rows (or chunks of rows) shorter than 2^31. */
static inline float lanes_argmax(const float *x, int64_t n, int64_t *arg)
{
    float best = x[0];
    int64_t bi = 0, i = 0;
    if (n >= 2 * OX_LANES) {
        /* lane j holds the running max of x[j], x[j + 16], ... with its first index (strict >) */
        float m[OX_LANES];
        int32_t ix[OX_LANES];
        for (int j = 0; j < OX_LANES; j++) {
            m[j] = x[j];
            ix[j] = j;
        }
        for (i = OX_LANES; i + OX_LANES <= n; i += OX_LANES) {
            int32_t base = (int32_t)i;
#pragma omp simd
            for (int j = 0; j < OX_LANES; j++) {
                float v = x[i + j];
                int take = lanes_takes(v, m[j]);
                m[j] = take ? v : m[j];
                ix[j] = take ? base + j : ix[j];
            }
        }
        /* across lanes: the larger value, or the smaller index among equal values (or among NaNs) */
        best = m[0];
        bi = ix[0];
        for (int j = 1; j < OX_LANES; j++) {
            int nan_j = m[j] != m[j], nan_b = best != best;
            if ((nan_j && (!nan_b || ix[j] < bi)) ||
                (!nan_j && !nan_b && (m[j] > best || (m[j] == best && ix[j] < bi)))) {
                best = m[j];
                bi = ix[j];
            }
        }
    } else {
        i = 1;
    }
    /* the rest comes after every index seen so far: strict > keeps the first maximum */
    for (; i < n; i++)
        if (lanes_takes(x[i], best)) {
            best = x[i];
            bi = i;
        }
    *arg = bi;
    return best;
}

#endif
