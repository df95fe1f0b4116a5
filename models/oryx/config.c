/* config.c - Oryx-family configuration: presets, validation, metadata strings (see config.h). */
#include "models/oryx/config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t ox_oryx_default_mlp_hidden(int64_t d_model)
{
    return 32 * ((8 * d_model + 95) / 96);
}

const char *ox_oryx_linear_name(ox_oryx_linear l)
{
    switch (l) {
    case OX_ORYX_LINEAR_NONE: return "none";
    case OX_ORYX_LINEAR_GDN: return "gdn";
    case OX_ORYX_LINEAR_MAMBA2: return "mamba2";
    }
    return "?";
}

const char *ox_oryx_kind_name(ox_oryx_kind k)
{
    switch (k) {
    case OX_ORYX_KIND_ORYX: return "oryx";
    case OX_ORYX_KIND_ATTN: return "attn";
    case OX_ORYX_KIND_LIN: return "lin";
    }
    return "?";
}

static const char *const preset_names = "transformer, gdn, mamba2, hybrid-gdn, hybrid-mamba2, oryx-gdn, oryx-mamba2";

ox_status ox_oryx_config_preset(ox_ctx *ctx, const char *name, int64_t n_layers, ox_oryx_config *cfg)
{
    if (ctx->status)
        return ctx->status;
    if (!name || !cfg)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx preset: name and cfg must not be NULL");
    if (n_layers <= 0)
        n_layers = 4;
    if (n_layers > OX_ORYX_MAX_LAYERS)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx preset: n_layers = %lld exceeds %d", (long long)n_layers,
                           OX_ORYX_MAX_LAYERS);
    ox_oryx_config c = {
        .vocab = 256, .d_model = 256, .n_layers = n_layers, .n_heads = 4, .d_k = 64, .d_v = 64,
        .mlp_hidden = ox_oryx_default_mlp_hidden(256),
    };
    int hybrid = 0;
    ox_oryx_kind kind;
    if (strcmp(name, "transformer") == 0) {
        c.linear = OX_ORYX_LINEAR_NONE;
        kind = OX_ORYX_KIND_ATTN;
    } else if (strcmp(name, "gdn") == 0 || strcmp(name, "mamba2") == 0) {
        c.linear = name[0] == 'g' ? OX_ORYX_LINEAR_GDN : OX_ORYX_LINEAR_MAMBA2;
        kind = OX_ORYX_KIND_LIN;
    } else if (strcmp(name, "hybrid-gdn") == 0 || strcmp(name, "hybrid-mamba2") == 0) {
        c.linear = name[7] == 'g' ? OX_ORYX_LINEAR_GDN : OX_ORYX_LINEAR_MAMBA2;
        kind = OX_ORYX_KIND_LIN;
        hybrid = 1;
    } else if (strcmp(name, "oryx-gdn") == 0 || strcmp(name, "oryx-mamba2") == 0) {
        c.linear = name[5] == 'g' ? OX_ORYX_LINEAR_GDN : OX_ORYX_LINEAR_MAMBA2;
        kind = OX_ORYX_KIND_ORYX;
    } else {
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx preset: unknown name '%s' (known: %s)", name, preset_names);
    }
    /* the family decides the conv activation (MODELS 3): SiLU for GDN, identity otherwise */
    c.conv_act = c.linear == OX_ORYX_LINEAR_GDN ? OX_NN_ACT_SILU : OX_NN_ACT_NONE;
    /* hybrids: layer l is ATTN iff l % 4 == 3 (MODELS 9, our preset; with L < 4 that is no attention layer:
     * unlike Olmo Hybrid we do not then make the last layer attention) */
    for (int64_t l = 0; l < n_layers; l++)
        c.kinds[l] = hybrid && l % 4 == 3 ? OX_ORYX_KIND_ATTN : kind;
    *cfg = c;
    return OX_OK;
}

ox_status ox_oryx_config_validate(ox_ctx *ctx, const ox_oryx_config *c)
{
    if (ctx->status)
        return ctx->status;
    if (!c)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx config: NULL");
    const struct { const char *name; int64_t v; } pos[] = {
        { "vocab_size (V)", c->vocab }, { "d_model (D)", c->d_model }, { "n_heads (H)", c->n_heads },
        { "d_k", c->d_k }, { "d_v", c->d_v }, { "mlp_hidden (F)", c->mlp_hidden },
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v <= 0)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx config: %s must be > 0 (got %lld)", pos[i].name,
                               (long long)pos[i].v);
    if (c->d_k % 2)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx config: d_k must be even for RoPE's rotate-half pairs (got %lld)",
                           (long long)c->d_k);
    if (c->vocab > INT32_MAX)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx config: vocab_size %lld does not fit I32 token ids",
                           (long long)c->vocab);
    if (c->n_layers < 1 || c->n_layers > OX_ORYX_MAX_LAYERS)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx config: n_layers must be in 1..%d (got %lld)", OX_ORYX_MAX_LAYERS,
                           (long long)c->n_layers);
    if (c->linear != OX_ORYX_LINEAR_NONE && c->linear != OX_ORYX_LINEAR_GDN && c->linear != OX_ORYX_LINEAR_MAMBA2)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx config: unknown linear mixer %d", (int)c->linear);
    if (c->conv_act != OX_NN_ACT_NONE && c->conv_act != OX_NN_ACT_SILU)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx config: unknown conv activation %d", (int)c->conv_act);
    for (int64_t l = 0; l < c->n_layers; l++) {
        ox_oryx_kind k = c->kinds[l];
        if (k != OX_ORYX_KIND_ORYX && k != OX_ORYX_KIND_ATTN && k != OX_ORYX_KIND_LIN)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx config: layer %lld has unknown kind %d", (long long)l, (int)k);
        if (k != OX_ORYX_KIND_ATTN && c->linear == OX_ORYX_LINEAR_NONE)
            return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx config: layer %lld is '%s' but the model has no linear mixer "
                               "(linear_mixer = none allows only attn layers)", (long long)l, ox_oryx_kind_name(k));
    }
    if (!(c->logit_bias_scale >= 0 && isfinite(c->logit_bias_scale)))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx config: logit_bias_scale must be finite and >= 0 (0 = no logit "
                           "bias; got %g)", c->logit_bias_scale);
    return OX_OK;
}

const char *ox_oryx_config_arch(const ox_oryx_config *c)
{
    int n[3] = { 0, 0, 0 };
    for (int64_t l = 0; l < c->n_layers && l < OX_ORYX_MAX_LAYERS; l++)
        if ((unsigned)c->kinds[l] < 3)
            n[c->kinds[l]]++;
    if (n[OX_ORYX_KIND_ATTN] == c->n_layers)
        return "transformer";
    if (n[OX_ORYX_KIND_ORYX] == c->n_layers)
        return "oryx";
    if (n[OX_ORYX_KIND_LIN] == c->n_layers)
        return ox_oryx_linear_name(c->linear);
    return "hybrid";
}

/* ---- metadata ------------------------------------------------------------------------------------------ */

/* Appends key = value (copied into out->store). */
static void put(ox_oryx_meta *out, size_t *used, const char *key, const char *value)
{
    size_t len = strlen(value) + 1;
    char *dst = out->store + *used;
    memcpy(dst, value, len);
    *used += len;
    out->kv[out->n].key = key;
    out->kv[out->n].value = dst;
    out->n++;
}

static void put_int(ox_oryx_meta *out, size_t *used, const char *key, int64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)v);
    put(out, used, key, b);
}

ox_status ox_oryx_config_to_meta(ox_ctx *ctx, const ox_oryx_config *c, ox_oryx_meta *out)
{
    if (ox_oryx_config_validate(ctx, c))
        return ctx->status;
    size_t used = 0;
    out->n = 0;
    put(out, &used, "format_version", "1");
    put(out, &used, "arch", ox_oryx_config_arch(c));
    put(out, &used, "linear_mixer", ox_oryx_linear_name(c->linear));
    char kinds[OX_ORYX_MAX_LAYERS * 5] = "";
    size_t k = 0;
    for (int64_t l = 0; l < c->n_layers; l++)
        k += (size_t)snprintf(kinds + k, sizeof kinds - k, "%s%s", l ? "," : "", ox_oryx_kind_name(c->kinds[l]));
    put(out, &used, "layer_kinds", kinds);
    put(out, &used, "conv_act", c->conv_act == OX_NN_ACT_SILU ? "silu" : "none");
    put_int(out, &used, "d_model", c->d_model);
    put_int(out, &used, "n_layers", c->n_layers);
    put_int(out, &used, "n_heads", c->n_heads);
    put_int(out, &used, "d_k", c->d_k);
    put_int(out, &used, "d_v", c->d_v);
    put_int(out, &used, "vocab_size", c->vocab);
    put_int(out, &used, "mlp_hidden", c->mlp_hidden);
    put(out, &used, "conv_kernel", "4");
    put(out, &used, "rope_base", "10000");
    put(out, &used, "norm_eps", "1e-6");
    put(out, &used, "chunk_size", "64");
    if (c->logit_bias_scale > 0) {      /* only with the bias: other models keep exactly the keys of 12.3 */
        char b[32];
        snprintf(b, sizeof b, "%.17g", c->logit_bias_scale);
        put(out, &used, "logit_bias_scale", b);
    }
    return OX_OK;
}

static const char *find(const ox_st_kv *kv, int64_t n, const char *key)
{
    for (int64_t i = 0; i < n; i++)
        if (kv[i].key && strcmp(kv[i].key, key) == 0)
            return kv[i].value;
    return NULL;
}

/* The value under key, or an OX_ERR_FORMAT error naming the missing key. */
static const char *need(ox_ctx *ctx, const ox_st_kv *kv, int64_t n, const char *key)
{
    const char *v = find(kv, n, key);
    if (!v)
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: key '%s' is missing", key);
    return v;
}

/* A decimal integer in [lo, hi], whole string. */
static int parse_int(ox_ctx *ctx, const ox_st_kv *kv, int64_t n, const char *key, int64_t lo, int64_t hi,
                     int64_t *out)
{
    const char *v = need(ctx, kv, n, key);
    if (!v)
        return -1;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: %s = '%s' is not an integer in [%lld, %lld]", key, v,
                    (long long)lo, (long long)hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* A number equal to `want` (relative 1e-6), whole string. */
static int parse_fixed(ox_ctx *ctx, const ox_st_kv *kv, int64_t n, const char *key, double want)
{
    const char *v = need(ctx, kv, n, key);
    if (!v)
        return -1;
    char *end = NULL;
    double x = strtod(v, &end);
    if (!*v || *end || !(fabs(x - want) <= 1e-6 * fabs(want))) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: %s = '%s', but this library implements only %g", key, v,
                    want);
        return -1;
    }
    return 0;
}

ox_status ox_oryx_config_from_meta(ox_ctx *ctx, const ox_st_kv *kv, int64_t n, ox_oryx_config *cfg)
{
    if (ctx->status)
        return ctx->status;
    ox_oryx_config c = { 0 };
    const char *fv = need(ctx, kv, n, "format_version");
    if (!fv)
        return ctx->status;
    if (strcmp(fv, "1") != 0)
        return ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: format_version '%s' is not supported (only '1')",
                           fv);
    const int64_t big = (int64_t)1 << 40;
    if (parse_int(ctx, kv, n, "d_model", 1, big, &c.d_model) ||
        parse_int(ctx, kv, n, "n_layers", 1, OX_ORYX_MAX_LAYERS, &c.n_layers) ||
        parse_int(ctx, kv, n, "n_heads", 1, big, &c.n_heads) || parse_int(ctx, kv, n, "d_k", 1, big, &c.d_k) ||
        parse_int(ctx, kv, n, "d_v", 1, big, &c.d_v) || parse_int(ctx, kv, n, "vocab_size", 1, INT32_MAX, &c.vocab) ||
        parse_int(ctx, kv, n, "mlp_hidden", 1, big, &c.mlp_hidden) || parse_fixed(ctx, kv, n, "conv_kernel", 4) ||
        parse_fixed(ctx, kv, n, "rope_base", 10000) || parse_fixed(ctx, kv, n, "norm_eps", 1e-6) ||
        parse_fixed(ctx, kv, n, "chunk_size", 64))
        return ctx->status;
    const char *lbs = find(kv, n, "logit_bias_scale");     /* optional: absent = no logit bias */
    if (lbs) {
        char *end = NULL;
        c.logit_bias_scale = strtod(lbs, &end);
        if (!*lbs || *end || !(c.logit_bias_scale >= 0 && isfinite(c.logit_bias_scale)))
            return ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: logit_bias_scale = '%s' is not a finite number "
                               ">= 0", lbs);
    }
    const char *lin = need(ctx, kv, n, "linear_mixer"), *act = need(ctx, kv, n, "conv_act");
    const char *kinds = need(ctx, kv, n, "layer_kinds"), *arch = need(ctx, kv, n, "arch");
    if (!lin || !act || !kinds || !arch)
        return ctx->status;
    if (strcmp(lin, "none") == 0)
        c.linear = OX_ORYX_LINEAR_NONE;
    else if (strcmp(lin, "gdn") == 0)
        c.linear = OX_ORYX_LINEAR_GDN;
    else if (strcmp(lin, "mamba2") == 0)
        c.linear = OX_ORYX_LINEAR_MAMBA2;
    else
        return ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: linear_mixer = '%s' (expected none, gdn or mamba2)",
                           lin);
    if (strcmp(act, "silu") == 0)
        c.conv_act = OX_NN_ACT_SILU;
    else if (strcmp(act, "none") == 0)
        c.conv_act = OX_NN_ACT_NONE;
    else
        return ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: conv_act = '%s' (expected silu or none)", act);
    int64_t l = 0;
    for (const char *p = kinds;;) {
        size_t len = strcspn(p, ",");
        if (l >= c.n_layers)
            return ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: layer_kinds '%s' has more than n_layers = %lld "
                               "entries", kinds, (long long)c.n_layers);
        if (len == 4 && strncmp(p, "oryx", 4) == 0)
            c.kinds[l] = OX_ORYX_KIND_ORYX;
        else if (len == 4 && strncmp(p, "attn", 4) == 0)
            c.kinds[l] = OX_ORYX_KIND_ATTN;
        else if (len == 3 && strncmp(p, "lin", 3) == 0)
            c.kinds[l] = OX_ORYX_KIND_LIN;
        else
            return ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: layer_kinds '%s': entry %lld is not oryx, attn or "
                               "lin", kinds, (long long)l);
        l++;
        if (!p[len])
            break;
        p += len + 1;
    }
    if (l != c.n_layers)
        return ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: layer_kinds '%s' has %lld entries, n_layers = %lld",
                           kinds, (long long)l, (long long)c.n_layers);
    if (ox_oryx_config_validate(ctx, &c)) {
        char msg[sizeof ctx->message];
        snprintf(msg, sizeof msg, "%s", ctx->message);
        ox_ctx_clear_error(ctx);
        return ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: %s", msg);
    }
    if (strcmp(arch, ox_oryx_config_arch(&c)) != 0)
        return ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx metadata: arch = '%s' but layer_kinds '%s' with linear_mixer "
                           "'%s' make a '%s' model", arch, kinds, lin, ox_oryx_config_arch(&c));
    *cfg = c;
    return OX_OK;
}
