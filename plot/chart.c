/* chart.c - the line chart (see chart.h) and what every chart shares: the palette, nice ticks, tick text,
 * the data -> pixel mapping. Heatmaps and grids are in heatmap.c. */
#include "plot/chart.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plot/font.h"

#define MAX_TICKS 64

uint32_t ox_plot_palette(int i)
{
    static const uint32_t colors[10] = { 0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                         0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf };
    return colors[(i % 10 + 10) % 10];
}

int ox_plot_nice_ticks(double lo, double hi, int target, double *ticks, int max, double *step)
{
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return 0;
    if (lo == hi) {
        double d = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1;
        lo -= d;
        hi += d;
    }
    if (target < 2)
        target = 2;
    double raw = (hi - lo) / target, mag = pow(10, floor(log10(raw))), norm = raw / mag;
    double st = (norm < 1.5 ? 1 : norm < 3.5 ? 2 : norm < 7.5 ? 5 : 10) * mag;
    if (step)
        *step = st;
    double slack = 1e-9 * (hi - lo);
    int n = 0;
    for (double k = ceil((lo - slack) / st); k * st <= hi + slack && n < max; k++) {
        double v = k * st;
        ticks[n++] = fabs(v) < 1e-12 * st ? 0 : v;   /* no "-0" */
    }
    return n;
}

void ox_plot_format_tick(double v, double step, char *buf, int n)
{
    double a = fabs(v);
    if (v != 0 && (a >= 1e6 || a < 1e-4 || step < 1e-4)) {
        snprintf(buf, (size_t)n, "%g", v);
        return;
    }
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (dec > 6)
        dec = 6;
    snprintf(buf, (size_t)n, "%.*f", dec, v);
}

static double ymap_value(const ox_plot_layout *l, double y) { return l->log_y ? log10(y) : y; }

int ox_plot_map_x(const ox_plot_layout *l, double x)
{
    double f = (x - l->xmin) / (l->xmax - l->xmin);
    return (int)lround(l->plot.x0 + f * (l->plot.x1 - 1 - l->plot.x0));
}

int ox_plot_map_y(const ox_plot_layout *l, double y)
{
    double lo = ymap_value(l, l->ymin), hi = ymap_value(l, l->ymax);
    double f = (ymap_value(l, y) - lo) / (hi - lo);
    return (int)lround(l->plot.y1 - 1 - f * (l->plot.y1 - 1 - l->plot.y0));
}

/* Mapping that tolerates far-away values (clipped later by the canvas): pixel as double. */
static double px_x(const ox_plot_layout *l, double x)
{
    return l->plot.x0 + (x - l->xmin) / (l->xmax - l->xmin) * (l->plot.x1 - 1 - l->plot.x0);
}

static double px_y(const ox_plot_layout *l, double y)
{
    double lo = ymap_value(l, l->ymin), hi = ymap_value(l, l->ymax);
    return l->plot.y1 - 1 - (ymap_value(l, y) - lo) / (hi - lo) * (l->plot.y1 - 1 - l->plot.y0);
}

static int point_ok(const ox_plot_line_chart *ch, double x, double y)
{
    return isfinite(x) && isfinite(y) && (!ch->log_y || y > 0);
}

/* Log-axis ticks: 1, 2, 5 x 10^k inside [lo, hi] (only powers of ten when that gives too many). */
static int log_ticks(double lo, double hi, double *t, int max)
{
    static const double m[3] = { 1, 2, 5 };
    int n = 0;
    for (int pass = 0; pass < 2; pass++) {
        n = 0;
        for (int e = (int)floor(log10(lo)) - 1; e <= (int)ceil(log10(hi)) + 1 && n < max; e++)
            for (int i = 0; i < (pass ? 1 : 3) && n < max; i++) {
                double v = m[i] * pow(10, e);
                if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9))
                    t[n++] = v;
            }
        if (n <= 8)
            break;
    }
    return n;
}

/* Widens [lo, hi] outwards to the nearest 1, 2, 5 x 10^k. */
static void log_widen(double *lo, double *hi)
{
    static const double m[4] = { 1, 2, 5, 10 };
    if (*lo == *hi) {
        *lo /= 2;
        *hi *= 2;
    }
    double e = floor(log10(*lo)), best = pow(10, e);
    for (int i = 0; i < 3; i++)
        if (m[i] * pow(10, e) <= *lo * (1 + 1e-12))
            best = m[i] * pow(10, e);
    *lo = best;
    e = floor(log10(*hi));
    for (int i = 0; i < 4; i++)
        if (m[i] * pow(10, e) >= *hi * (1 - 1e-12)) {
            *hi = m[i] * pow(10, e);
            break;
        }
}

/* Ticks of the y axis for the layout's range. */
static int y_ticks(const ox_plot_layout *l, int target, double *t, double *step)
{
    if (l->log_y) {
        *step = 0;
        return log_ticks(l->ymin, l->ymax, t, MAX_TICKS);
    }
    return ox_plot_nice_ticks(l->ymin, l->ymax, target, t, MAX_TICKS, step);
}

static void tick_text(const ox_plot_layout *l, int yaxis, double v, double step, char *buf, int n)
{
    if (yaxis && l->log_y)
        snprintf(buf, (size_t)n, "%g", v);
    else
        ox_plot_format_tick(v, step, buf, n);
}

/* The data range of the chart on one axis (finite points only); 0 if there is none. */
static int data_range(const ox_plot_line_chart *ch, int yaxis, double *lo, double *hi)
{
    int any = 0;
    for (int s = 0; s < ch->n_series; s++) {
        const ox_plot_series *se = &ch->series[s];
        for (int64_t i = 0; i < se->n; i++) {
            if (!point_ok(ch, se->x[i], se->y[i]))
                continue;
            double v = yaxis ? se->y[i] : se->x[i];
            if (!any || v < *lo)
                *lo = v;
            if (!any || v > *hi)
                *hi = v;
            any = 1;
        }
    }
    return any;
}

static ox_status check_chart(ox_ctx *ctx, const ox_plot_line_chart *ch)
{
    if (!ch || !ch->series || ch->n_series < 1)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "line chart: no series given");
    for (int s = 0; s < ch->n_series; s++) {
        const ox_plot_series *se = &ch->series[s];
        if (se->n < 0 || (se->n > 0 && (!se->x || !se->y)))
            return ox_ctx_fail(ctx, OX_ERR_ARG, "line chart: series %d ('%s') has n = %lld and x/y %s", s,
                               se->label ? se->label : "", (long long)se->n, se->x && se->y ? "set" : "missing");
    }
    if (ch->fixed_x && !(ch->xmin < ch->xmax))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "line chart: fixed x range [%g, %g] is empty", ch->xmin, ch->xmax);
    if (ch->fixed_y && (!(ch->ymin < ch->ymax) || (ch->log_y && !(ch->ymin > 0))))
        return ox_ctx_fail(ctx, OX_ERR_ARG, "line chart: fixed y range [%g, %g] is empty%s", ch->ymin, ch->ymax,
                           ch->log_y ? " or not positive (log-y)" : "");
    return OX_OK;
}

/* Chooses the ranges (automatic ones widened to whole ticks). */
static ox_status chart_ranges(ox_ctx *ctx, const ox_plot_line_chart *ch, ox_plot_layout *l)
{
    double lo = 0, hi = 0, t[MAX_TICKS], st;
    if (ch->fixed_x) {
        l->xmin = ch->xmin;
        l->xmax = ch->xmax;
    } else {
        if (!data_range(ch, 0, &lo, &hi))
            return ox_ctx_fail(ctx, OX_ERR_ARG, "line chart: no finite point to set the x range from");
        int n = ox_plot_nice_ticks(lo, hi, 6, t, MAX_TICKS, &st);
        l->xmin = lo == hi ? t[0] : fmin(lo, floor(lo / st + 1e-9) * st);
        l->xmax = lo == hi ? t[n - 1] : fmax(hi, ceil(hi / st - 1e-9) * st);
    }
    l->log_y = ch->log_y != 0;
    if (ch->fixed_y) {
        l->ymin = ch->ymin;
        l->ymax = ch->ymax;
    } else {
        if (!data_range(ch, 1, &lo, &hi))
            return ox_ctx_fail(ctx, OX_ERR_ARG, "line chart: no finite%s point to set the y range from",
                               ch->log_y ? " positive" : "");
        if (ch->log_y) {
            log_widen(&lo, &hi);
            l->ymin = lo;
            l->ymax = hi;
        } else {
            int n = ox_plot_nice_ticks(lo, hi, 5, t, MAX_TICKS, &st);
            l->ymin = lo == hi ? t[0] : fmin(lo, floor(lo / st + 1e-9) * st);
            l->ymax = lo == hi ? t[n - 1] : fmax(hi, ceil(hi / st - 1e-9) * st);
        }
    }
    return OX_OK;
}

/* Draws one series inside the plot area (clip set by the caller). */
static void draw_series(ox_plot_canvas *c, const ox_plot_line_chart *ch, const ox_plot_layout *l, int idx, int s)
{
    const ox_plot_series *se = &ch->series[idx];
    uint32_t col = se->color ? se->color : ox_plot_palette(idx);
    int th = s >= 2 ? s : 2, on = 6 * s, off = se->dashed ? 4 * s : 0;
    for (int64_t i = 0; i < se->n; i++) {
        if (!point_ok(ch, se->x[i], se->y[i]))
            continue;
        double x = px_x(l, se->x[i]), y = px_y(l, se->y[i]);
        int prev = i > 0 && point_ok(ch, se->x[i - 1], se->y[i - 1]);
        int next = i + 1 < se->n && point_ok(ch, se->x[i + 1], se->y[i + 1]);
        if (next) {
            double x2 = px_x(l, se->x[i + 1]), y2 = px_y(l, se->y[i + 1]);
            if (fabs(x) < 1e7 && fabs(y) < 1e7 && fabs(x2) < 1e7 && fabs(y2) < 1e7)
                ox_plot_line_dashed(c, (int)lround(x), (int)lround(y), (int)lround(x2), (int)lround(y2), th, on,
                                    off, col);
        }
        if ((se->markers || (!prev && !next)) && fabs(x) < 1e7 && fabs(y) < 1e7) {
            int r = se->markers ? 2 * s : s;   /* an isolated point is drawn as a dot so it is seen */
            ox_plot_fill_rect(c, (int)lround(x) - r, (int)lround(y) - r, (int)lround(x) + r + 1,
                              (int)lround(y) + r + 1, col);
        }
    }
}

/* Pixels of the box that are neither background nor grid (what a legend placed there would cover). */
static int64_t covered(const ox_plot_canvas *c, ox_plot_box b)
{
    int64_t n = 0;
    for (int y = b.y0; y < b.y1; y++)
        for (int x = b.x0; x < b.x1; x++) {
            uint32_t p = ox_plot_get(c, x, y);
            n += p != OX_PLOT_WHITE && p != OX_PLOT_GRID_COLOR;
        }
    return n;
}

static void draw_legend(ox_plot_canvas *c, const ox_plot_line_chart *ch, ox_plot_layout *l, int s)
{
    int n = 0, wmax = 0, th = ox_plot_text_height(s);
    for (int i = 0; i < ch->n_series; i++)
        if (ch->series[i].label && *ch->series[i].label) {
            n++;
            int w = ox_plot_text_width(ch->series[i].label, s);
            wmax = w > wmax ? w : wmax;
        }
    if (n == 0 || ch->no_legend || (n == 1 && ch->n_series == 1))
        return;
    int sw = 12 * s, pad = 4 * s, lh = th + 3 * s;
    int bw = pad + sw + 3 * s + wmax + pad, bh = pad + n * lh - 3 * s + pad, in = 5 * s;
    const ox_plot_box *p = &l->plot;
    ox_plot_box cand[4] = {
        { p->x1 - in - bw, p->y0 + in, p->x1 - in, p->y0 + in + bh },   /* top right */
        { p->x0 + in, p->y0 + in, p->x0 + in + bw, p->y0 + in + bh },   /* top left */
        { p->x1 - in - bw, p->y1 - in - bh, p->x1 - in, p->y1 - in },   /* bottom right */
        { p->x0 + in, p->y1 - in - bh, p->x0 + in + bw, p->y1 - in },   /* bottom left */
    };
    int best = 0;
    int64_t best_n = covered(c, cand[0]);
    for (int i = 1; i < 4; i++) {
        int64_t k = covered(c, cand[i]);
        if (k < best_n) {
            best_n = k;
            best = i;
        }
    }
    ox_plot_box b = cand[best];
    ox_plot_fill_rect(c, b.x0, b.y0, b.x1, b.y1, OX_PLOT_WHITE);
    ox_plot_rect(c, b.x0, b.y0, b.x1, b.y1, 0x999999);
    int y = b.y0 + pad, k = 0;
    for (int i = 0; i < ch->n_series; i++) {
        const ox_plot_series *se = &ch->series[i];
        if (!se->label || !*se->label)
            continue;
        uint32_t col = se->color ? se->color : ox_plot_palette(i);
        int cy = y + 7 * s / 2;
        if (se->dashed)
            ox_plot_line_dashed(c, b.x0 + pad, cy, b.x0 + pad + sw - 1, cy, s >= 2 ? s : 2, 4 * s, 2 * s, col);
        else
            ox_plot_fill_rect(c, b.x0 + pad, cy - s, b.x0 + pad + sw, cy + s + 1, col);
        if (se->markers)
            ox_plot_fill_rect(c, b.x0 + pad + sw / 2 - 2 * s, cy - 2 * s, b.x0 + pad + sw / 2 + 2 * s + 1,
                              cy + 2 * s + 1, col);
        ox_plot_text(c, b.x0 + pad + sw + 3 * s, y, se->label, s, OX_PLOT_TEXT_COLOR);
        y += lh;
        k++;
    }
    l->legend = b;
}

ox_plot_canvas *ox_plot_line_chart_draw(ox_ctx *ctx, const ox_plot_line_chart *ch, ox_plot_layout *layout)
{
    if (!ctx || ctx->status)
        return NULL;
    if (check_chart(ctx, ch))
        return NULL;
    int W = ch->width ? ch->width : 800, H = ch->height ? ch->height : 500, s = ch->text_scale ? ch->text_scale : 2;
    if (W < 200 || H < 150 || s < 1 || s > 8) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "line chart: size %d x %d (at least 200 x 150) or text scale %d (1..8)", W, H,
                    s);
        return NULL;
    }
    ox_plot_layout l;
    memset(&l, 0, sizeof l);
    if (chart_ranges(ctx, ch, &l))
        return NULL;
    int th = ox_plot_text_height(s), pad = 6 * s;
    const char *title = ch->title && *ch->title ? ch->title : NULL;
    const char *xlabel = ch->xlabel && *ch->xlabel ? ch->xlabel : NULL;
    const char *ylabel = ch->ylabel && *ch->ylabel ? ch->ylabel : NULL;

    /* vertical layout first (it fixes the plot height, which sets how many y ticks fit) */
    l.plot.y0 = pad + (title ? th + 5 * s : 0) + th / 2;
    l.plot.y1 = H - pad - (xlabel ? th + 4 * s : 0) - th - 5 * s;
    double yt[MAX_TICKS], ystep = 0, xt[MAX_TICKS], xstep = 0;
    char buf[64];
    int nyt = 0;
    for (int target = 6; target >= 2; target--) {   /* y tick labels at least two text lines apart */
        nyt = y_ticks(&l, target, yt, &ystep);
        if (nyt < 2 || (l.plot.y1 - l.plot.y0) / (nyt - 1 > 0 ? nyt - 1 : 1) >= 2 * th + 2 * s)
            break;
    }
    int wy = 0;
    for (int i = 0; i < nyt; i++) {
        tick_text(&l, 1, yt[i], ystep, buf, sizeof buf);
        int w = ox_plot_text_width(buf, s);
        wy = w > wy ? w : wy;
    }
    l.plot.x0 = pad + (ylabel ? th + 5 * s : 0) + wy + 5 * s;
    int nxt = ox_plot_nice_ticks(l.xmin, l.xmax, 6, xt, MAX_TICKS, &xstep);
    tick_text(&l, 0, nxt ? xt[nxt - 1] : l.xmax, xstep, buf, sizeof buf);
    l.plot.x1 = W - pad - (ox_plot_text_width(buf, s) / 2 > 4 * s ? ox_plot_text_width(buf, s) / 2 : 4 * s);
    if (l.plot.x1 - l.plot.x0 < 40 || l.plot.y1 - l.plot.y0 < 40) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "line chart: %d x %d leaves no room for the plot area at text scale %d", W, H,
                    s);
        return NULL;
    }
    for (int target = 6; target >= 2; target--) {   /* x tick labels at least 3 characters apart */
        nxt = ox_plot_nice_ticks(l.xmin, l.xmax, target, xt, MAX_TICKS, &xstep);
        int wmax = 0;
        for (int i = 0; i < nxt; i++) {
            tick_text(&l, 0, xt[i], xstep, buf, sizeof buf);
            int w = ox_plot_text_width(buf, s);
            wmax = w > wmax ? w : wmax;
        }
        if (nxt < 2 || (l.plot.x1 - l.plot.x0) / (nxt - 1) >= wmax + 3 * OX_PLOT_ADVANCE * s)
            break;
    }

    ox_plot_canvas *c = ox_plot_canvas_new(ctx, W, H, OX_PLOT_WHITE);
    if (!c)
        return NULL;
    /* grid, then the series clipped to the plot area, then frame, ticks and text */
    for (int i = 0; i < nxt; i++)
        ox_plot_fill_rect(c, ox_plot_map_x(&l, xt[i]), l.plot.y0, ox_plot_map_x(&l, xt[i]) + 1, l.plot.y1,
                          OX_PLOT_GRID_COLOR);
    for (int i = 0; i < nyt; i++)
        ox_plot_fill_rect(c, l.plot.x0, ox_plot_map_y(&l, yt[i]), l.plot.x1, ox_plot_map_y(&l, yt[i]) + 1,
                          OX_PLOT_GRID_COLOR);
    ox_plot_clip(c, l.plot.x0, l.plot.y0, l.plot.x1, l.plot.y1);
    for (int i = 0; i < ch->n_series; i++)
        draw_series(c, ch, &l, i, s);
    draw_legend(c, ch, &l, s);
    ox_plot_clip_reset(c);
    ox_plot_rect(c, l.plot.x0 - 1, l.plot.y0 - 1, l.plot.x1 + 1, l.plot.y1 + 1, OX_PLOT_TEXT_COLOR);
    int tl = 2 * s + 1;   /* tick mark length */
    l.xticks = (ox_plot_box){ l.plot.x0, l.plot.y1 + tl + 2 * s, l.plot.x1, l.plot.y1 + tl + 2 * s + th };
    for (int i = 0; i < nxt; i++) {
        int x = ox_plot_map_x(&l, xt[i]);
        ox_plot_fill_rect(c, x, l.plot.y1 + 1, x + 1, l.plot.y1 + 1 + tl, OX_PLOT_TEXT_COLOR);
        tick_text(&l, 0, xt[i], xstep, buf, sizeof buf);
        ox_plot_text_center(c, x, l.xticks.y0, buf, s, OX_PLOT_TEXT_COLOR);
    }
    l.yticks = (ox_plot_box){ l.plot.x0 - tl - 2 * s - wy, l.plot.y0 - th, l.plot.x0 - tl - 2 * s, l.plot.y1 + th };
    for (int i = 0; i < nyt; i++) {
        int y = ox_plot_map_y(&l, yt[i]);
        ox_plot_fill_rect(c, l.plot.x0 - 1 - tl, y, l.plot.x0 - 1, y + 1, OX_PLOT_TEXT_COLOR);
        tick_text(&l, 1, yt[i], ystep, buf, sizeof buf);
        ox_plot_text_right(c, l.yticks.x1, y - 7 * s / 2, buf, s, OX_PLOT_TEXT_COLOR);
    }
    int cx = (l.plot.x0 + l.plot.x1) / 2, cy = (l.plot.y0 + l.plot.y1) / 2;
    if (title) {
        int w = ox_plot_text_width(title, s);
        l.title = (ox_plot_box){ cx - w / 2, pad, cx - w / 2 + w, pad + th };
        ox_plot_text(c, l.title.x0, l.title.y0, title, s, OX_PLOT_TEXT_COLOR);
    }
    if (xlabel) {
        int w = ox_plot_text_width(xlabel, s);
        l.xlabel = (ox_plot_box){ cx - w / 2, H - pad - th, cx - w / 2 + w, H - pad };
        ox_plot_text(c, l.xlabel.x0, l.xlabel.y0, xlabel, s, OX_PLOT_TEXT_COLOR);
    }
    if (ylabel) {
        int w = ox_plot_text_width(ylabel, s);
        l.ylabel = (ox_plot_box){ pad, cy - w / 2, pad + th, cy - w / 2 + w };
        ox_plot_text_up(c, pad, l.ylabel.y1 - 1, ylabel, s, OX_PLOT_TEXT_COLOR);
    }
    if (layout)
        *layout = l;
    return c;
}

ox_status ox_plot_line_chart_png(ox_ctx *ctx, const ox_plot_line_chart *ch, const char *path)
{
    return ox_plot_canvas_save_and_free(ctx, ox_plot_line_chart_draw(ctx, ch, NULL), path);
}
