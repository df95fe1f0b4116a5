/* heatmap.c - pictures made of cells (see chart.h): the heatmap with its colour scale and colour bar, and
 * the categorical grid with its legend (the Oryx mode map). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plot/chart.h"
#include "plot/font.h"

uint32_t ox_plot_colormap(double t)
{
    /* anchors from dark violet to yellow, each brighter than the one before */
    static const uint8_t a[5][3] = { { 68, 1, 84 }, { 59, 82, 139 }, { 33, 145, 140 }, { 94, 201, 98 },
                                     { 253, 231, 37 } };
    if (isnan(t))
        return OX_PLOT_EMPTY_COLOR;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double u = t * 4;
    int i = u >= 4 ? 3 : (int)u;
    double f = u - i;
    uint32_t rgb = 0;
    for (int ch = 0; ch < 3; ch++)
        rgb = rgb << 8 | (uint32_t)lround(a[i][ch] + f * (a[i + 1][ch] - a[i][ch]));
    return rgb;
}

ox_plot_box ox_plot_cell_box(const ox_plot_layout *l, int64_t rows, int64_t cols, int64_t r, int64_t c)
{
    int64_t W = l->plot.x1 - l->plot.x0, H = l->plot.y1 - l->plot.y0;
    return (ox_plot_box){ (int)(l->plot.x0 + c * W / cols), (int)(l->plot.y0 + r * H / rows),
                          (int)(l->plot.x0 + (c + 1) * W / cols), (int)(l->plot.y0 + (r + 1) * H / rows) };
}

/* Index ticks along an axis of n cells: nice integer steps over 0 .. n-1, as many as fit `room` pixels
 * with labels `minsep` pixels apart. */
static int index_ticks(int64_t n, int room, int minsep, double *t, int max)
{
    int k = 0;
    for (int target = 8; target >= 1; target--) {
        double st;
        k = ox_plot_nice_ticks(0, (double)(n > 1 ? n - 1 : 1), target, t, max, &st);
        if (st < 1)
            k = ox_plot_nice_ticks(0, (double)(n > 1 ? n - 1 : 1), (int)(n > 1 ? n - 1 : 1), t, max, &st);
        int j = 0;
        for (int i = 0; i < k; i++)
            if (t[i] <= (double)(n - 1))
                t[j++] = t[i];
        k = j;
        if (k < 2 || (double)room / (double)n * (t[1] - t[0]) >= minsep)
            break;
    }
    return k;
}

/* Title, axis labels, frame and index ticks shared by heatmaps and grids. */
static void cell_axes(ox_plot_canvas *c, ox_plot_layout *l, int64_t rows, int64_t cols, const char *title,
                      const char *xlabel, const char *ylabel, const char *const *row_labels, int s)
{
    int th = ox_plot_text_height(s), pad = 6 * s, tl = 2 * s + 1;
    char buf[64];
    double t[64];
    ox_plot_rect(c, l->plot.x0 - 1, l->plot.y0 - 1, l->plot.x1 + 1, l->plot.y1 + 1, OX_PLOT_TEXT_COLOR);
    int nx = index_ticks(cols, l->plot.x1 - l->plot.x0, 5 * OX_PLOT_ADVANCE * s, t, 64);
    l->xticks = (ox_plot_box){ l->plot.x0, l->plot.y1 + tl + 2 * s, l->plot.x1, l->plot.y1 + tl + 2 * s + th };
    for (int i = 0; i < nx; i++) {
        ox_plot_box b = ox_plot_cell_box(l, rows, cols, 0, (int64_t)t[i]);
        int x = (b.x0 + b.x1) / 2;
        ox_plot_fill_rect(c, x, l->plot.y1 + 1, x + 1, l->plot.y1 + 1 + tl, OX_PLOT_TEXT_COLOR);
        snprintf(buf, sizeof buf, "%lld", (long long)t[i]);
        ox_plot_text_center(c, x, l->xticks.y0, buf, s, OX_PLOT_TEXT_COLOR);
    }
    int ny = row_labels ? (int)(rows < 64 ? rows : 64) : index_ticks(rows, l->plot.y1 - l->plot.y0, 2 * th, t, 64);
    l->yticks = (ox_plot_box){ l->plot.x0 - tl - 4 * s - 1, l->plot.y0, l->plot.x0 - tl - 4 * s, l->plot.y1 };
    for (int i = 0; i < ny; i++) {
        int64_t r = row_labels ? i : (int64_t)t[i];
        ox_plot_box b = ox_plot_cell_box(l, rows, cols, r, 0);
        int y = (b.y0 + b.y1) / 2;
        ox_plot_fill_rect(c, l->plot.x0 - 1 - tl, y, l->plot.x0 - 1, y + 1, OX_PLOT_TEXT_COLOR);
        if (row_labels)
            snprintf(buf, sizeof buf, "%s", row_labels[r] ? row_labels[r] : "");
        else
            snprintf(buf, sizeof buf, "%lld", (long long)r);
        int w = ox_plot_text_width(buf, s);
        ox_plot_text_right(c, l->yticks.x1, y - 7 * s / 2, buf, s, OX_PLOT_TEXT_COLOR);
        if (l->yticks.x1 - w < l->yticks.x0)
            l->yticks.x0 = l->yticks.x1 - w;
    }
    int cx = (l->plot.x0 + l->plot.x1) / 2, cy = (l->plot.y0 + l->plot.y1) / 2;
    if (title && *title) {
        int w = ox_plot_text_width(title, s);
        l->title = (ox_plot_box){ cx - w / 2, pad, cx - w / 2 + w, pad + th };
        ox_plot_text(c, l->title.x0, pad, title, s, OX_PLOT_TEXT_COLOR);
    }
    if (xlabel && *xlabel) {
        int w = ox_plot_text_width(xlabel, s);
        l->xlabel = (ox_plot_box){ cx - w / 2, l->xticks.y1 + 4 * s, cx - w / 2 + w, l->xticks.y1 + 4 * s + th };
        ox_plot_text(c, l->xlabel.x0, l->xlabel.y0, xlabel, s, OX_PLOT_TEXT_COLOR);
    }
    if (ylabel && *ylabel) {
        int w = ox_plot_text_width(ylabel, s);
        int x = l->yticks.x0 - 5 * s - th;
        l->ylabel = (ox_plot_box){ x, cy - w / 2, x + th, cy - w / 2 + w };
        ox_plot_text_up(c, x, l->ylabel.y1 - 1, ylabel, s, OX_PLOT_TEXT_COLOR);
    }
}

/* Width in pixels of the widest row label (or row index). */
static int row_label_width(const char *const *row_labels, int64_t rows, int s)
{
    char buf[64];
    int w = 0;
    for (int64_t r = 0; r < rows && r < 64; r++) {
        if (row_labels)
            snprintf(buf, sizeof buf, "%s", row_labels[r] ? row_labels[r] : "");
        else
            snprintf(buf, sizeof buf, "%lld", (long long)(rows - 1));
        int k = ox_plot_text_width(buf, s);
        w = k > w ? k : w;
    }
    return w;
}

/* ---- heatmap ------------------------------------------------------------------------------------------- */

ox_plot_canvas *ox_plot_heatmap_draw(ox_ctx *ctx, const ox_plot_heatmap *hm, ox_plot_layout *layout)
{
    if (!ctx || ctx->status)
        return NULL;
    if (!hm || !hm->values || hm->rows < 1 || hm->cols < 1) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "heatmap: no values (rows %lld, cols %lld)", hm ? (long long)hm->rows : 0LL,
                    hm ? (long long)hm->cols : 0LL);
        return NULL;
    }
    if (hm->fixed_range && !(hm->vmin <= hm->vmax)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "heatmap: colour range [%g, %g] is empty", hm->vmin, hm->vmax);
        return NULL;
    }
    int W = hm->width ? hm->width : 800, H = hm->height ? hm->height : 700, s = hm->text_scale ? hm->text_scale : 2;
    int64_t R = hm->rows, C = hm->cols;
    double lo = hm->vmin, hi = hm->vmax;
    if (!hm->fixed_range) {
        int any = 0;
        for (int64_t i = 0; i < R * C; i++) {
            double v = hm->values[i];
            if (!isfinite(v))
                continue;
            lo = !any || v < lo ? v : lo;
            hi = !any || v > hi ? v : hi;
            any = 1;
        }
        if (!any)
            lo = 0, hi = 1;
    }
    char lo_s[32], hi_s[32];
    snprintf(lo_s, sizeof lo_s, "%.3g", lo);
    snprintf(hi_s, sizeof hi_s, "%.3g", hi);
    int th = ox_plot_text_height(s), pad = 6 * s, tl = 2 * s + 1;
    int lw = ox_plot_text_width(strlen(lo_s) > strlen(hi_s) ? lo_s : hi_s, s);
    ox_plot_layout l;
    memset(&l, 0, sizeof l);
    int left = pad + (hm->ylabel && *hm->ylabel ? th + 5 * s : 0) + row_label_width(NULL, R, s) + tl + 5 * s;
    int right = W - pad - lw - 4 * s - 8 * s - 6 * s;   /* colour bar 8s wide, 6s from the plot */
    int top = pad + (hm->title && *hm->title ? th + 5 * s : 0) + th / 2;
    int bottom = H - pad - (hm->xlabel && *hm->xlabel ? th + 4 * s : 0) - th - tl - 2 * s;
    double cell = fmin((double)(right - left) / (double)C, (double)(bottom - top) / (double)R);
    if (!(cell >= 1)) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "heatmap: %lld x %lld cells do not fit a %d x %d picture", (long long)R,
                    (long long)C, W, H);
        return NULL;
    }
    int pw = (int)(cell * (double)C), ph = (int)(cell * (double)R);
    l.plot = (ox_plot_box){ left + (right - left - pw) / 2, top, left + (right - left - pw) / 2 + pw, top + ph };
    l.xmin = 0, l.xmax = (double)C, l.ymin = 0, l.ymax = (double)R;
    ox_plot_canvas *c = ox_plot_canvas_new(ctx, W, H, OX_PLOT_WHITE);
    if (!c)
        return NULL;
    double span = hi - lo;
    for (int64_t r = 0; r < R; r++)
        for (int64_t k = 0; k < C; k++) {
            double v = hm->values[r * C + k];
            double t = isnan(v) ? NAN : span > 0 ? (v - lo) / span : 0.5;
            ox_plot_box b = ox_plot_cell_box(&l, R, C, r, k);
            ox_plot_fill_rect(c, b.x0, b.y0, b.x1, b.y1, ox_plot_colormap(t));
        }
    cell_axes(c, &l, R, C, hm->title, hm->xlabel, hm->ylabel, NULL, s);
    /* colour bar: max at the top, min at the bottom, one colour per pixel row */
    int bx = l.plot.x1 + 6 * s, by0 = l.plot.y0, by1 = l.plot.y1;
    l.colorbar = (ox_plot_box){ bx, by0, bx + 8 * s, by1 };
    for (int y = by0; y < by1; y++)
        ox_plot_fill_rect(c, bx, y, bx + 8 * s, y + 1,
                          ox_plot_colormap(by1 - 1 > by0 ? (double)(by1 - 1 - y) / (by1 - 1 - by0) : 1));
    ox_plot_rect(c, bx - 1, by0 - 1, bx + 8 * s + 1, by1 + 1, OX_PLOT_TEXT_COLOR);
    ox_plot_text(c, bx + 8 * s + 4 * s, by0, hi_s, s, OX_PLOT_TEXT_COLOR);
    ox_plot_text(c, bx + 8 * s + 4 * s, by1 - 7 * s, lo_s, s, OX_PLOT_TEXT_COLOR);
    if (layout)
        *layout = l;
    return c;
}

ox_status ox_plot_heatmap_png(ox_ctx *ctx, const ox_plot_heatmap *hm, const char *path)
{
    return ox_plot_canvas_save_and_free(ctx, ox_plot_heatmap_draw(ctx, hm, NULL), path);
}

/* ---- categorical grid ---------------------------------------------------------------------------------- */

ox_plot_canvas *ox_plot_grid_draw(ox_ctx *ctx, const ox_plot_grid *g, ox_plot_layout *layout)
{
    if (!ctx || ctx->status)
        return NULL;
    if (!g || !g->cells || g->rows < 1 || g->cols < 1 || g->n_categories < 1 ||
        g->n_categories > OX_PLOT_MAX_CATEGORIES) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "grid plot: no cells or bad sizes (rows %lld, cols %lld, categories %d of at "
                    "most %d)", g ? (long long)g->rows : 0LL, g ? (long long)g->cols : 0LL,
                    g ? g->n_categories : 0, OX_PLOT_MAX_CATEGORIES);
        return NULL;
    }
    int64_t R = g->rows, C = g->cols;
    for (int64_t i = 0; i < R * C; i++)
        if (g->cells[i] >= g->n_categories) {
            ox_ctx_fail(ctx, OX_ERR_ARG, "grid plot: cell (%lld, %lld) has category %d; there are %d",
                        (long long)(i / C), (long long)(i % C), g->cells[i], g->n_categories);
            return NULL;
        }
    int s = g->text_scale ? g->text_scale : 2, th = ox_plot_text_height(s), pad = 6 * s, tl = 2 * s + 1;
    int W = g->width ? g->width : 800;
    int ch = (int)(240 / R);
    ch = ch < 6 * s ? 6 * s : ch > 20 * s ? 20 * s : ch;
    int top = pad + (g->title && *g->title ? th + 5 * s : 0) + (g->marker_label ? th + 3 * s : th / 2);
    int below = tl + 2 * s + th + (g->xlabel && *g->xlabel ? 4 * s + th : 0) + pad;
    int lh = th + 3 * s;
    int legend_h = 4 * s + g->n_categories * lh - 3 * s + 4 * s;
    int H = g->height ? g->height : top + (int)(R * ch) + below;
    if (!g->height && H < top + legend_h + below)
        H = top + legend_h + below;
    int wl = 0;
    for (int k = 0; k < g->n_categories; k++) {
        int w = ox_plot_text_width(g->category_labels ? g->category_labels[k] : "", s);
        wl = w > wl ? w : wl;
    }
    int legend_w = 4 * s + 10 * s + 3 * s + wl + 4 * s;
    ox_plot_layout l;
    memset(&l, 0, sizeof l);
    l.plot.x0 = pad + (g->ylabel && *g->ylabel ? th + 5 * s : 0) + row_label_width(g->row_labels, R, s) + tl + 5 * s;
    l.plot.x1 = W - pad - legend_w - 6 * s;
    l.plot.y0 = top;
    l.plot.y1 = H - below;
    if (l.plot.x1 - l.plot.x0 < C || l.plot.y1 - l.plot.y0 < R || W > OX_PLOT_MAX_SIDE || H > OX_PLOT_MAX_SIDE) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "grid plot: %lld x %lld cells do not fit a %d x %d picture", (long long)R,
                    (long long)C, W, H);
        return NULL;
    }
    l.xmin = 0, l.xmax = (double)C, l.ymin = 0, l.ymax = (double)R;
    ox_plot_canvas *c = ox_plot_canvas_new(ctx, W, H, OX_PLOT_WHITE);
    if (!c)
        return NULL;
    int gap = (l.plot.y1 - l.plot.y0) / R >= 6;
    for (int64_t r = 0; r < R; r++)
        for (int64_t k = 0; k < C; k++) {
            int cat = g->cells[r * C + k];
            uint32_t col = g->category_colors ? g->category_colors[cat] : ox_plot_palette(cat);
            ox_plot_box b = ox_plot_cell_box(&l, R, C, r, k);
            ox_plot_fill_rect(c, b.x0, b.y0, b.x1, b.y1 - (gap && r + 1 < R), col);
        }
    if (g->marker_col > 0 && g->marker_col < C) {
        int x = ox_plot_cell_box(&l, R, C, 0, g->marker_col).x0;
        ox_plot_line_dashed(c, x, l.plot.y0 - 2 * s, x, l.plot.y1 + tl, s, 3 * s, 2 * s, OX_PLOT_TEXT_COLOR);
        if (g->marker_label) {   /* centred on the line, kept inside the picture */
            int w = ox_plot_text_width(g->marker_label, s), tx = x - w / 2;
            tx = tx + w > W - pad ? W - pad - w : tx;
            tx = tx < pad ? pad : tx;
            ox_plot_text(c, tx, l.plot.y0 - 3 * s - th, g->marker_label, s, OX_PLOT_TEXT_COLOR);
        }
    }
    cell_axes(c, &l, R, C, g->title, g->xlabel, g->ylabel, g->row_labels, s);
    /* legend right of the plot, top-aligned */
    ox_plot_box b = { W - pad - legend_w, l.plot.y0, W - pad, l.plot.y0 + legend_h };
    ox_plot_rect(c, b.x0, b.y0, b.x1, b.y1, 0x999999);
    for (int k = 0; k < g->n_categories; k++) {
        int y = b.y0 + 4 * s + k * lh;
        uint32_t col = g->category_colors ? g->category_colors[k] : ox_plot_palette(k);
        ox_plot_fill_rect(c, b.x0 + 4 * s, y, b.x0 + 14 * s, y + 7 * s, col);
        ox_plot_text(c, b.x0 + 17 * s, y, g->category_labels ? g->category_labels[k] : "", s, OX_PLOT_TEXT_COLOR);
    }
    l.legend = b;
    if (layout)
        *layout = l;
    return c;
}

ox_status ox_plot_grid_png(ox_ctx *ctx, const ox_plot_grid *g, const char *path)
{
    return ox_plot_canvas_save_and_free(ctx, ox_plot_grid_draw(ctx, g, NULL), path);
}
