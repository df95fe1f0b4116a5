/* test_oryx_modes.c - the mode-map builders (MODELS.md 8, 11 item 17): sampler statistics, chunk structure,
 * determinism, and the fixed maps. Statistical bounds are about 5 standard deviations (stated per test), so
 * a correct sampler fails with probability < 1e-6 while a wrong law (e.g. r drawn per chunk instead of per
 * sequence, or a biased ratio pick) is far outside them. */
#include "test_util.h"

#include "models/oryx/config.h"
#include "models/oryx/modes.h"

#include <string.h>

/* Every 64-token chunk of every row is constant; returns the number of ATTN chunks and counts rows whose
 * chunks are all LIN into *all_lin. */
static int64_t count_chunks(const ox_tensor *m, int64_t chunk, int64_t *all_lin)
{
    int64_t B = m->shape[0], T = m->shape[1], n = 0;
    *all_lin = 0;
    for (int64_t b = 0; b < B; b++) {
        const int32_t *row = ox_tensor_i32(m) + b * T;
        int64_t nb = 0;
        for (int64_t c = 0; c * chunk < T; c++) {
            int32_t v = row[c * chunk];
            cr_assert(v == 0 || v == 1);
            for (int64_t t = c * chunk; t < T && t < (c + 1) * chunk; t++)
                cr_assert_eq(row[t], v, "row %lld chunk %lld not constant", (long long)b, (long long)c);
            nb += v;
        }
        n += nb;
        *all_lin += nb == 0;
    }
    return n;
}

/* MODELS 11 item 17: 10^4 sequences of 4 chunks; the ATTN fraction is within 0.02 of the mean ratio (0.5).
 * Its standard deviation is sqrt((Var r + E[r(1-r)] / 4) / 10^4) = sqrt(0.15625e-4) = 0.004: 0.02 is 5 sd.
 * The fraction of all-LIN sequences is P(r=0) + sum_r P(r) (1-r)^4 = 0.2766 (sd 0.0045; bound 0.02). */
Test(oryx_modes, mixed_sampler_statistics)
{
    ox_ctx *ctx = test_ctx();
    const int64_t B = 10000, T = 256;
    ox_tensor *m = ox_oryx_modes_mixed(ctx, 42, 0, B, T, 64, NULL, 0);
    cr_assert_not_null(m, "%s", ox_ctx_message(ctx));
    int64_t all_lin = 0, n = count_chunks(m, 64, &all_lin);
    double frac = (double)n / (double)(B * 4);
    cr_assert_leq(fabs(frac - 0.5), 0.02, "ATTN chunk fraction %f", frac);
    double p_lin = 0.2 + 0.2 * (pow(0.75, 4) + pow(0.5, 4) + pow(0.25, 4));
    cr_assert_leq(fabs((double)all_lin / B - p_lin), 0.02, "all-LIN sequences %f vs %f", (double)all_lin / B, p_lin);
    /* a configurable set: {0.25} alone gives independent chunks with p = 0.25 (sd 0.0022; bound 0.02), and
     * an all-LIN row has probability 0.75^4 = 0.3164 (sd 0.0047) */
    const double only[] = { 0.25 };
    m = ox_oryx_modes_mixed(ctx, 42, 0, B, T, 64, only, 1);
    n = count_chunks(m, 64, &all_lin);
    cr_assert_leq(fabs((double)n / (B * 4) - 0.25), 0.02);
    cr_assert_leq(fabs((double)all_lin / B - pow(0.75, 4)), 0.02);
    ox_ctx_free(ctx);
}

Test(oryx_modes, mixed_is_deterministic_and_keyed_by_seed_step_row)
{
    ox_ctx *ctx = test_ctx();
    const int64_t B = 64, T = 300;     /* 5 chunks, the last one partial (44 tokens) */
    ox_tensor *a = ox_oryx_modes_mixed(ctx, 7, 3, B, T, 64, NULL, 0);
    ox_tensor *b = ox_oryx_modes_mixed(ctx, 7, 3, B, T, 64, NULL, 0);
    ox_tensor *c = ox_oryx_modes_mixed(ctx, 8, 3, B, T, 64, NULL, 0);
    ox_tensor *d = ox_oryx_modes_mixed(ctx, 7, 4, B, T, 64, NULL, 0);
    ox_tensor *e = ox_oryx_modes_mixed(ctx, 7, 3, 8, T, 64, NULL, 0);     /* the first 8 rows of a */
    cr_assert_not_null(e, "%s", ox_ctx_message(ctx));
    size_t bytes = sizeof(int32_t) * (size_t)(B * T);
    cr_assert_eq(memcmp(ox_tensor_i32(a), ox_tensor_i32(b), bytes), 0, "same seed, same maps");
    cr_assert_neq(memcmp(ox_tensor_i32(a), ox_tensor_i32(c), bytes), 0, "another seed, other maps");
    cr_assert_neq(memcmp(ox_tensor_i32(a), ox_tensor_i32(d), bytes), 0, "another step, other maps");
    cr_assert_eq(memcmp(ox_tensor_i32(a), ox_tensor_i32(e), sizeof(int32_t) * 8 * T), 0, "row b's stream is its own");
    int64_t all_lin;
    count_chunks(a, 64, &all_lin);
    /* 2 threads: the maps do not depend on the context's thread count */
    ox_ctx_set_threads(ctx, 2);
    ox_tensor *f = ox_oryx_modes_mixed(ctx, 7, 3, B, T, 64, NULL, 0);
    cr_assert_eq(memcmp(ox_tensor_i32(a), ox_tensor_i32(f), bytes), 0);
    ox_ctx_free(ctx);
}

Test(oryx_modes, fixed_maps)
{
    ox_ctx *ctx = test_ctx();
    ox_tensor *a = ox_oryx_modes_fill(ctx, 3, 70, OX_NN_ATTN), *l = ox_oryx_modes_fill(ctx, 3, 70, OX_NN_LIN);
    cr_assert_not_null(l);
    for (int i = 0; i < 210; i++) {
        cr_assert_eq(ox_tensor_i32(a)[i], 1);
        cr_assert_eq(ox_tensor_i32(l)[i], 0);
    }
    const int64_t pos[] = { 0, 5, 69, 5 };
    ox_tensor *p = ox_oryx_modes_positions(ctx, 2, 70, pos, 4);
    cr_assert_not_null(p);
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 70; t++)
            cr_assert_eq(ox_tensor_i32(p)[b * 70 + t], t == 0 || t == 5 || t == 69, "b %d t %d", b, t);
    /* a fraction of chunks: exactly round(f * nchunks) ATTN chunks per row, varying between rows */
    ox_tensor *f = ox_oryx_modes_chunk_fraction(ctx, 5, 0, 50, 640, 64, 0.3);
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    int distinct = 0;
    for (int b = 0; b < 50; b++) {
        int64_t all_lin, n = count_chunks(ox_tensor_view_narrow(ctx, f, 0, b, 1), 64, &all_lin);
        cr_assert_eq(n, 3, "row %d has %lld ATTN chunks", b, (long long)n);
        distinct += b > 0 && memcmp(ox_tensor_i32(f) + b * 640, ox_tensor_i32(f), 640 * sizeof(int32_t)) != 0;
    }
    cr_assert_gt(distinct, 0);
    /* errors */
    cr_assert_null(ox_oryx_modes_fill(ctx, 2, 4, 2));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    const int64_t bad[] = { 70 };
    cr_assert_null(ox_oryx_modes_positions(ctx, 2, 70, bad, 1));
    cr_assert_not_null(strstr(ox_ctx_message(ctx), "pos[0] = 70"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    const double r[] = { 0.5, 1.5 };
    cr_assert_null(ox_oryx_modes_mixed(ctx, 1, 0, 2, 64, 64, r, 2));
    cr_assert_not_null(strstr(ox_ctx_message(ctx), "1.5"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    cr_assert_null(ox_oryx_modes_chunk_fraction(ctx, 1, 0, 2, 64, 0, 0.5));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_free(ctx);
}
