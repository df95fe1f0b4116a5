/* profile.c - the step profile's table, marks and BLIS accounting (see profile.h). */
#include "tensor/profile.h"
#include "tensor/alloc.h"

#include <omp.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

struct ox_profile {
    int n_rows;
    int last_hit;                       /* row of the previous mark: the next one is often the same */
    double start, last;                 /* clock at enable/reset and at the previous mark */
    uint64_t blis_ns0, blis_flops0, blis_calls0;   /* process counters at the previous mark */
    ox_profile_row rows[OX_PROFILE_MAX_ROWS];
};

/* Process-wide BLIS counters (BLIS calls carry no context), only touched while some context profiles.
 * Integers, so the relaxed atomic adds from several threads are exact and order-independent. */
static atomic_int n_active;
static _Atomic uint64_t blis_ns, blis_flops, blis_calls;

double ox_profile_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int ox_profile_blis_active(void) { return atomic_load_explicit(&n_active, memory_order_relaxed) > 0; }

void ox_profile_blis_add(double seconds, double flops)
{
    /* a thread of an n-thread team runs its BLIS call beside n - 1 others: charge 1/n of its wall time */
    if (omp_in_parallel())
        seconds /= (double)omp_get_num_threads();
    atomic_fetch_add_explicit(&blis_ns, (uint64_t)(seconds * 1e9), memory_order_relaxed);
    atomic_fetch_add_explicit(&blis_flops, (uint64_t)flops, memory_order_relaxed);
    atomic_fetch_add_explicit(&blis_calls, 1, memory_order_relaxed);
}

static void restart(struct ox_profile *p)
{
    p->n_rows = 0;
    p->last_hit = 0;
    p->start = p->last = ox_profile_now();
    p->blis_ns0 = atomic_load(&blis_ns);
    p->blis_flops0 = atomic_load(&blis_flops);
    p->blis_calls0 = atomic_load(&blis_calls);
}

ox_status ox_profile_enable(ox_ctx *ctx, int on)
{
    if (on && !ctx->profile) {
        ctx->profile = ox_calloc(1, sizeof *ctx->profile);
        if (!ctx->profile)
            return ox_ctx_fail(ctx, OX_ERR_NOMEM, "profile: out of memory allocating the table");
        atomic_fetch_add(&n_active, 1);
        restart(ctx->profile);
    } else if (!on && ctx->profile) {
        atomic_fetch_sub(&n_active, 1);
        ox_free(ctx->profile);
        ctx->profile = NULL;
    }
    return OX_OK;
}

int ox_profile_enabled(const ox_ctx *ctx) { return ctx->profile != NULL; }

void ox_profile_reset(ox_ctx *ctx)
{
    if (ctx->profile)
        restart(ctx->profile);
}

static ox_profile_row *find_row(struct ox_profile *p, const char *name, ox_profile_phase phase)
{
    ox_profile_row *r = &p->rows[p->last_hit];
    if (p->n_rows > 0 && r->name == name && r->phase == phase)
        return r;
    for (int i = 0; i < p->n_rows; i++) {
        r = &p->rows[i];
        if (r->phase == phase && (r->name == name || strcmp(r->name, name) == 0)) {
            p->last_hit = i;
            return r;
        }
    }
    if (p->n_rows >= OX_PROFILE_MAX_ROWS - 1) {
        /* table full: the last row collects every further kind */
        r = &p->rows[OX_PROFILE_MAX_ROWS - 1];
        if (p->n_rows == OX_PROFILE_MAX_ROWS - 1) {
            memset(r, 0, sizeof *r);
            r->name = "(other kinds)";
            r->phase = OX_PROF_OTHER;
            p->n_rows = OX_PROFILE_MAX_ROWS;
        }
        p->last_hit = OX_PROFILE_MAX_ROWS - 1;
        return r;
    }
    p->last_hit = p->n_rows;
    r = &p->rows[p->n_rows++];
    memset(r, 0, sizeof *r);
    r->name = name;
    r->phase = phase;
    return r;
}

void ox_profile_mark_on(ox_ctx *ctx, const char *name, ox_profile_phase phase)
{
    struct ox_profile *p = ctx->profile;
    if (!p)
        return;
    double t = ox_profile_now();
    uint64_t ns = atomic_load(&blis_ns), fl = atomic_load(&blis_flops), nc = atomic_load(&blis_calls);
    double b = 1e-9 * (double)(ns - p->blis_ns0);
    double dt = t - p->last;
    if (b > dt)
        b = dt;         /* clock granularity: BLIS time of an interval cannot exceed the interval */
    ox_profile_row *r = find_row(p, name, phase);
    r->calls++;
    r->seconds += dt - b;
    r->blis_seconds += b;
    r->blis_flops += (double)(fl - p->blis_flops0);
    r->blis_calls += (int64_t)(nc - p->blis_calls0);
    p->last = t;
    p->blis_ns0 = ns;
    p->blis_flops0 = fl;
    p->blis_calls0 = nc;
}

int ox_profile_rows(const ox_ctx *ctx, ox_profile_row *rows, int max)
{
    const struct ox_profile *p = ctx->profile;
    if (!p)
        return 0;
    for (int i = 0; i < p->n_rows && i < max; i++)
        rows[i] = p->rows[i];
    return p->n_rows;
}

ox_profile_totals ox_profile_total(const ox_ctx *ctx)
{
    ox_profile_totals t = { 0 };
    const struct ox_profile *p = ctx->profile;
    if (!p)
        return t;
    t.wall = p->last - p->start;
    for (int i = 0; i < p->n_rows; i++) {
        const ox_profile_row *r = &p->rows[i];
        t.seconds += r->seconds;
        t.blis_seconds += r->blis_seconds;
        t.blis_flops += r->blis_flops;
        t.blis_calls += r->blis_calls;
        t.marks += r->calls;
    }
    return t;
}

const char *ox_profile_phase_name(ox_profile_phase phase)
{
    switch (phase) {
    case OX_PROF_FORWARD: return "forward";
    case OX_PROF_BACKWARD: return "backward";
    default: return "other";
    }
}
