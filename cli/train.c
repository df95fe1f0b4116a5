/* train.c - `oryx train`: a byte-level Oryx-family language model on a text file.
 *
 * Data: the last 10% of the file is the validation split; each training window (T + 1 bytes) starts at a
 * position drawn from the stream of (seed, micro-batch index, row), so the batches of step s do not depend
 * on how the run got there (a resumed run sees the same data as an uninterrupted one).
 * Step: for each of --accum micro-batches, loss = ox_oryx_loss on [B, T+1] rows with a mode map (default:
 * the mixed-mode sampler of MODELS 8; or any SPEC), backward; then grad *= 1/accum, clip to --clip, AdamW
 * with the cosine schedule (linear warmup, half-cosine from --lr to --lr-min at --steps). A step whose
 * gradients are not finite is skipped (logged).
 * Files (cli.h cli_ckpt_paths): the model <out>.safetensors, the training state <out>.train.safetensors
 * (AdamW moments optim.m.* / optim.v.*, step and hyper-parameters as metadata; MODELS 12.3), the loss
 * history <out>.loss.csv (step,loss,val_loss,lr,tokens_per_s). Checkpoints are written atomically (state
 * first, then the model), every --save-every steps, at the end, and when SIGINT arrives (the handler sets a
 * flag; the loop saves and exits with 130).
 * Output: a progress bar on a terminal, plain log lines otherwise. */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/tape.h"
#include "cli/cli.h"
#include "models/oryx/checkpoint.h"
#include "models/oryx/modes.h"
#include "optim/adamw.h"
#include "optim/clip.h"
#include "optim/schedule.h"

#define DATA_SALT 0x64617461ULL   /* separates the data stream from the mode-map streams of the same seed */

static volatile sig_atomic_t g_interrupted = 0;

static void on_sigint(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static const char train_help[] =
    "usage: oryx train [options]\n"
    "\n"
    "Trains a byte-level language model on a text file (last 10% = validation split).\n"
    "  --data FILE        training text (default data/tinyshakespeare.txt)\n"
    "  --preset NAME      transformer, gdn, mamba2, hybrid-gdn, hybrid-mamba2, oryx-gdn, oryx-mamba2\n"
    "                     (default oryx-gdn)\n"
    "  --steps N          optimizer steps, >= 1 (default 600)\n"
    "  --out CKPT         checkpoint name: writes CKPT.safetensors, CKPT.train.safetensors, CKPT.loss.csv\n"
    "                     (default runs/oryx)\n"
    "  --resume CKPT      continue from a checkpoint (model, optimizer state and step; sizes come from it)\n"
    "  --seed S           seed of initialisation, data windows and mode maps (default 1234)\n"
    "  --threads N        threads, 0 = all cores (default 0)\n"
    "  --d-model D        model width (default 128)\n"
    "  --layers L         layers (default 4)\n"
    "  --heads H          heads; must divide D (default 4)\n"
    "  --d-k K            key/query head size, even (default D / H)\n"
    "  --d-v V            value head size (default D / H)\n"
    "  --mlp-hidden F     SwiGLU hidden size (default 32 * ceil(8D / 96))\n"
    "  --batch B          sequences per micro-batch (default 16)\n"
    "  --seq T            tokens (bytes) per sequence (default 128; on --resume the checkpoint's)\n"
    "  --accum N          micro-batches per step (default 1)\n"
    "  --lr X             peak learning rate (default 3e-3)\n"
    "  --lr-min X         final learning rate of the cosine (default lr / 10)\n"
    "  --warmup N         linear warmup steps (default 50)\n"
    "  --clip X           gradient-norm clip (default 1.0)\n"
    "  --wd X             AdamW weight decay (default 0.1)\n"
    "  --modes SPEC       training mode maps: mixed (MODELS 8 sampler, per sequence r in {0,1/4,1/2,3/4,1},\n"
    "                     then each 64-token chunk ATTN with probability r), attn, lin, mixed:<f>, every:<N>,\n"
    "                     or a file of 'a'/'l' (default mixed)\n"
    "  --eval-every N     validation loss every N steps, 0 = only at the end (default 100)\n"
    "  --eval-windows N   validation windows scored each time (default 32)\n"
    "  --save-every N     checkpoint every N steps, 0 = only at the end (default 200)\n"
    "  --log-every N      log line every N steps when not on a terminal (default 10)\n"
    "  -h, --help         this text\n";

typedef struct train_opts {
    const char *data, *preset, *out, *resume, *modes;
    int64_t steps, seed, threads, d_model, layers, heads, d_k, d_v, mlp_hidden, batch, seq, accum, warmup;
    int64_t eval_every, eval_windows, save_every, log_every;
    double lr, lr_min, clip, wd;
} train_opts;

static int parse_opts(int argc, char **argv, train_opts *o)
{
    enum {
        O_DATA = 256, O_PRESET, O_STEPS, O_OUT, O_RESUME, O_SEED, O_THREADS, O_DMODEL, O_LAYERS, O_HEADS, O_DK,
        O_DV, O_MLP, O_BATCH, O_SEQ, O_ACCUM, O_LR, O_LRMIN, O_WARMUP, O_CLIP, O_WD, O_MODES, O_EVAL, O_EVALW,
        O_SAVE, O_LOG
    };
    static const struct option opts[] = {
        { "data", required_argument, 0, O_DATA },       { "preset", required_argument, 0, O_PRESET },
        { "steps", required_argument, 0, O_STEPS },     { "out", required_argument, 0, O_OUT },
        { "resume", required_argument, 0, O_RESUME },   { "seed", required_argument, 0, O_SEED },
        { "threads", required_argument, 0, O_THREADS }, { "d-model", required_argument, 0, O_DMODEL },
        { "layers", required_argument, 0, O_LAYERS },   { "heads", required_argument, 0, O_HEADS },
        { "d-k", required_argument, 0, O_DK },          { "d-v", required_argument, 0, O_DV },
        { "mlp-hidden", required_argument, 0, O_MLP },  { "batch", required_argument, 0, O_BATCH },
        { "seq", required_argument, 0, O_SEQ },         { "accum", required_argument, 0, O_ACCUM },
        { "lr", required_argument, 0, O_LR },           { "lr-min", required_argument, 0, O_LRMIN },
        { "warmup", required_argument, 0, O_WARMUP },   { "clip", required_argument, 0, O_CLIP },
        { "wd", required_argument, 0, O_WD },           { "modes", required_argument, 0, O_MODES },
        { "eval-every", required_argument, 0, O_EVAL }, { "eval-windows", required_argument, 0, O_EVALW },
        { "save-every", required_argument, 0, O_SAVE }, { "log-every", required_argument, 0, O_LOG },
        { "help", no_argument, 0, 'h' },                { 0, 0, 0, 0 }
    };
    *o = (train_opts){ .data = "data/tinyshakespeare.txt", .preset = "oryx-gdn", .out = "runs/oryx",
                       .modes = "mixed", .steps = 600, .seed = 1234, .d_model = 128, .layers = 4, .heads = 4,
                       .batch = 16, .accum = 1, .warmup = 50, .eval_every = 100, .eval_windows = 32,
                       .save_every = 200, .log_every = 10, .lr = 3e-3, .lr_min = -1, .clip = 1.0, .wd = 0.1 };
    const char *T = "train";
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_DATA: o->data = optarg; break;
        case O_PRESET: o->preset = optarg; break;
        case O_OUT: o->out = optarg; break;
        case O_RESUME: o->resume = optarg; break;
        case O_MODES: o->modes = optarg; break;
        case O_STEPS: bad = cli_parse_i64(T, "steps", optarg, 1, INT64_C(1) << 40, &o->steps); break;
        case O_SEED: bad = cli_parse_i64(T, "seed", optarg, 0, INT64_MAX, &o->seed); break;
        case O_THREADS: bad = cli_parse_i64(T, "threads", optarg, 0, 1024, &o->threads); break;
        case O_DMODEL: bad = cli_parse_i64(T, "d-model", optarg, 1, 1 << 16, &o->d_model); break;
        case O_LAYERS: bad = cli_parse_i64(T, "layers", optarg, 1, OX_ORYX_MAX_LAYERS, &o->layers); break;
        case O_HEADS: bad = cli_parse_i64(T, "heads", optarg, 1, 1024, &o->heads); break;
        case O_DK: bad = cli_parse_i64(T, "d-k", optarg, 2, 1 << 14, &o->d_k); break;
        case O_DV: bad = cli_parse_i64(T, "d-v", optarg, 1, 1 << 14, &o->d_v); break;
        case O_MLP: bad = cli_parse_i64(T, "mlp-hidden", optarg, 1, 1 << 18, &o->mlp_hidden); break;
        case O_BATCH: bad = cli_parse_i64(T, "batch", optarg, 1, 4096, &o->batch); break;
        case O_SEQ: bad = cli_parse_i64(T, "seq", optarg, 2, 1 << 16, &o->seq); break;
        case O_ACCUM: bad = cli_parse_i64(T, "accum", optarg, 1, 4096, &o->accum); break;
        case O_WARMUP: bad = cli_parse_i64(T, "warmup", optarg, 0, INT64_C(1) << 40, &o->warmup); break;
        case O_EVAL: bad = cli_parse_i64(T, "eval-every", optarg, 0, INT64_C(1) << 40, &o->eval_every); break;
        case O_EVALW: bad = cli_parse_i64(T, "eval-windows", optarg, 1, 1 << 20, &o->eval_windows); break;
        case O_SAVE: bad = cli_parse_i64(T, "save-every", optarg, 0, INT64_C(1) << 40, &o->save_every); break;
        case O_LOG: bad = cli_parse_i64(T, "log-every", optarg, 1, INT64_C(1) << 40, &o->log_every); break;
        case O_LR: bad = cli_parse_f64(T, "lr", optarg, 0, 10, &o->lr); break;
        case O_LRMIN: bad = cli_parse_f64(T, "lr-min", optarg, 0, 10, &o->lr_min); break;
        case O_CLIP: bad = cli_parse_f64(T, "clip", optarg, 1e-12, 1e12, &o->clip); break;
        case O_WD: bad = cli_parse_f64(T, "wd", optarg, 0, 10, &o->wd); break;
        case 'h': fputs(train_help, stdout); return -1;
        default: return cli_bad_option(T, c, argv);
        }
        if (bad)
            return CLI_ERR_USAGE;
    }
    if (optind < argc)
        return cli_fail(CLI_ERR_USAGE, T, "unexpected argument '%s' (see oryx train --help)", argv[optind]);
    if (o->lr_min < 0)
        o->lr_min = o->lr / 10;
    return 0;
}

/* The configuration from the preset and size flags; CLI_ERR_USAGE with one line on nonsense. */
static int build_config(ox_ctx *ctx, const train_opts *o, ox_oryx_config *cfg)
{
    if (ox_oryx_config_preset(ctx, o->preset, o->layers, cfg))
        return cli_fail(CLI_ERR_USAGE, "train", "%s", ox_ctx_message(ctx));
    if (o->d_model % o->heads)
        return cli_fail(CLI_ERR_USAGE, "train", "--heads %lld does not divide --d-model %lld", (long long)o->heads,
                        (long long)o->d_model);
    cfg->d_model = o->d_model;
    cfg->n_heads = o->heads;
    cfg->d_k = o->d_k ? o->d_k : o->d_model / o->heads;
    cfg->d_v = o->d_v ? o->d_v : o->d_model / o->heads;
    cfg->mlp_hidden = o->mlp_hidden ? o->mlp_hidden : ox_oryx_default_mlp_hidden(o->d_model);
    if (cfg->d_k % 2)
        return cli_fail(CLI_ERR_USAGE, "train", "the key head size %lld (D / H unless --d-k) must be even for RoPE",
                        (long long)cfg->d_k);
    if (ox_oryx_config_validate(ctx, cfg))
        return cli_fail(CLI_ERR_USAGE, "train", "%s", ox_ctx_message(ctx));
    return 0;
}

/* mkdir -p of the folder part of path (nothing when there is none). */
static int make_parent_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) && access(buf, F_OK))
            return -1;
        *p = '/';
    }
    return 0;
}

/* Writes the training state, then the model (each atomically). */
static ox_status save_checkpoint(ox_ctx *ctx, const ox_oryx_model *m, const ox_optim_adamw *opt, const char *model,
                                 const char *state, int64_t step, int64_t T, const train_opts *o)
{
    int n = m->params.n;
    ox_st_entry *e = malloc(sizeof *e * (size_t)(2 * n));
    if (!e)
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "train: out of memory saving the training state");
    for (int i = 0; i < n; i++) {
        ox_tensor *mt = ox_optim_adamw_m(opt, i), *vt = ox_optim_adamw_v(opt, i);
        e[2 * i] = (ox_st_entry){ mt->name, mt };
        e[2 * i + 1] = (ox_st_entry){ vt->name, vt };
    }
    char s_step[32], s_t[32], s_seed[32], s_lr[32], s_lrmin[32], s_wd[32], s_clip[32], s_seq[32];
    snprintf(s_step, sizeof s_step, "%lld", (long long)step);
    snprintf(s_t, sizeof s_t, "%lld", (long long)ox_optim_adamw_get_step(opt));
    snprintf(s_seed, sizeof s_seed, "%lld", (long long)o->seed);
    snprintf(s_lr, sizeof s_lr, "%.9g", o->lr);
    snprintf(s_lrmin, sizeof s_lrmin, "%.9g", o->lr_min);
    snprintf(s_wd, sizeof s_wd, "%.9g", o->wd);
    snprintf(s_clip, sizeof s_clip, "%.9g", o->clip);
    snprintf(s_seq, sizeof s_seq, "%lld", (long long)T);
    const ox_st_kv kv[] = { { "step", s_step },  { "adamw_t", s_t },    { "seed", s_seed },
                            { "lr", s_lr },      { "lr_min", s_lrmin }, { "wd", s_wd },
                            { "clip", s_clip },  { "train_seq_len", s_seq } };
    ox_status st = ox_safetensors_write(ctx, state, e, 2 * n, kv, (int64_t)(sizeof kv / sizeof kv[0]));
    free(e);
    if (st == OX_OK)
        st = ox_oryx_save(ctx, m, model, step, T);
    return st;
}

/* Restores the AdamW moments and step count from the state file; its step must match the model's. */
static int load_state(ox_ctx *ctx, ox_optim_adamw *opt, const ox_oryx_model *m, const char *state, int64_t step)
{
    int n = m->params.n;
    ox_st_entry *e = malloc(sizeof *e * (size_t)(2 * n));
    if (!e)
        return cli_fail(CLI_ERR_RUN, "train", "out of memory loading '%s'", state);
    for (int i = 0; i < n; i++) {
        ox_tensor *mt = ox_optim_adamw_m(opt, i), *vt = ox_optim_adamw_v(opt, i);
        e[2 * i] = (ox_st_entry){ mt->name, mt };
        e[2 * i + 1] = (ox_st_entry){ vt->name, vt };
    }
    ox_st_meta *meta = NULL;
    ox_status st = ox_safetensors_read_strict(ctx, state, e, 2 * n, &meta);
    free(e);
    if (st)
        return cli_fail(CLI_ERR_INPUT, "train", "cannot resume from training state '%s': %s", state,
                        ox_ctx_message(ctx));
    const char *s_step = ox_st_meta_get(meta, "step"), *s_t = ox_st_meta_get(meta, "adamw_t");
    char *end1 = NULL, *end2 = NULL;
    long long fs = s_step ? strtoll(s_step, &end1, 10) : -1, ft = s_t ? strtoll(s_t, &end2, 10) : -1;
    int code = 0;
    if (!s_step || !s_t || *end1 || *end2 || fs != step || ft < 0)
        code = cli_fail(CLI_ERR_INPUT, "train", "training state '%s' (step %s) does not match the model (step %lld)",
                        state, s_step ? s_step : "missing", (long long)step);
    else if (ox_optim_adamw_set_step(ctx, opt, ft))
        code = cli_fail(CLI_ERR_INPUT, "train", "%s", ox_ctx_message(ctx));
    ox_st_meta_free(meta);
    return code;
}

/* One micro-batch: rows [B, T+1] from the training split and a mode map [B, T]; returns the loss tensor. */
static ox_tensor *micro_step(ox_ctx *ctx, const ox_oryx_model *m, const uint8_t *data, int64_t n_train,
                             const train_opts *o, const cli_spec *spec, int default_mixed, int64_t T, uint64_t micro)
{
    int64_t B = o->batch;
    ox_tensor *rows = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, T + 1));
    if (!rows)
        return NULL;
    for (int64_t b = 0; b < B; b++) {
        ox_rng r = ox_oryx_modes_stream((uint64_t)o->seed ^ DATA_SALT, micro, b);
        int64_t start = (int64_t)ox_rng_below(&r, (uint64_t)(n_train - T));
        int32_t *row = ox_tensor_i32(rows) + b * (T + 1);
        for (int64_t t = 0; t <= T; t++)
            row[t] = data[start + t];
    }
    ox_tensor *mode;
    if (default_mixed)
        mode = ox_oryx_modes_mixed(ctx, (uint64_t)o->seed, micro, B, T, CLI_SPEC_CHUNK, NULL, 0);
    else {
        mode = ox_tensor_empty(ctx, OX_I32, OX_DIMS(B, T));
        if (mode)
            for (int64_t b = 0; b < B; b++)
                cli_spec_fill(spec, (uint64_t)o->seed, (int64_t)micro * B + b, 0, T, 0, ox_tensor_i32(mode) + b * T);
    }
    ox_tensor *loss = ox_oryx_loss(ctx, m, rows, mode, NULL);
    if (loss && ox_ag_backward(ctx, loss))
        return NULL;
    return loss;
}

static void progress(int tty, int64_t step, int64_t steps, double loss, double val, double lr, double tok_s,
                     double eta)
{
    char eta_s[32], val_s[32] = "-";
    cli_format_duration(eta, eta_s, sizeof eta_s);
    if (val >= 0)
        snprintf(val_s, sizeof val_s, "%.4f", val);
    if (tty) {
        char bar[31];
        int fill = (int)(30 * step / steps);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        printf("\r[%s] step %lld/%lld  loss %.4f  val %s  %.0f tok/s  ETA %s\033[K", bar, (long long)step,
               (long long)steps, loss, val_s, tok_s, eta_s);
    } else
        printf("step %lld/%lld loss %.4f val %s lr %.2e tok/s %.0f eta %s\n", (long long)step, (long long)steps, loss,
               val_s, lr, tok_s, eta_s);
    fflush(stdout);
}

int cli_train(int argc, char **argv)
{
    train_opts o;
    int code = parse_opts(argc, argv, &o);
    if (code)
        return code < 0 ? CLI_OK : code;
    int default_mixed = strcmp(o.modes, "mixed") == 0;
    cli_spec spec;
    memset(&spec, 0, sizeof spec);
    if (!default_mixed && cli_spec_parse("train", o.modes, 0, &spec))
        return CLI_ERR_USAGE;

    char model_path[4096], state_path[4096], csv_path[4096];
    if (cli_ckpt_paths(o.out, model_path, state_path, csv_path, sizeof model_path)) {
        cli_spec_free(&spec);
        return cli_fail(CLI_ERR_USAGE, "train", "--out '%s' is empty or too long", o.out);
    }
    ox_ctx *ctx = ox_ctx_new();
    uint8_t *data = NULL;
    int64_t len = 0;
    ox_oryx_model m;
    memset(&m, 0, sizeof m);
    ox_optim_adamw *opt = NULL;
    FILE *csv = NULL;
    int64_t start_step = 0, T = o.seq ? o.seq : 128;
    if (!ctx)
        code = cli_fail(CLI_ERR_RUN, "train", "out of memory");

    /* Everything that can be wrong with the input is checked before any file is written. */
    ox_oryx_config cfg;
    if (!code && !o.resume)
        code = build_config(ctx, &o, &cfg);
    if (!code)
        code = cli_read_file("train", "data file", o.data, &data, &len);
    if (!code && o.resume) {
        int64_t ck_seq = -1;
        code = cli_load_model(ctx, "train", o.resume, &m, &start_step, &ck_seq);
        if (!code && !o.seq && ck_seq >= 2)
            T = ck_seq;
        if (!code && start_step < 0)
            code = cli_fail(CLI_ERR_INPUT, "train", "checkpoint '%s' records no step: cannot resume", o.resume);
    }
    int64_t n_val = len / 10, n_train = len - n_val;
    if (!code && (n_train < T + 2 || n_val < 2))
        code = cli_fail(CLI_ERR_INPUT, "train",
                        "data file '%s' has %lld bytes: too small for --seq %lld (needs %lld for training + 10%% "
                        "validation)",
                        o.data, (long long)len, (long long)T, (long long)((T + 2) * 10 / 9 + 2));
    if (!code) {
        ox_ctx_set_threads(ctx, (int)o.threads);
        if (!o.resume) {
            ox_rng rng = ox_rng_seed((uint64_t)o.seed);
            if (ox_oryx_model_init(ctx, &m, &cfg, &rng))
                code = cli_fail(CLI_ERR_USAGE, "train", "%s", ox_ctx_message(ctx));
        }
    }
    ox_optim_adamw_config ac = ox_optim_adamw_defaults();
    ac.wd = (float)o.wd;
    if (!code && !(opt = ox_optim_adamw_new(ctx, &m.params, ac)))
        code = cli_fail(CLI_ERR_RUN, "train", "%s", ox_ctx_message(ctx));
    if (!code && o.resume) {
        char rm[4096], rs[4096], rc[4096];
        cli_ckpt_paths(o.resume, rm, rs, rc, sizeof rm);
        code = load_state(ctx, opt, &m, rs, start_step);
    }
    if (!code && make_parent_dirs(model_path))
        code = cli_fail(CLI_ERR_RUN, "train", "cannot create the folder of '%s'", model_path);
    if (!code) {
        /* A resumed run appends to an existing history at the same name; otherwise it starts one. */
        int append = o.resume && access(csv_path, F_OK) == 0;
        csv = fopen(csv_path, append ? "a" : "w");
        if (!csv)
            code = cli_fail(CLI_ERR_RUN, "train", "cannot write '%s'", csv_path);
        else if (!append)
            fprintf(csv, "step,loss,val_loss,lr,tokens_per_s\n");
    }
    if (code)
        goto done;

    const ox_oryx_config *c = &m.cfg;
    int tty = isatty(STDOUT_FILENO);
    printf("train %s (%s, D %lld, L %lld, H %lld, %lld parameters) on %s: %lld train / %lld val bytes\n",
           o.resume ? o.resume : o.preset, ox_oryx_config_arch(c), (long long)c->d_model, (long long)c->n_layers,
           (long long)c->n_heads, (long long)ox_nn_params_numel(&m.params), o.data, (long long)n_train,
           (long long)n_val);
    printf("steps %lld..%lld, batch %lld x %lld x accum %lld, lr %.2e -> %.2e, modes %s, threads %d\n",
           (long long)start_step, (long long)o.steps, (long long)o.batch, (long long)T, (long long)o.accum, o.lr,
           o.lr_min, o.modes, ox_ctx_threads(ctx));
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;   /* a second Ctrl-C stops at once (saves are atomic) */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    cli_spec attn_spec = { .kind = CLI_SPEC_ATTN };
    double t0 = cli_now(), val = -1, loss_avg = 0;
    int64_t step = start_step, tokens = 0;
    ox_nn_params_zero_grad(&m.params);
    while (step < o.steps && !g_interrupted) {
        double loss_sum = 0;
        for (int64_t a = 0; a < o.accum && !code; a++) {
            ox_tensor *loss = micro_step(ctx, &m, data, n_train, &o, &spec, default_mixed, T,
                                         (uint64_t)(step * o.accum + a));
            if (!loss)
                code = cli_fail(CLI_ERR_RUN, "train", "step %lld: %s", (long long)step + 1, ox_ctx_message(ctx));
            else
                loss_sum += ox_tensor_f32(loss)[0];
            ox_ctx_reset(ctx);
        }
        if (code)
            break;
        double lr = ox_optim_lr_cosine(step, o.warmup, o.steps, o.lr, o.lr_min), norm = 0;
        if (o.accum > 1)
            ox_optim_grad_scale(ctx, &m.params, 1.0f / (float)o.accum);
        if (ox_optim_clip_grad_norm(ctx, &m.params, o.clip, &norm) == OX_ERR_NUMERIC) {
            fprintf(stderr, "oryx train: step %lld skipped: %s\n", (long long)step + 1, ox_ctx_message(ctx));
            ox_ctx_clear_error(ctx);
        } else if (ox_optim_adamw_step(ctx, opt, (float)lr)) {
            code = cli_fail(CLI_ERR_RUN, "train", "step %lld: %s", (long long)step + 1, ox_ctx_message(ctx));
            break;
        }
        ox_nn_params_zero_grad(&m.params);
        step++;
        tokens += o.batch * o.accum * T;
        double loss = loss_sum / (double)o.accum;
        loss_avg = step == start_step + 1 ? loss : 0.9 * loss_avg + 0.1 * loss;
        int eval_now = step == o.steps || (o.eval_every && step % o.eval_every == 0);
        double this_val = -1;
        if (eval_now) {
            double nats = 0;
            int64_t count = 0;
            if (cli_score(ctx, &m, data + n_train, n_val, T + 1, &attn_spec, (uint64_t)o.seed, o.batch,
                          o.eval_windows, &nats, &count)) {
                code = cli_fail(CLI_ERR_RUN, "train", "validation at step %lld: %s", (long long)step,
                                ox_ctx_message(ctx));
                break;
            }
            val = this_val = nats / (double)count;
        }
        double el = cli_now() - t0, tok_s = (double)tokens / (el > 1e-9 ? el : 1e-9);
        double eta = el / (double)(step - start_step) * (double)(o.steps - step);
        fprintf(csv, "%lld,%.6f,", (long long)step, loss);
        if (this_val >= 0)
            fprintf(csv, "%.6f", this_val);
        fprintf(csv, ",%.6g,%.1f\n", lr, tok_s);
        fflush(csv);
        if (tty || step % o.log_every == 0 || eval_now || step == o.steps)
            progress(tty, step, o.steps, loss_avg, val, lr, tok_s, eta);
        if (o.save_every && step % o.save_every == 0 && step < o.steps &&
            save_checkpoint(ctx, &m, opt, model_path, state_path, step, T, &o)) {
            code = cli_fail(CLI_ERR_RUN, "train", "%s", ox_ctx_message(ctx));
            break;
        }
    }
    if (tty)
        printf("\n");
    if (!code) {
        if (save_checkpoint(ctx, &m, opt, model_path, state_path, step, T, &o))
            code = cli_fail(CLI_ERR_RUN, "train", "%s", ox_ctx_message(ctx));
        else if (g_interrupted) {
            printf("interrupted at step %lld: checkpoint saved to %s (resume with --resume %s)\n", (long long)step,
                   model_path, o.out);
            code = CLI_ERR_INTERRUPTED;
        } else
            printf("done: step %lld, loss %.4f, val_loss %.4f; checkpoint %s, history %s\n", (long long)step,
                   loss_avg, val, model_path, csv_path);
    }
done:
    if (csv)
        fclose(csv);
    ox_optim_adamw_free(opt);
    ox_oryx_model_free(&m);
    if (ctx)
        ox_ctx_free(ctx);
    free(data);
    cli_spec_free(&spec);
    return code;
}
