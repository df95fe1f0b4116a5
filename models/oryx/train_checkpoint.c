/* train_checkpoint.c - checkpoints of the training state (train.h).
 *
 * <prefix>.state.safetensors is the resumable checkpoint, complete on its own: the model's parameters under
 * their MODELS 12.2 names with its configuration as "model.<key>" metadata (MODELS 12.3 keys), the AdamW
 * moments ("optim.m.<name>", "optim.v.<name>") and, as metadata strings, the step, the data sampler's RNG
 * (seed + counter), the corpus length, hash and path, and every setting of the trainer, the mode-map spec
 * included (kind by name, a POSITIONS list of any length as one comma list, the caller's eval schedule),
 * and the caller's own strings as "user.<key>" (ox_oryx_train_save_with; bin/oryx keeps the loss history
 * there, so that history and checkpoint are saved as one).
 * <prefix>.safetensors is the model alone (ox_oryx_save), for generate / eval / info.
 *
 * A save writes the state file first, then the model file, each by atomic replacement (tensor/io.h). Killed
 * at any instant, or failing on a full disk, it leaves a state file that is either the previous complete one
 * or the new complete one, and resume reads nothing else, so a checkpoint is always resumable; the model file
 * is at most one save behind and is itself always complete.
 *
 * Formats: "oryx-train-state-3" (written) as above. "oryx-train-state-2" (no weights: the model file holds
 * them and its step must match; map kind as an integer; adds "map.every") and "oryx-train-state-1" (no
 * "map.every"; "map.positions" of at most 64 entries) are read. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/oryx/checkpoint.h"
#include "models/oryx/train.h"
#include "tensor/alloc.h"

#define PATH_LEN 4096
#define STATE_KEYS (40 + OX_ORYX_META_KEYS)
#define STATE_FORMAT "oryx-train-state-3"
#define STATE_FORMAT_2 "oryx-train-state-2"
#define STATE_FORMAT_1 "oryx-train-state-1"
#define MODEL_KEY_PREFIX "model."
#define USER_KEY_PREFIX "user."
#define USER_KEY_LEN 72

/* ---- writing the metadata ------------------------------------------------------------------------------- */

typedef struct kv_buf {
    ox_st_kv kv[STATE_KEYS];
    char val[STATE_KEYS][32];
    char ratios[OX_ORYX_MAX_RATIOS * 26 + 1];
    char *positions;        /* owned (ox_free): "p0,p1,..." */
    ox_oryx_meta model;     /* the model's configuration (MODELS 12.3) ... */
    char model_keys[OX_ORYX_META_KEYS][48];     /* ... under "model.<key>" */
    int n;
} kv_buf;

static void put(kv_buf *b, const char *key, const char *fmt_value)
{
    b->kv[b->n] = (ox_st_kv){ key, fmt_value };
    b->n++;
}
static void put_i64(kv_buf *b, const char *key, int64_t v)
{
    snprintf(b->val[b->n], sizeof b->val[0], "%lld", (long long)v);
    put(b, key, b->val[b->n]);
}
static void put_u64(kv_buf *b, const char *key, uint64_t v)
{
    snprintf(b->val[b->n], sizeof b->val[0], "%" PRIu64, v);
    put(b, key, b->val[b->n]);
}
/* %.17g: strtod gives back the same double (and so the same float for float fields). */
static void put_f64(kv_buf *b, const char *key, double v)
{
    snprintf(b->val[b->n], sizeof b->val[0], "%.17g", v);
    put(b, key, b->val[b->n]);
}

/* Fills b (b->positions: ox_free after use, also on failure). */
static ox_status state_meta(ox_ctx *ctx, const ox_oryx_trainer *tr, kv_buf *b)
{
    const ox_oryx_train_config *c = &tr->cfg;
    b->n = 0;
    b->positions = NULL;
    put(b, "format", STATE_FORMAT);
    put_i64(b, "step", tr->step);
    put_i64(b, "adamw.t", ox_optim_adamw_get_step(tr->opt));
    put_u64(b, "rng.seed", tr->rng.seed);
    put_u64(b, "rng.counter", tr->rng.counter);
    put(b, "data.sampler", "random");
    put_i64(b, "data.n_bytes", tr->data->n);
    put_u64(b, "data.hash", tr->data->hash);
    put_i64(b, "batch", c->batch);
    put_i64(b, "seq_len", c->seq_len);
    put_i64(b, "accum", c->accum);
    put_f64(b, "lr_max", c->lr_max);
    put_f64(b, "lr_min", c->lr_min);
    put_i64(b, "warmup", c->warmup);
    put_i64(b, "total_steps", c->total_steps);
    put_f64(b, "clip", c->clip);
    put_f64(b, "adamw.b1", c->adamw.b1);
    put_f64(b, "adamw.b2", c->adamw.b2);
    put_f64(b, "adamw.eps", c->adamw.eps);
    put_f64(b, "adamw.wd", c->adamw.wd);
    put_u64(b, "seed", c->seed);
    put(b, "map.kind", ox_oryx_map_kind_name(c->map.kind));
    put_i64(b, "map.chunk", c->map.chunk);
    put_f64(b, "map.fraction", c->map.fraction);
    put_u64(b, "map.seed", c->map.seed);
    size_t o = 0;
    b->ratios[0] = 0;
    for (int i = 0; i < c->map.n_ratios; i++)
        o += (size_t)snprintf(b->ratios + o, sizeof b->ratios - o, "%s%.17g", i ? "," : "", c->map.ratios[i]);
    put(b, "map.ratios", b->ratios);
    put_i64(b, "map.every", c->map.every);
    /* at most 20 digits and a comma per entry */
    size_t cap = 21 * (size_t)c->map.n_positions + 1;
    b->positions = ox_malloc(cap);
    if (!b->positions)
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "oryx train save: cannot format %lld map positions",
                           (long long)c->map.n_positions);
    o = 0;
    b->positions[0] = 0;
    for (int64_t i = 0; i < c->map.n_positions; i++)
        o += (size_t)snprintf(b->positions + o, cap - o, "%s%lld", i ? "," : "", (long long)c->map.positions[i]);
    put(b, "map.positions", b->positions);
    put_i64(b, "eval.every", c->eval_every);
    put_i64(b, "eval.windows", c->eval_windows);
    put(b, "data.path", c->data_path);
    if (ox_oryx_config_to_meta(ctx, &tr->model->cfg, &b->model))
        return ctx->status;
    for (int i = 0; i < b->model.n; i++) {
        snprintf(b->model_keys[i], sizeof b->model_keys[i], "%s%s", MODEL_KEY_PREFIX, b->model.kv[i].key);
        put(b, b->model_keys[i], b->model.kv[i].value);
    }
    return OX_OK;
}

static ox_status make_paths(ox_ctx *ctx, const char *op, const char *prefix, char *model, char *state)
{
    if (!prefix)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: prefix must not be NULL", op);
    if (strlen(prefix) + 20 > PATH_LEN)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "%s: prefix longer than %d bytes", op, PATH_LEN - 20);
    snprintf(model, PATH_LEN, "%s.safetensors", prefix);
    snprintf(state, PATH_LEN, "%s.state.safetensors", prefix);
    return OX_OK;
}

/* The entries of a state file: the P parameters of params (when not NULL) under their names, then the 2P
 * moments of opt, m then v, named by the state tensors' names. Owned array (ox_free). */
static ox_st_entry *state_entries(ox_ctx *ctx, const ox_nn_params *params, const ox_optim_adamw *opt, int *n)
{
    int P = opt->m.n, W = params ? params->n : 0;
    ox_st_entry *e = ox_malloc(sizeof *e * (size_t)(W + 2 * P));
    if (!e) {
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "oryx train checkpoint: out of memory");
        return NULL;
    }
    for (int i = 0; i < W; i++)
        e[i] = (ox_st_entry){ params->items[i].name, params->items[i].t };
    for (int i = 0; i < P; i++) {
        e[W + i] = (ox_st_entry){ opt->m.t[i]->name, opt->m.t[i] };
        e[W + P + i] = (ox_st_entry){ opt->v.t[i]->name, opt->v.t[i] };
    }
    *n = W + 2 * P;
    return e;
}

ox_status ox_oryx_train_save_with(ox_ctx *ctx, const ox_oryx_trainer *tr, const char *prefix, const ox_st_kv *extra,
                                  int n_extra)
{
    if (ctx->status)
        return ctx->status;
    if (!tr || !tr->opt || !tr->model || !tr->data)
        return ox_ctx_fail(ctx, OX_ERR_STATE, "oryx train save: the trainer is not initialised");
    if (n_extra < 0 || (n_extra > 0 && !extra))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx train save: %d extra metadata entries without a list", n_extra);
    char mpath[PATH_LEN], spath[PATH_LEN];
    if (make_paths(ctx, "oryx train save", prefix, mpath, spath))
        return ctx->status;
    /* the state file first: it alone is what resume reads (see the top of this file) */
    kv_buf b;
    int n = 0;
    ox_st_entry *e = state_meta(ctx, tr, &b) ? NULL : state_entries(ctx, &tr->model->params, tr->opt, &n);
    ox_st_kv *kv = e ? ox_malloc(sizeof *kv * (size_t)(b.n + n_extra)) : NULL;
    char *keys = kv ? ox_malloc((size_t)n_extra * USER_KEY_LEN + 1) : NULL;
    if (e && (!kv || !keys))
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "oryx train save: out of memory");
    if (keys) {
        memcpy(kv, b.kv, sizeof *kv * (size_t)b.n);
        for (int i = 0; i < n_extra && !ctx->status; i++) {
            char *k = keys + (size_t)i * USER_KEY_LEN;
            if (!extra[i].key || snprintf(k, USER_KEY_LEN, "%s%s", USER_KEY_PREFIX, extra[i].key) >= USER_KEY_LEN)
                ox_ctx_fail(ctx, OX_ERR_ARG, "oryx train save: extra metadata key %d is NULL or longer than %d bytes",
                            i, USER_KEY_LEN - 8);
            kv[b.n + i] = (ox_st_kv){ k, extra[i].value };
        }
        ox_safetensors_write(ctx, spath, e, n, kv, b.n + n_extra);
    }
    ox_free(keys);
    ox_free(kv);
    ox_free(e);
    ox_free(b.positions);
    if (!ctx->status)
        ox_oryx_save(ctx, tr->model, mpath, tr->step, tr->cfg.seq_len);
    return ctx->status;
}

ox_status ox_oryx_train_save(ox_ctx *ctx, const ox_oryx_trainer *tr, const char *prefix)
{
    return ox_oryx_train_save_with(ctx, tr, prefix, NULL, 0);
}

/* ---- reading the metadata ------------------------------------------------------------------------------- */

static const char *need(ox_ctx *ctx, const ox_st_meta *m, const char *path, const char *key)
{
    const char *v = ox_st_meta_get(m, key);
    if (!v && !ctx->status)
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx train resume %s: metadata key \"%s\" is missing", path, key);
    return v;
}

static void bad(ox_ctx *ctx, const char *path, const char *key, const char *v)
{
    ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx train resume %s: metadata \"%s\" = \"%.60s\" is not a valid value", path,
                key, v);
}

static int64_t get_i64(ox_ctx *ctx, const ox_st_meta *m, const char *path, const char *key)
{
    const char *v = need(ctx, m, path, key);
    if (!v)
        return 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end)
        bad(ctx, path, key, v);
    return (int64_t)x;
}

static uint64_t get_u64(ox_ctx *ctx, const ox_st_meta *m, const char *path, const char *key)
{
    const char *v = need(ctx, m, path, key);
    if (!v)
        return 0;
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (end == v || *end || v[0] == '-')
        bad(ctx, path, key, v);
    return (uint64_t)x;
}

static double get_f64(ox_ctx *ctx, const ox_st_meta *m, const char *path, const char *key)
{
    const char *v = need(ctx, m, path, key);
    if (!v)
        return 0;
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end)
        bad(ctx, path, key, v);
    return x;
}

/* A comma list of at most cap numbers (doubles); returns the count. */
static int get_list(ox_ctx *ctx, const ox_st_meta *m, const char *path, const char *key, int cap, double *out)
{
    const char *v = need(ctx, m, path, key), *p = v;
    int n = 0;
    if (!v || !*v)
        return 0;
    for (;;) {
        char *end;
        if (n == cap) {
            bad(ctx, path, key, v);
            return 0;
        }
        out[n] = strtod(p, &end);
        if (end == p || (*end && *end != ',')) {
            bad(ctx, path, key, v);
            return 0;
        }
        n++;
        if (!*end)
            return n;
        p = end + 1;
    }
}

/* A comma list of integers of any length: an owned array (ox_free; NULL when the list is empty or on error)
 * and its length. */
static int64_t *get_int_list(ox_ctx *ctx, const ox_st_meta *m, const char *path, const char *key, int64_t *n_out)
{
    const char *v = need(ctx, m, path, key), *p = v;
    *n_out = 0;
    if (!v || !*v)
        return NULL;
    int64_t cap = 1;
    for (const char *q = v; *q; q++)
        cap += *q == ',';
    int64_t *out = ox_malloc(sizeof *out * (size_t)cap), n = 0;
    if (!out) {
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "oryx train resume %s: cannot hold %lld map positions", path, (long long)cap);
        return NULL;
    }
    for (;;) {
        char *end;
        out[n] = (int64_t)strtoll(p, &end, 10);
        if (end == p || (*end && *end != ',')) {
            bad(ctx, path, key, v);
            ox_free(out);
            return NULL;
        }
        n++;
        if (!*end)
            break;
        p = end + 1;
    }
    *n_out = n;
    return out;
}

/* The trainer configuration; c->map.positions is an owned array (ox_free) when the list is not empty.
 * Returns the format version (1, 2 or 3; 0 on error). */
static int parse_config(ox_ctx *ctx, const ox_st_meta *m, const char *path, ox_oryx_train_config *c)
{
    memset(c, 0, sizeof *c);
    const char *fmt = need(ctx, m, path, "format");
    int version = !fmt ? 0 : strcmp(fmt, STATE_FORMAT) == 0 ? 3 : strcmp(fmt, STATE_FORMAT_2) == 0 ? 2
                : strcmp(fmt, STATE_FORMAT_1) == 0 ? 1 : 0;
    if (fmt && !version)
        bad(ctx, path, "format", fmt);
    if (!version)
        return 0;
    c->batch = get_i64(ctx, m, path, "batch");
    c->seq_len = get_i64(ctx, m, path, "seq_len");
    c->accum = get_i64(ctx, m, path, "accum");
    c->lr_max = get_f64(ctx, m, path, "lr_max");
    c->lr_min = get_f64(ctx, m, path, "lr_min");
    c->warmup = get_i64(ctx, m, path, "warmup");
    c->total_steps = get_i64(ctx, m, path, "total_steps");
    c->clip = get_f64(ctx, m, path, "clip");
    c->adamw.b1 = (float)get_f64(ctx, m, path, "adamw.b1");
    c->adamw.b2 = (float)get_f64(ctx, m, path, "adamw.b2");
    c->adamw.eps = (float)get_f64(ctx, m, path, "adamw.eps");
    c->adamw.wd = (float)get_f64(ctx, m, path, "adamw.wd");
    c->seed = get_u64(ctx, m, path, "seed");
    if (version >= 3) {
        const char *k = need(ctx, m, path, "map.kind");
        if (k && ox_oryx_map_kind_parse(ctx, k, &c->map.kind)) {
            ox_ctx_clear_error(ctx);
            bad(ctx, path, "map.kind", k);
        }
    } else
        c->map.kind = (ox_oryx_map_kind)get_i64(ctx, m, path, "map.kind");
    c->map.chunk = get_i64(ctx, m, path, "map.chunk");
    c->map.fraction = get_f64(ctx, m, path, "map.fraction");
    c->map.seed = get_u64(ctx, m, path, "map.seed");
    c->map.n_ratios = get_list(ctx, m, path, "map.ratios", OX_ORYX_MAX_RATIOS, c->map.ratios);
    c->map.every = version >= 2 ? get_i64(ctx, m, path, "map.every") : 0;
    if (version >= 3) {
        c->eval_every = get_i64(ctx, m, path, "eval.every");
        c->eval_windows = get_i64(ctx, m, path, "eval.windows");
        const char *dp = need(ctx, m, path, "data.path");
        if (dp && strlen(dp) >= sizeof c->data_path)
            bad(ctx, path, "data.path", dp);
        else if (dp)
            snprintf(c->data_path, sizeof c->data_path, "%s", dp);
    }
    c->map.positions = get_int_list(ctx, m, path, "map.positions", &c->map.n_positions);
    return ctx->status ? 0 : version;
}

/* A format-3 state file's model configuration: its "model.<key>" metadata, prefix removed. */
static ox_status model_config(ox_ctx *ctx, const ox_st_meta *m, const char *path, ox_oryx_config *cfg)
{
    ox_st_kv kv[OX_ORYX_META_KEYS + 8];
    int64_t n = 0;
    size_t pl = strlen(MODEL_KEY_PREFIX);
    for (int64_t i = 0; i < m->n; i++) {
        if (strncmp(m->kv[i].key, MODEL_KEY_PREFIX, pl) != 0)
            continue;
        if (n == (int64_t)(sizeof kv / sizeof kv[0]))
            return ox_ctx_fail(ctx, OX_ERR_FORMAT, "oryx train resume %s: too many \"%s\" metadata keys", path,
                               MODEL_KEY_PREFIX);
        kv[n++] = (ox_st_kv){ m->kv[i].key + pl, m->kv[i].value };
    }
    if (ox_oryx_config_from_meta(ctx, kv, n, cfg)) {
        char msg[sizeof ctx->message];
        snprintf(msg, sizeof msg, "%s", ctx->message);
        ox_status st = ctx->status;
        ox_ctx_clear_error(ctx);
        return ox_ctx_fail(ctx, st, "oryx train resume %s: the model configuration (\"%s*\" keys): %s", path,
                           MODEL_KEY_PREFIX, msg);
    }
    return OX_OK;
}

ox_status ox_oryx_train_read_settings(ox_ctx *ctx, const char *prefix, ox_oryx_train_config *cfg, int64_t *step)
{
    if (!cfg)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx train settings: cfg must not be NULL");
    memset(cfg, 0, sizeof *cfg);
    if (ctx->status)
        return ctx->status;
    char mpath[PATH_LEN], spath[PATH_LEN];
    if (make_paths(ctx, "oryx train settings", prefix, mpath, spath))
        return ctx->status;
    ox_st_meta *meta = NULL;
    if (ox_safetensors_read_meta(ctx, spath, &meta))
        return ctx->status;
    parse_config(ctx, meta, spath, cfg);
    int64_t s = get_i64(ctx, meta, spath, "step");
    ox_st_meta_free(meta);
    ox_free((void *)cfg->map.positions);
    cfg->map.positions = NULL;
    cfg->map.n_positions = 0;
    if (step)
        *step = s;
    if (ctx->status)
        memset(cfg, 0, sizeof *cfg);
    return ctx->status;
}

char *ox_oryx_train_read_user(ox_ctx *ctx, const char *prefix, const char *key)
{
    if (ctx->status)
        return NULL;
    char mpath[PATH_LEN], spath[PATH_LEN], full[USER_KEY_LEN];
    if (make_paths(ctx, "oryx train read", prefix, mpath, spath))
        return NULL;
    if (!key || snprintf(full, sizeof full, "%s%s", USER_KEY_PREFIX, key) >= (int)sizeof full) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "oryx train read: the key is NULL or too long");
        return NULL;
    }
    ox_st_meta *meta = NULL;
    if (ox_safetensors_read_meta(ctx, spath, &meta))
        return NULL;
    const char *v = ox_st_meta_get(meta, full);
    char *out = NULL;
    if (v) {
        size_t n = strlen(v);
        out = ox_malloc(n + 1);
        if (out)
            memcpy(out, v, n + 1);
        else
            ox_ctx_fail(ctx, OX_ERR_NOMEM, "oryx train read %s: out of memory", spath);
    }
    ox_st_meta_free(meta);
    return out;
}

ox_status ox_oryx_train_resume(ox_ctx *ctx, const char *prefix, ox_oryx_model *model, const ox_oryx_data *data,
                               ox_oryx_trainer *tr)
{
    if (!model || !tr || !data || !data->bytes)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "oryx train resume: model, data and tr must not be NULL");
    memset(tr, 0, sizeof *tr);
    memset(model, 0, sizeof *model);
    if (ctx->status)
        return ctx->status;
    char mpath[PATH_LEN], spath[PATH_LEN];
    if (make_paths(ctx, "oryx train resume", prefix, mpath, spath))
        return ctx->status;
    /* The format decides where the weights are: in the state file (3) or in the model file (1, 2). */
    ox_st_meta *head = NULL;
    if (ox_safetensors_read_meta(ctx, spath, &head))
        return ctx->status;
    const char *fmt = ox_st_meta_get(head, "format");
    int self_contained = fmt && strcmp(fmt, STATE_FORMAT) == 0;
    int64_t mstep = -1, seq = -1;
    if (self_contained) {
        ox_oryx_config mc;
        ox_rng rng = ox_rng_seed(0);    /* every value is overwritten by the file */
        if (model_config(ctx, head, spath, &mc) == OX_OK)
            ox_oryx_model_init(ctx, model, &mc, &rng);
    } else
        ox_oryx_load(ctx, mpath, model, &mstep, &seq);
    ox_st_meta_free(head);
    if (ctx->status) {
        ox_status s = ctx->status;
        ox_oryx_model_free(model);
        return s;
    }
    /* Moments are read into a provisional optimizer (the hyper-parameters are in the same file), then moved
     * into the trainer's. */
    ox_optim_adamw *tmp = ox_optim_adamw_new(ctx, &model->params, ox_optim_adamw_defaults());
    ox_st_meta *meta = NULL;
    int n = 0;
    ox_st_entry *e = tmp ? state_entries(ctx, self_contained ? &model->params : NULL, tmp, &n) : NULL;
    if (e)
        ox_safetensors_read_strict(ctx, spath, e, n, &meta);
    ox_free(e);
    ox_oryx_train_config c;
    memset(&c, 0, sizeof c);
    int64_t step = 0, t = 0;
    uint64_t rseed = 0, rcount = 0;
    if (!ctx->status) {
        parse_config(ctx, meta, spath, &c);
        step = get_i64(ctx, meta, spath, "step");
        t = get_i64(ctx, meta, spath, "adamw.t");
        rseed = get_u64(ctx, meta, spath, "rng.seed");
        rcount = get_u64(ctx, meta, spath, "rng.counter");
        int64_t nb = get_i64(ctx, meta, spath, "data.n_bytes");
        uint64_t h = get_u64(ctx, meta, spath, "data.hash");
        if (self_contained) {
            mstep = step;
            seq = c.seq_len;
        }
        if (!ctx->status && step != mstep)
            ox_ctx_fail(ctx, OX_ERR_STATE, "oryx train resume %s: the model file is at step %lld but the state file "
                        "%s is at step %lld: they were not saved together", mpath, (long long)mstep, spath,
                        (long long)step);
        if (!ctx->status && (nb != data->n || h != data->hash))
            ox_ctx_fail(ctx, OX_ERR_STATE, "oryx train resume %s: the checkpoint was trained on a corpus of %lld bytes "
                        "(hash %016" PRIx64 "), the data given has %lld bytes (hash %016" PRIx64 ")", spath,
                        (long long)nb, h, (long long)data->n, data->hash);
        if (!ctx->status && seq != c.seq_len)
            ox_ctx_fail(ctx, OX_ERR_STATE, "oryx train resume: train_seq_len %lld in %s but seq_len %lld in %s",
                        (long long)seq, mpath, (long long)c.seq_len, spath);
    }
    if (!ctx->status && ox_oryx_trainer_init(ctx, tr, model, data, &c) == OX_OK) {
        ox_optim_state s = tr->opt->m;
        tr->opt->m = tmp->m;
        tmp->m = s;
        s = tr->opt->v;
        tr->opt->v = tmp->v;
        tmp->v = s;
        ox_optim_adamw_set_step(ctx, tr->opt, t);
        tr->step = step;
        tr->rng.seed = rseed;
        tr->rng.counter = rcount;
    }
    ox_free((void *)c.map.positions);     /* parse_config's list; the trainer holds its own copy */
    ox_optim_adamw_free(tmp);
    ox_st_meta_free(meta);
    if (ctx->status) {
        ox_status s = ctx->status;
        ox_oryx_trainer_free(tr);
        ox_oryx_model_free(model);
        return s;
    }
    return OX_OK;
}
