/* plot.c - loss pictures: reading a loss history <stem>.loss.csv (as `oryx train` writes it:
 * step,loss,val_loss,lr,tokens_per_s with val_loss empty on rows without evaluation), drawing one or more
 * histories as a line chart (plot/chart.h), and `oryx plot`, which overlays several runs for comparison.
 * `oryx train` calls cli_loss_png to keep <stem>.loss.png beside the CSV. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "tensor/alloc.h"
#include "plot/chart.h"

/* One history: steps with their training loss, and the rows that carry a validation loss. */
typedef struct loss_hist {
    double *step, *loss;        /* n rows */
    double *vstep, *vloss;      /* nv rows with a validation loss */
    int64_t n, nv;
    char label[128];            /* the file's stem: "runs/oryx.loss.csv" -> "oryx" */
} loss_hist;

static void hist_free(loss_hist *h)
{
    free(h->step);
    free(h->loss);
    free(h->vstep);
    free(h->vloss);
    memset(h, 0, sizeof *h);
}

/* Parses a number field [s, end) (no spaces); 0 on success. */
static int field_num(const char *s, const char *end, double *v)
{
    char buf[64], *e;
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    *v = strtod(buf, &e);
    return *e || !isfinite(*v) ? -1 : 0;
}

/* Reads a loss CSV into h. CLI_ERR_INPUT with one line naming the file and line on anything malformed: a
 * header without step,loss columns, a row with a field that is not a number, or no row at all. */
static int hist_read(const char *cmd, const char *path, loss_hist *h)
{
    memset(h, 0, sizeof *h);
    uint8_t *data;
    int64_t len;
    int code = cli_read_file(cmd, "loss history", path, &data, &len);
    if (code)
        return code;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    size_t bl = strlen(base);
    if (bl > 9 && strcmp(base + bl - 9, ".loss.csv") == 0)
        bl -= 9;
    else if (bl > 4 && strcmp(base + bl - 4, ".csv") == 0)
        bl -= 4;
    snprintf(h->label, sizeof h->label, "%.*s", (int)bl, base);
    int64_t rows = 0;
    for (int64_t i = 0; i < len; i++)
        rows += data[i] == '\n';
    rows++;
    h->step = malloc(sizeof(double) * (size_t)rows);
    h->loss = malloc(sizeof(double) * (size_t)rows);
    h->vstep = malloc(sizeof(double) * (size_t)rows);
    h->vloss = malloc(sizeof(double) * (size_t)rows);
    if (!h->step || !h->loss || !h->vstep || !h->vloss) {
        ox_free(data);
        hist_free(h);
        return cli_fail(CLI_ERR_RUN, cmd, "out of memory reading '%s'", path);
    }
    const char *p = (const char *)data, *end = p + len;
    int64_t line = 0;
    int val_col = -1;
    while (p < end && !code) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        const char *q = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        line++;
        if (line == 1) {
            /* header: the first two columns must be step and loss; val_loss may be anywhere */
            if (q - p < 9 || strncmp(p, "step,loss", 9) != 0 || (q - p > 9 && p[9] != ','))
                code = cli_fail(CLI_ERR_INPUT, cmd, "'%s' is not a loss history: its first line must start with "
                                "step,loss", path);
            int col = 0;
            for (const char *f = p; f < q && !code; col++) {
                const char *c = memchr(f, ',', (size_t)(q - f));
                if (!c)
                    c = q;
                if (c - f == 8 && strncmp(f, "val_loss", 8) == 0)
                    val_col = col;
                f = c + 1;
            }
        } else if (q > p) {
            double v[2] = { 0, 0 }, vl = 0;
            int col = 0, has_val = 0;
            for (const char *f = p; f <= q && !code; col++) {
                const char *c = memchr(f, ',', (size_t)(q - f));
                if (!c)
                    c = q;
                if (col < 2 && field_num(f, c, &v[col]))
                    code = cli_fail(CLI_ERR_INPUT, cmd, "'%s' line %lld: column %d is not a number", path,
                                    (long long)line, col + 1);
                if (col == val_col && c > f) {
                    if (field_num(f, c, &vl))
                        code = cli_fail(CLI_ERR_INPUT, cmd, "'%s' line %lld: val_loss is not a number", path,
                                        (long long)line);
                    has_val = 1;
                }
                f = c + 1;
            }
            if (!code && col < 2)
                code = cli_fail(CLI_ERR_INPUT, cmd, "'%s' line %lld: fewer than 2 columns", path, (long long)line);
            if (!code) {
                h->step[h->n] = v[0];
                h->loss[h->n++] = v[1];
                if (has_val) {
                    h->vstep[h->nv] = v[0];
                    h->vloss[h->nv++] = vl;
                }
            }
        }
        p = eol + 1;
    }
    ox_free(data);
    if (!code && h->n == 0)
        code = cli_fail(CLI_ERR_INPUT, cmd, "'%s' holds no rows", path);
    if (code)
        hist_free(h);
    return code;
}

/* Draws histories h[0..n-1] to out. Single run: "train loss" and "val loss"; several: "<stem>" (train)
 * and "<stem> val" (dashed, markers) in the run's colour. */
static int hists_png(const char *cmd, const loss_hist *h, int n, const char *out, const char *title, int val_only,
                     int log_y)
{
    ox_plot_series *s = calloc((size_t)(2 * n), sizeof *s);
    char (*labels)[160] = calloc((size_t)(2 * n), sizeof *labels);
    ox_ctx *ctx = ox_ctx_new();
    if (!s || !labels || !ctx) {
        free(s);
        free(labels);
        if (ctx)
            ox_ctx_free(ctx);
        return cli_fail(CLI_ERR_RUN, cmd, "out of memory");
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        uint32_t col = ox_plot_palette(n == 1 ? 0 : i);
        if (!val_only) {
            snprintf(labels[k], sizeof labels[k], "%s", n == 1 ? "train loss" : h[i].label);
            s[k] = (ox_plot_series){ .label = labels[k], .x = h[i].step, .y = h[i].loss, .n = h[i].n,
                                     .color = col };
            k++;
        }
        if (h[i].nv) {
            snprintf(labels[k], sizeof labels[k], "%s%s", n == 1 ? "" : h[i].label,
                     n == 1 ? "val loss" : val_only ? "" : " val");
            s[k] = (ox_plot_series){ .label = labels[k], .x = h[i].vstep, .y = h[i].vloss, .n = h[i].nv,
                                     .color = n == 1 ? ox_plot_palette(1) : col, .markers = 1,
                                     .dashed = n > 1 && !val_only };
            k++;
        }
    }
    int code = 0;
    if (k == 0)
        code = cli_fail(CLI_ERR_INPUT, cmd, "--val-only: no history holds a validation loss");
    ox_plot_line_chart ch = { .title = title, .xlabel = "step", .ylabel = "loss (nats per byte)", .series = s,
                              .n_series = k, .log_y = log_y };
    if (!code && ox_plot_line_chart_png(ctx, &ch, out))
        code = cli_fail(CLI_ERR_RUN, cmd, "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
    free(s);
    free(labels);
    return code;
}

int cli_loss_png(const char *cmd, const char *csv, const char *png, const char *title)
{
    loss_hist h;
    int code = hist_read(cmd, csv, &h);
    if (code)
        return code;
    code = hists_png(cmd, &h, 1, png, title, 0, 0);
    hist_free(&h);
    return code;
}

int cli_mode_map_png(const char *cmd, const ox_oryx_config *cfg, const int32_t *map, int64_t n, int64_t n_prompt,
                     const char *spec_text, const char *png)
{
    int64_t L = cfg->n_layers;
    if (n < 1 || n > OX_PLOT_MAX_SIDE - 300)
        return cli_fail(CLI_ERR_USAGE, cmd, "a mode map of %lld positions does not fit a picture (1 .. %d)",
                        (long long)n, OX_PLOT_MAX_SIDE - 300);
    uint8_t *cells = malloc((size_t)(L * n));
    char (*names)[32] = malloc(sizeof *names * (size_t)L);
    const char **rl = malloc(sizeof *rl * (size_t)L);
    ox_ctx *ctx = ox_ctx_new();
    int code = 0;
    if (!cells || !names || !rl || !ctx)
        code = cli_fail(CLI_ERR_RUN, cmd, "out of memory");
    for (int64_t l = 0; l < L && !code; l++) {
        /* a layer of one kind runs that mixer at every token, whatever the map says */
        for (int64_t t = 0; t < n; t++)
            cells[l * n + t] = cfg->kinds[l] == OX_ORYX_KIND_ATTN ? 1 : cfg->kinds[l] == OX_ORYX_KIND_LIN ? 0
                                                                                                  : map[t] != 0;
        snprintf(names[l], sizeof names[l], "layer %lld %s", (long long)l, ox_oryx_kind_name(cfg->kinds[l]));
        rl[l] = names[l];
    }
    static const char *const cats[2] = { "LIN", "ATTN" };
    static const uint32_t colors[2] = { 0x9ecae1, 0xd62728 };
    char title[160];
    snprintf(title, sizeof title, "mode map: %s (%s)", spec_text, ox_oryx_config_arch(cfg));
    ox_plot_grid g = { .title = title, .xlabel = "position", .cells = cells, .rows = L, .cols = n,
                       .n_categories = 2, .category_labels = cats, .category_colors = colors, .row_labels = rl,
                       .marker_col = n_prompt > 0 && n_prompt < n ? n_prompt : 0,
                       .marker_label = n_prompt > 0 && n_prompt < n ? "prompt | generated" : NULL,
                       .width = n <= 600 ? 800 : (int)n + 300 };
    if (!code && ox_plot_grid_png(ctx, &g, png))
        code = cli_fail(CLI_ERR_RUN, cmd, "%s", ox_ctx_message(ctx));
    if (ctx)
        ox_ctx_free(ctx);
    free(cells);
    free(names);
    free(rl);
    return code;
}

static const char plot_help[] =
    "usage: oryx plot --out FILE.png RUN.loss.csv [RUN2.loss.csv ...] [options]\n"
    "\n"
    "Draws loss histories (as oryx train writes them) as one line chart: training loss per step (solid)\n"
    "and validation loss where it was measured (markers). Several runs are overlaid, one colour each,\n"
    "named by their file stems. A checkpoint name (runs/oryx) stands for its runs/oryx.loss.csv.\n"
    "  --out FILE.png     the picture to write (required)\n"
    "  --title T          title (default: \"loss\")\n"
    "  --val-only         only the validation losses\n"
    "  --log-y            logarithmic loss axis\n"
    "  -h, --help         this text\n";

#define PLOT_MAX_RUNS 16

int cli_plot(int argc, char **argv)
{
    static const struct option opts[] = {
        { "out", required_argument, 0, 'o' }, { "title", required_argument, 0, 't' },
        { "val-only", no_argument, 0, 'v' },  { "log-y", no_argument, 0, 'l' },
        { "help", no_argument, 0, 'h' },      { 0, 0, 0, 0 }
    };
    const char *P = "plot", *out = NULL, *title = "loss";
    int val_only = 0, log_y = 0, c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 't': title = optarg; break;
        case 'v': val_only = 1; break;
        case 'l': log_y = 1; break;
        case 'h': fputs(plot_help, stdout); return CLI_OK;
        default: return cli_bad_option(P, c, argv);
        }
    }
    if (!out || !*out)
        return cli_fail(CLI_ERR_USAGE, P, "--out FILE.png is required (see oryx plot --help)");
    int n = argc - optind;
    if (n < 1)
        return cli_fail(CLI_ERR_USAGE, P, "no loss history given (oryx plot --out FILE.png RUN.loss.csv ...)");
    if (n > PLOT_MAX_RUNS)
        return cli_fail(CLI_ERR_USAGE, P, "%d histories given; at most %d fit one picture", n, PLOT_MAX_RUNS);
    loss_hist h[PLOT_MAX_RUNS];
    memset(h, 0, sizeof h);
    int code = 0;
    for (int i = 0; i < n && !code; i++) {
        const char *a = argv[optind + i];
        size_t len = strlen(a);
        char csv[4096], prefix[4096];
        if (len > 4 && strcmp(a + len - 4, ".csv") == 0)
            snprintf(csv, sizeof csv, "%s", a);
        else if (cli_ckpt_paths(a, prefix, NULL, NULL, csv, sizeof csv))
            code = cli_fail(CLI_ERR_USAGE, P, "run name '%s' is empty or too long", a);
        if (!code)
            code = hist_read(P, csv, &h[i]);
    }
    if (!code)
        code = hists_png(P, h, n, out, title, val_only, log_y);
    for (int i = 0; i < n; i++)
        hist_free(&h[i]);
    if (!code)
        printf("wrote %s (%d run%s)\n", out, n, n == 1 ? "" : "s");
    return code;
}
