/* mqar.c - `oryx mqar`: trains each preset of a list on MQAR (MODELS 10, models/oryx/mqar.h) within a step
 * and wall-clock budget, then measures recall accuracy on a fixed held-out set per (T, N) slice and, for
 * Oryx presets, per mode map: all LIN, all ATTN, ATTN on the queries only, and the attention-fraction sweep.
 *
 * Output: a progress line per preset, a table on stdout, and PREFIX.csv with one row per evaluation:
 *     preset,T,N,map,attn_fraction,accuracy,n_queries
 * map is lin / attn / queries / sweep for Oryx presets (attn_fraction = ATTN tokens / T; for queries N / T)
 * and "model" for the single-core presets (attn_fraction = attention layers / L, the layer-axis analogue).
 * Rows with T = N = "all" pool the slices (same number of held-out examples per slice). The CSV is written
 * to PREFIX.csv.tmp and renamed, so it is never left half-written. PREFIX.png draws the pooled accuracy
 * against the attention fraction, one line per preset (write_png). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autograd/tape.h"
#include "cli/cli.h"
#include "models/oryx/mqar.h"
#include "plot/chart.h"

#define MAX_PRESETS 8
#define MAX_FRACTIONS 16
#define MAX_ROWS 1024

static const char mqar_help[] =
    "usage: oryx mqar [options]\n"
    "\n"
    "Trains each preset on MQAR (multi-query associative recall, MODELS.md 10) and reports recall accuracy\n"
    "on a held-out set per (T, N) slice; Oryx presets are scored with every token LIN, every token ATTN,\n"
    "ATTN on the query tokens only, and ATTN on a fraction of tokens (queries first, then random others).\n"
    "  --presets LIST     comma-separated presets (default oryx-gdn,hybrid-gdn,transformer,gdn)\n"
    "  --vocab V          vocabulary: keys 1..V/2-1, values V/2..V-1 (default 256)\n"
    "  --slices LIST      (T, N) slices as TxN, comma-separated, trained alternately step by step\n"
    "                     (default 256x16,128x8)\n"
    "  --minutes X        training wall-clock budget per preset; the cosine schedule is fitted to it\n"
    "                     (default 10)\n"
    "  --steps N          at most N training steps per preset (default 4000)\n"
    "  --d-model D        model width (default 64)\n"
    "  --layers L         layers (default 4: hybrid-gdn then has one attention layer)\n"
    "  --heads H          heads; must divide D (default 2)\n"
    "  --batch B          examples per step (default 32)\n"
    "  --lr X             peak learning rate (default 3e-3; final lr / 10)\n"
    "  --warmup N         linear warmup steps (default 100)\n"
    "  --chunk C          mode chunk of the mixed training maps of Oryx presets (default 64)\n"
    "  --fractions LIST   attention fractions of the sweep, numbers or a/b (default 0,1/16,1/8,1/4,1/2,1)\n"
    "  --eval-examples N  held-out examples per slice (default 256)\n"
    "  --seed S           seed of initialisation, training data and maps (default 1234; held-out set:\n"
    "                     S + 1000)\n"
    "  --threads N        threads, 0 = all cores (default 0)\n"
    "  --out PREFIX       writes PREFIX.csv and PREFIX.png (accuracy vs attention fraction; default runs/mqar)\n"
    "  -h, --help         this text\n";

typedef struct mqar_opts {
    const char *out;
    int n_presets;
    char presets[MAX_PRESETS][32];
    int n_slices;
    int64_t slice_t[OX_ORYX_MQAR_MAX_SLICES], slice_n[OX_ORYX_MQAR_MAX_SLICES];
    int n_fractions;
    double fractions[MAX_FRACTIONS];
    int64_t vocab, steps, d_model, layers, heads, batch, warmup, chunk, eval_examples, seed, threads;
    double minutes, lr;
} mqar_opts;

/* One evaluation: what the table, the CSV (and a plot) are made from. T = N = 0 marks the pooled rows. */
typedef struct mqar_row {
    const char *preset;
    int64_t T, N;
    const char *map;
    double fraction;
    int64_t correct, n_queries;
} mqar_row;

static const char *C = "mqar";

/* Splits s at commas into at most max items; calls fn on each. */
static int split_list(const char *flag, const char *s, int max, int (*fn)(const char *item, int i, void *u), void *u)
{
    char buf[512];
    if (strlen(s) >= sizeof buf || !*s)
        return cli_fail(CLI_ERR_USAGE, C, "--%s '%s' is empty or too long", flag, s);
    strcpy(buf, s);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == max)
            return cli_fail(CLI_ERR_USAGE, C, "--%s '%s' has more than %d items", flag, s, max);
        if (fn(tok, n, u))
            return CLI_ERR_USAGE;
        n++;
    }
    if (!n)
        return cli_fail(CLI_ERR_USAGE, C, "--%s '%s' lists nothing", flag, s);
    return -n;      /* negative count on success */
}

static int add_preset(const char *item, int i, void *u)
{
    mqar_opts *o = u;
    ox_ctx *ctx = ox_ctx_new();
    ox_oryx_config cfg;
    int bad = !ctx || ox_oryx_config_preset(ctx, item, 0, &cfg);
    if (bad)
        cli_fail(CLI_ERR_USAGE, C, "--presets: %s", ctx ? ox_ctx_message(ctx) : "out of memory");
    else
        snprintf(o->presets[i], sizeof o->presets[i], "%s", item);
    if (ctx)
        ox_ctx_free(ctx);
    return bad;
}

static int add_slice(const char *item, int i, void *u)
{
    mqar_opts *o = u;
    char *x = strchr(item, 'x');
    char tb[32];
    if (!x || (size_t)(x - item) >= sizeof tb)
        return cli_fail(CLI_ERR_USAGE, C, "--slices item '%s' is not TxN (e.g. 256x16)", item);
    memcpy(tb, item, (size_t)(x - item));
    tb[x - item] = 0;
    if (cli_parse_i64(C, "slices (T)", tb, 4, 1 << 16, &o->slice_t[i]) ||
        cli_parse_i64(C, "slices (N)", x + 1, 1, 1 << 14, &o->slice_n[i]))
        return CLI_ERR_USAGE;
    return 0;
}

static int add_fraction(const char *item, int i, void *u)
{
    mqar_opts *o = u;
    const char *slash = strchr(item, '/');
    double a, b = 1;
    if (slash) {
        char nb[64];
        if ((size_t)(slash - item) >= sizeof nb)
            return cli_fail(CLI_ERR_USAGE, C, "--fractions item '%s' is too long", item);
        memcpy(nb, item, (size_t)(slash - item));
        nb[slash - item] = 0;
        if (cli_parse_f64(C, "fractions", nb, 0, 1e9, &a) || cli_parse_f64(C, "fractions", slash + 1, 1e-9, 1e9, &b))
            return CLI_ERR_USAGE;
    } else if (cli_parse_f64(C, "fractions", item, 0, 1, &a))
        return CLI_ERR_USAGE;
    if (a / b > 1)
        return cli_fail(CLI_ERR_USAGE, C, "--fractions item '%s' is more than 1", item);
    o->fractions[i] = a / b;
    return 0;
}

static int parse_opts(int argc, char **argv, mqar_opts *o)
{
    enum {
        O_PRESETS = 256, O_VOCAB, O_SLICES, O_MINUTES, O_STEPS, O_DMODEL, O_LAYERS, O_HEADS, O_BATCH, O_LR, O_WARMUP,
        O_CHUNK, O_FRACTIONS, O_EVALN, O_SEED, O_THREADS, O_OUT
    };
    static const struct option opts[] = {
        { "presets", required_argument, 0, O_PRESETS },    { "vocab", required_argument, 0, O_VOCAB },
        { "slices", required_argument, 0, O_SLICES },      { "minutes", required_argument, 0, O_MINUTES },
        { "steps", required_argument, 0, O_STEPS },        { "d-model", required_argument, 0, O_DMODEL },
        { "layers", required_argument, 0, O_LAYERS },      { "heads", required_argument, 0, O_HEADS },
        { "batch", required_argument, 0, O_BATCH },        { "lr", required_argument, 0, O_LR },
        { "warmup", required_argument, 0, O_WARMUP },      { "chunk", required_argument, 0, O_CHUNK },
        { "fractions", required_argument, 0, O_FRACTIONS }, { "eval-examples", required_argument, 0, O_EVALN },
        { "seed", required_argument, 0, O_SEED },          { "threads", required_argument, 0, O_THREADS },
        { "out", required_argument, 0, O_OUT },            { "help", no_argument, 0, 'h' },
        { 0, 0, 0, 0 }
    };
    memset(o, 0, sizeof *o);
    o->out = "runs/mqar";
    o->vocab = 256;
    o->minutes = 10;
    o->steps = 4000;
    o->d_model = 64;
    o->layers = 4;
    o->heads = 2;
    o->batch = 32;
    o->lr = 3e-3;
    o->warmup = 100;
    o->chunk = 64;
    o->eval_examples = 256;
    o->seed = 1234;
    int r;
    if ((r = split_list("presets", "oryx-gdn,hybrid-gdn,transformer,gdn", MAX_PRESETS, add_preset, o)) > 0 ||
        (r = split_list("slices", "256x16,128x8", OX_ORYX_MQAR_MAX_SLICES, add_slice, o)) > 0)
        return r;
    o->n_presets = 4;
    o->n_slices = 2;
    static const double fr[] = { 0, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0 / 2, 1 };
    o->n_fractions = 6;
    memcpy(o->fractions, fr, sizeof fr);
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case O_PRESETS:
            r = split_list("presets", optarg, MAX_PRESETS, add_preset, o);
            bad = r > 0;
            o->n_presets = r < 0 ? -r : o->n_presets;
            break;
        case O_SLICES:
            r = split_list("slices", optarg, OX_ORYX_MQAR_MAX_SLICES, add_slice, o);
            bad = r > 0;
            o->n_slices = r < 0 ? -r : o->n_slices;
            break;
        case O_FRACTIONS:
            r = split_list("fractions", optarg, MAX_FRACTIONS, add_fraction, o);
            bad = r > 0;
            o->n_fractions = r < 0 ? -r : o->n_fractions;
            break;
        case O_OUT: o->out = optarg; break;
        case O_VOCAB: bad = cli_parse_i64(C, "vocab", optarg, 4, 1 << 20, &o->vocab); break;
        case O_MINUTES: bad = cli_parse_f64(C, "minutes", optarg, 0, 1e6, &o->minutes); break;
        case O_STEPS: bad = cli_parse_i64(C, "steps", optarg, 1, INT64_C(1) << 40, &o->steps); break;
        case O_DMODEL: bad = cli_parse_i64(C, "d-model", optarg, 1, 1 << 16, &o->d_model); break;
        case O_LAYERS: bad = cli_parse_i64(C, "layers", optarg, 1, OX_ORYX_MAX_LAYERS, &o->layers); break;
        case O_HEADS: bad = cli_parse_i64(C, "heads", optarg, 1, 1024, &o->heads); break;
        case O_BATCH: bad = cli_parse_i64(C, "batch", optarg, 1, 4096, &o->batch); break;
        case O_LR: bad = cli_parse_f64(C, "lr", optarg, 0, 10, &o->lr); break;
        case O_WARMUP: bad = cli_parse_i64(C, "warmup", optarg, 0, INT64_C(1) << 40, &o->warmup); break;
        case O_CHUNK: bad = cli_parse_i64(C, "chunk", optarg, 1, 1 << 16, &o->chunk); break;
        case O_EVALN: bad = cli_parse_i64(C, "eval-examples", optarg, 1, 1 << 20, &o->eval_examples); break;
        case O_SEED: bad = cli_parse_i64(C, "seed", optarg, 0, INT64_MAX / 2, &o->seed); break;
        case O_THREADS: bad = cli_parse_i64(C, "threads", optarg, 0, 1024, &o->threads); break;
        case 'h': fputs(mqar_help, stdout); return -1;
        default: return cli_bad_option(C, c, argv);
        }
        if (bad)
            return CLI_ERR_USAGE;
    }
    if (optind < argc)
        return cli_fail(CLI_ERR_USAGE, C, "unexpected argument '%s' (see oryx mqar --help)", argv[optind]);
    if (!*o->out)
        return cli_fail(CLI_ERR_USAGE, C, "--out must not be empty");
    if (o->d_model % o->heads || (o->d_model / o->heads) % 2)
        return cli_fail(CLI_ERR_USAGE, C, "--heads %lld must divide --d-model %lld into an even head size",
                        (long long)o->heads, (long long)o->d_model);
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return cli_fail(CLI_ERR_RUN, C, "out of memory");
    int code = 0;
    for (int k = 0; k < o->n_slices && !code; k++) {
        ox_oryx_mqar_task t = ox_oryx_mqar_task_make(o->vocab, o->slice_t[k], o->slice_n[k]);
        if (ox_oryx_mqar_check(ctx, &t))
            code = cli_fail(CLI_ERR_USAGE, C, "slice %lldx%lld: %s", (long long)t.seq_len, (long long)t.n_pairs,
                            ox_ctx_message(ctx));
    }
    ox_ctx_free(ctx);
    return code;
}

typedef struct progress_state {
    const char *preset;
    int tty;
    int64_t every;
} progress_state;

static void on_progress(void *user, const ox_oryx_mqar_train_stats *st, double elapsed)
{
    const progress_state *p = user;
    if (!p->tty)
        return;
    char el[32];
    cli_format_duration(elapsed, el, sizeof el);
    if (st->step % p->every == 0) {
        printf("\r  %s: step %lld  loss %.4f  lr %.2e  %s\033[K", p->preset, (long long)st->step, st->loss, st->lr, el);
        fflush(stdout);
    }
}

static int is_oryx(const ox_oryx_config *cfg)
{
    for (int64_t l = 0; l < cfg->n_layers; l++)
        if (cfg->kinds[l] == OX_ORYX_KIND_ORYX)
            return 1;
    return 0;
}

static double attn_layer_fraction(const ox_oryx_config *cfg)
{
    int64_t a = 0;
    for (int64_t l = 0; l < cfg->n_layers; l++)
        a += cfg->kinds[l] == OX_ORYX_KIND_ATTN;
    return (double)a / (double)cfg->n_layers;
}

/* Evaluates one map on every slice and appends the slice rows and the pooled row. */
static int eval_map(ox_ctx *ctx, const mqar_opts *o, const ox_oryx_model *m, const char *preset,
                    const ox_oryx_map_spec *spec, const char *name, double fraction, mqar_row *rows, int *nr)
{
    int64_t all_c = 0, all_n = 0;
    double all_f = 0;
    for (int k = 0; k < o->n_slices; k++) {
        ox_oryx_mqar_task t = ox_oryx_mqar_task_make(o->vocab, o->slice_t[k], o->slice_n[k]);
        int64_t c, n;
        if (ox_oryx_mqar_evaluate(ctx, m, &t, o->eval_examples, (uint64_t)o->seed + 1000, spec, &c, &n))
            return cli_fail(CLI_ERR_RUN, C, "%s: evaluation (%s, T %lld, N %lld): %s", preset, name,
                            (long long)t.seq_len, (long long)t.n_pairs, ox_ctx_message(ctx));
        double f = fraction;
        if (spec && spec->kind == OX_ORYX_MAP_QUERIES)
            f = (double)t.n_pairs / (double)t.seq_len;
        else if (spec && spec->kind == OX_ORYX_MAP_SWEEP)
            f = (double)llround(spec->fraction * (double)t.seq_len) / (double)t.seq_len;
        if (*nr < MAX_ROWS)
            rows[(*nr)++] = (mqar_row){ preset, t.seq_len, t.n_pairs, name, f, c, n };
        all_c += c;
        all_n += n;
        all_f += f / o->n_slices;
    }
    if (*nr < MAX_ROWS)
        rows[(*nr)++] = (mqar_row){ preset, 0, 0, name, all_f, all_c, all_n };
    return 0;
}

/* Trains one preset and evaluates it; appends its rows. */
static int run_preset(ox_ctx *ctx, const mqar_opts *o, const char *preset, mqar_row *rows, int *nr)
{
    ox_oryx_config cfg;
    if (ox_oryx_config_preset(ctx, preset, o->layers, &cfg))
        return cli_fail(CLI_ERR_USAGE, C, "%s", ox_ctx_message(ctx));
    cfg.vocab = o->vocab;
    cfg.d_model = o->d_model;
    cfg.n_heads = o->heads;
    cfg.d_k = cfg.d_v = o->d_model / o->heads;
    cfg.mlp_hidden = ox_oryx_default_mlp_hidden(o->d_model);
    ox_oryx_model m;
    ox_oryx_mqar_trainer tr;
    memset(&m, 0, sizeof m);
    memset(&tr, 0, sizeof tr);
    ox_rng rng = ox_rng_seed((uint64_t)o->seed);
    ox_oryx_mqar_train_config tc = ox_oryx_mqar_train_defaults();
    tc.n_slices = o->n_slices;
    for (int k = 0; k < o->n_slices; k++)
        tc.slices[k] = ox_oryx_mqar_task_make(o->vocab, o->slice_t[k], o->slice_n[k]);
    tc.batch = o->batch;
    tc.lr_max = o->lr;
    tc.lr_min = o->lr / 10;
    tc.warmup = o->warmup;
    tc.total_steps = o->steps;
    tc.seed = (uint64_t)o->seed;
    tc.map.chunk = o->chunk;
    tc.map.seed = (uint64_t)o->seed + 1;
    int code = 0;
    if (ox_oryx_model_init(ctx, &m, &cfg, &rng) || ox_oryx_mqar_trainer_init(ctx, &tr, &m, &tc))
        code = cli_fail(CLI_ERR_USAGE, C, "%s: %s", preset, ox_ctx_message(ctx));
    progress_state ps = { preset, isatty(STDOUT_FILENO), 10 };
    double t0 = cli_now();
    if (!code && ox_oryx_mqar_train_run(ctx, &tr, o->minutes * 60, on_progress, &ps))
        code = cli_fail(CLI_ERR_RUN, C, "%s: training step %lld: %s", preset, (long long)tr.step + 1,
                        ox_ctx_message(ctx));
    if (!code) {
        char el[32];
        cli_format_duration(cli_now() - t0, el, sizeof el);
        if (ps.tty)
            printf("\r\033[K");
        printf("%s: %lld parameters, %lld steps in %s\n", preset, (long long)ox_nn_params_numel(&m.params),
               (long long)tr.step, el);
        fflush(stdout);
    }
    ox_oryx_map_spec spec = { .kind = OX_ORYX_MAP_LIN, .seed = (uint64_t)o->seed + 2 };
    if (!code && !is_oryx(&cfg))
        code = eval_map(ctx, o, &m, preset, &spec, "model", attn_layer_fraction(&cfg), rows, nr);
    else if (!code) {
        spec.kind = OX_ORYX_MAP_LIN;
        code = eval_map(ctx, o, &m, preset, &spec, "lin", 0, rows, nr);
        spec.kind = OX_ORYX_MAP_QUERIES;
        code = code ? code : eval_map(ctx, o, &m, preset, &spec, "queries", 0, rows, nr);
        spec.kind = OX_ORYX_MAP_ATTN;
        code = code ? code : eval_map(ctx, o, &m, preset, &spec, "attn", 1, rows, nr);
        spec.kind = OX_ORYX_MAP_SWEEP;
        for (int i = 0; i < o->n_fractions && !code; i++) {
            spec.fraction = o->fractions[i];
            code = eval_map(ctx, o, &m, preset, &spec, "sweep", o->fractions[i], rows, nr);
        }
    }
    ox_oryx_mqar_trainer_free(&tr);
    ox_oryx_model_free(&m);
    return code;
}

static double acc(const mqar_row *r)
{
    return r->n_queries ? (double)r->correct / (double)r->n_queries : 0;
}

/* The table: one line per (preset, slice), a column per map. */
static void print_table(const mqar_opts *o, const mqar_row *rows, int nr)
{
    printf("\nMQAR accuracy (held-out, %lld examples per slice; chance %.4f)\n", (long long)o->eval_examples,
           2.0 / (double)o->vocab);
    printf("%-14s %-9s %-7s %-7s %-7s", "preset", "T x N", "model", "lin", "queries");
    printf(" %-7s |", "attn");
    for (int i = 0; i < o->n_fractions; i++)
        printf(" f=%-5.3g", o->fractions[i]);
    printf("\n");
    for (int i = 0; i < nr;) {
        const mqar_row *r = &rows[i];
        char tn[24];
        if (r->T)
            snprintf(tn, sizeof tn, "%lldx%lld", (long long)r->T, (long long)r->N);
        else
            snprintf(tn, sizeof tn, "all");
        printf("%-14s %-9s", r->preset, tn);
        /* the rows of this preset and slice: same preset pointer and T */
        double model = -1, lin = -1, q = -1, at = -1, sw[MAX_FRACTIONS];
        int ns = 0;
        int j = 0;
        for (j = 0; j < nr; j++)
            if (rows[j].preset == r->preset && rows[j].T == r->T) {
                const char *mp = rows[j].map;
                if (!strcmp(mp, "model")) model = acc(&rows[j]);
                else if (!strcmp(mp, "lin")) lin = acc(&rows[j]);
                else if (!strcmp(mp, "queries")) q = acc(&rows[j]);
                else if (!strcmp(mp, "attn")) at = acc(&rows[j]);
                else if (ns < MAX_FRACTIONS) sw[ns++] = acc(&rows[j]);
            }
        double cols[4] = { model, lin, q, at };
        for (int c = 0; c < 4; c++) {
            if (cols[c] >= 0)
                printf(" %-7.4f", cols[c]);
            else
                printf(" %-7s", "-");
        }
        printf(" |");
        for (int s = 0; s < o->n_fractions; s++) {
            if (s < ns)
                printf(" %-7.4f", sw[s]);
            else
                printf(" %-7s", "-");
        }
        printf("\n");
        /* skip to the first row of another (preset, slice) not printed yet */
        int next = i + 1;
        while (next < nr) {
            int seen = 0;
            for (int k = 0; k < next && !seen; k++)
                seen = rows[k].preset == rows[next].preset && rows[k].T == rows[next].T &&
                       rows[k].N == rows[next].N;
            if (!seen)
                break;
            next++;
        }
        i = next;
    }
}

/* PREFIX.csv via PREFIX.csv.tmp + rename. */
static int write_csv(const char *prefix, const mqar_row *rows, int nr)
{
    char path[4096], tmp[4200];
    if (snprintf(path, sizeof path, "%s.csv", prefix) >= (int)sizeof path)
        return cli_fail(CLI_ERR_USAGE, C, "--out name is too long");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return cli_fail(CLI_ERR_RUN, C, "cannot write '%s'", tmp);
    fprintf(f, "preset,T,N,map,attn_fraction,accuracy,n_queries\n");
    for (int i = 0; i < nr; i++) {
        const mqar_row *r = &rows[i];
        if (r->T)
            fprintf(f, "%s,%lld,%lld,", r->preset, (long long)r->T, (long long)r->N);
        else
            fprintf(f, "%s,all,all,", r->preset);
        fprintf(f, "%s,%.6g,%.6f,%lld\n", r->map, r->fraction, acc(r), (long long)r->n_queries);
    }
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path)) {
        unlink(tmp);
        return cli_fail(CLI_ERR_RUN, C, "cannot write '%s'", path);
    }
    printf("wrote %s (%d rows)\n", path, nr);
    return 0;
}

/* PREFIX.png: accuracy (pooled over the slices) vs attention fraction, one line per preset. An Oryx preset
 * gives a line through its maps sorted by fraction (all-LIN, query-only, the sweep, all-ATTN; equal
 * fractions keep the first map measured); a single-mixer or layer-axis preset gives one marked point at its
 * share of attention layers. */
static int write_png(ox_ctx *ctx, const char *prefix, const mqar_row *rows, int nr, int n_presets)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s.png", prefix) >= (int)sizeof path)
        return cli_fail(CLI_ERR_USAGE, C, "--out name is too long");
    double *xy = calloc(2 * (size_t)nr + 1, sizeof *xy);
    ox_plot_series *series = calloc((size_t)n_presets + 1, sizeof *series);
    if (!xy || !series) {
        free(xy);
        free(series);
        return cli_fail(CLI_ERR_RUN, C, "out of memory");
    }
    int ns = 0, used = 0;
    for (int i = 0; i < nr; i++) {
        if (rows[i].T || (ns > 0 && series[ns - 1].label == rows[i].preset))
            continue;   /* not a pooled row, or its preset has its line already (rows come preset by preset) */
        const char *preset = rows[i].preset;
        double *x = xy + used, *y = xy + nr + used;
        int n = 0;
        for (int j = i; j < nr && rows[j].preset == preset; j++) {
            if (rows[j].T)
                continue;
            int k = n, dup = 0;
            for (int q = 0; q < n; q++)
                dup |= x[q] == rows[j].fraction;
            if (dup)
                continue;
            while (k > 0 && x[k - 1] > rows[j].fraction) {   /* insertion sort by fraction */
                x[k] = x[k - 1];
                y[k] = y[k - 1];
                k--;
            }
            x[k] = rows[j].fraction;
            y[k] = acc(&rows[j]);
            n++;
        }
        used += n;
        series[ns++] = (ox_plot_series){ .label = preset, .x = x, .y = y, .n = n, .markers = 1 };
    }
    ox_plot_line_chart ch = { .title = "MQAR: accuracy vs share of tokens in attention mode",
                              .xlabel = "attention fraction (ATTN tokens / all tokens)",
                              .ylabel = "accuracy on queried values",
                              .series = series, .n_series = ns, .fixed_x = 1, .xmin = -0.02, .xmax = 1.02,
                              .fixed_y = 1, .ymin = -0.02, .ymax = 1.05 };   /* margins: points at 0 and 1 stay off the frame */
    int code = 0;
    if (ox_plot_line_chart_png(ctx, &ch, path))
        code = cli_fail(CLI_ERR_RUN, C, "%s", ox_ctx_message(ctx));
    else
        printf("wrote %s\n", path);
    free(xy);
    free(series);
    return code;
}

int cli_mqar(int argc, char **argv)
{
    mqar_opts o;
    int code = parse_opts(argc, argv, &o);
    if (code)
        return code < 0 ? CLI_OK : code;
    if (cli_make_parent_dirs(o.out))
        return cli_fail(CLI_ERR_RUN, C, "cannot create the folder of '%s'", o.out);
    ox_ctx *ctx = ox_ctx_new();
    mqar_row *rows = calloc(MAX_ROWS, sizeof *rows);
    if (!ctx || !rows) {
        free(rows);
        if (ctx)
            ox_ctx_free(ctx);
        return cli_fail(CLI_ERR_RUN, C, "out of memory");
    }
    ox_ctx_set_threads(ctx, (int)o.threads);
    printf("mqar: V %lld, D %lld, L %lld, H %lld, batch %lld, up to %lld steps / %.3g min per preset, threads %d\n",
           (long long)o.vocab, (long long)o.d_model, (long long)o.layers, (long long)o.heads, (long long)o.batch,
           (long long)o.steps, o.minutes, ox_ctx_threads(ctx));
    fflush(stdout);
    int nr = 0;
    for (int p = 0; p < o.n_presets && !code; p++)
        code = run_preset(ctx, &o, o.presets[p], rows, &nr);
    if (!code) {
        print_table(&o, rows, nr);
        code = write_csv(o.out, rows, nr);
        if (!code)
            code = write_png(ctx, o.out, rows, nr, o.n_presets);
    }
    free(rows);
    ox_ctx_free(ctx);
    return code;
}
