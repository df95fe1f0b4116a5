/* vmath.h - lets gcc vectorise loops that call expf.
 *
 * A plain call to libm's expf keeps a loop scalar. Declaring expf with the `simd` attribute (what glibc's
 * own headers do under -ffast-math) lets gcc call glibc's vector variants (libmvec, linked through -lm;
 * max error 1 ulp, like the scalar expf) for whole vectors of a loop; the vector and scalar variants may
 * differ in the last bit. Which variant computes an element depends only on its position in the loop, so
 * results are bit-reproducible run to run, and at any thread count for loops run through ox_iter_run (its
 * thread split starts parts where a one-thread run starts a vector block: tensor/iter.h). Include it in
 * kernels whose inner loops call expf (softmax, sigmoid, silu, logsumexp, ...).
 *
 *   #include "tensor/vmath.h"
 *   for (int64_t i = 0; i < n; i++) y[i] = 1.0f / (1.0f + expf(-x[i]));   // vectorised
 */
#ifndef OX_VMATH_H
#define OX_VMATH_H

#include <math.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__)
float expf(float) __attribute__((simd("notinbranch")));
#endif

#endif
