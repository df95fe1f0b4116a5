/* ctx.h - the context every computation runs in: error state, step arena, thread count, tape.
 *
 * Nothing the library computes depends on global mutable state: two contexts (say, training and
 * evaluation, or two models) can live in one process and run in turn. A context is not itself
 * thread-safe: use one per thread of control. The RNG is a separate object (rng.h).
 *
 *   ox_ctx *ctx = ox_ctx_new();
 *   ox_tensor *y = ox_ag_exp(ctx, x);             // ops return NULL on error ...
 *   if (!y) fprintf(stderr, "%s\n", ox_ctx_message(ctx));   // ... and say why here
 *   ox_ctx_reset(ctx);                            // frees the step's activations and tape
 *   ox_ctx_free(ctx);
 *
 * Errors are sticky: after a failure every op returns NULL at once until ox_ctx_clear_error, so a
 * forward pass can be written as a straight sequence of calls with one check at the end. */
#ifndef OX_CTX_H
#define OX_CTX_H

#include <stdint.h>

#include "tensor/arena.h"
#include "tensor/status.h"

struct ox_ag_node;
struct ox_profile;

typedef struct ox_ctx {
    ox_status status;            /* first error since the last clear, or OX_OK */
    char message[512];           /* one line describing it */
    ox_arena arena;              /* activations and temporaries of the current step */
    int n_threads;               /* OpenMP threads and BLIS threads used by every op */
    int grad_enabled;            /* 0 inside a no-grad scope: ops record nothing */
    struct ox_ag_node *tape;     /* newest node of the tape (autograd/tape.h), NULL if empty */
    int64_t tape_len;
    uint64_t attn_madds;         /* multiply-adds counted by attention kernels (nn/) */
    struct ox_profile *profile;  /* step profile (tensor/profile.h), NULL when off */
} ox_ctx;

/* A new context: empty arena, gradients enabled, n_threads = the cores this process may run on.
 * The first context also picks BLIS's kernel set (gemm.h). NULL when out of memory. */
ox_ctx *ox_ctx_new(void);
void ox_ctx_free(ox_ctx *ctx);

/* Frees every arena allocation (tensors made by ops, tape nodes) and empties the tape.
 * Tensors made with ox_tensor_new_owned (parameters, optimizer state) and their gradients survive.
 * An arena tensor used after the reset is a bug the normal build does not see (its memory is reused by
 * the next step). The sanitizer build (`make test-asan`, SAN=1) poisons the released arena, so ASan
 * reports such a use as "use-after-poison" at the faulty line (tensor/arena.h), as long as the memory has
 * not been handed out again: once the next step's allocations cover it, a stale use goes unseen. */
void ox_ctx_reset(ox_ctx *ctx);

/* The one thread-count knob: OpenMP loops and BLIS calls of this context use at most n threads
 * (n <= 0 means all available cores).
 *
 * The default is all cores, because on a quiet machine that is fastest (bench_train --neighbour, oryx-gdn,
 * 2 cores: the 2-thread step 1.65x the speed of the 1-thread step). It stays usable when other processes
 * share the cores, which a laptop or a CI runner often does, by three rules the library keeps:
 *   - no barrier that spins without bound: BLIS always runs single-threaded on blocks of a product that
 *     the library hands out itself (tensor/gemm.h), instead of BLIS's own threads, whose barriers spin;
 *   - work is handed out in pieces (dynamic or guided OpenMP schedules, tensor/iter.h): a thread the OS
 *     has not scheduled takes fewer pieces instead of making the others wait for its fixed half;
 *   - idle OpenMP threads spin only briefly before sleeping: libgomp spins 300,000 rounds (milliseconds)
 *     by default, holding a core that the running threads need. libgomp reads its setting once at
 *     start-up, so a program bounds it by calling ox_omp_bound_spin(argv) first thing in main; bin/oryx,
 *     the examples that train and bench_train do.
 * Measured with bench_train --neighbour (one busy process on one of the 2 cores; 3 alternating rounds,
 * medians): before these rules the 2-thread step took 3-20x as long as the 1-thread step beside a busy
 * process; with them it runs at 0.91x the 1-thread speed. The spin bound is a trade: at GOMP_SPINCOUNT 1000
 * a quiet machine gives 1.65x and a shared one 0.91x; at 30,000, 1.87x and 0.66x. This library picks the
 * shared case (a 2-thread run must never be much slower than a 1-thread one); set GOMP_SPINCOUNT yourself
 * on a machine you know to be quiet. */
void ox_ctx_set_threads(ox_ctx *ctx, int n);
int ox_ctx_threads(const ox_ctx *ctx);
/* The number of cores this process may run on (its CPU affinity). */
int ox_cores_available(void);

/* libgomp's spin count set by ox_omp_bound_spin: GOMP_SPINCOUNT rounds of busy waiting before an idle
 * thread sleeps (libgomp's own value when there are more threads than cores). */
#define OX_OMP_SPINCOUNT "1000"

/* Call first thing in main(), before any OpenMP region or context: when the environment sets neither
 * OMP_WAIT_POLICY nor GOMP_SPINCOUNT, sets GOMP_SPINCOUNT=OX_OMP_SPINCOUNT and re-executes the program
 * (/proc/self/exe) with the same argv, so that libgomp starts with bounded spinning; the user's own setting
 * is never overridden. Returns 0 when nothing had to be done; when the re-execution fails it returns -1
 * and the program simply continues with libgomp's defaults. Never returns on success. */
int ox_omp_bound_spin(char *const argv[]);

/* Error state. ox_ctx_fail records the first error (later ones are ignored until cleared) and
 * returns `s` so a function can `return ox_ctx_fail(...)`. */
ox_status ox_ctx_fail(ox_ctx *ctx, ox_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ox_status ox_ctx_status(const ox_ctx *ctx);
const char *ox_ctx_message(const ox_ctx *ctx);   /* "" when OK */
void ox_ctx_clear_error(ox_ctx *ctx);

/* Arena allocation on the context's step arena; records OX_ERR_NOMEM on failure. */
void *ox_ctx_alloc(ox_ctx *ctx, size_t size);

#endif
