/* 06_gpt.c - tutorial 6: nanoGPT's GPT built from the library's modules, checked against nanoGPT itself.
 *
 * The model is karpathy/nanoGPT's model.py (GPT-2's architecture at a small size), module for module:
 *     x = wte[idx] + wpe[0 .. T-1]                          learned token and position embeddings
 *     for each block:  x = x + attn(ln_1(x))                pre-LayerNorm, causal self-attention with the
 *                      x = x + mlp(ln_2(x))                 packed c_attn [3C, C] (nn/mha.h); mlp = c_proj(gelu(c_fc))
 *     logits = ln_f(x) wte^T                                the LM head is tied to wte (one buffer)
 * With weight tying the table wte receives two gradients, the lookup's (a scatter-add) and the head's (a GEMM):
 * both accumulate into the one wte->grad, as in PyTorch, with no special code.
 * Every parameter has nanoGPT's state-dict name ("transformer.h.0.attn.c_attn.weight", ...), so the
 * parameter list loads a nanoGPT checkpoint as it is.
 *
 * Two modes:
 *   build/examples/06_gpt [--quick] [--threads N]
 *       trains a character-level GPT on data/tinyshakespeare.txt (run from the repository root), prints the
 *       training and held-out losses, then samples text with nn/sampler (temperature 0.8, top-k 20).
 *       --quick: fewer steps (what the test suite runs).
 *   build/examples/06_gpt --check FILE
 *       loads a golden file written by nanoGPT's own code (tests/data/nanogpt_A.safetensors, _B; their
 *       conventions are in tests/data/nanogpt_README.md): the config from its metadata, the weights by nanoGPT's
 *       names (the causal-mask buffers ".attn.bias" and the tied alias lm_head.weight are skipped), the
 *       inputs; runs forward and backward and prints on its last line
 *           logits <err> loss <err> grads <worst per-tensor err>
 *       with err = max|ours - golden| / max|golden| per tensor. Exit 0 iff logits, loss <= 5e-6 and
 *       grads <= 1e-5 (about 10x the float32-vs-float64 error that nanoGPT itself has on these inputs).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops.h"         /* ox_ag_add, ox_ag_gelu, ox_ag_narrow, no-grad scope */
#include "nn/cross_entropy.h"     /* ox_nn_cross_entropy */
#include "nn/embedding.h"         /* ox_nn_embedding_t: wte, wpe; the tied head */
#include "nn/layernorm.h"         /* ox_nn_layernorm_t: ln_1, ln_2, ln_f */
#include "nn/linear.h"            /* ox_nn_linear_t: mlp.c_fc, mlp.c_proj */
#include "nn/mha.h"               /* ox_nn_mha_t: attn.c_attn, attn.c_proj */
#include "nn/params_io.h"         /* ox_nn_params_load */
#include "nn/sampler.h"           /* ox_nn_sample */
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/schedule.h"
#include "tensor/rng.h"
#include "tensor/safetensors.h"
#include "tensor/ctx.h"
#include "tensor/alloc.h"
#include "tensor/io.h"

static void die(ox_ctx *ctx, const char *what)
{
    fprintf(stderr, "06_gpt: %s failed: %s\n", what, ctx ? ox_ctx_message(ctx) : "out of memory");
    exit(1);
}

/* ---- 1. The model ------------------------------------------------------------------------------------ */

/* nanoGPT's GPTConfig (dropout is 0 here: this port has no dropout). */
struct gpt_config {
    int64_t n_layer, n_head, n_embd, block_size, vocab_size;
    int bias;                   /* biases in every Linear and LayerNorm */
};

struct block {
    ox_nn_layernorm_t ln_1, ln_2;
    ox_nn_mha_t attn;           /* c_attn [3C, C], c_proj [C, C] */
    ox_nn_linear_t c_fc, c_proj;    /* the MLP: [4C, C], [C, 4C] */
};

struct gpt {
    struct gpt_config cfg;
    ox_nn_params ps;            /* owns every parameter and gradient */
    ox_nn_embedding_t wte, wpe; /* [V, C], [block_size, C] */
    struct block *h;            /* [n_layer] */
    ox_nn_layernorm_t ln_f;
};

/* A Linear with nanoGPT's init: weight N(0, std^2), bias 0. */
static void linear_init(ox_ctx *ctx, ox_nn_params *ps, ox_nn_linear_t *l, const char *name, int64_t in,
                        int64_t out, int bias, double std, ox_rng *rng)
{
    if (bias ? ox_nn_linear_init_bias(ctx, ps, l, name, in, out, std, rng)
             : ox_nn_linear_init(ctx, ps, l, name, in, out, std, rng))
        return;
    if (l->bias)
        ox_tensor_fill(ctx, l->bias, 0.0);
}

/* The parameters in nanoGPT's state-dict order and init (_init_weights: N(0, 0.02), the two residual
 * projections c_proj N(0, 0.02 / sqrt(2 n_layer)), biases 0, LayerNorms 1 and 0). */
static void gpt_init(ox_ctx *ctx, struct gpt *m, const struct gpt_config *cfg, ox_rng *rng)
{
    const int64_t C = cfg->n_embd;
    const double std = 0.02, proj_std = 0.02 / sqrt(2.0 * (double)cfg->n_layer);
    char name[128];
    m->cfg = *cfg;
    ox_nn_params_init(&m->ps);
    m->h = calloc((size_t)cfg->n_layer, sizeof *m->h);
    if (!m->h)
        die(NULL, "model init");
    ox_nn_embedding_init(ctx, &m->ps, &m->wte, "transformer.wte", cfg->vocab_size, C, std, rng);
    ox_nn_embedding_init(ctx, &m->ps, &m->wpe, "transformer.wpe", cfg->block_size, C, std, rng);
    for (int64_t i = 0; i < cfg->n_layer; i++) {
        struct block *b = &m->h[i];
        ox_nn_mha_config ac = { C, cfg->n_head, 1, cfg->bias, std, proj_std };    /* packed c_attn */
        snprintf(name, sizeof name, "transformer.h.%lld.ln_1", (long long)i);
        ox_nn_layernorm_init(ctx, &m->ps, &b->ln_1, name, C, cfg->bias);
        snprintf(name, sizeof name, "transformer.h.%lld.attn", (long long)i);
        ox_nn_mha_init(ctx, &m->ps, &b->attn, name, &ac, rng);
        snprintf(name, sizeof name, "transformer.h.%lld.ln_2", (long long)i);
        ox_nn_layernorm_init(ctx, &m->ps, &b->ln_2, name, C, cfg->bias);
        snprintf(name, sizeof name, "transformer.h.%lld.mlp.c_fc", (long long)i);
        linear_init(ctx, &m->ps, &b->c_fc, name, C, 4 * C, cfg->bias, std, rng);
        snprintf(name, sizeof name, "transformer.h.%lld.mlp.c_proj", (long long)i);
        linear_init(ctx, &m->ps, &b->c_proj, name, 4 * C, C, cfg->bias, proj_std, rng);
    }
    ox_nn_layernorm_init(ctx, &m->ps, &m->ln_f, "transformer.ln_f", C, cfg->bias);
    if (ox_ctx_status(ctx))
        die(ctx, "model init");
}

static void gpt_free(struct gpt *m)
{
    ox_nn_params_free(&m->ps);
    free(m->h);
}

/* logits [B, T, V] for idx I32 [B, T] (T <= block_size); arena tensors. */
static ox_tensor *gpt_forward(ox_ctx *ctx, const struct gpt *m, const ox_tensor *idx)
{
    const int64_t T = idx->shape[1];
    /* wte[idx] [B, T, C] + wpe rows 0..T-1 [T, C] (broadcast over the batch; the narrow is a view, so its
     * gradient lands in rows 0..T-1 of wpe) */
    ox_tensor *x = ox_ag_add(ctx, ox_nn_embedding_forward(ctx, &m->wte, idx),
                             ox_ag_narrow(ctx, m->wpe.weight, 0, 0, T));
    for (int64_t i = 0; i < m->cfg.n_layer; i++) {
        const struct block *b = &m->h[i];
        x = ox_ag_add(ctx, x, ox_nn_mha_forward(ctx, &b->attn, ox_nn_layernorm_forward(ctx, &b->ln_1, x), NULL));
        ox_tensor *u = ox_nn_linear_forward(ctx, &b->c_fc, ox_nn_layernorm_forward(ctx, &b->ln_2, x));
        x = ox_ag_add(ctx, x, ox_nn_linear_forward(ctx, &b->c_proj, ox_ag_gelu(ctx, u, OX_AG_GELU_ERF)));
    }
    return ox_nn_embedding_logits(ctx, &m->wte, ox_nn_layernorm_forward(ctx, &m->ln_f, x));   /* tied head */
}

/* ---- 2. --check: against nanoGPT's golden vectors ----------------------------------------------------- */

/* max|a - b| / max|b| over n floats (a may be strided: it is read through a contiguous copy). */
static double rel_err(ox_ctx *ctx, ox_tensor *a, const ox_tensor *b)
{
    ox_tensor *ac = ox_tensor_contiguous(ctx, a);
    if (!ac || ox_tensor_numel(ac) != ox_tensor_numel(b))
        return INFINITY;
    const float *x = ox_tensor_f32(ac), *y = ox_tensor_f32(b);
    double num = 0, den = 0;
    for (int64_t i = 0; i < ox_tensor_numel(b); i++) {
        double d = fabs((double)x[i] - (double)y[i]);
        num = d > num || d != d ? d : num;
        den = fabs((double)y[i]) > den ? fabs((double)y[i]) : den;
    }
    return den > 0 ? num / den : (num > 0 ? INFINITY : 0);
}

/* Which tensors of a golden file are not parameters: inputs, outputs, gradients, the tied alias
 * lm_head.weight (checked against wte below) and nanoGPT's causal-mask buffers "transformer.h.<i>.attn.bias"
 * (registered when torch lacks scaled_dot_product_attention; not the c_attn/c_proj biases). */
static int not_a_parameter(const char *name, void *user)
{
    (void)user;
    size_t n = strlen(name);
    return !strncmp(name, "input.", 6) || !strncmp(name, "output.", 7) || !strncmp(name, "grad.", 5) ||
           !strcmp(name, "lm_head.weight") || (n > 10 && !strcmp(name + n - 10, ".attn.bias"));
}

static int64_t meta_int(ox_ctx *ctx, const ox_st_file *f, const char *key)
{
    const char *v = ox_st_file_meta(f, key);
    char *end;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || end == v || *end || x < 1) {
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "metadata %s is %s%s%s, expected an integer >= 1", key, v ? "'" : "",
                    v ? v : "missing", v ? "'" : "");
        return 0;
    }
    return x;
}

static int check_golden(ox_ctx *ctx, const char *path)
{
    ox_st_file *f = ox_safetensors_load(ctx, path);
    if (!f)
        die(ctx, "reading the golden file");
    struct gpt_config cfg = { meta_int(ctx, f, "config.n_layer"), meta_int(ctx, f, "config.n_head"),
                              meta_int(ctx, f, "config.n_embd"), meta_int(ctx, f, "config.block_size"),
                              meta_int(ctx, f, "config.vocab_size"), 0 };
    const char *bias = ox_st_file_meta(f, "config.bias");
    if (!bias || (strcmp(bias, "true") && strcmp(bias, "false")))
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "metadata config.bias is %s, expected true or false", bias ? bias : "missing");
    const char *dropout = ox_st_file_meta(f, "config.dropout");
    if (dropout && atof(dropout) != 0.0)
        ox_ctx_fail(ctx, OX_ERR_FORMAT, "config.dropout is %s: this port has no dropout", dropout);
    if (ox_ctx_status(ctx))
        die(ctx, path);
    cfg.bias = !strcmp(bias, "true");
    ox_tensor *idx = ox_st_file_get(f, "input.idx"), *targets = ox_st_file_get(f, "input.targets");
    ox_tensor *g_logits = ox_st_file_get(f, "output.logits"), *g_loss = ox_st_file_get(f, "output.loss");
    if (!idx || !targets || !g_logits || !g_loss || idx->dtype != OX_I32 || idx->ndim != 2 ||
        idx->shape[1] > cfg.block_size) {
        fprintf(stderr, "06_gpt: %s: input.idx (I32 [B, T <= block_size]), input.targets, output.logits or "
                "output.loss missing or malformed\n", path);
        exit(1);
    }
    printf("%s: nanoGPT config n_layer %lld, n_head %lld, n_embd %lld, block_size %lld, vocab_size %lld, bias %s;"
           " batch %lld, T %lld\n", path, (long long)cfg.n_layer, (long long)cfg.n_head, (long long)cfg.n_embd,
           (long long)cfg.block_size, (long long)cfg.vocab_size, bias, (long long)idx->shape[0],
           (long long)idx->shape[1]);

    struct gpt m;
    ox_rng rng = ox_rng_seed(1);
    gpt_init(ctx, &m, &cfg, &rng);
    if (ox_nn_params_load(ctx, &m.ps, path, not_a_parameter, NULL, NULL))
        die(ctx, "loading the weights");
    ox_tensor *lm_head = ox_st_file_get(f, "lm_head.weight");
    if (lm_head && rel_err(ctx, m.wte.weight, lm_head) != 0) {
        fprintf(stderr, "06_gpt: %s: lm_head.weight differs from transformer.wte.weight: not a tied model\n", path);
        exit(1);
    }
    printf("loaded %d parameters (%lld values) by nanoGPT's names\n", m.ps.n, (long long)ox_nn_params_numel(&m.ps));

    ox_tensor *logits = gpt_forward(ctx, &m, idx);
    ox_tensor *loss = ox_nn_cross_entropy(ctx, logits, targets, -1);
    if (!loss || ox_ag_backward(ctx, loss))
        die(ctx, "forward / backward");
    double e_logits = rel_err(ctx, logits, g_logits), e_loss = rel_err(ctx, loss, g_loss), e_grads = 0;
    const char *worst = "";
    char gname[256];
    for (int i = 0; i < m.ps.n; i++) {
        snprintf(gname, sizeof gname, "grad.%s", m.ps.items[i].name);
        ox_tensor *g = ox_st_file_get(f, gname);
        double e = g ? rel_err(ctx, m.ps.items[i].t->grad, g) : INFINITY;
        if (!g)
            printf("missing %s in the file\n", gname);
        if (!(e <= e_grads)) {
            e_grads = e;
            worst = m.ps.items[i].name;
        }
    }
    /* the tied alias: its golden gradient is the same sum of both uses */
    ox_tensor *g_head = ox_st_file_get(f, "grad.lm_head.weight");
    double e_head = g_head ? rel_err(ctx, m.wte.weight->grad, g_head) : 0;
    if (!(e_head <= e_grads)) {
        e_grads = e_head;
        worst = "lm_head.weight (tied)";
    }
    printf("loss %.7f (nanoGPT %.7f); worst gradient %s\n", ox_tensor_f32(loss)[0], ox_tensor_f32(g_loss)[0], worst);
    const double tol_out = 5e-6, tol_grad = 1e-5;
    int ok = e_logits <= tol_out && e_loss <= tol_out && e_grads <= tol_grad;
    printf("%s\n", ok ? "match: within 5e-6 (logits, loss) and 1e-5 (gradients)" : "MISMATCH");
    printf("logits %.3g loss %.3g grads %.3g\n", e_logits, e_loss, e_grads);
    gpt_free(&m);
    ox_st_file_free(f);
    return ok ? 0 : 1;
}

/* ---- 3. Training on characters ------------------------------------------------------------------------ */

static const char *DATA_PATH = "data/tinyshakespeare.txt";   /* relative to the repository root */

struct text {
    unsigned char *bytes;
    long len;
    int vocab;
    int id_of[256];
    unsigned char byte_of[256];
};

static void text_load(ox_ctx *ctx, struct text *tx, const char *path)
{
    uint8_t *data;
    int64_t len;
    if (ox_io_read_file(ctx, path, "text", 0, &data, &len) || len < 100000) {
        fprintf(stderr, "06_gpt: %s\n", ctx->status ? ox_ctx_message(ctx) : "the text is shorter than 100000 bytes");
        exit(1);
    }
    tx->bytes = data;
    tx->len = (long)len;
    int seen[256] = { 0 };
    for (long i = 0; i < tx->len; i++)
        seen[tx->bytes[i]] = 1;
    tx->vocab = 0;
    for (int c = 0; c < 256; c++) {
        tx->id_of[c] = seen[c] ? tx->vocab : -1;
        if (seen[c])
            tx->byte_of[tx->vocab++] = (unsigned char)c;
    }
}

/* nanoGPT's get_batch: B random windows of T + 1 characters from [lo, hi): inputs and next characters. */
static void get_batch(const struct text *tx, long lo, long hi, ox_tensor *x, ox_tensor *y, ox_rng *rng)
{
    const int64_t B = x->shape[0], T = x->shape[1];
    for (int64_t b = 0; b < B; b++) {
        long s = lo + (long)(ox_rng_uniform(rng) * (double)(hi - lo - T - 1));
        for (int64_t t = 0; t < T; t++) {
            ox_tensor_i32(x)[b * T + t] = tx->id_of[tx->bytes[s + t]];
            ox_tensor_i32(y)[b * T + t] = tx->id_of[tx->bytes[s + t + 1]];
        }
    }
}

/* Mean loss over `batches` random batches of [lo, hi), without gradients. */
static double eval_loss(ox_ctx *ctx, const struct gpt *m, const struct text *tx, long lo, long hi, int64_t B,
                        int batches, ox_rng *rng)
{
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    double total = 0;
    for (int i = 0; i < batches; i++) {
        ox_tensor *x = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, m->cfg.block_size));
        ox_tensor *y = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, m->cfg.block_size));
        if (!x || !y)
            die(ctx, "evaluation");
        get_batch(tx, lo, hi, x, y, rng);
        ox_tensor *loss = ox_nn_cross_entropy(ctx, gpt_forward(ctx, m, x), y, -1);
        if (!loss)
            die(ctx, "evaluation");
        total += ox_tensor_f32(loss)[0];
        ox_ctx_reset(ctx);
    }
    ox_ag_set_grad_enabled(ctx, prev);
    return total / batches;
}

/* Appends n characters to the prompt, one forward pass over the last block_size characters per token
 * (no KV cache: the simplest correct loop), drawing from the last position's logits with nn/sampler. */
static void sample(ox_ctx *ctx, const struct gpt *m, const struct text *tx, const char *prompt, int n)
{
    const int64_t plen = (int64_t)strlen(prompt), cap = plen + n;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
    if (!ids)
        die(NULL, "sampling");
    for (int64_t i = 0; i < plen; i++)
        ids[i] = tx->id_of[(unsigned char)prompt[i]] < 0 ? 0 : tx->id_of[(unsigned char)prompt[i]];
    ox_nn_sampler s = { .temperature = 0.8, .top_k = 20, .top_p = 0 };
    ox_rng rng = ox_rng_seed(42);
    int prev = ox_ag_set_grad_enabled(ctx, 0);
    printf("sample: \"%s", prompt);
    for (int64_t len = plen; len < cap; len++) {
        int64_t T = len < m->cfg.block_size ? len : m->cfg.block_size;
        ox_tensor *x = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, T));
        if (!x)
            die(ctx, "sampling");
        memcpy(ox_tensor_i32(x), ids + len - T, sizeof(int32_t) * (size_t)T);
        ox_tensor *logits = gpt_forward(ctx, m, x);                  /* [1, T, V] */
        int32_t id = logits ? ox_nn_sample(ctx, ox_tensor_f32(logits) + (T - 1) * m->cfg.vocab_size,
                                           m->cfg.vocab_size, &s, &rng) : -1;
        if (id < 0)
            die(ctx, "sampling");
        ids[len] = id;
        putchar(tx->byte_of[id]);
        ox_ctx_reset(ctx);
    }
    printf("\"\n");
    ox_ag_set_grad_enabled(ctx, prev);
    free(ids);
}

static int train(ox_ctx *ctx, int quick)
{
    struct text tx;
    text_load(ctx, &tx, DATA_PATH);
    /* A small GPT: 3 blocks of width 96 with 4 heads over 64 characters (0.35M parameters); --quick: 2 blocks
     * of width 64 (0.1M), fewer and smaller batches. */
    const struct gpt_config cfg = quick ? (struct gpt_config){ 2, 4, 64, 64, tx.vocab, 1 }
                                        : (struct gpt_config){ 3, 4, 96, 64, tx.vocab, 1 };
    const int64_t B = quick ? 8 : 12, steps = quick ? 100 : 1000, warmup = 20, log_every = quick ? 20 : 100;
    const double lr_max = 3e-3, lr_min = 3e-4;
    const long split = tx.len / 10 * 9;          /* 90% training, 10% held out */
    ox_rng rng = ox_rng_seed(1234), data_rng = ox_rng_seed(7);
    struct gpt m;
    gpt_init(ctx, &m, &cfg, &rng);
    printf("%s: %ld characters, vocabulary of %d; GPT with %lld parameters, %lld steps of %lld x %lld characters\n",
           DATA_PATH, tx.len, tx.vocab, (long long)ox_nn_params_numel(&m.ps), (long long)steps, (long long)B,
           (long long)cfg.block_size);
    printf("a uniform guess scores log(V) = %.4f\n", log((double)tx.vocab));
    ox_optim_adamw *opt = ox_optim_adamw_new(ctx, &m.ps, ox_optim_adamw_defaults());
    if (!opt)
        die(ctx, "optimizer");
    double first = 0, sum = 0, last = 0;
    for (int64_t step = 0; step < steps; step++) {
        ox_tensor *x = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, cfg.block_size));
        ox_tensor *y = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, cfg.block_size));
        if (!x || !y)
            die(ctx, "batch");
        get_batch(&tx, 0, split, x, y, &data_rng);
        ox_tensor *loss = ox_nn_cross_entropy(ctx, gpt_forward(ctx, &m, x), y, -1);
        if (!loss || ox_ag_backward(ctx, loss) || ox_optim_clip_grad_norm(ctx, &m.ps, 1.0, NULL) ||
            ox_optim_adamw_step(ctx, opt, (float)ox_optim_lr_cosine(step, warmup, steps, lr_max, lr_min)))
            die(ctx, "training step");
        double v = ox_tensor_f32(loss)[0];
        if (step == 0) {
            first = v;
            printf("step %4d  loss %.4f\n", 1, v);
        }
        sum += v;
        ox_nn_params_zero_grad(&m.ps);
        ox_ctx_reset(ctx);
        if ((step + 1) % log_every == 0) {
            last = sum / (double)log_every;
            printf("step %4lld  loss %.4f  (mean of the last %lld steps)\n", (long long)(step + 1), last,
                   (long long)log_every);
            sum = 0;
        }
    }
    ox_rng eval_rng = ox_rng_seed(99);
    double held = eval_loss(ctx, &m, &tx, split, tx.len, B, quick ? 4 : 20, &eval_rng);
    printf("training loss: %.4f -> %.4f\n", first, last);
    printf("held-out loss: %.4f\n", held);
    sample(ctx, &m, &tx, "ROMEO:\n", quick ? 80 : 300);
    ox_optim_adamw_free(opt);
    gpt_free(&m);
    ox_free(tx.bytes);
    return 0;
}

int main(int argc, char **argv)
{
    ox_omp_bound_spin(argv);   /* idle OpenMP threads must not hold a core another process needs (tensor/ctx.h) */
    int quick = 0, threads = 1;
    const char *check = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--check") && i + 1 < argc)
            check = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--quick] [--threads N] | --check FILE\n", argv[0]);
            return 2;
        }
    }
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        die(NULL, "ox_ctx_new");
    ox_ctx_set_threads(ctx, threads);
    int rc = check ? check_golden(ctx, check) : train(ctx, quick);
    ox_ctx_free(ctx);
    return rc;
}
