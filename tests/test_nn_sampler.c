/* test_nn_sampler.c - nn/sampler.h: greedy and top_k = 1 are the argmax (lowest id on ties) and draw nothing;
 * the same seed gives the same tokens; the sampled frequencies follow softmax(z / t) over the top k (and over
 * the top-p nucleus) within 5 standard deviations; top-p keeps the shortest prefix reaching the mass; bad
 * arguments are refused. */
#include <math.h>
#include <string.h>

#include "nn/sampler.h"
#include "test_util.h"

static const float z[6] = { 1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f };

Test(nn_sampler, greedy_is_argmax_and_draws_nothing)
{
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(5), before = rng;
    ox_nn_sampler g = { .temperature = 0 }, k1 = { .temperature = 1.0, .top_k = 1 };
    cr_assert_eq(ox_nn_sample(ctx, z, 6, &g, NULL), 1);     /* ids 1 and 3 tie: the lower */
    cr_assert_eq(ox_nn_sample(ctx, z, 6, &k1, &rng), 1);
    cr_assert_eq(memcmp(&rng, &before, sizeof rng), 0, "greedy consumed a draw");
    ox_ctx_free(ctx);
}

/* Frequencies over n draws against the law of sampler.h (computed here in double). */
static void check_law(double t, int64_t top_k, double top_p, const double *want)
{
    enum { N = 60000 };
    ox_ctx *ctx = test_ctx();
    ox_rng rng = ox_rng_seed(11);
    ox_nn_sampler s = { .temperature = t, .top_k = top_k, .top_p = top_p };
    int64_t count[6] = { 0 };
    for (int i = 0; i < N; i++) {
        int32_t tok = ox_nn_sample(ctx, z, 6, &s, &rng);
        cr_assert(tok >= 0 && tok < 6, "%s", ox_ctx_message(ctx));
        count[tok]++;
    }
    for (int v = 0; v < 6; v++) {
        double p = want[v], sd = sqrt(p * (1 - p) / N);
        cr_assert(fabs((double)count[v] / N - p) <= 5 * sd + 1e-12, "t %g k %lld p %g: id %d freq %g want %g", t,
                  (long long)top_k, top_p, v, (double)count[v] / N, p);
    }
    ox_ctx_free(ctx);
}

static void softmax_over(double t, const int *ids, int n, double *out)
{
    double total = 0;
    memset(out, 0, sizeof(double) * 6);
    for (int i = 0; i < n; i++)
        total += exp((z[ids[i]] - 3.0) / t);
    for (int i = 0; i < n; i++)
        out[ids[i]] = exp((z[ids[i]] - 3.0) / t) / total;
}

Test(nn_sampler, frequencies_follow_the_law)
{
    double want[6];
    static const int all[6] = { 1, 3, 2, 0, 5, 4 }, top3[3] = { 1, 3, 2 }, top2[2] = { 1, 3 };
    softmax_over(0.7, all, 6, want);
    check_law(0.7, 0, 0, want);
    softmax_over(1.3, top3, 3, want);
    check_law(1.3, 3, 0, want);
    /* t = 1: weights 1, 1, e^-1, e^-2, ...; the top two hold 2 / (2 + 0.368 + 0.135 + 0.082 + 0.018) = 0.77 of
     * the mass, so top_p = 0.7 keeps ids 1 and 3 only; 0.8 adds id 2 */
    softmax_over(1.0, top2, 2, want);
    check_law(1.0, 0, 0.7, want);
    softmax_over(1.0, top3, 3, want);
    check_law(1.0, 0, 0.8, want);
}

Test(nn_sampler, seeded_and_refusals)
{
    ox_ctx *ctx = test_ctx();
    ox_nn_sampler s = { .temperature = 1.0, .top_k = 0, .top_p = 0.9 };
    ox_rng a = ox_rng_seed(3), b = ox_rng_seed(3);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(ox_nn_sample(ctx, z, 6, &s, &a), ox_nn_sample(ctx, z, 6, &s, &b));
    cr_assert_eq(ox_nn_sample(ctx, z, 6, &s, NULL), -1);
    cr_assert(strstr(ox_ctx_message(ctx), "rng"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    ox_nn_sampler bad = { .temperature = 1.0, .top_p = -0.5 };
    cr_assert_eq(ox_nn_sample(ctx, z, 6, &bad, &a), -1);
    ox_ctx_clear_error(ctx);
    float nan_z[3] = { 0, NAN, 1 };
    cr_assert_eq(ox_nn_sample(ctx, nan_z, 3, &s, &a), -1);
    cr_assert(strstr(ox_ctx_message(ctx), "not finite"), "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}
