/* test_oryx_modes.c - the mode-map builders (MODELS.md 8, 11 item 17): sampler statistics, chunk structure,
 * determinism, the fixed maps, and the one SPEC vocabulary (parser, kinds by name, chunks / prompt / MQAR kinds). Statistical bounds are about 5 standard deviations (stated per test), so
 * a correct sampler fails with probability < 1e-6 while a wrong law (e.g. r drawn per chunk instead of per
 * sequence, or a biased ratio pick) is far outside them. */
#include "test_util.h"

#include "models/oryx/config.h"
#include "models/oryx/modes.h"
#include "tensor/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* ---- the one SPEC vocabulary (ox_oryx_map_parse / ox_oryx_map_build) ---- */

static void expect_parse(const char *text, unsigned accept, ox_oryx_map_kind kind)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_map_spec s;
    int64_t *own = NULL;
    cr_assert_eq(ox_oryx_map_parse(ctx, text, accept, &s, &own), OX_OK, "%s: %s", text, ox_ctx_message(ctx));
    cr_assert_eq(s.kind, kind, "%s: kind %s", text, ox_oryx_map_kind_name(s.kind));
    cr_assert_eq(s.chunk, 64);
    cr_assert_null(own);
    ox_ctx_free(ctx);
}

static void expect_refused(const char *text, unsigned accept, const char *says)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_map_spec s;
    int64_t *own = NULL;
    cr_assert_neq(ox_oryx_map_parse(ctx, text, accept, &s, &own), OX_OK, "%s was accepted", text);
    cr_assert(strstr(ox_ctx_message(ctx), says), "%s: '%s' lacks '%s'", text, ox_ctx_message(ctx), says);
    cr_assert_null(own);
    ox_ctx_free(ctx);
}

/* Every spelling, its kind and parameters; the old spelling mixed:<f> names the new one; what a caller did not
 * accept is refused; names of kinds round-trip. */
Test(oryx_modes, spec_parser_vocabulary)
{
    expect_parse("attn", 0, OX_ORYX_MAP_ATTN);
    expect_parse("lin", 0, OX_ORYX_MAP_LIN);
    expect_parse("mixed", 0, OX_ORYX_MAP_MIXED);
    expect_parse("chunks:0.25", 0, OX_ORYX_MAP_CHUNKS);
    expect_parse("every:8", 0, OX_ORYX_MAP_EVERY);
    expect_parse("prompt-attn", OX_ORYX_MAP_ACCEPT_PROMPT, OX_ORYX_MAP_PROMPT);
    expect_refused("mixed:0.5", 0, "chunks:0.5");
    expect_refused("prompt-attn", 0, "only for generation");
    expect_refused("chunks:1.5", 0, "outside [0, 1]");
    expect_refused("every:0", 0, "outside 1 ..");
    expect_refused("every:2.5", 0, "outside 1 ..");
    expect_refused("", 0, "is empty");
    expect_refused("/nonexistent/map", OX_ORYX_MAP_ACCEPT_FILE, "not a known schedule");
    expect_refused("attn ", 0, "not a known schedule");
    for (int k = 0; k <= OX_ORYX_MAP_SWEEP; k++) {
        ox_oryx_map_kind back;
        ox_ctx *ctx = test_ctx();
        assert_ok(ctx, ox_oryx_map_kind_parse(ctx, ox_oryx_map_kind_name((ox_oryx_map_kind)k), &back));
        cr_assert_eq((int)back, k);
        ox_ctx_free(ctx);
    }
}

/* A map file: its 'a' positions (whitespace skipped), files that are empty or hold no letter refused. */
Test(oryx_modes, spec_parser_map_file)
{
    char path[] = "/tmp/oryx-modes-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "la\nl a a", 8), 8);
    close(fd);
    ox_ctx *ctx = test_ctx();
    ox_oryx_map_spec s;
    int64_t *own = NULL;
    assert_ok(ctx, ox_oryx_map_parse(ctx, path, OX_ORYX_MAP_ACCEPT_FILE, &s, &own));
    cr_assert_eq(s.kind, OX_ORYX_MAP_POSITIONS);
    cr_assert_eq(s.n_positions, 3);
    cr_assert(own == s.positions && s.positions[0] == 1 && s.positions[1] == 3 && s.positions[2] == 4);
    ox_tensor *m = ox_oryx_map_build(ctx, &s, 0, 2, 4);    /* positions >= T are ignored */
    cr_assert_not_null(m, "%s", ox_ctx_message(ctx));
    static const int32_t want[8] = { 0, 1, 0, 1, 0, 1, 0, 1 };
    cr_assert_eq(memcmp(ox_tensor_i32(m), want, sizeof want), 0);
    ox_free(own);
    ox_ctx_free(ctx);
    cr_assert_eq(truncate(path, 0), 0);
    expect_refused(path, OX_ORYX_MAP_ACCEPT_FILE, "is empty");
    FILE *f = fopen(path, "w");
    fputs(" \n\t\n", f);
    fclose(f);
    expect_refused(path, OX_ORYX_MAP_ACCEPT_FILE, "no 'a'/'l'");
    expect_refused(path, 0, "not a known schedule");    /* files not accepted */
    unlink(path);
}

/* chunks:<f> is the MODELS 8 sampler with the one-ratio set {f}: the same maps, stream for stream; prompt
 * maps are ATTN exactly before n_prompt; QUERIES / SWEEP need the MQAR queries. */
Test(oryx_modes, chunks_prompt_and_mqar_kinds)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_map_spec c = { .kind = OX_ORYX_MAP_CHUNKS, .fraction = 0.4, .chunk = 16, .seed = 9 };
    ox_oryx_map_spec mx = { .kind = OX_ORYX_MAP_MIXED, .n_ratios = 1, .ratios = { 0.4 }, .chunk = 16, .seed = 9 };
    for (uint64_t stream = 0; stream < 5; stream++) {
        ox_tensor *a = ox_oryx_map_build(ctx, &c, stream, 3, 100), *b = ox_oryx_map_build(ctx, &mx, stream, 3, 100);
        cr_assert(a && b, "%s", ox_ctx_message(ctx));
        cr_assert_eq(memcmp(ox_tensor_i32(a), ox_tensor_i32(b), sizeof(int32_t) * 300), 0);
    }
    ox_oryx_map_spec p = { .kind = OX_ORYX_MAP_PROMPT, .n_prompt = 5 };
    ox_tensor *pm = ox_oryx_map_build(ctx, &p, 0, 2, 8);
    cr_assert_not_null(pm);
    for (int i = 0; i < 16; i++)
        cr_assert_eq(ox_tensor_i32(pm)[i], i % 8 < 5 ? OX_NN_ATTN : OX_NN_LIN);
    ox_oryx_map_spec q = { .kind = OX_ORYX_MAP_QUERIES };
    cr_assert_null(ox_oryx_map_build(ctx, &q, 0, 1, 8));
    cr_assert(strstr(ox_ctx_message(ctx), "queries"), "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}
