/* profile.h - the step profile: where a context's time goes, per kind of op, forward and backward apart,
 * and how much of it is spent inside BLIS (ox_sgemm / ox_strsm_unit_lower, tensor/gemm.h).
 *
 * Off by default and free when off: every hook is one `if (ctx->profile)` (or, in gemm.c, one relaxed
 * atomic load) that is never taken. When on, the context keeps a table of rows (kind name, phase) with
 * calls, exclusive seconds, and the BLIS calls, seconds and FLOPs made inside that kind.
 *
 * How time is attributed (exclusive, never double counted): the profile is a sequence of marks.
 * ox_profile_mark(ctx, name, phase) charges everything since the previous mark (or since enable/reset) to
 * the row (name, phase): the BLIS time measured in that interval goes to the row's blis_seconds, the rest to
 * its seconds. Hooks in the library place the marks:
 *   - forward: ox_ag_record marks (op name, OX_PROF_FORWARD) when it records a node, so an op's forward
 *     time is the time from the previous mark to its recording (its own kernels, plus any work before it
 *     that records nothing: no-grad ops, index building; nested ops that record split the interval);
 *   - backward: the tape walk marks "backward.seed" before the first node and (op name, OX_PROF_BACKWARD)
 *     after each node's backward function;
 *   - the trainer (models/oryx/train.c) marks its other parts: "zero_grad", "data", "arena.reset",
 *     "optim.clip", "optim.adamw" (phase OX_PROF_OTHER).
 * So the rows' seconds + blis_seconds add up to the wall time from enable/reset to the last mark.
 *
 * BLIS inside OpenMP regions: a BLIS call made by a thread of a team of n (single-threaded, in parallel
 * with the others) adds its duration / n, so that n threads busy in BLIS for the whole region add up to
 * the region's wall time; FLOPs are counted in full (2 m n k per sgemm, m (m - 1) n per unit triangular
 * solve). GF/s of a row = blis_flops / blis_seconds is then the throughput of both cores together.
 * The BLIS counters are process-wide (BLIS calls carry no context): while two contexts profile at once in
 * different threads, each sees the other's BLIS time too. Profiling a single training loop is the use case.
 *
 *   ox_profile_enable(ctx, 1);
 *   ox_oryx_train_step(ctx, &tr, NULL);              // any work: every step adds to the table
 *   ox_profile_row rows[OX_PROFILE_MAX_ROWS];
 *   int n = ox_profile_rows(ctx, rows, OX_PROFILE_MAX_ROWS);
 *   ox_profile_totals tot = ox_profile_total(ctx);   // wall, BLIS share, FLOPs
 *   ox_profile_enable(ctx, 0);                       // frees the table */
#ifndef OX_PROFILE_H
#define OX_PROFILE_H

#include <stdint.h>

#include "tensor/ctx.h"

#define OX_PROFILE_MAX_ROWS 160

typedef enum ox_profile_phase {
    OX_PROF_FORWARD = 0,
    OX_PROF_BACKWARD = 1,
    OX_PROF_OTHER = 2
} ox_profile_phase;

typedef struct ox_profile_row {
    const char *name;           /* kind: an op's name (ox_ag_op.name) or a section name; static storage */
    ox_profile_phase phase;
    int64_t calls;              /* marks charged to this row */
    double seconds;             /* exclusive wall time, BLIS excluded */
    int64_t blis_calls;         /* BLIS calls made inside this row's intervals */
    double blis_seconds;        /* their wall-equivalent time (see above) */
    double blis_flops;          /* their floating-point operations */
} ox_profile_row;

typedef struct ox_profile_totals {
    double wall;                /* seconds from enable/reset to the last mark */
    double seconds;             /* sum of the rows' exclusive seconds */
    double blis_seconds;        /* sum of the rows' BLIS seconds */
    double blis_flops;
    int64_t blis_calls;
    int64_t marks;
} ox_profile_totals;

/* Turns the profile of ctx on (allocates an empty table, starts the clock; already on: no change) or off
 * (frees the table). OX_ERR_NOMEM if the table cannot be allocated. ox_ctx_free turns it off. */
ox_status ox_profile_enable(ox_ctx *ctx, int on);
/* 1 if ctx is profiling. */
int ox_profile_enabled(const ox_ctx *ctx);
/* Empties the table and restarts the clock (no-op when off). */
void ox_profile_reset(ox_ctx *ctx);

/* Charges the time since the previous mark to (name, phase); name must outlive the profile (a string
 * literal or an op's name). Call through OX_PROFILE_MARK so that nothing runs when profiling is off.
 * Kinds beyond OX_PROFILE_MAX_ROWS are charged to a row named "(other kinds)". */
void ox_profile_mark_on(ox_ctx *ctx, const char *name, ox_profile_phase phase);
#define OX_PROFILE_MARK(ctx, name, phase)                  \
    do {                                                   \
        if (__builtin_expect((ctx)->profile != 0, 0))      \
            ox_profile_mark_on((ctx), (name), (phase));    \
    } while (0)

/* Copies up to max rows, in order of first appearance, into rows; returns how many there are (which may
 * exceed max). 0 when off. */
int ox_profile_rows(const ox_ctx *ctx, ox_profile_row *rows, int max);
/* Sums over the table (all zero when off). */
ox_profile_totals ox_profile_total(const ox_ctx *ctx);
/* "forward", "backward" or "other". */
const char *ox_profile_phase_name(ox_profile_phase phase);

/* Used by tensor/gemm.c: 1 while some context profiles (one relaxed atomic load), and the accounting of
 * one BLIS call that took `seconds` with `flops` operations. */
int ox_profile_blis_active(void);
void ox_profile_blis_add(double seconds, double flops);
/* The library's one monotonic clock, in seconds (CLOCK_MONOTONIC): the profile, the trainers' time budgets
 * and their tokens/s use it. */
double ox_profile_now(void);

#endif
