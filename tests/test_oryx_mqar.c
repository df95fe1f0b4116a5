/* test_oryx_mqar.c - MQAR (models/oryx/mqar.h, MODELS.md 10 and 11 item 19): the generator's layout and
 * invariants on many seeds, determinism and per-example streams, validation errors, the power-law gap
 * distribution (against exact expectations computed here from the weights), accuracy on hand-made logits,
 * the query-only and sweep mode maps, and the trainer: an attention model learns recall far above chance,
 * steps allocate nothing after the first one, and the same seed gives the same loss curve. */
#include <string.h>

#include "autograd/tape.h"
#include "models/oryx/mqar.h"
#include "test_util.h"

/* Generates B examples of task t (first example `first` of `seed`) into arena tensors. */
static void gen(ox_ctx *ctx, const ox_oryx_mqar_task *t, uint64_t seed, uint64_t first, int64_t B, ox_tensor **x,
                ox_tensor **y, ox_tensor **q)
{
    *x = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, t->seq_len));
    *y = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, t->seq_len));
    *q = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, t->n_pairs));
    cr_assert(*x && *y && *q);
    assert_ok(ctx, ox_oryx_mqar_generate(ctx, t, seed, first, *x, *y, *q));
}

/* Every invariant of MODELS 10.1 / 11.19 on one example. */
static void check_example(const ox_oryx_mqar_task *t, const int32_t *x, const int32_t *y, const int32_t *q)
{
    int64_t V = t->vocab, T = t->seq_len, N = t->n_pairs, half = V / 2;
    char seen_key[1 << 12] = { 0 }, seen_val[1 << 12] = { 0 }, is_query[1 << 12] = { 0 };
    for (int64_t i = 0; i < N; i++) {                       /* context: k_1 v_1 ... k_N v_N */
        int32_t k = x[2 * i], v = x[2 * i + 1];
        cr_assert(k >= 1 && k <= half - 1, "key %d outside 1..%lld", k, (long long)(half - 1));
        cr_assert(v >= half && v <= V - 1, "value %d outside %lld..%lld", v, (long long)half, (long long)(V - 1));
        cr_assert(!seen_key[k], "key %d repeated", k);
        cr_assert(!seen_val[v], "value %d repeated", v);
        seen_key[k] = seen_val[v] = 1;
        cr_assert_eq(y[2 * i], OX_ORYX_MQAR_IGNORE);
        cr_assert_eq(y[2 * i + 1], OX_ORYX_MQAR_IGNORE);
    }
    for (int64_t i = 0; i < N; i++) {                       /* query i: key i at an even offset, target value i */
        int32_t p = q[i];
        cr_assert(p >= 2 * N && p < T, "query %d outside the query region [%lld, %lld)", p, (long long)(2 * N),
                  (long long)T);
        cr_assert_eq((p - 2 * N) % 2, 0, "query at odd offset %lld", (long long)(p - 2 * N));
        cr_assert(!is_query[p], "two queries at %d", p);
        is_query[p] = 1;
        cr_assert_eq(x[p], x[2 * i], "query %lld holds %d, not its key %d", (long long)i, x[p], x[2 * i]);
        cr_assert_eq(y[p], x[2 * i + 1], "target at %d is %d, not the paired value %d", p, y[p], x[2 * i + 1]);
    }
    int64_t n_targets = 0;
    for (int64_t p = 0; p < T; p++) {
        cr_assert(x[p] >= 0 && x[p] < V, "token %d at %lld outside [0, V)", x[p], (long long)p);
        if (y[p] != OX_ORYX_MQAR_IGNORE) {
            n_targets++;
            cr_assert(is_query[p], "target at non-query position %lld", (long long)p);
        }
        if (p >= 2 * N && !is_query[p] && !t->random_non_queries)
            cr_assert_eq(x[p], 0, "filler at %lld is %d, not 0", (long long)p, x[p]);
    }
    cr_assert_eq(n_targets, N, "%lld targets for %lld pairs", (long long)n_targets, (long long)N);
}

Test(oryx_mqar, generator_invariants_on_many_seeds)
{
    ox_ctx *ctx = test_ctx();
    /* the defaults, zoology's smallest slice, and a tight one: every key used (V/2 - 1 = N), 4N = T - 4 */
    ox_oryx_mqar_task tasks[] = { ox_oryx_mqar_task_make(256, 256, 16), ox_oryx_mqar_task_make(256, 128, 8),
                                  ox_oryx_mqar_task_make(64, 64, 4), ox_oryx_mqar_task_make(16, 32, 7),
                                  ox_oryx_mqar_task_make(8, 12, 3) };
    int n_tasks = (int)(sizeof tasks / sizeof tasks[0]);
    int64_t B = 6;
    for (int k = 0; k < n_tasks; k++)
        for (int rnq = 0; rnq < 2; rnq++)
            for (uint64_t seed = 1; seed <= 40; seed++) {
                ox_oryx_mqar_task t = tasks[k];
                t.random_non_queries = rnq;
                ox_tensor *x, *y, *q;
                gen(ctx, &t, seed, seed * 7, B, &x, &y, &q);
                for (int64_t b = 0; b < B; b++)
                    check_example(&t, ox_tensor_i32(x) + b * t.seq_len, ox_tensor_i32(y) + b * t.seq_len,
                                  ox_tensor_i32(q) + b * t.n_pairs);
                ox_ctx_reset(ctx);
            }
    ox_ctx_free(ctx);
}

Test(oryx_mqar, same_seed_same_batch_and_per_example_streams)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_mqar_task t = ox_oryx_mqar_task_make(256, 128, 8);
    ox_tensor *x1, *y1, *q1, *x2, *y2, *q2, *x3, *y3, *q3, *x4, *y4, *q4;
    gen(ctx, &t, 5, 0, 8, &x1, &y1, &q1);
    gen(ctx, &t, 5, 0, 8, &x2, &y2, &q2);
    size_t row = sizeof(int32_t) * (size_t)t.seq_len, qrow = sizeof(int32_t) * (size_t)t.n_pairs;
    cr_assert_eq(memcmp(ox_tensor_i32(x1), ox_tensor_i32(x2), 8 * row), 0);
    cr_assert_eq(memcmp(ox_tensor_i32(y1), ox_tensor_i32(y2), 8 * row), 0);
    cr_assert_eq(memcmp(ox_tensor_i32(q1), ox_tensor_i32(q2), 8 * qrow), 0);
    /* examples 3..5 generated on their own equal rows 3..5 of the batch (one stream per example) */
    gen(ctx, &t, 5, 3, 3, &x3, &y3, &q3);
    cr_assert_eq(memcmp(ox_tensor_i32(x3), ox_tensor_i32(x1) + 3 * t.seq_len, 3 * row), 0);
    cr_assert_eq(memcmp(ox_tensor_i32(y3), ox_tensor_i32(y1) + 3 * t.seq_len, 3 * row), 0);
    /* another seed gives other examples; other examples of one seed differ from each other */
    gen(ctx, &t, 6, 0, 8, &x4, &y4, &q4);
    cr_assert_neq(memcmp(ox_tensor_i32(x1), ox_tensor_i32(x4), 8 * row), 0);
    cr_assert_neq(memcmp(ox_tensor_i32(x1), ox_tensor_i32(x1) + t.seq_len, row), 0);
    /* the thread count plays no part */
    ox_ctx_set_threads(ctx, 2);
    gen(ctx, &t, 5, 0, 8, &x2, &y2, &q2);
    cr_assert_eq(memcmp(ox_tensor_i32(x1), ox_tensor_i32(x2), 8 * row), 0);
    ox_ctx_free(ctx);
}

/* Runs generate on a bad task or bad tensors and checks the error and a fragment of its message. */
static void expect_gen_error(ox_ctx *ctx, const ox_oryx_mqar_task *t, ox_tensor *x, ox_tensor *y, ox_tensor *q,
                             ox_status want, const char *fragment)
{
    ox_status s = ox_oryx_mqar_generate(ctx, t, 1, 0, x, y, q);
    cr_assert_eq(s, want, "status %d, message '%s'", (int)s, ox_ctx_message(ctx));
    cr_assert_not_null(strstr(ox_ctx_message(ctx), fragment), "message '%s' lacks '%s'", ox_ctx_message(ctx),
                       fragment);
    ox_ctx_clear_error(ctx);
}

Test(oryx_mqar, validation_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *x = ox_tensor_empty(ctx, OX_I32, OX_DIMS(2, 64)), *y = ox_tensor_empty(ctx, OX_I32, OX_DIMS(2, 64));
    ox_tensor *q = ox_tensor_empty(ctx, OX_I32, OX_DIMS(2, 4));
    ox_oryx_mqar_task t = ox_oryx_mqar_task_make(63, 64, 4);
    expect_gen_error(ctx, &t, x, y, q, OX_ERR_ARG, "V = 63 must be even");
    t = ox_oryx_mqar_task_make(64, 63, 4);
    expect_gen_error(ctx, &t, x, y, q, OX_ERR_ARG, "T = 63 must be even");
    t = ox_oryx_mqar_task_make(8, 64, 4);          /* keys 1..3: only 3 */
    expect_gen_error(ctx, &t, x, y, q, OX_ERR_ARG, "V/2 - 1 >= N");
    t = ox_oryx_mqar_task_make(64, 64, 17);
    expect_gen_error(ctx, &t, x, y, q, OX_ERR_ARG, "4N <= T");
    t = ox_oryx_mqar_task_make(64, 64, 0);
    expect_gen_error(ctx, &t, x, y, q, OX_ERR_ARG, "N = 0");
    t = ox_oryx_mqar_task_make(64, 64, 4);
    t.power_a = 0;
    expect_gen_error(ctx, &t, x, y, q, OX_ERR_ARG, "pa = 0");
    t = ox_oryx_mqar_task_make(64, 32, 4);          /* tensors are [2, 64], not [2, 32] */
    expect_gen_error(ctx, &t, x, y, q, OX_ERR_SHAPE, "[2, 64] must be contiguous I32 [2, 32]");
    t = ox_oryx_mqar_task_make(64, 64, 4);
    ox_tensor *f = ox_tensor_empty(ctx, OX_F32, OX_DIMS(2, 64));
    expect_gen_error(ctx, &t, f, y, q, OX_ERR_DTYPE, "");
    ox_tensor *xt = ox_tensor_view_transpose(ctx, ox_tensor_empty(ctx, OX_I32, OX_DIMS(64, 2)), 0, 1);
    expect_gen_error(ctx, &t, xt, y, q, OX_ERR_SHAPE, "contiguous");
    ox_tensor *q5 = ox_tensor_empty(ctx, OX_I32, OX_DIMS(2, 5));
    expect_gen_error(ctx, &t, x, y, q5, OX_ERR_SHAPE, "queries");
    /* sticky: a failed context refuses without touching the tensors */
    ox_ctx_fail(ctx, OX_ERR_ARG, "earlier failure");
    cr_assert_eq(ox_oryx_mqar_generate(ctx, &t, 1, 0, x, y, q), OX_ERR_ARG);
    cr_assert_str_eq(ox_ctx_message(ctx), "earlier failure");
    ox_ctx_free(ctx);
}

/* Exact mean and variance of the first two gap draws (without replacement, by weight), from w. */
static void gap_moments(const double *w, int64_t S, double m[2], double var[2])
{
    double W = 0;
    for (int64_t g = 0; g < S; g++)
        W += w[g];
    double e1 = 0, e1s = 0, e2 = 0, e2s = 0;
    for (int64_t g = 0; g < S; g++) {
        double p = w[g] / W;
        e1 += p * (double)g;
        e1s += p * (double)g * (double)g;
        for (int64_t h = 0; h < S; h++)     /* P(first = g, second = h) = p_g * w_h / (W - w_g) */
            if (h != g) {
                double p2 = p * w[h] / (W - w[g]);
                e2 += p2 * (double)h;
                e2s += p2 * (double)h * (double)h;
            }
    }
    m[0] = e1;
    m[1] = e2;
    var[0] = e1s - e1 * e1;
    var[1] = e2s - e2 * e2;
}

Test(oryx_mqar, gaps_follow_the_power_law)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_mqar_task t = ox_oryx_mqar_task_make(256, 256, 16);
    int64_t S = (t.seq_len - 2 * t.n_pairs) / 2, N = t.n_pairs;     /* 112 gap indices */
    double w[112], wl[112];
    for (int64_t g = 0; g < S; g++)                                 /* MODELS 10.1: w_j = pa j^(pa-1), j = g+1 */
        w[g] = 0.01 * pow((double)(g + 1), 0.01 - 1.0);
    cr_assert_eq(ox_oryx_mqar_gap_weights(&t, wl), S);
    for (int64_t g = 0; g < S; g++)
        cr_assert(fabs(wl[g] - w[g]) <= 1e-15 * w[g], "weight %lld: %g vs %g", (long long)g, wl[g], w[g]);
    double mean[2], var[2];
    gap_moments(w, S, mean, var);
    /* Sample means of the first and second gap indices over M examples must lie within 5 standard errors
     * (sqrt(var / M)) of the exact expectations: a false failure has probability ~6e-7 per check. A uniform
     * law (mean 55.5, vs ~27 here) or a draw with replacement (second mean = first mean, ~2 SE apart only
     * for the second draw but caught by the first's variance check below) is far outside. */
    int64_t M = test_small() ? 1000 : 4000, B = 250;
    double sum[2] = { 0, 0 }, sq = 0;
    for (int64_t first = 0; first < M; first += B) {
        ox_tensor *x, *y, *q;
        gen(ctx, &t, 99, (uint64_t)first, B, &x, &y, &q);
        for (int64_t b = 0; b < B; b++)
            for (int i = 0; i < 2; i++) {
                double g = (double)((ox_tensor_i32(q)[b * N + i] - 2 * N) / 2);
                sum[i] += g;
                if (i == 0)
                    sq += g * g;
            }
        ox_ctx_reset(ctx);
    }
    for (int i = 0; i < 2; i++) {
        double se = sqrt(var[i] / (double)M), got = sum[i] / (double)M;
        cr_assert(fabs(got - mean[i]) <= 5 * se, "gap %d: sample mean %.3f, exact %.3f, 5 SE = %.3f", i, got, mean[i],
                  5 * se);
    }
    /* the first gap's sample variance within 20% of the exact one (its relative SE is ~3% at M = 1000) */
    double v1 = sq / (double)M - (sum[0] / (double)M) * (sum[0] / (double)M);
    cr_assert(fabs(v1 - var[0]) <= 0.2 * var[0], "first gap variance %.2f, exact %.2f", v1, var[0]);
    ox_ctx_free(ctx);
}

Test(oryx_mqar, accuracy_on_hand_made_logits)
{
    ox_ctx *ctx = test_ctx();
    /* logits stored [B, V, T] and viewed as [B, T, V] (non-contiguous); B = 2, T = 3, V = 4 */
    ox_tensor *store = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 4, 3));
    float *s = ox_tensor_f32(store);
#define Z(b, t, v) s[(b) * 12 + (v) * 3 + (t)]
    Z(0, 0, 2) = 5;                 /* argmax 2; target 2: right */
    Z(0, 1, 1) = 1;                 /* argmax 1; target 3: wrong */
    Z(0, 2, 3) = 9;                 /* ignored position: argmax irrelevant */
    Z(1, 0, 0) = 4, Z(1, 0, 3) = 4; /* tie between 0 and 3: the first maximum (0) counts; target 3: wrong */
    Z(1, 1, 3) = -1, Z(1, 1, 0) = -2, Z(1, 1, 1) = -3, Z(1, 1, 2) = -4;  /* all negative: argmax 3 = target */
    Z(1, 2, 1) = 2;                 /* target 1: right */
#undef Z
    ox_tensor *logits = ox_tensor_view_transpose(ctx, store, 1, 2);
    ox_tensor *y = ox_tensor_empty(ctx, OX_I32, OX_DIMS(2, 3));
    int32_t yv[] = { 2, 3, OX_ORYX_MQAR_IGNORE, 3, 3, 1 };
    memcpy(ox_tensor_i32(y), yv, sizeof yv);
    int64_t c = -1, n = -1;
    assert_ok(ctx, ox_oryx_mqar_accuracy(ctx, logits, y, &c, &n));
    cr_assert_eq(n, 5);
    cr_assert_eq(c, 3);
    /* errors: mismatched shapes, wrong dtype */
    ox_tensor *y2 = ox_tensor_empty(ctx, OX_I32, OX_DIMS(2, 4));
    cr_assert_eq(ox_oryx_mqar_accuracy(ctx, logits, y2, &c, &n), OX_ERR_SHAPE);
    cr_assert_not_null(strstr(ox_ctx_message(ctx), "[2, 3, 4]"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_oryx_mqar_accuracy(ctx, logits, logits, &c, &n), OX_ERR_DTYPE);
    ox_ctx_free(ctx);
}

/* Number of ATTN entries of row b, and whether every query of row b is ATTN / how many are. */
static int64_t count_attn(const ox_tensor *m, int64_t b, int64_t T)
{
    int64_t k = 0;
    for (int64_t t = 0; t < T; t++)
        k += ox_tensor_i32(m)[b * T + t] == OX_NN_ATTN;
    return k;
}

static int64_t queries_attn(const ox_tensor *m, const ox_tensor *q, int64_t b, int64_t T, int64_t N)
{
    int64_t k = 0;
    for (int64_t i = 0; i < N; i++)
        k += ox_tensor_i32(m)[b * T + ox_tensor_i32(q)[b * N + i]] == OX_NN_ATTN;
    return k;
}

Test(oryx_mqar, query_only_and_sweep_maps)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_mqar_task t = ox_oryx_mqar_task_make(256, 256, 16);
    int64_t B = 5, T = t.seq_len, N = t.n_pairs;
    ox_tensor *x, *y, *q;
    gen(ctx, &t, 3, 0, B, &x, &y, &q);
    ox_oryx_map_spec spec = { .kind = OX_ORYX_MAP_QUERIES, .seed = 11 };
    ox_tensor *m = ox_oryx_mqar_map(ctx, &spec, q, T, 0);
    cr_assert_not_null(m, "%s", ox_ctx_message(ctx));
    cr_assert(m->ndim == 2 && m->shape[0] == B && m->shape[1] == T);
    for (int64_t b = 0; b < B; b++) {       /* ATTN exactly where the targets are: fraction N / T */
        cr_assert_eq(count_attn(m, b, T), N);
        for (int64_t p = 0; p < T; p++)
            cr_assert_eq(ox_tensor_i32(m)[b * T + p] == OX_NN_ATTN, ox_tensor_i32(y)[b * T + p] != OX_ORYX_MQAR_IGNORE);
    }
    spec.kind = OX_ORYX_MAP_LIN;
    m = ox_oryx_mqar_map(ctx, &spec, q, T, 0);
    for (int64_t b = 0; b < B; b++)
        cr_assert_eq(count_attn(m, b, T), 0);
    spec.kind = OX_ORYX_MAP_ATTN;
    m = ox_oryx_mqar_map(ctx, &spec, q, T, 0);
    for (int64_t b = 0; b < B; b++)
        cr_assert_eq(count_attn(m, b, T), T);
    /* sweep: K = round(f T) ATTN tokens; the queries first */
    double fr[] = { 0, 1.0 / 32, 1.0 / 16, 0.1, 1.0 / 8, 1.0 / 4, 1.0 / 2, 0.77, 1 };
    spec.kind = OX_ORYX_MAP_SWEEP;
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++) {
        spec.fraction = fr[i];
        int64_t K = (int64_t)llround(fr[i] * (double)T);
        m = ox_oryx_mqar_map(ctx, &spec, q, T, 4);
        ox_tensor *m2 = ox_oryx_mqar_map(ctx, &spec, q, T, 4);
        cr_assert(m && m2, "%s", ox_ctx_message(ctx));
        cr_assert_eq(memcmp(ox_tensor_i32(m), ox_tensor_i32(m2), sizeof(int32_t) * (size_t)(B * T)), 0,
                     "same seed and stream, different maps");
        for (int64_t b = 0; b < B; b++) {
            cr_assert_eq(count_attn(m, b, T), K, "f = %g: %lld ATTN, want %lld", fr[i], (long long)count_attn(m, b, T),
                         (long long)K);
            cr_assert_eq(queries_attn(m, q, b, T, N), K < N ? K : N, "f = %g: queries not first", fr[i]);
        }
    }
    /* a sweep with K > N differs across examples and streams (the extra positions are random) */
    spec.fraction = 0.25;
    m = ox_oryx_mqar_map(ctx, &spec, q, T, 4);
    ox_tensor *m3 = ox_oryx_mqar_map(ctx, &spec, q, T, 5);
    cr_assert_neq(memcmp(ox_tensor_i32(m), ox_tensor_i32(m3), sizeof(int32_t) * (size_t)(B * T)), 0);
    /* errors */
    spec.fraction = 1.5;
    cr_assert_null(ox_oryx_mqar_map(ctx, &spec, q, T, 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    spec.kind = OX_ORYX_MAP_QUERIES;
    spec.fraction = 0.5;
    cr_assert_null(ox_oryx_mqar_map(ctx, &spec, q, 40, 0));      /* queries beyond T = 40 */
    cr_assert_not_null(strstr(ox_ctx_message(ctx), "outside [0, 40)"), "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}

/* A tiny model of `preset` (D 32, 2 heads of 16, L layers) on vocab V. */
static void tiny_model(ox_ctx *ctx, ox_oryx_model *m, const char *preset, int64_t L, int64_t V, int64_t D)
{
    ox_oryx_config cfg;
    assert_ok(ctx, ox_oryx_config_preset(ctx, preset, L, &cfg));
    cfg.vocab = V;
    cfg.d_model = D;
    cfg.n_heads = 2;
    cfg.d_k = cfg.d_v = D / 2;
    cfg.mlp_hidden = ox_oryx_default_mlp_hidden(D);
    ox_rng rng = ox_rng_seed(7);
    assert_ok(ctx, ox_oryx_model_init(ctx, m, &cfg, &rng));
}

/* A 2-layer Transformer (D 64) trained on MQAR with V = 32 (keys 1..15, values 16..31, chance 1/16),
 * (T, N) = (32, 4) and (16, 2) alternately, 300 steps. Measured held-out accuracy: 0.998 (batch 32),
 * 0.93 (batch 16, the sanitizer run), from 0.00 untrained; we require > 0.5, eight times chance: a model that cannot read the context stays near 1/16 (it can at best
 * learn that the answer is a value, 1/16), so only recall passes. */
Test(oryx_mqar, attention_learns_recall, .timeout = 60)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_model m;
    tiny_model(ctx, &m, "transformer", 2, 32, 64);
    ox_oryx_mqar_train_config tc = ox_oryx_mqar_train_defaults();
    tc.n_slices = 2;
    tc.slices[0] = ox_oryx_mqar_task_make(32, 32, 4);
    tc.slices[1] = ox_oryx_mqar_task_make(32, 16, 2);
    tc.batch = test_small() ? 16 : 32;      /* the sanitizer build runs ~5x slower: half the work per step */
    tc.warmup = 20;
    tc.total_steps = 300;
    ox_oryx_mqar_trainer tr;
    assert_ok(ctx, ox_oryx_mqar_trainer_init(ctx, &tr, &m, &tc));
    ox_oryx_map_spec attn = { .kind = OX_ORYX_MAP_ATTN };
    int64_t c0, n0, c, n;
    assert_ok(ctx, ox_oryx_mqar_evaluate(ctx, &m, &tc.slices[0], 128, 77, &attn, &c0, &n0));
    assert_ok(ctx, ox_oryx_mqar_train_run(ctx, &tr, 0, NULL, NULL));
    cr_assert_eq(tr.step, tc.total_steps);
    assert_ok(ctx, ox_oryx_mqar_evaluate(ctx, &m, &tc.slices[0], 128, 77, &attn, &c, &n));
    cr_assert_eq(n, 128 * 4);
    double before = (double)c0 / (double)n0, after = (double)c / (double)n;
    cr_log_info("accuracy before %.4f, after %.4f", before, after);
    cr_assert(before < 0.15, "untrained accuracy %.4f", before);
    cr_assert(after > 0.5, "accuracy after %lld steps: %.4f (chance 1/16)", (long long)tr.step, after);
    ox_oryx_mqar_trainer_free(&tr);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}

/* An Oryx-GDN model with two slices and mixed maps: from the second step on, nothing is allocated
 * (ox_alloc_count flat), and a second run from the same seed gives bit-identical losses. */
Test(oryx_mqar, trainer_allocates_nothing_after_the_first_step_and_is_deterministic)
{
    double losses[2][8];
    for (int run = 0; run < 2; run++) {
        ox_ctx *ctx = test_ctx();
        ox_oryx_model m;
        tiny_model(ctx, &m, "oryx-gdn", 2, 64, 32);
        ox_oryx_mqar_train_config tc = ox_oryx_mqar_train_defaults();
        tc.n_slices = 2;
        tc.slices[0] = ox_oryx_mqar_task_make(64, 64, 4);
        tc.slices[1] = ox_oryx_mqar_task_make(64, 128, 8);
        tc.batch = 4;
        tc.warmup = 2;
        tc.total_steps = 8;
        tc.map.chunk = 16;
        ox_oryx_mqar_trainer tr;
        assert_ok(ctx, ox_oryx_mqar_trainer_init(ctx, &tr, &m, &tc));
        uint64_t mark = 0;
        for (int s = 0; s < 8; s++) {
            ox_oryx_mqar_train_stats st;
            assert_ok(ctx, ox_oryx_mqar_train_step(ctx, &tr, &st));
            cr_assert_eq(st.slice, s % 2);
            cr_assert_eq(st.step, s + 1);
            cr_assert(isfinite(st.loss) && st.loss > 0);
            losses[run][s] = st.loss;
            if (s == 0)
                mark = ox_alloc_count();
        }
        cr_assert_eq(ox_alloc_count(), mark, "%llu allocations after the first step",
                     (unsigned long long)(ox_alloc_count() - mark));
        ox_oryx_mqar_trainer_free(&tr);
        ox_oryx_model_free(&m);
        ox_ctx_free(ctx);
    }
    cr_assert_eq(memcmp(losses[0], losses[1], sizeof losses[0]), 0, "same seed, different loss curves");
}

Test(oryx_mqar, trainer_rejects_bad_configs)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_model m;
    tiny_model(ctx, &m, "transformer", 1, 64, 32);
    ox_oryx_mqar_trainer tr;
    ox_oryx_mqar_train_config tc = ox_oryx_mqar_train_defaults();   /* V = 256 slices, model V = 64 */
    cr_assert_eq(ox_oryx_mqar_trainer_init(ctx, &tr, &m, &tc), OX_ERR_ARG);
    cr_assert_not_null(strstr(ox_ctx_message(ctx), "vocab 256 but the model has V = 64"), "%s", ox_ctx_message(ctx));
    cr_assert_null(tr.opt);
    ox_ctx_clear_error(ctx);
    tc.slices[0] = ox_oryx_mqar_task_make(64, 30, 8);
    cr_assert_eq(ox_oryx_mqar_trainer_init(ctx, &tr, &m, &tc), OX_ERR_ARG);
    cr_assert_not_null(strstr(ox_ctx_message(ctx), "4N <= T"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    tc.n_slices = 0;
    cr_assert_eq(ox_oryx_mqar_trainer_init(ctx, &tr, &m, &tc), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    cr_assert_eq(ox_oryx_mqar_train_step(ctx, &tr, NULL), OX_ERR_STATE);   /* not initialised */
    ox_oryx_mqar_trainer_free(&tr);
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
}
