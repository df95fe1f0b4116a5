/* gemm.h - the library's only door to BLIS: general-stride matrix multiply and triangular solve.
 *
 * A matrix operand is (pointer, rows, cols, row stride, col stride), so a transposed or sliced view
 * multiplies without a copy: A^T is the same pointer with rs and cs swapped. Nothing else in the
 * library calls BLIS.
 *
 *   // C[M,N] = A[M,K] * B[K,N], all row-major contiguous:
 *   ox_sgemm(n_threads, M, N, K, 1.0f, A, K, 1, B, N, 1, 0.0f, C, N, 1);
 *   // C += A * W^T with W stored [N, K]: pass W with strides (1, K)
 *   ox_sgemm(n_threads, M, N, K, 1.0f, A, K, 1, W, 1, K, 1.0f, C, N, 1);
 *
 * Kernel set: Debian's BLIS 0.9.0 does not recognise recent AMD CPUs and would use its slow portable
 * 'generic' kernels. ox_gemm_setup (called by ox_ctx_new, before any BLIS call) therefore sets
 * BLIS_ARCH_TYPE from the CPU's features when the user has not set it: AVX-512F -> skx (0),
 * AVX2 + FMA -> haswell (3), otherwise BLIS decides. BLIS reads it once per process. */
#ifndef OX_GEMM_H
#define OX_GEMM_H

#include <stdint.h>

/* Chooses BLIS's kernel set (see above). Idempotent and thread-safe; no effect after BLIS started. */
void ox_gemm_setup(void);
/* Name of the kernel set BLIS uses, e.g. "haswell", "skx", "generic" (initialises BLIS). */
const char *ox_gemm_arch(void);
/* 1 if the linked BLIS is its OpenMP build. */
int ox_gemm_blis_openmp(void);

/* C := alpha * A B + beta * C, with A [m, k] (strides rsa, csa), B [k, n], C [m, n].
 * Uses at most n_threads threads (products too small to gain from threads run on one). beta = 0
 * ignores C's old contents (NaN included). Safe to call from inside an OpenMP parallel region with
 * n_threads = 1.
 *
 * Threads: BLIS is always called single-threaded. A product worth several threads is cut into
 * ox_sgemm_blocks blocks of rows of C (of columns when C is wider than tall), handed out to the threads one
 * at a time (an OpenMP dynamic schedule). BLIS's own threads meet at barriers that spin without bound:
 * with another busy process on one of two cores, a thread that waits there holds its core while the thread
 * it waits for queues behind the other process, and a training step ran 3-5x slower at 2 threads than at 1
 * (bench_train --neighbour). Whole blocks never wait for one another; a thread that is not running simply
 * takes fewer of them. On a quiet machine the rate of the step's large products is the same within noise.
 * The blocks depend on the shape only, so the result is bit-identical for any thread count. */
void ox_sgemm(int n_threads, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t rsa, int64_t csa,
              const float *b, int64_t rsb, int64_t csb,
              float beta, float *c, int64_t rsc, int64_t csc);

/* Threads ox_sgemm actually uses for an m x n x k product when allowed n_threads. */
int ox_sgemm_threads(int n_threads, int64_t m, int64_t n, int64_t k);
/* Products below this many FLOPs run as one BLIS call on one thread: waking a second thread costs more. */
#define OX_SGEMM_PARALLEL_FLOPS 1.5e6

/* Blocks ox_sgemm cuts an m x n x k product into, from its shape and the machine's core count alone (never
 * the thread count, so results are bit-identical at any thread count): 1 below OX_SGEMM_PARALLEL_FLOPS, else
 * one per core, each at least 64 rows (columns) long. */
int ox_sgemm_blocks(int64_t m, int64_t n, int64_t k);

/* Unit lower triangular solve, in place, from the left: B := inv(op(L)) B, where L [m, m] is read
 * only strictly below its diagonal (the diagonal is taken as 1) and op(L) = L, or L^T when
 * transpose_l (an upper triangular solve). B is [m, n]; with threads, blocks of its columns are solved apart
 * (the columns are independent right-hand sides). */
void ox_strsm_unit_lower(int n_threads, int transpose_l, int64_t m, int64_t n,
                         const float *l, int64_t rsl, int64_t csl,
                         float *b, int64_t rsb, int64_t csb);

#endif
