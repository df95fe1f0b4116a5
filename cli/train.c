/* train.c - `oryx train`: a byte-level Oryx-family language model on a text file, driven by the trainer of
 * models/oryx/train.h (AdamW, cosine schedule with warmup, clipping, accumulation, per-micro-batch mode maps,
 * resumable checkpoints) on the corpus of models/oryx/data.h (last 10% = validation split).
 *
 * This file adds what a person at a terminal needs: flags with defaults, checks that turn bad input into one
 * line and an exit code before any file is written, a progress bar on a terminal (plain log lines
 * otherwise), the validation loss every --eval-every steps (ox_oryx_evaluate_bytes on the first
 * --eval-windows windows of the validation part, all ATTN), the loss history <out>.loss.csv
 * (step,loss,val_loss,lr,tokens_per_s), checkpoints (ox_oryx_train_save: <out>.state.safetensors, then
 * <out>.safetensors) every --save-every steps and at the end, each time with the picture of the loss
 * history <out>.loss.png (cli/plot.c; a failure to draw it mid-run is reported and training goes on), and
 * Ctrl-C: the SIGINT handler only sets a flag; the loop sees it after the current step, saves a checkpoint
 * and exits with 130. With --profile, the step profile (tensor/profile.h) is on for the whole run and its
 * table is printed at the end.
 *
 * Nothing earlier is lost: one run per --out (an flock on <out>.lock, released by the kernel when the run
 * dies); a new run on an --out holding a checkpoint needs --force; the history is written to a temporary
 * that replaces the old one only at the run's first checkpoint, and a resumed run keeps the rows up to its
 * checkpoint's step (none after it, so none twice). A run stops with one line and a non-zero exit, keeping
 * its last checkpoint, when its loss is not finite in 10 tries with fresh batches, or when the loss averaged
 * over 50 steps exceeds max(2 ln V, 1.5 x the run's first loss) (divergence). */
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>

#include "autograd/tape.h"
#include "cli/cli.h"
#include "tensor/alloc.h"
#include "models/oryx/checkpoint.h"
#include "models/oryx/train.h"
#include "tensor/io.h"
#include "tensor/profile.h"

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
    "  --data FILE        training text (default data/tinyshakespeare.txt; on --resume the checkpoint's)\n"
    "  --preset NAME      transformer, gdn, mamba2, hybrid-gdn, hybrid-mamba2, oryx-gdn, oryx-mamba2\n"
    "                     (default oryx-gdn)\n"
    "  --steps N          optimizer steps, >= 1 (default 1000: about 4 minutes on 2 cores)\n"
    "  --out CKPT         checkpoint name: writes CKPT.safetensors, CKPT.state.safetensors, CKPT.loss.csv\n"
    "                     and its picture CKPT.loss.png (default runs/oryx; with --resume, the checkpoint\n"
    "                     resumed)\n"
    "  --resume CKPT      continue from a checkpoint: model, optimizer and sampler state, step and every\n"
    "                     training setting (eval schedule and data file included) come from it; the flags\n"
    "                     that may be given with it: --steps, --data (the same corpus, moved), --out,\n"
    "                     --threads, --save-every, --log-every, --profile, --force; any other is refused\n"
    "  --force            start a new run on an --out that holds a checkpoint (its files are replaced at the\n"
    "                     new run's first checkpoint)\n"
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
    "                     then each 64-token chunk ATTN with probability r), attn, lin, chunks:<f> (each\n"
    "                     chunk ATTN with probability f), every:<N>, or a file of 'a'/'l' (default mixed)\n"
    "  --eval-every N     validation loss every N steps, 0 = only at the end (default 100)\n"
    "  --eval-windows N   validation windows scored each time (default 32)\n"
    "  --save-every N     checkpoint every N steps, 0 = only at the end (default 200)\n"
    "  --log-every N      log line every N steps when not on a terminal (default 10)\n"
    "  --profile          at the end, print where a step's time went: per kind of op, forward and\n"
    "                     backward apart, with the time and GF/s inside BLIS (tensor/profile.h)\n"
    "  -h, --help         this text\n";

typedef struct train_opts {
    const char *data, *preset, *out, *resume, *modes;
    int64_t steps, seed, threads, d_model, layers, heads, d_k, d_v, mlp_hidden, batch, seq, accum, warmup;
    int64_t eval_every, eval_windows, save_every, log_every;
    int profile, force;
    uint64_t given;         /* bit (option - O_FIRST): the option was on the command line */
    double lr, lr_min, clip, wd;
} train_opts;

static int cmp_rows(const void *x, const void *y)
{
    const ox_profile_row *a = x, *b = y;
    double ta = a->seconds + a->blis_seconds, tb = b->seconds + b->blis_seconds;
    return (ta < tb) - (ta > tb);
}

/* --profile: the step profile's rows, largest first, per step (the mean over the run's steps; "eval" and
 * "log+save" are the validation and the logging / checkpoints between steps). */
static void print_profile(ox_ctx *ctx, int64_t steps)
{
    ox_profile_row rows[OX_PROFILE_MAX_ROWS];
    int n = ox_profile_rows(ctx, rows, OX_PROFILE_MAX_ROWS);
    if (n > OX_PROFILE_MAX_ROWS)
        n = OX_PROFILE_MAX_ROWS;
    if (steps < 1)
        steps = 1;
    qsort(rows, (size_t)n, sizeof *rows, cmp_rows);
    ox_profile_totals t = ox_profile_total(ctx);
    double per = 1e3 / (double)steps, wall = t.wall > 0 ? t.wall : 1e-12;
    printf("profile, per step (mean of %lld steps; excl = time of the kind outside BLIS):\n", (long long)steps);
    printf("  %-22s %-8s %7s %9s %9s %7s %9s %7s\n", "kind", "phase", "calls", "excl ms", "BLIS ms", "GF/s",
           "total ms", "share");
    for (int i = 0; i < n; i++) {
        const ox_profile_row *r = &rows[i];
        double tot = r->seconds + r->blis_seconds;
        char gfs[16] = "-";
        if (r->blis_seconds > 0)
            snprintf(gfs, sizeof gfs, "%.1f", 1e-9 * r->blis_flops / r->blis_seconds);
        printf("  %-22s %-8s %7.1f %9.2f %9.2f %7s %9.2f %6.1f%%\n", r->name, ox_profile_phase_name(r->phase),
               (double)r->calls / (double)steps, r->seconds * per, r->blis_seconds * per, gfs, tot * per,
               100 * tot / wall);
    }
    printf("  step %.1f ms: BLIS %.1f ms (%.0f%%, %.1f GF/s, %.2f GFLOP), everything else %.1f ms\n",
           t.wall * per, t.blis_seconds * per, 100 * t.blis_seconds / wall,
           t.blis_seconds > 0 ? 1e-9 * t.blis_flops / t.blis_seconds : 0.0, 1e-9 * t.blis_flops / (double)steps,
           t.seconds * per);
}

/* On --resume every training setting is the checkpoint's: a flag that would change one is refused. Options
 * first .. last are tracked in o->given (bit option - first); may[0 .. n-1] are those allowed with --resume. */
static int check_resume_flags(const train_opts *o, const struct option *opts, int first, int last, const int *may,
                              int n)
{
    uint64_t ok = 0;
    for (int i = 0; i < n; i++)
        ok |= UINT64_C(1) << (may[i] - first);
    for (const struct option *p = opts; p->name; p++)
        if (p->val >= first && p->val <= last && (o->given & ~ok & (UINT64_C(1) << (p->val - first))))
            return cli_fail(CLI_ERR_USAGE, "train", "--%s cannot be given with --resume: the run keeps the "
                            "checkpoint's settings (with --resume: --steps, --data, --out, --threads, "
                            "--save-every, --log-every, --profile, --force)", p->name);
    return 0;
}

static int parse_opts(int argc, char **argv, train_opts *o)
{
    enum {
        O_DATA = 256, O_PRESET, O_STEPS, O_OUT, O_RESUME, O_SEED, O_THREADS, O_DMODEL, O_LAYERS, O_HEADS, O_DK,
        O_DV, O_MLP, O_BATCH, O_SEQ, O_ACCUM, O_LR, O_LRMIN, O_WARMUP, O_CLIP, O_WD, O_MODES, O_EVAL, O_EVALW,
        O_SAVE, O_LOG, O_PROFILE, O_FORCE
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
        { "profile", no_argument, 0, O_PROFILE },       { "force", no_argument, 0, O_FORCE },
        { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    *o = (train_opts){ .data = "data/tinyshakespeare.txt", .preset = "oryx-gdn", .out = "runs/oryx",
                       .modes = "mixed", .steps = 1000, .seed = 1234, .d_model = 128, .layers = 4, .heads = 4,
                       .batch = 16, .accum = 1, .warmup = 50, .eval_every = 100, .eval_windows = 32,
                       .save_every = 200, .log_every = 10, .lr = 3e-3, .lr_min = -1, .clip = 1.0, .wd = 0.1 };
    const char *T = "train";
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int bad = 0;
        if (c >= O_DATA && c <= O_FORCE)
            o->given |= UINT64_C(1) << (c - O_DATA);
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
        case O_PROFILE: o->profile = 1; break;
        case O_FORCE: o->force = 1; break;
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
    if (o->resume && !(o->given & (UINT64_C(1) << (O_OUT - O_DATA))))
        o->out = o->resume;     /* a resumed run continues in place unless told otherwise */
    static const int may[] = { O_DATA, O_STEPS, O_OUT, O_RESUME, O_THREADS, O_SAVE, O_LOG, O_PROFILE, O_FORCE };
    return o->resume ? check_resume_flags(o, opts, O_DATA, O_FORCE, may, (int)(sizeof may / sizeof *may)) : 0;
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

/* ---- the loss history ------------------------------------------------------------------------------------ */

/* <out>.loss.csv. The whole history is kept in memory and saved inside each checkpoint's state file
 * ("user.history", ox_oryx_train_save_with), so history and checkpoint are replaced together; after the state
 * file, the CSV file is rewritten from it by atomic replacement, and rows after a checkpoint are appended to
 * it as they come. So a run that fails or is killed before its first checkpoint leaves the earlier files as
 * they were, and a resumed run takes the rows of its checkpoint (exactly the steps up to it, whatever the CSV
 * file holds). */
typedef struct history {
    char *text;             /* header + one row per step */
    size_t len, cap;
    FILE *live;             /* the CSV file after the first checkpoint, or NULL */
    const char *path;
} history;

static int history_add(history *h, const char *s, size_t n)
{
    if (h->len + n + 1 > h->cap) {
        size_t cap = 2 * (h->len + n + 1) + 4096;
        char *t = realloc(h->text, cap);
        if (!t)
            return cli_fail(CLI_ERR_RUN, "train", "out of memory for the loss history");
        h->text = t;
        h->cap = cap;
    }
    memcpy(h->text + h->len, s, n);
    h->len += n;
    h->text[h->len] = 0;
    return 0;
}

/* Rows of csv (after its header) whose step is in [1, upto]. */
static int history_add_rows(history *h, const char *csv, int64_t upto)
{
    const char *p = strchr(csv, '\n');
    while (p && *++p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p + 1) : strlen(p);
        char *end;
        long long step = strtoll(p, &end, 10);
        if (end != p && *end == ',' && step >= 1 && step <= upto && e && history_add(h, p, n))
            return CLI_ERR_RUN;
        p = e;
    }
    return 0;
}

/* A new history, or for a resumed run the one saved in its checkpoint (older checkpoints: the rows of its
 * CSV file up to its step). */
static int history_open(ox_ctx *ctx, history *h, const char *path, const char *resume_prefix, const char *resume_csv,
                        int64_t upto)
{
    memset(h, 0, sizeof *h);
    h->path = path;
    static const char header[] = "step,loss,val_loss,lr,tokens_per_s\n";
    if (history_add(h, header, sizeof header - 1) || !resume_prefix)
        return h->text ? 0 : CLI_ERR_RUN;
    char *saved = ox_oryx_train_read_user(ctx, resume_prefix, "history");
    if (ctx->status)
        return cli_fail(CLI_ERR_INPUT, "train", "%s", ox_ctx_message(ctx));
    if (!saved && access(resume_csv, F_OK) == 0) {
        uint8_t *csv;
        int64_t n;
        if (cli_read_file("train", "loss history", resume_csv, &csv, &n) == 0)
            saved = (char *)csv;
    }
    int code = saved ? history_add_rows(h, saved, upto) : 0;
    ox_free(saved);
    return code;
}

static int history_row(history *h, int64_t step, double loss, double val, double lr, double tok_s)
{
    char row[160], v[40] = "";
    if (val >= 0)
        snprintf(v, sizeof v, "%.9g", val);
    int n = snprintf(row, sizeof row, "%lld,%.9g,%s,%.6g,%.1f\n", (long long)step, loss, v, lr, tok_s);
    if (h->live) {
        fputs(row, h->live);
        fflush(h->live);
    }
    return history_add(h, row, (size_t)n);
}

static void history_close(history *h)
{
    if (h->live)
        fclose(h->live);
    free(h->text);
    memset(h, 0, sizeof *h);
}

/* ---- the run ----------------------------------------------------------------------------------------------- */

/* Divergence: the mean loss of the last DIVERGE_WINDOW steps above max(2 ln V, 1.5 x the run's first loss). */
#define DIVERGE_WINDOW 50
typedef struct divergence {
    double first, ring[DIVERGE_WINDOW], sum;
    int n;
} divergence;

static int diverged(divergence *d, double loss, int64_t vocab, double *mean, double *limit)
{
    if (d->n == 0)
        d->first = loss;
    int slot = d->n % DIVERGE_WINDOW;
    if (d->n >= DIVERGE_WINDOW)
        d->sum -= d->ring[slot];
    d->ring[slot] = loss;
    d->sum += loss;
    d->n++;
    *mean = d->sum / DIVERGE_WINDOW;
    *limit = fmax(2 * log((double)vocab), 1.5 * d->first);
    return d->n >= DIVERGE_WINDOW && *mean > *limit;
}

typedef struct run_files {
    char prefix[4096], model[4096], state[4096], csv[4096], png[4200], title[4200], lock[4200];
    char resume_prefix[4096], resume_csv[4096];
} run_files;

/* A checkpoint: the state file with the history in it, the model file (ox_oryx_train_save_with), then the
 * CSV file rewritten from the history; the picture is drawn by the caller. */
static int checkpoint(ox_ctx *ctx, ox_oryx_trainer *tr, history *h, const run_files *f, int64_t *saved_step)
{
    ox_st_kv kv = { "history", h->text };
    if (ox_oryx_train_save_with(ctx, tr, f->prefix, &kv, 1))
        return cli_fail(CLI_ERR_RUN, "train", "%s", ox_ctx_message(ctx));
    *saved_step = tr->step;
    if (h->live)
        fclose(h->live);
    h->live = NULL;
    ox_io_atomic w;
    if (ox_io_atomic_open(ctx, &w, h->path) == OX_OK) {
        fwrite(h->text, 1, h->len, w.fp);
        ox_io_atomic_commit(ctx, &w);
    }
    if (ctx->status)
        return cli_fail(CLI_ERR_RUN, "train", "%s", ox_ctx_message(ctx));
    h->live = fopen(h->path, "a");
    if (!h->live)
        return cli_fail(CLI_ERR_RUN, "train", "cannot append to the loss history '%s'", h->path);
    return 0;
}

static void kept_note(int64_t saved_step, char *buf, size_t n)
{
    if (saved_step >= 0)
        snprintf(buf, n, "the last checkpoint (step %lld) is kept", (long long)saved_step);
    else
        snprintf(buf, n, "no checkpoint of this run was saved");
}

/* The end of a run (all steps done, or Ctrl-C): the final checkpoint, its picture, the last line. */
static int finish_run(ox_ctx *ctx, const train_opts *o, const run_files *f, ox_oryx_trainer *tr, history *hist,
                      int64_t *saved_step, int64_t steps_run, double loss_avg, double val)
{
    int code = checkpoint(ctx, tr, hist, f, saved_step);
    if (code)
        return code;
    if (cli_loss_png("train", f->csv, f->png, f->title))
        return CLI_ERR_RUN;
    if (g_interrupted) {
        printf("interrupted at step %lld: checkpoint saved to %s (resume with --resume %s)\n", (long long)tr->step,
               f->model, o->out);
        code = CLI_ERR_INTERRUPTED;
    } else
        printf("done: step %lld, loss %.4f, val_loss %.9g; checkpoint %s, history %s, picture %s\n",
               (long long)tr->step, loss_avg, val, f->model, f->csv, f->png);
    if (o->profile)
        print_profile(ctx, steps_run);
    return code;
}

/* The steps, validations, history rows and checkpoints of a run whose inputs are all checked. */
static int train_loop(ox_ctx *ctx, const train_opts *o, const run_files *f, ox_oryx_model *m,
                      const ox_oryx_data *data, ox_oryx_trainer *tr, history *hist, int64_t *saved_step)
{
    const ox_oryx_config *c = &m->cfg;
    const ox_oryx_train_config *k = &tr->cfg;
    int tty = isatty(STDOUT_FILENO), code = 0;
    printf("train %s (%s, D %lld, L %lld, H %lld, %lld parameters) on %s: %lld train / %lld val bytes\n",
           o->resume ? o->resume : o->preset, ox_oryx_config_arch(c), (long long)c->d_model, (long long)c->n_layers,
           (long long)c->n_heads, (long long)ox_nn_params_numel(&m->params), o->data, (long long)data->n_train,
           (long long)data->n_val);
    printf("steps %lld..%lld, batch %lld x %lld x accum %lld, lr %.2e -> %.2e, modes %s, threads %d\n",
           (long long)tr->step, (long long)k->total_steps, (long long)k->batch, (long long)k->seq_len,
           (long long)k->accum, k->lr_max, k->lr_min, o->resume ? "(checkpoint's)" : o->modes, ox_ctx_threads(ctx));
    fflush(stdout);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;   /* a second Ctrl-C stops at once (saves are atomic) */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);

    ox_oryx_map_spec attn = { .kind = OX_ORYX_MAP_ATTN };
    int64_t start_step = tr->step, n_eval = k->eval_windows * (k->seq_len + 1);
    if (n_eval > data->n_val)
        n_eval = data->n_val;
    if (o->profile && ox_profile_enable(ctx, 1))
        return cli_fail(CLI_ERR_RUN, "train", "--profile: %s", ox_ctx_message(ctx));
    double t0 = cli_now(), val = -1, loss_avg = 0;
    int bad_steps = 0;
    divergence div;
    memset(&div, 0, sizeof div);
    char kept[4400];
    while (tr->step < k->total_steps && !g_interrupted) {
        ox_oryx_train_stats st;
        ox_status s = ox_oryx_train_step(ctx, tr, &st);
        if (s == OX_ERR_NUMERIC && ++bad_steps < 10) {
            /* weights and moments untouched; the sampler has moved on, so the retry sees other batches */
            ox_ctx_clear_error(ctx);
            continue;
        }
        if (s) {
            kept_note(*saved_step, kept, sizeof kept);
            return cli_fail(CLI_ERR_RUN, "train", "step %lld: %s%s; stopped: %s", (long long)tr->step + 1,
                            ox_ctx_message(ctx), s == OX_ERR_NUMERIC ? " (10 tries with fresh batches)" : "", kept);
        }
        bad_steps = 0;
        int64_t step = tr->step;
        double mean, limit;
        if (diverged(&div, st.loss, c->vocab, &mean, &limit)) {
            kept_note(*saved_step, kept, sizeof kept);
            return cli_fail(CLI_ERR_RUN, "train", "step %lld: the training diverged (mean loss of the last %d steps "
                            "%.4g > %.4g); stopped: %s", (long long)step, DIVERGE_WINDOW, mean, limit, kept);
        }
        loss_avg = step == start_step + 1 ? st.loss : 0.9 * loss_avg + 0.1 * st.loss;
        int eval_now = step == k->total_steps || (k->eval_every && step % k->eval_every == 0);
        double this_val = -1;
        if (eval_now) {
            ox_oryx_eval ev;
            if (ox_oryx_evaluate_bytes(ctx, m, data->bytes + data->n_train, n_eval, k->seq_len, &attn, &ev))
                return cli_fail(CLI_ERR_RUN, "train", "validation at step %lld: %s", (long long)step,
                                ox_ctx_message(ctx));
            val = this_val = ev.nats;
            OX_PROFILE_MARK(ctx, "eval", OX_PROF_OTHER);
        }
        double el = cli_now() - t0;
        double tok_s = (double)((step - start_step) * k->batch * k->seq_len * k->accum) / (el > 1e-9 ? el : 1e-9);
        double eta = el / (double)(step - start_step) * (double)(k->total_steps - step);
        if ((code = history_row(hist, step, st.loss, this_val, st.lr, tok_s)))
            return code;
        if (tty || step % o->log_every == 0 || eval_now)
            progress(tty, step, k->total_steps, loss_avg, val, st.lr, tok_s, eta);
        if (o->save_every && step % o->save_every == 0 && step < k->total_steps) {
            if ((code = checkpoint(ctx, tr, hist, f, saved_step)))
                return code;
            cli_loss_png("train", f->csv, f->png, f->title);   /* reported on stderr; training goes on */
        }
        OX_PROFILE_MARK(ctx, "log+save", OX_PROF_OTHER);
    }
    if (tty)
        printf("\n");
    return finish_run(ctx, o, f, tr, hist, saved_step, tr->step - start_step, loss_avg, val);
}

/* Everything a run holds; run_free releases it (whatever was made). */
typedef struct train_run {
    ox_ctx *ctx;
    run_files f;
    ox_oryx_map_spec spec;          /* --modes of a new run */
    int64_t *map_pos;               /* a map file's ATTN positions (ox_free; the trainer copies them) */
    uint8_t *bytes;                 /* the data file (ox_free) */
    ox_oryx_data data;
    ox_oryx_config cfg;             /* a new run's model */
    ox_oryx_model m;
    ox_oryx_trainer tr;
    history hist;
    int lock_fd;
    int64_t T, saved_step;
    char data_abs[PATH_MAX];
} train_run;

static int run_paths(const train_opts *o, run_files *f)
{
    if (cli_ckpt_paths(o->out, f->prefix, f->model, f->state, f->csv, sizeof f->model) ||
        (o->resume && cli_ckpt_paths(o->resume, f->resume_prefix, NULL, NULL, f->resume_csv, sizeof f->resume_prefix)))
        return cli_fail(CLI_ERR_USAGE, "train", "--out or --resume name is empty or too long");
    snprintf(f->png, sizeof f->png, "%s.loss.png", f->prefix);
    snprintf(f->title, sizeof f->title, "loss: %s", f->prefix);
    snprintf(f->lock, sizeof f->lock, "%s.lock", f->prefix);
    return 0;
}

/* The inputs, all checked before any file is written: the model configuration (new run) or the checkpoint's
 * settings (resume: T, data file, eval schedule), the --force rule, the data. */
static int read_inputs(train_run *r, train_opts *o)
{
    ox_ctx *ctx = r->ctx;
    const run_files *f = &r->f;
    int code = 0;
    r->T = o->seq ? o->seq : 128;
    if (!o->resume && (code = build_config(ctx, o, &r->cfg)))
        return code;
    if (o->resume) {
        ox_oryx_train_config saved;
        if (ox_oryx_train_read_settings(ctx, f->resume_prefix, &saved, NULL))
            return cli_fail(CLI_ERR_INPUT, "train", "cannot resume from '%s': %s", o->resume, ox_ctx_message(ctx));
        r->T = saved.seq_len;
        if (!(o->given & 1) && saved.data_path[0]) {    /* bit 0: --data */
            snprintf(r->data_abs, sizeof r->data_abs, "%s", saved.data_path);
            o->data = r->data_abs;
        }
        if (saved.eval_windows > 0) {
            o->eval_every = saved.eval_every;
            o->eval_windows = saved.eval_windows;
        }
    }
    int same_files = o->resume && strcmp(f->resume_prefix, f->prefix) == 0;
    if (!o->force && !same_files && (access(f->state, F_OK) == 0 || access(f->model, F_OK) == 0))
        return cli_fail(CLI_ERR_USAGE, "train", "'%s' already holds a checkpoint: continue it with --resume %s, "
                        "or start over with --force", f->prefix, o->out);
    int64_t len = 0;
    if ((code = cli_read_file("train", "data file", o->data, &r->bytes, &len)))
        return code;
    if (ox_oryx_data_from_bytes(ctx, r->bytes, len, r->T, &r->data))
        return cli_fail(CLI_ERR_INPUT, "train", "data file '%s' (%lld bytes) with --seq %lld: %s", o->data,
                        (long long)len, (long long)r->T, ox_ctx_message(ctx));
    char abs[PATH_MAX];
    if (!realpath(o->data, abs))
        snprintf(abs, sizeof abs, "%s", o->data);
    memcpy(r->data_abs, abs, sizeof abs);
    return 0;
}

/* The trainer: a new one from the flags, or the checkpoint's (whose --steps and data path may change). */
static int make_trainer(train_run *r, const train_opts *o)
{
    ox_ctx *ctx = r->ctx;
    ox_ctx_set_threads(ctx, (int)o->threads);
    if (o->resume) {
        if (ox_oryx_train_resume(ctx, r->f.resume_prefix, &r->m, &r->data, &r->tr))
            return cli_fail(CLI_ERR_INPUT, "train", "cannot resume from '%s': %s", o->resume, ox_ctx_message(ctx));
        ox_oryx_train_config *k = &r->tr.cfg;
        k->total_steps = o->steps;      /* --steps extends (or ends) the run; the rest is the checkpoint's */
        snprintf(k->data_path, sizeof k->data_path, "%s", r->data_abs);    /* where it is now */
        if (k->eval_windows <= 0) {     /* a checkpoint of an older format: no eval schedule */
            k->eval_every = o->eval_every;
            k->eval_windows = o->eval_windows;
        }
        r->saved_step = r->tr.step;
        return 0;
    }
    ox_oryx_train_config tc = ox_oryx_train_defaults();
    tc.batch = o->batch;
    tc.seq_len = r->T;
    tc.accum = o->accum;
    tc.lr_max = o->lr;
    tc.lr_min = o->lr_min;
    tc.warmup = o->warmup;
    tc.total_steps = o->steps;
    tc.clip = o->clip;
    tc.adamw.wd = (float)o->wd;
    tc.seed = (uint64_t)o->seed;
    tc.eval_every = o->eval_every;
    tc.eval_windows = o->eval_windows;
    snprintf(tc.data_path, sizeof tc.data_path, "%s", r->data_abs);
    tc.map = r->spec;
    tc.map.seed = (uint64_t)o->seed + 1;
    ox_rng rng = ox_rng_seed((uint64_t)o->seed);
    if (ox_oryx_model_init(ctx, &r->m, &r->cfg, &rng) || ox_oryx_trainer_init(ctx, &r->tr, &r->m, &r->data, &tc))
        return cli_fail(CLI_ERR_USAGE, "train", "%s", ox_ctx_message(ctx));
    return 0;
}

/* The output: its folder, its lock (one run per output), its history. */
static int claim_output(train_run *r, const train_opts *o)
{
    if (cli_make_parent_dirs(r->f.prefix))
        return cli_fail(CLI_ERR_RUN, "train", "cannot create the folder of '%s'", r->f.model);
    if (ox_io_lock(r->ctx, r->f.lock, &r->lock_fd))
        return cli_fail(CLI_ERR_RUN, "train", "'%s' is in use by another run: %s", r->f.prefix,
                        ox_ctx_message(r->ctx));
    return history_open(r->ctx, &r->hist, r->f.csv, o->resume ? r->f.resume_prefix : NULL, r->f.resume_csv,
                        r->tr.step);
}

static void run_free(train_run *r)
{
    history_close(&r->hist);
    ox_io_unlock(r->lock_fd);
    ox_oryx_trainer_free(&r->tr);
    ox_oryx_model_free(&r->m);
    ox_oryx_data_free(&r->data);
    if (r->ctx)
        ox_ctx_free(r->ctx);
    ox_free(r->bytes);
    ox_free(r->map_pos);
}

int cli_train(int argc, char **argv)
{
    train_opts o;
    int code = parse_opts(argc, argv, &o);
    if (code)
        return code < 0 ? CLI_OK : code;
    train_run *r = calloc(1, sizeof *r);
    if (!r)
        return cli_fail(CLI_ERR_RUN, "train", "out of memory");
    r->lock_fd = -1;
    r->saved_step = -1;
    if (!o.resume)
        code = cli_map_parse("train", o.modes, 0, &r->spec, &r->map_pos);
    if (!code)
        code = run_paths(&o, &r->f);
    if (!code && !(r->ctx = ox_ctx_new()))
        code = cli_fail(CLI_ERR_RUN, "train", "out of memory");
    if (!code)
        code = read_inputs(r, &o);
    if (!code)
        code = make_trainer(r, &o);
    if (!code)
        code = claim_output(r, &o);
    if (!code)
        code = train_loop(r->ctx, &o, &r->f, &r->m, &r->data, &r->tr, &r->hist, &r->saved_step);
    run_free(r);
    free(r);
    return code;
}
