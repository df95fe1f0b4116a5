/* test_guard.c - debug aids for library users (issue 11 item 5): the arena hands out and reuses memory
 * correctly across reset and rewind (every build); in the sanitizer build it poisons what it does not hand
 * out, so a tensor used after ox_ctx_reset dies with an ASan "use-after-poison" report at the faulty line.
 * GDN and SSD (fast, reference and step forms) refuse values outside their documented preconditions with
 * the op, tensor, index, value and range in the message, and still run at the boundaries. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn/gdn.h"
#include "nn/ssd.h"
#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define GUARD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GUARD_ASAN 1
#endif
#endif

#ifdef GUARD_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* ---- the arena, every build ---------------------------------------------------------------------------- */

static void fill(unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static int holds(const unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}

/* Allocations are bump-allocated at 64-byte steps and do not overlap (each keeps its own pattern, written
 * over its whole size); a rewind gives back exactly what followed the mark and keeps what preceded it; a
 * reset merges the blocks and the next steps get the same addresses again, all writable to their full size
 * (under ASan this also shows nothing handed out is left poisoned). */
Test(guard, arena_reuses_memory_after_reset_and_rewind)
{
    ox_arena a;
    ox_arena_init(&a);
    const size_t sizes[] = { 100, 1000, 13, 64, 3 << 20, 5000, 1 };
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *p[N], *first_step[N];
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < N; i++) {
            p[i] = ox_arena_alloc(&a, sizes[i]);
            cr_assert_not_null(p[i]);
            cr_assert_eq((uintptr_t)p[i] % 64, 0, "64-byte aligned");
            fill(p[i], sizes[i], (unsigned char)(i + 10 * step));
        }
        for (int i = 0; i < N; i++)
            cr_assert(holds(p[i], sizes[i], (unsigned char)(i + 10 * step)), "step %d: allocation %d overwritten",
                      step, i);
        cr_assert_eq(p[1] - p[0], 128, "bump allocation at 64-byte steps");
        cr_assert_eq(p[2] - p[1], 1024);
        if (step == 1)
            memcpy(first_step, p, sizeof p);
        if (step == 2)
            for (int i = 0; i < N; i++)
                cr_assert_eq(p[i], first_step[i], "allocation %d moved between two steps after the merge", i);
        ox_arena_reset(&a);
        if (step == 0)
            cr_assert_null(a.first->next, "the reset merged the blocks into one");
    }
    /* rewind: what follows the mark is handed out again at the same place, what precedes it is kept */
    unsigned char *x = ox_arena_alloc(&a, 200);
    fill(x, 200, 1);
    ox_arena_mark m = ox_arena_get_mark(&a);
    unsigned char *y = ox_arena_alloc(&a, 300);
    unsigned char *z = ox_arena_alloc(&a, 8 << 20);    /* more than the block holds: a second block */
    cr_assert(y && z);
    fill(y, 300, 2);
    fill(z, 8 << 20, 3);
    ox_arena_rewind(&a, m);
    cr_assert_eq(a.used, 256);
    unsigned char *y2 = ox_arena_alloc(&a, 300);
    cr_assert_eq(y2, y, "the first allocation after the rewind starts at the mark");
    fill(y2, 300, 4);
    cr_assert(holds(x, 200, 1), "the rewind kept what was allocated before the mark");
    unsigned char *z2 = ox_arena_alloc(&a, 8 << 20);
    cr_assert_eq(z2, z, "the second block is reused");
    fill(z2, 8 << 20, 5);
    /* a mark taken on an empty arena rewinds everything */
    ox_arena_reset(&a);
    ox_arena_mark m0 = ox_arena_get_mark(&a);
    unsigned char *w = ox_arena_alloc(&a, 10);
    ox_arena_rewind(&a, m0);
    cr_assert_eq(ox_arena_alloc(&a, 10), w);
    ox_arena_free(&a);
}

#ifdef GUARD_ASAN
/* The tests below need AddressSanitizer: in the normal build the arena poisons nothing (by design, it costs
 * nothing there), so a use after reset reads stale or reused bytes and nothing could observe it. They run
 * under `make test-asan` (SAN=1), which CI runs. */

/* 1 when every byte of [p, p + n) is poisoned (checked byte by byte: a partly poisoned granule counts). */
static int all_poisoned(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!__asan_address_is_poisoned(p + i))
            return 0;
    return 1;
}

/* Exactly the bytes handed out are addressable: the alignment padding after an allocation, the rest of the
 * block, everything after a rewind's mark and everything after a reset (merged block included) are poisoned. */
Test(guard, arena_poisons_what_it_does_not_hand_out)
{
    ox_arena a;
    ox_arena_init(&a);
    unsigned char *p = ox_arena_alloc(&a, 100);
    cr_assert_null(__asan_region_is_poisoned(p, 100), "the 100 bytes handed out are addressable");
    cr_assert(all_poisoned(p + 100, 28), "alignment padding 100..127 is poisoned");
    cr_assert(all_poisoned(p + 128, 4096), "the rest of the block is poisoned");
    unsigned char *q = ox_arena_alloc(&a, 13);          /* ends inside an 8-byte granule */
    cr_assert_eq(q, p + 128);
    cr_assert_null(__asan_region_is_poisoned(q, 13));
    cr_assert(all_poisoned(q + 13, 51), "the partial granule after 13 bytes is poisoned");
    ox_arena_mark m = ox_arena_get_mark(&a);
    unsigned char *r = ox_arena_alloc(&a, 1000);
    unsigned char *s = ox_arena_alloc(&a, 2 << 20);     /* a second block */
    cr_assert_null(__asan_region_is_poisoned(r, 1000));
    cr_assert_null(__asan_region_is_poisoned(s, 2 << 20));
    ox_arena_rewind(&a, m);
    cr_assert(all_poisoned(r, 1024) && all_poisoned(s, 2 << 20), "the rewind poisons what it released");
    cr_assert_null(__asan_region_is_poisoned(p, 100), "what precedes the mark stays addressable");
    cr_assert_null(__asan_region_is_poisoned(q, 13));
    /* spill over a third block, then reset: the blocks are freed and merged into a new, fully poisoned one */
    cr_assert_not_null(ox_arena_alloc(&a, 2 << 20));
    cr_assert_not_null(ox_arena_alloc(&a, 3 << 20));
    ox_arena_reset(&a);
    cr_assert_null(a.first->next);
    cr_assert(all_poisoned(a.first->data, a.first->size), "the merged block is poisoned");
    unsigned char *t = ox_arena_alloc(&a, 5 << 20);
    cr_assert_eq(t, a.first->data);
    cr_assert_null(__asan_region_is_poisoned(t, 5 << 20));
    cr_assert(all_poisoned(t + (5 << 20), 64));
    /* a reset of a single block (no merge) poisons what was used */
    ox_arena_reset(&a);
    cr_assert(all_poisoned(t, 5 << 20), "the reset poisons the step's memory");
    ox_arena_free(&a);
}

/* Runs `body` in a child whose stderr goes to buf; returns the child's wait status. */
static int run_child(void (*body)(void), char *buf, size_t cap)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        body();
        _exit(0);               /* not detected */
    }
    close(fds[1]);
    size_t n = 0;
    char chunk[4096];
    ssize_t got;
    while ((got = read(fds[0], chunk, sizeof chunk)) > 0) {     /* read all, so the child never blocks */
        size_t keep = (size_t)got < cap - 1 - n ? (size_t)got : cap - 1 - n;
        memcpy(buf + n, chunk, keep);
        n += keep;
    }
    buf[n] = 0;
    close(fds[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

/* The faulty read, with its line number beside it for the test (one line on purpose). */
static float read_stale(const ox_tensor *t) { return ox_tensor_f32(t)[4]; } enum { FAULTY_LINE = __LINE__ };

/* A user's mistake: a tensor of one step read after ox_ctx_reset (its header lived in the arena too). */
static void use_after_reset(void)
{
    ox_ctx *ctx = ox_ctx_new();
    ox_tensor *t = ox_tensor_full(ctx, OX_F32, OX_DIMS(2, 3), 1.5);
    if (!t)
        _exit(3);
    ox_ctx_reset(ctx);
    volatile float v = read_stale(t);
    (void)v;
    ox_ctx_free(ctx);
}

/* The child dies (abort_on_error=1 under make test-asan: SIGABRT; otherwise ASan's exit code 1) and the report
 * names the kind of error and the line of the read (symbolized by llvm-symbolizer or, without it, binutils'
 * addr2line, which gcc depends on). */
Test(guard, use_after_ctx_reset_is_reported_by_asan)
{
    static char out[1 << 16];
    int st = run_child(use_after_reset, out, sizeof out);
    cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "the use after reset was not detected; stderr:\n%s", out);
    cr_assert_not(WIFEXITED(st) && WEXITSTATUS(st) == 3, "the child could not make its tensor");
    cr_assert(strstr(out, "use-after-poison"), "no use-after-poison in the report:\n%s", out);
    char where[64];
    snprintf(where, sizeof where, "test_guard.c:%d", FAULTY_LINE);
    cr_assert(strstr(out, where), "the report does not point at %s:\n%s", where, out);
}
#endif

/* ---- GDN and SSD preconditions (nn/gdn.h, nn/ssd.h) ------------------------------------------------------ */

typedef ox_status (*guard_seq_op)(ox_ctx *, ox_tensor *, ox_tensor *, ox_tensor *, ox_tensor *, ox_tensor *,
                                  ox_tensor *, ox_tensor **, ox_tensor **);
typedef ox_status (*guard_step_op)(ox_ctx *, const ox_tensor *, const ox_tensor *, const ox_tensor *,
                                   const ox_tensor *, const ox_tensor *, ox_tensor *, ox_tensor *);

enum { GB = 2, GT = 70, GH = 3, GK = 4, GV = 5 };      /* T = 70: two chunks */

/* Valid inputs of one mixer: q, k with unit-norm rows (GDN's k must be: with beta = 1, I - k k^T is then a
 * projection), v, beta / dt in (0.1, 0.9) [B, T, H], a in (-1, -0.01) held as the transposed view of a
 * [B, H, T] tensor (so the checks walk strides), s0; all requiring gradients, so a call records a node. */
typedef struct guard_in {
    ox_tensor *q, *k, *v, *beta, *a, *a_store, *s0;
} guard_in;

static void unit_rows(ox_tensor *t, int64_t d)
{
    float *x = ox_tensor_f32(t);
    for (int64_t r = 0; r < ox_tensor_numel(t) / d; r++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++)
            s += (double)x[r * d + j] * x[r * d + j];
        for (int64_t j = 0; j < d; j++)
            x[r * d + j] = (float)(x[r * d + j] / sqrt(s));
    }
}

static guard_in guard_inputs(ox_ctx *ctx, uint64_t seed)
{
    ox_rng r = ox_rng_seed(seed);
    guard_in in;
    in.q = ox_tensor_randn(ctx, &r, OX_DIMS(GB, GT, GH, GK), 0, 1);
    in.k = ox_tensor_randn(ctx, &r, OX_DIMS(GB, GT, GH, GK), 0, 1);
    in.v = ox_tensor_randn(ctx, &r, OX_DIMS(GB, GT, GH, GV), 0, 1);
    in.beta = ox_tensor_rand(ctx, &r, OX_DIMS(GB, GT, GH), 0.1, 0.9);
    in.a_store = ox_tensor_rand(ctx, &r, OX_DIMS(GB, GH, GT), -1.0, -0.01);
    in.s0 = ox_tensor_randn(ctx, &r, OX_DIMS(GB, GH, GV, GK), 0, 0.5);
    cr_assert(in.q && in.k && in.v && in.beta && in.a_store && in.s0, "%s", ox_ctx_message(ctx));
    unit_rows(in.q, GK);
    unit_rows(in.k, GK);
    ox_tensor *all[] = { in.q, in.k, in.v, in.beta, in.a_store, in.s0 };
    for (int i = 0; i < 6; i++)
        assert_ok(ctx, ox_tensor_require_grad(ctx, all[i]));
    in.a = ox_tensor_view_transpose(ctx, in.a_store, 1, 2);    /* [B, T, H], strides {H T, 1, T} */
    cr_assert_not_null(in.a);
    return in;
}

/* Element [b, t, h] of a [B, T, H] tensor of any strides. */
static float *at3(const ox_tensor *t, int64_t b, int64_t i, int64_t h)
{
    return ox_tensor_f32(t) + b * t->stride[0] + i * t->stride[1] + h * t->stride[2];
}

/* One violated precondition: input 3 (beta / dt) or 4 (a) gets `value` at [1, 40, 2] (and a second bad value
 * later, at [1, 60, 0], which must not be the one reported). */
typedef struct guard_case {
    int which;
    float value;
    ox_status want;
} guard_case;

/* Each case gives its status, NULL outputs, no node and no arena memory; the message names the op, the
 * tensor, the first offending index and value, and the allowed range; after restoring the value the same
 * call succeeds and records its node (so the checks do not refuse valid inputs). */
static void guard_bad_values(guard_seq_op op, const char *name, const char *bname, const char *ballowed,
                             const guard_case *cases, size_t n)
{
    ox_ctx *ctx = test_ctx();
    guard_in in = guard_inputs(ctx, 5);
    for (size_t i = 0; i < n; i++) {
        const guard_case *c = &cases[i];
        ox_tensor *t = c->which == 3 ? in.beta : in.a;
        float *p = at3(t, 1, 40, 2), *p2 = at3(t, 1, 60, 0);
        const float keep = *p, keep2 = *p2;
        *p = c->value;
        *p2 = c->which == 3 ? 7.0f : 3.0f;
        ox_tensor *y = in.q, *s = in.q;
        const int64_t tape = ctx->tape_len;
        const size_t used = ctx->arena.used;
        ox_status st = op(ctx, in.q, in.k, in.v, in.beta, in.a, in.s0, &y, &s);
        const char *msg = ox_ctx_message(ctx);
        cr_assert_eq(st, c->want, "%s case %zu: status %d, want %d (%s)", name, i, st, c->want, msg);
        cr_assert(y == NULL && s == NULL, "%s case %zu: outputs not cleared", name, i);
        cr_assert_eq(ctx->tape_len, tape, "%s case %zu: a node was recorded", name, i);
        cr_assert_eq(ctx->arena.used, used, "%s case %zu: the op allocated", name, i);
        char want[160];
        snprintf(want, sizeof want, "%s: %s[1, 40, 2] = %.9g violates %s", name, c->which == 3 ? bname : "a",
                 (double)c->value, c->which == 3 ? ballowed : "a <= 0, finite");
        cr_assert(strncmp(msg, want, strlen(want)) == 0, "%s case %zu: message\n  %s\nshould start with\n  %s",
                  name, i, msg, want);
        ox_ctx_clear_error(ctx);
        *p = keep;
        *p2 = keep2;
        assert_ok(ctx, op(ctx, in.q, in.k, in.v, in.beta, in.a, in.s0, &y, &s));
        cr_assert(y && s);
        cr_assert_eq(ctx->tape_len, tape + 1, "%s: the valid call records its node", name);
    }
    ox_ctx_free(ctx);
}

static const guard_case gdn_cases[] = {
    { 3, 1.5f, OX_ERR_ARG }, { 3, -0.25f, OX_ERR_ARG }, { 3, 1.0000001f, OX_ERR_ARG }, { 3, NAN, OX_ERR_NUMERIC },
    { 3, INFINITY, OX_ERR_NUMERIC }, { 4, 0.5f, OX_ERR_ARG }, { 4, 1e-30f, OX_ERR_ARG },
    { 4, NAN, OX_ERR_NUMERIC }, { 4, -INFINITY, OX_ERR_NUMERIC }, { 4, INFINITY, OX_ERR_NUMERIC },
};
static const guard_case ssd_cases[] = {
    { 3, -0.5f, OX_ERR_ARG }, { 3, -1e-30f, OX_ERR_ARG }, { 3, NAN, OX_ERR_NUMERIC },
    { 3, INFINITY, OX_ERR_NUMERIC }, { 4, 0.5f, OX_ERR_ARG }, { 4, NAN, OX_ERR_NUMERIC },
    { 4, -INFINITY, OX_ERR_NUMERIC },
};
#define NCASES(c) (sizeof c / sizeof c[0])

Test(guard, gdn_refuses_values_outside_its_preconditions)
{
    guard_bad_values(ox_nn_gdn, "gdn", "beta", "0 <= beta <= 1", gdn_cases, NCASES(gdn_cases));
    guard_bad_values(ox_nn_gdn_reference, "gdn_reference", "beta", "0 <= beta <= 1", gdn_cases, NCASES(gdn_cases));
}

Test(guard, ssd_refuses_values_outside_its_preconditions)
{
    guard_bad_values(ox_nn_ssd, "ssd", "dt", "dt >= 0, finite", ssd_cases, NCASES(ssd_cases));
    guard_bad_values(ox_nn_ssd_reference, "ssd_reference", "dt", "dt >= 0, finite", ssd_cases, NCASES(ssd_cases));
}

/* The decode steps check the same ranges on beta / dt and a [B, H]: the error leaves state and output as they
 * were; then valid values at the boundaries (0 and 1, a = 0 and -0) run. */
static void guard_step(guard_step_op step, const char *name, const char *bname, float bad_b, float edge_b)
{
    ox_ctx *ctx = test_ctx();
    ox_rng r = ox_rng_seed(9);
    ox_tensor *q = ox_tensor_randn(ctx, &r, OX_DIMS(GB, GH, GK), 0, 1);
    ox_tensor *k = ox_tensor_randn(ctx, &r, OX_DIMS(GB, GH, GK), 0, 1);
    ox_tensor *v = ox_tensor_randn(ctx, &r, OX_DIMS(GB, GH, GV), 0, 1);
    ox_tensor *beta = ox_tensor_rand(ctx, &r, OX_DIMS(GB, GH), 0.1, 0.9);
    ox_tensor *a = ox_tensor_rand(ctx, &r, OX_DIMS(GB, GH), -1.0, -0.01);
    ox_tensor *state = ox_tensor_randn(ctx, &r, OX_DIMS(GB, GH, GV, GK), 0, 0.5);
    ox_tensor *o = ox_tensor_full(ctx, OX_F32, OX_DIMS(GB, GH, GV), 42.0);
    cr_assert(q && k && v && beta && a && state && o);
    unit_rows(k, GK);
    const size_t ns = sizeof(float) * GB * GH * GV * GK, no = sizeof(float) * GB * GH * GV;
    float *s_keep = malloc(ns), *o_keep = malloc(no);
    cr_assert(s_keep && o_keep);
    memcpy(s_keep, ox_tensor_f32(state), ns);
    memcpy(o_keep, ox_tensor_f32(o), no);
    struct { ox_tensor *t; float value; ox_status want; const char *what; } bad[] = {
        { beta, bad_b, OX_ERR_ARG, bname }, { beta, NAN, OX_ERR_NUMERIC, bname },
        { a, 0.25f, OX_ERR_ARG, "a" }, { a, -INFINITY, OX_ERR_NUMERIC, "a" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        float *p = ox_tensor_f32(bad[i].t) + 1 * GH + 2, keep = *p;
        *p = bad[i].value;
        cr_assert_eq(step(ctx, q, k, v, beta, a, state, o), bad[i].want, "%s case %zu: %s", name, i,
                     ox_ctx_message(ctx));
        char want[96];
        snprintf(want, sizeof want, "%s: %s[1, 2] = %.9g violates", name, bad[i].what, (double)bad[i].value);
        cr_assert(strstr(ox_ctx_message(ctx), want), "%s case %zu: %s (want %s)", name, i, ox_ctx_message(ctx), want);
        cr_assert(memcmp(s_keep, ox_tensor_f32(state), ns) == 0 && memcmp(o_keep, ox_tensor_f32(o), no) == 0,
                  "%s case %zu: state or output changed", name, i);
        ox_ctx_clear_error(ctx);
        *p = keep;
    }
    for (int64_t i = 0; i < GB * GH; i++) {
        ox_tensor_f32(beta)[i] = i % 2 ? edge_b : 0.0f;
        ox_tensor_f32(a)[i] = i % 3 ? 0.0f : -0.0f;
    }
    assert_ok(ctx, step(ctx, q, k, v, beta, a, state, o));
    for (int64_t i = 0; i < GB * GH * GV; i++)
        cr_assert(isfinite(ox_tensor_f32(o)[i]) && ox_tensor_f32(o)[i] != 42.0f, "%s: output %lld", name, (long long)i);
    free(s_keep);
    free(o_keep);
    ox_ctx_free(ctx);
}

Test(guard, steps_refuse_values_outside_their_preconditions)
{
    guard_step(ox_nn_gdn_step, "gdn_step", "beta", 1.5f, 1.0f);
    guard_step(ox_nn_ssd_step, "ssd_step", "dt", -0.5f, 2.0f);
}

/* Values at the boundaries still run, with finite outputs, in the fast and the reference form alike:
 * GDN beta in {0, 1} and a in {0, -0} everywhere (no decay: with unit-norm k, I - k k^T is a projection,
 * so the state stays bounded); SSD dt in {0, 0.5} and a = 0. The two forms agree to rel 1e-4 (the fp32
 * tolerance of the model-like comparison in test_gdn.c / test_ssd.c: with no decay nothing is better
 * conditioned, but 70 steps of sums of unit-size terms are far from fp32 trouble). */
static void guard_boundaries(guard_seq_op fast, guard_seq_op ref, const char *name, float hi)
{
    ox_ctx *ctx = test_ctx();
    guard_in in = guard_inputs(ctx, 7);
    for (int64_t b = 0; b < GB; b++)
        for (int64_t t = 0; t < GT; t++)
            for (int64_t h = 0; h < GH; h++) {
                *at3(in.beta, b, t, h) = (t + h) % 2 ? hi : 0.0f;
                *at3(in.a, b, t, h) = t % 3 ? 0.0f : -0.0f;
            }
    ox_tensor *y[2] = { NULL, NULL }, *s[2] = { NULL, NULL };
    assert_ok(ctx, fast(ctx, in.q, in.k, in.v, in.beta, in.a, in.s0, &y[0], &s[0]));
    assert_ok(ctx, ref(ctx, in.q, in.k, in.v, in.beta, in.a, in.s0, &y[1], &s[1]));
    const int64_t ny = GB * GT * GH * GV, nsf = GB * GH * GV * GK;
    for (int i = 0; i < 2; i++) {
        for (int64_t j = 0; j < ny; j++)
            cr_assert(isfinite(ox_tensor_f32(y[i])[j]), "%s form %d: y[%lld] not finite", name, i, (long long)j);
        for (int64_t j = 0; j < nsf; j++)
            cr_assert(isfinite(ox_tensor_f32(s[i])[j]), "%s form %d: state not finite", name, i);
    }
    const double ey = rel_err(ox_tensor_f32(y[0]), ox_tensor_f32(y[1]), ny);
    const double es = rel_err(ox_tensor_f32(s[0]), ox_tensor_f32(s[1]), nsf);
    cr_log_info("%s at the boundaries: fast vs reference rel(y) = %.2g, rel(state) = %.2g", name, ey, es);
    cr_assert(ey <= 1e-4 && es <= 1e-4, "%s: fast vs reference rel(y) = %.3g, rel(state) = %.3g", name, ey, es);
    ox_ctx_free(ctx);
}

Test(guard, gdn_runs_at_the_boundaries)
{
    guard_boundaries(ox_nn_gdn, ox_nn_gdn_reference, "gdn", 1.0f);
}

Test(guard, ssd_runs_at_the_boundaries)
{
    guard_boundaries(ox_nn_ssd, ox_nn_ssd_reference, "ssd", 0.5f);
}
