/* checkpoint.c - Oryx model checkpoints: save (atomic safetensors), metadata-only header read, strict load
 * (see checkpoint.h). */
#include "models/oryx/checkpoint.h"

#include "tensor/alloc.h"
#include "tensor/safetensors.h"

#include <cJSON.h>
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
    ox_st_entry *ents = ox_malloc(sizeof *ents * (size_t)m->params.n);
    if (!ents)
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "oryx save %s: out of memory", path);
    for (int i = 0; i < m->params.n; i++)
        ents[i] = (ox_st_entry){ m->params.items[i].name, m->params.items[i].t };
    ox_safetensors_write(ctx, path, ents, m->params.n, kv, meta.n + 2);
    ox_free(ents);
    return ctx->status;
}

/* The "__metadata__" object of the file's JSON header as an owned cJSON object (NULL + error if the file
 * is not a safetensors file or has no metadata). */
static cJSON *read_meta_json(ox_ctx *ctx, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        ox_ctx_fail(ctx, OX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char lenb[8];
    cJSON *root = NULL, *meta = NULL;
    char *text = NULL;
    if (fread(lenb, 1, 8, f) != 8) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: shorter than the 8-byte header length", path);
        goto done;
    }
    uint64_t N = 0;
    for (int i = 7; i >= 0; i--)
        N = (N << 8) | lenb[i];
    if (N > OX_ST_MAX_HEADER) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: header length %llu exceeds the limit of %d bytes", path,
                    (unsigned long long)N, OX_ST_MAX_HEADER);
        goto done;
    }
    text = ox_malloc(N + 1);
    if (!text) {
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory reading a header of %llu bytes", path, (unsigned long long)N);
        goto done;
    }
    if (fread(text, 1, N, f) != N) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: header length %llu exceeds the file", path, (unsigned long long)N);
        goto done;
    }
    text[N] = 0;
    root = cJSON_Parse(text);
    if (!cJSON_IsObject(root)) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: header is not a JSON object", path);
        goto done;
    }
    meta = cJSON_DetachItemFromObjectCaseSensitive(root, "__metadata__");
    if (!cJSON_IsObject(meta)) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: no \"__metadata__\" object: not an oryx checkpoint (MODELS 12.3)", path);
        cJSON_Delete(meta);
        meta = NULL;
    }
done:
    cJSON_Delete(root);
    ox_free(text);
    fclose(f);
    return meta;
}

/* Converts the string pairs of a metadata object (a non-string value is an error) into a configuration. */
static ox_status config_from_json(ox_ctx *ctx, const char *path, const cJSON *meta, ox_oryx_config *cfg)
{
    int n = cJSON_GetArraySize(meta);
    ox_st_kv *kv = ox_malloc(sizeof *kv * (size_t)(n > 0 ? n : 1));
    if (!kv)
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory", path);
    int i = 0;
    for (const cJSON *e = meta->child; e; e = e->next) {
        if (!cJSON_IsString(e)) {
            ox_free(kv);
            return ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s: metadata value of '%s' is not a string", path, e->string);
        }
        kv[i++] = (ox_st_kv){ e->string, e->valuestring };
    }
    ox_oryx_config_from_meta(ctx, kv, i, cfg);
    ox_free(kv);
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
    cJSON *meta = read_meta_json(ctx, path);
    if (!meta)
        return ctx->status;
    config_from_json(ctx, path, meta, cfg);
    cJSON_Delete(meta);
    return ctx->status;
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
    ox_st_entry *ents = ox_malloc(sizeof *ents * (size_t)m->params.n);
    if (!ents) {
        ox_oryx_model_free(m);
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < m->params.n; i++)
        ents[i] = (ox_st_entry){ m->params.items[i].name, m->params.items[i].t };
    ox_st_meta *meta = NULL;
    if (ox_safetensors_read_strict(ctx, path, ents, m->params.n, &meta) == OX_ERR_FORMAT) {
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
    ox_free(ents);
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
