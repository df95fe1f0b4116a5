/* checkpoint.c - Oryx model checkpoints: save and strict load through nn/params_io.h (the parameter list by
 * name, atomic write), plus the configuration metadata of MODELS 12.3 (see checkpoint.h). */
#include "models/oryx/checkpoint.h"

#include "nn/params_io.h"
#include "tensor/safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ox_status ox_oryx_save(ox_ctx *ctx, const ox_oryx_model *m, const char *path, int64_t step, int64_t train_seq_len)
{
    if (ctx->status)
        return ctx->status;
    if (!m || !path)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx save: model and path must not be NULL");
    if (m->params.n == 0)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "oryx save %s: the model has no parameters", path);
    if (step < 0 || train_seq_len < 0)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx save %s: step (%lld) and train_seq_len (%lld) must be >= 0", path,
                           (long long)step, (long long)train_seq_len);
    ox_oryx_meta meta;
    if (ox_oryx_config_to_meta(ctx, &m->cfg, &meta))
        return ctx->status;
    ox_st_kv kv[OX_ORYX_META_KEYS + 2];
    memcpy(kv, meta.kv, sizeof meta.kv[0] * (size_t)meta.n);
    char sstep[24], sseq[24];
    snprintf(sstep, sizeof sstep, "%lld", (long long)step);
    snprintf(sseq, sizeof sseq, "%lld", (long long)train_seq_len);
    kv[meta.n] = (ox_st_kv){ "step", sstep };
    kv[meta.n + 1] = (ox_st_kv){ "train_seq_len", sseq };
    return ox_nn_params_save(ctx, &m->params, path, kv, meta.n + 2);
}

/* The file's metadata as a configuration, through tensor/safetensors' header reader (an error naming path
 * if the file is not a safetensors file, has no metadata, or its metadata is not an Oryx configuration). */
static ox_status config_from_file(ox_ctx *ctx, const char *path, ox_oryx_config *cfg)
{
    ox_st_meta *meta = NULL;
    if (ox_safetensors_read_meta(ctx, path, &meta))
        return ctx->status;
    if (meta->n == 0) {
        ox_st_meta_free(meta);
        return ox_ctx_fail(ctx, OX_ERR_FORMAT,
                           "%s: no \"__metadata__\" object, or an empty one: not an oryx checkpoint (MODELS 12.3)",
                           path);
    }
    ox_oryx_config_from_meta(ctx, meta->kv, meta->n, cfg);
    ox_st_meta_free(meta);
    if (ctx->status) {      /* prefix the file name */
        ox_status s = ctx->status;
        char msg[sizeof ctx->message];
        snprintf(msg, sizeof msg, "%s", ctx->message);
        ox_ctx_clear_error(ctx);
        return ox_ctx_fail(ctx, s, "%s: %s", path, msg);
    }
    return OX_OK;
}

ox_status ox_oryx_read_config(ox_ctx *ctx, const char *path, ox_oryx_config *cfg)
{
    if (ctx->status)
        return ctx->status;
    if (!path || !cfg)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx read config: path and cfg must not be NULL");
    return config_from_file(ctx, path, cfg);
}

/* An optional non-negative integer metadata value: -1 when absent, an error when malformed. */
static int64_t meta_count(ox_ctx *ctx, const char *path, const ox_st_meta *meta, const char *key)
{
    const char *v = ox_st_meta_get(meta, key);
    if (!v)
        return -1;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end || errno || x < 0) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: metadata %s = '%s' is not a non-negative integer", path, key, v);
        return -1;
    }
    return x;
}

ox_status ox_oryx_load(ox_ctx *ctx, const char *path, ox_oryx_model *m, int64_t *step, int64_t *train_seq_len)
{
    if (ctx->status)
        return ctx->status;
    if (!m || !path)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx load: model and path must not be NULL");
    memset(m, 0, sizeof *m);
    ox_nn_params_init(&m->params);
    ox_oryx_config cfg;
    if (ox_oryx_read_config(ctx, path, &cfg))
        return ctx->status;
    /* the parameter list of that configuration: every value is overwritten by the file */
    ox_rng rng = ox_rng_seed(0);
    if (ox_oryx_model_init(ctx, m, &cfg, &rng))
        return ctx->status;
    ox_st_meta *meta = NULL;
    if (ox_nn_params_load(ctx, &m->params, path, NULL, NULL, &meta) == OX_ERR_FORMAT) {
        /* say which model the metadata describes: a tensor mismatch usually means a file of another model */
        char msg[sizeof ctx->message];
        snprintf(msg, sizeof msg, "%s", ctx->message);
        ox_ctx_clear_error(ctx);
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s (its metadata describes arch '%s', linear_mixer '%s', D=%lld L=%lld "
                    "H=%lld dk=%lld dv=%lld F=%lld V=%lld)", msg, ox_oryx_config_arch(&cfg),
                    ox_oryx_linear_name(cfg.linear), (long long)cfg.d_model, (long long)cfg.n_layers,
                    (long long)cfg.n_heads, (long long)cfg.d_k, (long long)cfg.d_v, (long long)cfg.mlp_hidden,
                    (long long)cfg.vocab);
    }
    int64_t s = meta_count(ctx, path, meta, "step"), sl = meta_count(ctx, path, meta, "train_seq_len");
    ox_st_meta_free(meta);
    if (ctx->status) {
        ox_status st = ctx->status;
        ox_oryx_model_free(m);
        return st;
    }
    if (step)
        *step = s;
    if (train_seq_len)
        *train_seq_len = sl;
    return OX_OK;
}
