/* test_profile.c - the step profile (tensor/profile.h): exact call and FLOP counts on a known graph (a matmul
 * chain), rows and totals adding up to the wall time, nothing recorded when off, and the kinds of a small
 * Oryx training step. Times are only compared with each other (no tolerance on durations); FLOP counts are
 * exact integers (2 m n k per product), compared exactly. */
#include "test_util.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "models/oryx/train.h"
#include "tensor/profile.h"

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const ox_profile_row *find(const ox_profile_row *rows, int n, const char *name, ox_profile_phase ph)
{
    for (int i = 0; i < n; i++)
        if (rows[i].phase == ph && strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

enum { M = 8, K1 = 16, K2 = 32, N2 = 4 };

/* loss = sum(x W1 W2) with x [M, K1], W1 [K1, K2], W2 [K2, N2]; every tensor requires a gradient. */
static void chain_step(ox_ctx *ctx, ox_rng *rng)
{
    ox_tensor *x = test_leaf(ctx, rng, OX_DIMS(M, K1), 1.0);
    ox_tensor *w1 = test_leaf(ctx, rng, OX_DIMS(K1, K2), 0.25);
    ox_tensor *w2 = test_leaf(ctx, rng, OX_DIMS(K2, N2), 0.2);
    ox_tensor *loss = ox_ag_sum_all(ctx, ox_ag_matmul(ctx, ox_ag_matmul(ctx, x, w1), w2));
    cr_assert_not_null(loss, "%s", ox_ctx_message(ctx));
    assert_ok(ctx, ox_ag_backward(ctx, loss));
    ox_ctx_reset(ctx);
}

Test(profile, matmul_chain_exact_calls_and_flops)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(3);
    double t0 = wall_now();
    assert_ok(ctx, ox_profile_enable(ctx, 1));
    cr_assert(ox_profile_enabled(ctx));
    for (int rep = 0; rep < 3; rep++)
        chain_step(ctx, &rng);
    double wall = wall_now() - t0;

    ox_profile_row rows[OX_PROFILE_MAX_ROWS];
    int n = ox_profile_rows(ctx, rows, OX_PROFILE_MAX_ROWS);
    cr_assert_gt(n, 0);
    const ox_profile_row *mf = find(rows, n, "matmul", OX_PROF_FORWARD);
    const ox_profile_row *mb = find(rows, n, "matmul", OX_PROF_BACKWARD);
    const ox_profile_row *sf = find(rows, n, "reduce", OX_PROF_FORWARD);
    const ox_profile_row *sb = find(rows, n, "reduce", OX_PROF_BACKWARD);
    const ox_profile_row *seed = find(rows, n, "backward.seed", OX_PROF_OTHER);
    cr_assert(mf && mb && sf && sb && seed, "missing kinds (%d rows)", n);
    /* 3 repetitions of: 2 matmuls and a sum forward, the same backward, one seed */
    cr_assert_eq(mf->calls, 6);
    cr_assert_eq(mb->calls, 6);
    cr_assert_eq(sf->calls, 3);
    cr_assert_eq(sb->calls, 3);
    cr_assert_eq(seed->calls, 3);
    /* forward: one GEMM per matmul; backward: dA = dC B^T and dB = A^T dC, each the same 2 m n k */
    double fwd = 2.0 * M * K1 * K2 + 2.0 * M * K2 * N2;
    cr_assert_eq(mf->blis_calls, 6);
    cr_assert_eq(mf->blis_flops, 3 * fwd);
    cr_assert_eq(mb->blis_calls, 12);
    cr_assert_eq(mb->blis_flops, 3 * 2 * fwd);
    cr_assert_eq(sf->blis_calls, 0);
    cr_assert_eq(sb->blis_flops, 0);

    ox_profile_totals tot = ox_profile_total(ctx);
    cr_assert_eq(tot.blis_calls, 18);
    cr_assert_eq(tot.blis_flops, 9 * fwd);
    cr_assert_eq(tot.marks, 6 + 6 + 3 + 3 + 3);
    /* exclusive + BLIS time of the rows is the profile's wall time (the same clock readings), which is
     * inside the wall time measured around the loop; 1e-9 s covers the double rounding of the sums */
    cr_assert_leq(fabs(tot.seconds + tot.blis_seconds - tot.wall), 1e-9);
    cr_assert_leq(tot.wall, wall);
    for (int i = 0; i < n; i++)
        cr_assert(rows[i].seconds >= 0 && rows[i].blis_seconds >= 0, "%s", rows[i].name);
    cr_assert_gt(mf->blis_seconds, 0);

    /* reset empties the table; disabling frees it and stops the BLIS accounting */
    ox_profile_reset(ctx);
    cr_assert_eq(ox_profile_rows(ctx, rows, OX_PROFILE_MAX_ROWS), 0);
    cr_assert_eq(ox_profile_total(ctx).marks, 0);
    assert_ok(ctx, ox_profile_enable(ctx, 0));
    cr_assert_not(ox_profile_enabled(ctx));
    cr_assert_not(ox_profile_blis_active());
    ox_ctx_free(ctx);
}

Test(profile, disabled_records_nothing)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(4);
    cr_assert_not(ox_profile_enabled(ctx));
    cr_assert_not(ox_profile_blis_active());
    chain_step(ctx, &rng);
    ox_profile_row rows[4];
    cr_assert_eq(ox_profile_rows(ctx, rows, 4), 0);
    ox_profile_totals tot = ox_profile_total(ctx);
    cr_assert(tot.marks == 0 && tot.blis_calls == 0 && tot.wall == 0 && tot.blis_flops == 0);
    /* on, then off again before any work: still nothing, and an explicit mark is a no-op */
    assert_ok(ctx, ox_profile_enable(ctx, 1));
    assert_ok(ctx, ox_profile_enable(ctx, 0));
    OX_PROFILE_MARK(ctx, "x", OX_PROF_OTHER);
    chain_step(ctx, &rng);
    cr_assert_eq(ox_profile_rows(ctx, rows, 4), 0);
    ox_ctx_free(ctx);
}

Test(profile, row_table_overflow_goes_to_one_row)
{
    ox_ctx *ctx = test_ctx();
    assert_ok(ctx, ox_profile_enable(ctx, 1));
    static char names[OX_PROFILE_MAX_ROWS + 10][16];
    for (int i = 0; i < OX_PROFILE_MAX_ROWS + 10; i++) {
        snprintf(names[i], sizeof names[i], "kind%d", i);
        OX_PROFILE_MARK(ctx, names[i], OX_PROF_OTHER);
    }
    ox_profile_row rows[OX_PROFILE_MAX_ROWS];
    int n = ox_profile_rows(ctx, rows, OX_PROFILE_MAX_ROWS);
    cr_assert_eq(n, OX_PROFILE_MAX_ROWS);
    cr_assert_str_eq(rows[n - 1].name, "(other kinds)");
    cr_assert_eq(rows[n - 1].calls, 11);        /* kinds MAX-1 .. MAX+9 */
    cr_assert_eq(ox_profile_total(ctx).marks, OX_PROFILE_MAX_ROWS + 10);
    ox_ctx_free(ctx);                           /* frees the table */
}

/* A small oryx-gdn training step: the trainer's sections, the model's forward and backward kinds, BLIS work
 * in both phases; the rows add up to the profile's wall time, which is inside the measured one. */
Test(profile, oryx_train_step_kinds)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_data all, data;
    assert_ok(ctx, ox_oryx_data_load(ctx, "data/tinyshakespeare.txt", 32, &all));
    assert_ok(ctx, ox_oryx_data_from_bytes(ctx, all.bytes, 8192, 32, &data));
    ox_oryx_data_free(&all);
    ox_oryx_config cfg;
    assert_ok(ctx, ox_oryx_config_preset(ctx, "oryx-gdn", 2, &cfg));
    cfg.d_model = 32;
    cfg.n_heads = 2;
    cfg.d_k = cfg.d_v = 16;
    cfg.mlp_hidden = 64;
    ox_rng rng = ox_rng_seed(7);
    ox_oryx_model m;
    assert_ok(ctx, ox_oryx_model_init(ctx, &m, &cfg, &rng));
    ox_oryx_train_config tc = ox_oryx_train_defaults();
    tc.batch = 2;
    tc.seq_len = 32;
    tc.map.chunk = 16;
    ox_oryx_trainer tr;
    assert_ok(ctx, ox_oryx_trainer_init(ctx, &tr, &m, &data, &tc));

    double t0 = wall_now();
    assert_ok(ctx, ox_profile_enable(ctx, 1));
    for (int s = 0; s < 2; s++)
        assert_ok(ctx, ox_oryx_train_step(ctx, &tr, NULL));
    double wall = wall_now() - t0;
    ox_profile_row rows[OX_PROFILE_MAX_ROWS];
    int n = ox_profile_rows(ctx, rows, OX_PROFILE_MAX_ROWS);
    cr_assert_lt(n, OX_PROFILE_MAX_ROWS);
    const char *other[] = { "zero_grad", "data", "backward.seed", "arena.reset", "optim.clip", "optim.adamw" };
    for (int i = 0; i < 6; i++) {
        const ox_profile_row *r = find(rows, n, other[i], OX_PROF_OTHER);
        cr_assert(r, "no row %s", other[i]);
        cr_assert_eq(r->calls, 2, "%s: %lld calls", other[i], (long long)r->calls);    /* accum 1, 2 steps */
    }
    const char *kinds[] = { "linear", "rmsnorm", "cross_entropy", "gather_rows" };
    for (int i = 0; i < 4; i++) {
        const ox_profile_row *f = find(rows, n, kinds[i], OX_PROF_FORWARD);
        const ox_profile_row *b = find(rows, n, kinds[i], OX_PROF_BACKWARD);
        cr_assert(f && b, "no forward/backward rows for %s", kinds[i]);
        cr_assert_eq(f->calls % 2, 0);
        cr_assert_gt(b->calls, 0);
    }
    cr_assert_eq(find(rows, n, "cross_entropy", OX_PROF_FORWARD)->calls, 2);
    cr_assert_gt(find(rows, n, "linear", OX_PROF_FORWARD)->blis_flops, 0);
    cr_assert_gt(find(rows, n, "linear", OX_PROF_BACKWARD)->blis_flops, 0);
    ox_profile_totals tot = ox_profile_total(ctx);
    cr_assert_leq(fabs(tot.seconds + tot.blis_seconds - tot.wall), 1e-9);
    cr_assert_leq(tot.wall, wall);
    cr_assert(tot.blis_seconds > 0 && tot.blis_seconds < tot.wall);

    ox_oryx_trainer_free(&tr);
    ox_oryx_model_free(&m);
    ox_oryx_data_free(&data);
    ox_ctx_free(ctx);
}
