/* modes.c - mode-map builders, and the map-spec vocabulary above them: check, build, names, parse (see
 * modes.h). */
#include "models/oryx/modes.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tensor/alloc.h"
#include "tensor/io.h"

/* SplitMix64's finaliser: a bijective mix of 64 bits. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

ox_rng ox_oryx_modes_stream(uint64_t seed, uint64_t step, int64_t b)
{
    uint64_t h = mix64(seed ^ 0x6f72797873656564ULL);           /* "oryxseed" */
    h = mix64(h ^ (step + 0x9e3779b97f4a7c15ULL));
    h = mix64(h ^ ((uint64_t)b + 0x632be59bd9b4e019ULL));
    return ox_rng_seed(h);
}

static int check_sizes(ox_ctx *ctx, const char *op, int64_t B, int64_t T, int64_t chunk)
{
    if (ctx->status)
        return -1;
    if (B < 1 || T < 1 || chunk < 1) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "%s: B = %lld, T = %lld and chunk = %lld must be >= 1", op, (long long)B,
                    (long long)T, (long long)chunk);
        return -1;
    }
    return 0;
}

ox_tensor *ox_oryx_modes_fill(ox_ctx *ctx, int64_t B, int64_t T, int mode)
{
    if (check_sizes(ctx, "oryx modes fill", B, T, 1))
        return NULL;
    if (mode != OX_NN_ATTN && mode != OX_NN_LIN) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes fill: mode %d is neither 1 (ATTN) nor 0 (LIN)", mode);
        return NULL;
    }
    return ox_tensor_full(ctx, OX_I32, OX_DIMS(B, T), mode);
}

/* Sets tokens [c * chunk, min((c + 1) * chunk, T)) of one row to ATTN. */
static void set_chunk(int32_t *row, int64_t T, int64_t chunk, int64_t c)
{
    int64_t end = (c + 1) * chunk < T ? (c + 1) * chunk : T;
    for (int64_t t = c * chunk; t < end; t++)
        row[t] = OX_NN_ATTN;
}

static const double default_ratios[] = { 0.0, 0.25, 0.5, 0.75, 1.0 };

ox_tensor *ox_oryx_modes_mixed(ox_ctx *ctx, uint64_t seed, uint64_t step, int64_t B, int64_t T, int64_t chunk,
                               const double *ratios, int n_ratios)
{
    if (check_sizes(ctx, "oryx modes mixed", B, T, chunk))
        return NULL;
    if (!ratios || n_ratios <= 0) {
        ratios = default_ratios;
        n_ratios = 5;
    }
    for (int i = 0; i < n_ratios; i++)
        if (!(ratios[i] >= 0.0 && ratios[i] <= 1.0)) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes mixed: ratio %d = %g is not in [0, 1]", i, ratios[i]);
            return NULL;
        }
    ox_tensor *m = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(B, T));
    if (!m)
        return NULL;
    int64_t nc = (T + chunk - 1) / chunk;
    for (int64_t b = 0; b < B; b++) {
        ox_rng rng = ox_oryx_modes_stream(seed, step, b);
        double r = ratios[ox_rng_below(&rng, (uint64_t)n_ratios)];
        for (int64_t c = 0; c < nc; c++)
            if (ox_rng_uniform(&rng) < r)
                set_chunk(ox_tensor_i32(m) + b * T, T, chunk, c);
    }
    return m;
}

ox_tensor *ox_oryx_modes_chunk_fraction(ox_ctx *ctx, uint64_t seed, uint64_t step, int64_t B, int64_t T,
                                        int64_t chunk, double fraction)
{
    if (check_sizes(ctx, "oryx modes chunk fraction", B, T, chunk))
        return NULL;
    if (!(fraction >= 0.0 && fraction <= 1.0)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes chunk fraction: fraction %g is not in [0, 1]", fraction);
        return NULL;
    }
    int64_t nc = (T + chunk - 1) / chunk;
    int64_t k = (int64_t)llround(fraction * (double)nc);
    ox_tensor *m = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(B, T));
    int64_t *idx = ox_ctx_alloc(ctx, sizeof *idx * (size_t)nc);
    if (!m || !idx)
        return NULL;
    for (int64_t b = 0; b < B; b++) {
        ox_rng rng = ox_oryx_modes_stream(seed, step, b);
        for (int64_t c = 0; c < nc; c++)
            idx[c] = c;
        for (int64_t i = 0; i < k; i++) {     /* partial Fisher-Yates: the first k entries are the draw */
            int64_t j = i + (int64_t)ox_rng_below(&rng, (uint64_t)(nc - i));
            int64_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
            set_chunk(ox_tensor_i32(m) + b * T, T, chunk, idx[i]);
        }
    }
    return m;
}

ox_tensor *ox_oryx_modes_positions(ox_ctx *ctx, int64_t B, int64_t T, const int64_t *pos, int64_t n)
{
    if (check_sizes(ctx, "oryx modes positions", B, T, 1))
        return NULL;
    if (n < 0 || (n > 0 && !pos)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes positions: %lld positions with pos = %p", (long long)n,
                    (const void *)pos);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        if (pos[i] < 0 || pos[i] >= T) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes positions: pos[%lld] = %lld is outside [0, %lld)", (long long)i,
                        (long long)pos[i], (long long)T);
            return NULL;
        }
    ox_tensor *m = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(B, T));
    if (!m)
        return NULL;
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < n; i++)
            ox_tensor_i32(m)[b * T + pos[i]] = OX_NN_ATTN;
    return m;
}

ox_tensor *ox_oryx_modes_every(ox_ctx *ctx, int64_t B, int64_t T, int64_t every)
{
    if (check_sizes(ctx, "oryx modes every", B, T, 1))
        return NULL;
    if (every < 1) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "oryx modes every: period %lld must be >= 1", (long long)every);
        return NULL;
    }
    ox_tensor *m = ox_tensor_zeros(ctx, OX_I32, OX_DIMS(B, T));
    if (!m)
        return NULL;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = every - 1; t < T; t += every)
            ox_tensor_i32(m)[b * T + t] = OX_NN_ATTN;
    return m;
}

/* ---- map specifications ----------------------------------------------------------------------------------- */

static const char *const map_kind_names[] = { "mixed", "attn", "lin", "fraction", "positions", "every", "chunks",
                                              "prompt", "queries", "sweep" };
#define N_MAP_KINDS ((int)(sizeof map_kind_names / sizeof map_kind_names[0]))

const char *ox_oryx_map_kind_name(ox_oryx_map_kind kind)
{
    return (int)kind >= 0 && (int)kind < N_MAP_KINDS ? map_kind_names[kind] : "?";
}

ox_status ox_oryx_map_kind_parse(ox_ctx *ctx, const char *name, ox_oryx_map_kind *kind)
{
    for (int k = 0; name && k < N_MAP_KINDS; k++)
        if (strcmp(name, map_kind_names[k]) == 0) {
            *kind = (ox_oryx_map_kind)k;
            return OX_OK;
        }
    return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: unknown kind '%.40s' (mixed, attn, lin, fraction, positions, "
                       "every, chunks, prompt, queries, sweep)", name ? name : "(null)");
}

ox_status ox_oryx_map_check(ox_ctx *ctx, const ox_oryx_map_spec *s)
{
    if (ctx->status)
        return ctx->status;
    if (!s)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: spec must not be NULL");
    if ((int)s->kind < 0 || (int)s->kind >= N_MAP_KINDS)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: unknown kind %d", (int)s->kind);
    if (s->chunk < 0)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: chunk = %lld must be >= 0 (0: 64)", (long long)s->chunk);
    if (s->n_ratios < 0 || s->n_ratios > OX_ORYX_MAX_RATIOS)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: n_ratios = %d must be in [0, %d]", s->n_ratios,
                           OX_ORYX_MAX_RATIOS);
    for (int i = 0; i < s->n_ratios; i++)
        if (!(s->ratios[i] >= 0 && s->ratios[i] <= 1))
            return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: ratios[%d] = %g must be in [0, 1]", i, s->ratios[i]);
    if (!(s->fraction >= 0 && s->fraction <= 1))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: fraction = %g must be in [0, 1]", s->fraction);
    if (s->kind == OX_ORYX_MAP_EVERY && s->every < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: every = %lld must be >= 1", (long long)s->every);
    if (s->n_prompt < 0)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: n_prompt = %lld must be >= 0", (long long)s->n_prompt);
    if (s->kind != OX_ORYX_MAP_POSITIONS)
        return OX_OK;
    if (s->n_positions < 0 || (s->n_positions > 0 && !s->positions))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: %lld positions with positions = %p", (long long)s->n_positions,
                           (const void *)s->positions);
    for (int64_t i = 0; i < s->n_positions; i++)
        if (s->positions[i] < 0)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: positions[%lld] = %lld must be >= 0", (long long)i,
                               (long long)s->positions[i]);
    return OX_OK;
}

ox_tensor *ox_oryx_map_build(ox_ctx *ctx, const ox_oryx_map_spec *spec, uint64_t stream, int64_t B, int64_t T)
{
    if (ctx->status || ox_oryx_map_check(ctx, spec))
        return NULL;
    int64_t chunk = spec->chunk > 0 ? spec->chunk : 64;
    switch (spec->kind) {
    case OX_ORYX_MAP_MIXED:
        return ox_oryx_modes_mixed(ctx, spec->seed, stream, B, T, chunk, spec->n_ratios ? spec->ratios : NULL,
                                   spec->n_ratios);
    case OX_ORYX_MAP_CHUNKS:
        return ox_oryx_modes_mixed(ctx, spec->seed, stream, B, T, chunk, &spec->fraction, 1);
    case OX_ORYX_MAP_ATTN:
        return ox_oryx_modes_fill(ctx, B, T, OX_NN_ATTN);
    case OX_ORYX_MAP_LIN:
        return ox_oryx_modes_fill(ctx, B, T, OX_NN_LIN);
    case OX_ORYX_MAP_FRACTION:
        return ox_oryx_modes_chunk_fraction(ctx, spec->seed, stream, B, T, chunk, spec->fraction);
    case OX_ORYX_MAP_EVERY:
        return ox_oryx_modes_every(ctx, B, T, spec->every);
    case OX_ORYX_MAP_PROMPT:
    case OX_ORYX_MAP_POSITIONS: {
        /* positions >= T are ignored (a shorter window), so no scratch list: fill, then mark */
        ox_tensor *m = ox_oryx_modes_fill(ctx, B, T, OX_NN_LIN);
        if (!m)
            return NULL;
        int32_t *p = ox_tensor_i32(m);
        for (int64_t b = 0; b < B; b++) {
            if (spec->kind == OX_ORYX_MAP_PROMPT)
                for (int64_t t = 0; t < spec->n_prompt && t < T; t++)
                    p[b * T + t] = OX_NN_ATTN;
            else
                for (int64_t i = 0; i < spec->n_positions; i++)
                    if (spec->positions[i] < T)
                        p[b * T + spec->positions[i]] = OX_NN_ATTN;
        }
        return m;
    }
    case OX_ORYX_MAP_QUERIES:
    case OX_ORYX_MAP_SWEEP:
        break;
    }
    ox_ctx_fail(ctx, OX_ERR_ARG, "oryx map: kind '%s' needs the MQAR queries (ox_oryx_mqar_map)",
                ox_oryx_map_kind_name(spec->kind));
    return NULL;
}

/* ---- the SPEC parser ---------------------------------------------------------------------------------------- */

static ox_status bad_spec(ox_ctx *ctx, const char *s, unsigned accept, const char *why)
{
    return ox_ctx_fail(ctx, OX_ERR_ARG, "mode SPEC '%.200s' %s (expected attn, lin, mixed, chunks:<f in [0,1]>, "
                       "every:<N >= 1>,%s or a file of 'a'/'l' characters)", s, why,
                       accept & OX_ORYX_MAP_ACCEPT_PROMPT ? " prompt-attn," : "");
}

/* The number after "name:" in s; -1 (error recorded) when it is not a number in [lo, hi]. */
static int spec_number(ox_ctx *ctx, const char *s, unsigned accept, const char *num, double lo, double hi,
                       int integer, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(num, &end);
    if (end == num || *end || errno || !(v >= lo && v <= hi) || (integer && v != floor(v))) {
        char why[96];
        snprintf(why, sizeof why, "has a value outside %s", integer ? "1 .. 2^31" : "[0, 1]");
        bad_spec(ctx, s, accept, why);
        return -1;
    }
    *out = v;
    return 0;
}

/* A map file: 'a' -> ATTN, 'l' -> LIN, whitespace skipped; its ATTN positions into spec (owned list). */
static ox_status parse_map_file(ox_ctx *ctx, const char *path, unsigned accept, ox_oryx_map_spec *spec,
                                int64_t **owned)
{
    uint8_t *text;
    int64_t len;
    if (ox_io_read_file(ctx, path, "mode map file", 0, &text, &len))
        return ctx->status;
    int64_t *pos = ox_malloc(sizeof *pos * (size_t)(len + 1));
    int64_t n = 0, t = 0, letters = 0;
    for (int64_t i = 0; pos && i < len; i++) {
        int c = text[i];
        if (isspace(c))
            continue;
        if (c != 'a' && c != 'l') {
            char why[96];
            snprintf(why, sizeof why, "is a file with '%c' (byte %lld), not only 'a'/'l' and whitespace",
                     isprint(c) ? c : '?', (long long)i + 1);
            ox_free(text);
            ox_free(pos);
            return bad_spec(ctx, path, accept, why);
        }
        if (c == 'a')
            pos[n++] = t;
        t++;
        letters++;
    }
    ox_free(text);
    if (!pos)
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "mode map file '%s': out of memory", path);
    if (letters == 0) {
        ox_free(pos);
        return bad_spec(ctx, path, accept, "is a file with no 'a'/'l' character");
    }
    spec->kind = OX_ORYX_MAP_POSITIONS;
    spec->positions = pos;
    spec->n_positions = n;
    *owned = pos;
    return OX_OK;
}

ox_status ox_oryx_map_parse(ox_ctx *ctx, const char *s, unsigned accept, ox_oryx_map_spec *spec, int64_t **owned)
{
    if (!spec)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mode SPEC: spec must not be NULL");
    memset(spec, 0, sizeof *spec);
    spec->chunk = 64;
    if (owned)
        *owned = NULL;
    if (ctx->status)
        return ctx->status;
    if (!s || !*s)
        return bad_spec(ctx, s ? s : "", accept, "is empty");
    double v;
    if (strcmp(s, "attn") == 0)
        spec->kind = OX_ORYX_MAP_ATTN;
    else if (strcmp(s, "lin") == 0)
        spec->kind = OX_ORYX_MAP_LIN;
    else if (strcmp(s, "mixed") == 0)
        spec->kind = OX_ORYX_MAP_MIXED;
    else if (strncmp(s, "mixed:", 6) == 0)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "mode SPEC '%.200s': the per-chunk probability is now written "
                           "chunks:%.40s ('mixed' alone is the MODELS 8 sampler)", s, s + 6);
    else if (strncmp(s, "chunks:", 7) == 0) {
        if (spec_number(ctx, s, accept, s + 7, 0, 1, 0, &v))
            return ctx->status;
        spec->kind = OX_ORYX_MAP_CHUNKS;
        spec->fraction = v;
    } else if (strncmp(s, "every:", 6) == 0) {
        if (spec_number(ctx, s, accept, s + 6, 1, 2147483648.0, 1, &v))
            return ctx->status;
        spec->kind = OX_ORYX_MAP_EVERY;
        spec->every = (int64_t)v;
    } else if (strcmp(s, "prompt-attn") == 0) {
        if (!(accept & OX_ORYX_MAP_ACCEPT_PROMPT))
            return bad_spec(ctx, s, accept, "is only for generation");
        spec->kind = OX_ORYX_MAP_PROMPT;
    } else {
        struct stat st;
        if (!(accept & OX_ORYX_MAP_ACCEPT_FILE) || !owned || stat(s, &st) != 0)
            return bad_spec(ctx, s, accept, "is not a known schedule nor a readable file");
        return parse_map_file(ctx, s, accept, spec, owned);
    }
    return OX_OK;
}
