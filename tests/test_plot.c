/* test_plot.c - the plot module (plot/): the font, the canvas primitives, the PNG writer, and the three
 * pictures (line chart, heatmap, categorical grid). Pictures are written to PNG and decoded back with
 * libpng's png_image API, then checked pixel by pixel against the documented layout: data points mapped
 * with the chart's own mapping (ox_plot_map_x/y, ox_plot_cell_box) must carry the series / cell colour,
 * text areas must hold text-coloured pixels, and write errors must leave no file behind. Expected colours
 * and positions come from the documented mapping and formulas, never from a previous run. */
#include "test_util.h"

#include <dirent.h>
#include <png.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot/chart.h"
#include "plot/font.h"

/* ---- helpers ---- */

typedef struct image {
    int w, h;
    uint8_t *px;
} image;

static image read_png(const char *path)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    cr_assert(png_image_begin_read_from_file(&im, path), "cannot read %s: %s", path, im.message);
    im.format = PNG_FORMAT_RGB;
    image r = { (int)im.width, (int)im.height, malloc(PNG_IMAGE_SIZE(im)) };
    cr_assert(png_image_finish_read(&im, NULL, r.px, 0, NULL), "%s", im.message);
    return r;
}

static uint32_t pix(const image *im, int x, int y)
{
    if (x < 0 || y < 0 || x >= im->w || y >= im->h)
        return 0xffffffffu;
    const uint8_t *p = im->px + 3 * ((size_t)y * (size_t)im->w + (size_t)x);
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

/* Number of pixels of colour col in the box. */
static int count_color(const image *im, ox_plot_box b, uint32_t col)
{
    int n = 0;
    for (int y = b.y0; y < b.y1; y++)
        for (int x = b.x0; x < b.x1; x++)
            n += pix(im, x, y) == col;
    return n;
}

/* Whether colour col is at (x, y) or one of its 8 neighbours (rounding of the mapping: +-1 pixel). */
static int near(const image *im, int x, int y, uint32_t col)
{
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
            if (pix(im, x + dx, y + dy) == col)
                return 1;
    return 0;
}

static void tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "/tmp/oryx-plot-%d-%s", (int)getpid(), name);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- font ---- */

Test(plot_font, glyphs_are_drawn_and_distinct)
{
    for (int c = 32; c <= 126; c++) {
        const uint8_t *g = ox_plot_glyph(c);
        int bits = 0;
        for (int r = 0; r < OX_PLOT_GLYPH_H; r++) {
            cr_assert_eq(g[r] >> OX_PLOT_GLYPH_W, 0, "glyph %d uses more than 5 columns", c);
            bits += g[r] != 0;
        }
        if (c == ' ')
            cr_assert_eq(bits, 0, "space must be empty");
        else
            cr_assert_gt(bits, 0, "glyph '%c' is empty", c);
        for (int d = 32; d < c; d++)
            cr_assert(memcmp(g, ox_plot_glyph(d), OX_PLOT_GLYPH_H) != 0, "glyphs '%c' and '%c' are the same", c, d);
    }
    /* descender row only for characters that go below the baseline */
    const char *desc = "gjpqy,_";
    for (int c = 33; c <= 126; c++)
        cr_assert_eq(ox_plot_glyph(c)[7] != 0, strchr(desc, c) != NULL, "descender of '%c'", c);
    cr_assert_eq(ox_plot_glyph(200), ox_plot_glyph('?'));
    cr_assert_eq(ox_plot_text_width("loss", 2), 2 * (6 * 4 - 1));
    cr_assert_eq(ox_plot_text_width("", 3), 0);
    cr_assert_eq(ox_plot_text_height(3), 24);
}

/* ---- canvas ---- */

Test(plot_canvas, text_matches_the_glyph_bits)
{
    ox_ctx *ctx = test_ctx();
    ox_plot_canvas *c = ox_plot_canvas_new(ctx, 100, 60, OX_PLOT_WHITE);
    cr_assert_not_null(c);
    ox_plot_text(c, 10, 5, "Rg", 3, 0x123456);
    ox_plot_text_up(c, 70, 50, "R", 2, 0x654321);
    for (int i = 0; i < 2; i++) {
        const uint8_t *g = ox_plot_glyph("Rg"[i]);
        for (int r = 0; r < 8; r++)
            for (int k = 0; k < 5; k++) {
                int on = g[r] >> (4 - k) & 1;
                /* every pixel of the 3 x 3 square of font pixel (k, r) */
                for (int dy = 0; dy < 3; dy++)
                    for (int dx = 0; dx < 3; dx++)
                        cr_assert_eq(ox_plot_get(c, 10 + (6 * i + k) * 3 + dx, 5 + r * 3 + dy),
                                     on ? 0x123456u : OX_PLOT_WHITE);
            }
    }
    /* turned text: font pixel (k, r) of 'R' at column 70 + 2r, rows 50 - 2k - 1 .. 50 - 2k */
    const uint8_t *g = ox_plot_glyph('R');
    for (int r = 0; r < 8; r++)
        for (int k = 0; k < 5; k++)
            cr_assert_eq(ox_plot_get(c, 70 + 2 * r, 50 - 2 * k), (g[r] >> (4 - k) & 1) ? 0x654321u : OX_PLOT_WHITE);
    ox_plot_canvas_free(c);
    ox_ctx_free(ctx);
}

Test(plot_canvas, lines_clip_and_thickness)
{
    ox_ctx *ctx = test_ctx();
    ox_plot_canvas *c = ox_plot_canvas_new(ctx, 120, 80, OX_PLOT_WHITE);
    /* a line of slope 1/2: for every column x the row (x - 10) / 2 + 10 (rounded either way) is lit */
    ox_plot_line(c, 10, 10, 90, 50, 1, 0xff0000);
    for (int x = 10; x <= 90; x++) {
        int y = 10 + (x - 10) / 2;
        cr_assert(ox_plot_get(c, x, y) == 0xff0000 || ox_plot_get(c, x, y + 1) == 0xff0000, "column %d", x);
    }
    cr_assert_eq(ox_plot_get(c, 50, 10), OX_PLOT_WHITE);
    /* thickness 3: the rows either side of a horizontal line are lit, two away are not */
    ox_plot_line(c, 5, 70, 100, 70, 3, 0x00ff00);
    for (int x = 5; x <= 100; x++) {
        cr_assert_eq(ox_plot_get(c, x, 69), 0x00ff00u);
        cr_assert_eq(ox_plot_get(c, x, 71), 0x00ff00u);
        cr_assert_eq(ox_plot_get(c, x, 72), OX_PLOT_WHITE);
    }
    /* far-away ends are clipped: the visible part of row 60 is drawn end to end */
    ox_plot_line(c, -1000000000, 60, 1000000000, 60, 1, 0x0000ff);
    for (int x = 0; x < 120; x++)
        cr_assert_eq(ox_plot_get(c, x, 60), 0x0000ffu);
    /* dashes: 4 on, 3 off from the start */
    ox_plot_line_dashed(c, 0, 2, 119, 2, 1, 4, 3, 0x00ffff);
    for (int x = 0; x < 119; x++)
        cr_assert_eq(ox_plot_get(c, x, 2), x % 7 < 4 ? 0x00ffffu : OX_PLOT_WHITE, "dash at %d", x);
    /* the clip rectangle */
    ox_plot_clip(c, 20, 20, 40, 40);
    ox_plot_fill_rect(c, 0, 0, 120, 80, 0x010101);
    ox_plot_clip_reset(c);
    cr_assert_eq(ox_plot_get(c, 20, 20), 0x010101u);
    cr_assert_eq(ox_plot_get(c, 39, 39), 0x010101u);
    cr_assert_neq(ox_plot_get(c, 40, 39), 0x010101u);
    cr_assert_neq(ox_plot_get(c, 19, 25), 0x010101u);
    cr_assert_eq(ox_plot_get(c, -1, 0), 0xffffffffu);
    ox_plot_canvas_free(c);
    /* bad sizes */
    cr_assert_null(ox_plot_canvas_new(ctx, 0, 10, 0));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_free(ctx);
}

Test(plot_canvas, png_round_trip_and_write_errors)
{
    ox_ctx *ctx = test_ctx();
    ox_plot_canvas *c = ox_plot_canvas_new(ctx, 37, 23, 0x102030);
    for (int y = 0; y < 23; y++)
        for (int x = 0; x < 37; x++)
            ox_plot_set(c, x, y, (uint32_t)(x * 7) << 16 | (uint32_t)(y * 11) << 8 | (uint32_t)((x + y) * 3));
    char path[256], tmp[300];
    tmp_path(path, sizeof path, "rt.png");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_ok(ctx, ox_plot_canvas_write_png(ctx, c, path));
    cr_assert(!exists(tmp), "the temporary file is renamed away");
    image im = read_png(path);
    cr_assert_eq(im.w, 37);
    cr_assert_eq(im.h, 23);
    cr_assert(memcmp(im.px, c->px, 37 * 23 * 3) == 0, "decoded pixels differ");
    free(im.px);
    unlink(path);

    /* a folder that does not exist: an I/O error naming the path, nothing created */
    const char *bad = "/nonexistent-oryx-dir/x.png";
    cr_assert_eq(ox_plot_canvas_write_png(ctx, c, bad), OX_ERR_IO);
    cr_assert(strstr(ox_ctx_message(ctx), bad), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    cr_assert(!exists(bad) && !exists("/nonexistent-oryx-dir/x.png.tmp"));
    /* a path that is a folder: the temporary file is written, the rename fails, and it is removed again */
    char dir[256];
    tmp_path(dir, sizeof dir, "dir");
    cr_assert_eq(mkdir(dir, 0777), 0);
    char dir_inner[300];
    snprintf(dir_inner, sizeof dir_inner, "%s/keep", dir);
    cr_assert_eq(mkdir(dir_inner, 0777), 0);
    cr_assert_eq(ox_plot_canvas_write_png(ctx, c, dir_inner), OX_ERR_IO);
    ox_ctx_clear_error(ctx);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    cr_assert_eq(n, 1, "only the folder 'keep' remains (no .tmp file)");
    rmdir(dir_inner);
    rmdir(dir);
    ox_plot_canvas_free(c);
    ox_ctx_free(ctx);
}

/* ---- ticks ---- */

Test(plot_chart, nice_ticks_and_labels)
{
    double t[64], st;
    int n = ox_plot_nice_ticks(0, 1000, 6, t, 64, &st);
    cr_assert_eq(st, 200);
    cr_assert_eq(n, 6);
    cr_assert_eq(t[0], 0);
    cr_assert_eq(t[5], 1000);
    n = ox_plot_nice_ticks(1.37, 5.6, 5, t, 64, &st);
    cr_assert_eq(st, 1);
    cr_assert_eq(n, 4);
    cr_assert_eq(t[0], 2);
    n = ox_plot_nice_ticks(-0.3, 0.3, 6, t, 64, &st);
    cr_assert(fabs(st - 0.1) < 1e-15);
    cr_assert_eq(n, 7);
    cr_assert_eq(t[3], 0.0);
    char buf[32];
    ox_plot_format_tick(0.5, 0.1, buf, sizeof buf);
    cr_assert_str_eq(buf, "0.5");
    ox_plot_format_tick(1200, 200, buf, sizeof buf);
    cr_assert_str_eq(buf, "1200");
    ox_plot_format_tick(0.25, 0.05, buf, sizeof buf);
    cr_assert_str_eq(buf, "0.25");
    /* the colour scale: endpoints, clamping, brightness increasing */
    cr_assert_eq(ox_plot_colormap(0), 0x440154u);
    cr_assert_eq(ox_plot_colormap(1), 0xfde725u);
    cr_assert_eq(ox_plot_colormap(7), 0xfde725u);
    cr_assert_eq(ox_plot_colormap(NAN), OX_PLOT_EMPTY_COLOR);
    double prev = -1;
    for (int i = 0; i <= 100; i++) {
        uint32_t c = ox_plot_colormap(i / 100.0);
        double luma = 0.299 * (c >> 16) + 0.587 * (c >> 8 & 255) + 0.114 * (c & 255);
        cr_assert_gt(luma, prev, "brightness at %d", i);
        prev = luma;
    }
}

/* ---- line chart ---- */

Test(plot_chart, series_are_drawn_where_the_mapping_says)
{
    ox_ctx *ctx = test_ctx();
    enum { N = 41 };
    double x[N], y1[N], y2[N];
    for (int i = 0; i < N; i++) {
        x[i] = i * 0.5;            /* 0 .. 20 */
        y1[i] = 1 + 0.2 * x[i];    /* rising: 1 .. 5 */
        y2[i] = i == 20 ? NAN : 4.5;   /* flat with a gap at x = 10 */
    }
    ox_plot_series s[2] = { { .label = "rising", .x = x, .y = y1, .n = N },
                            { .label = "flat", .x = x, .y = y2, .n = N } };
    ox_plot_line_chart ch = { .title = "Title", .xlabel = "x axis", .ylabel = "y axis", .series = s, .n_series = 2 };
    ox_plot_layout l;
    char path[256];
    tmp_path(path, sizeof path, "chart.png");
    ox_plot_canvas *c = ox_plot_line_chart_draw(ctx, &ch, &l);
    cr_assert_not_null(c, "%s", ox_ctx_message(ctx));
    assert_ok(ctx, ox_plot_canvas_write_png(ctx, c, path));
    ox_plot_canvas_free(c);
    image im = read_png(path);
    cr_assert_eq(im.w, 800);
    cr_assert_eq(im.h, 500);
    /* ranges contain the data; ends of the mapping are the documented pixels */
    cr_assert(l.xmin <= 0 && l.xmax >= 20 && l.ymin <= 1 && l.ymax >= 5);
    cr_assert_eq(ox_plot_map_x(&l, l.xmin), l.plot.x0);
    cr_assert_eq(ox_plot_map_x(&l, l.xmax), l.plot.x1 - 1);
    cr_assert_eq(ox_plot_map_y(&l, l.ymin), l.plot.y1 - 1);
    cr_assert_eq(ox_plot_map_y(&l, l.ymax), l.plot.y0);
    uint32_t c1 = ox_plot_palette(0), c2 = ox_plot_palette(1);
    for (int i = 0; i < N; i++) {
        int px = ox_plot_map_x(&l, x[i]), py = ox_plot_map_y(&l, y1[i]);
        if (px >= l.legend.x0 && px < l.legend.x1 && py >= l.legend.y0 && py < l.legend.y1)
            cr_assert_fail("the legend covers data point %d", i);
        cr_assert(near(&im, px, py, c1), "rising series missing at x = %g (pixel %d, %d)", x[i], px, py);
        /* halfway to the next point, on the straight segment */
        if (i + 1 < N) {
            double xm = (x[i] + x[i + 1]) / 2, ym = (y1[i] + y1[i + 1]) / 2;
            cr_assert(near(&im, ox_plot_map_x(&l, xm), ox_plot_map_y(&l, ym), c1));
        }
    }
    /* the flat series: drawn along its row except across the gap (x in (9.5, 10.5) is empty) */
    int row = ox_plot_map_y(&l, 4.5);
    cr_assert(near(&im, ox_plot_map_x(&l, 3), row, c2));
    cr_assert(near(&im, ox_plot_map_x(&l, 17), row, c2));
    for (int px = ox_plot_map_x(&l, 9.5) + 3; px <= ox_plot_map_x(&l, 10.5) - 3; px++)
        for (int dy = -2; dy <= 2; dy++)
            cr_assert_neq(pix(&im, px, row + dy), c2, "the gap at x = 10 is drawn (pixel %d)", px);
    /* nothing of the series outside the plot area */
    ox_plot_box outside[2] = { { 0, 0, l.plot.x0 - 1, im.h }, { l.plot.x1 + 1, 0, im.w, im.h } };
    for (int k = 0; k < 2; k++)
        cr_assert_eq(count_color(&im, outside[k], c1) + count_color(&im, outside[k], c2), 0);
    /* text areas hold text; the legend has a swatch of each series colour */
    ox_plot_box text[5] = { l.title, l.xlabel, l.ylabel, l.xticks, l.yticks };
    for (int k = 0; k < 5; k++) {
        cr_assert_lt(text[k].x0, text[k].x1, "text box %d is empty", k);
        cr_assert_gt(count_color(&im, text[k], OX_PLOT_TEXT_COLOR), 20, "text box %d holds no text", k);
    }
    cr_assert_lt(l.legend.x0, l.legend.x1);
    cr_assert_gt(count_color(&im, l.legend, OX_PLOT_TEXT_COLOR), 20);
    cr_assert_gt(count_color(&im, l.legend, c1), 10);
    cr_assert_gt(count_color(&im, l.legend, c2), 10);
    /* the y label is turned: taller than wide */
    cr_assert_gt(l.ylabel.y1 - l.ylabel.y0, l.ylabel.x1 - l.ylabel.x0);
    free(im.px);
    unlink(path);
    ox_ctx_free(ctx);
}

Test(plot_chart, log_y_fixed_ranges_and_errors)
{
    ox_ctx *ctx = test_ctx();
    double x[5] = { 0, 1, 2, 3, 4 }, y[5] = { 1, 10, 100, 1000, 10000 };
    ox_plot_series s = { .label = "powers", .x = x, .y = y, .n = 5, .markers = 1 };
    ox_plot_line_chart ch = { .title = "log", .series = &s, .n_series = 1, .log_y = 1 };
    ox_plot_layout l;
    ox_plot_canvas *c = ox_plot_line_chart_draw(ctx, &ch, &l);
    cr_assert_not_null(c, "%s", ox_ctx_message(ctx));
    cr_assert_eq(l.ymin, 1);
    cr_assert_eq(l.ymax, 10000);
    /* under log-y, powers of ten are evenly spaced rows, and each point is drawn */
    int r0 = ox_plot_map_y(&l, 1), r4 = ox_plot_map_y(&l, 10000);
    for (int i = 0; i < 5; i++) {
        int expect = (int)lround(r0 + (r4 - r0) * i / 4.0);
        cr_assert(abs(ox_plot_map_y(&l, y[i]) - expect) <= 1);
        cr_assert_eq(ox_plot_get(c, ox_plot_map_x(&l, x[i]), ox_plot_map_y(&l, y[i])), ox_plot_palette(0));
    }
    /* a single series gets no legend */
    cr_assert_geq(l.legend.x0, l.legend.x1);
    ox_plot_canvas_free(c);

    /* fixed ranges clip what lies outside them to the plot area */
    ch.log_y = 0;
    ch.fixed_x = ch.fixed_y = 1;
    ch.xmin = 1, ch.xmax = 3, ch.ymin = 0, ch.ymax = 50;
    c = ox_plot_line_chart_draw(ctx, &ch, &l);
    cr_assert_not_null(c, "%s", ox_ctx_message(ctx));
    int inside = 0;
    for (int yy = 0; yy < c->h; yy++)
        for (int xx = 0; xx < c->w; xx++)
            if (ox_plot_get(c, xx, yy) == ox_plot_palette(0)) {
                cr_assert(xx >= l.plot.x0 && xx < l.plot.x1 && yy >= l.plot.y0 && yy < l.plot.y1,
                          "series pixel (%d, %d) outside the plot area", xx, yy);
                inside++;
            }
    cr_assert_gt(inside, 20);
    ox_plot_canvas_free(c);

    /* errors leave a message and no canvas */
    ch.ymin = 50;
    cr_assert_null(ox_plot_line_chart_draw(ctx, &ch, NULL));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_clear_error(ctx);
    ox_plot_line_chart none = { .n_series = 0 };
    cr_assert_null(ox_plot_line_chart_draw(ctx, &none, NULL));
    ox_ctx_clear_error(ctx);
    double nan_y[2] = { NAN, NAN };
    ox_plot_series ns = { .x = x, .y = nan_y, .n = 2 };
    ox_plot_line_chart allnan = { .series = &ns, .n_series = 1 };
    cr_assert_null(ox_plot_line_chart_draw(ctx, &allnan, NULL));
    cr_assert(strstr(ox_ctx_message(ctx), "no finite point"), "%s", ox_ctx_message(ctx));
    ox_ctx_clear_error(ctx);
    char path[256];
    tmp_path(path, sizeof path, "never.png");
    cr_assert_neq(ox_plot_line_chart_png(ctx, &allnan, path), OX_OK);
    cr_assert(!exists(path));
    ox_ctx_free(ctx);
}

/* ---- heatmap and grid ---- */

Test(plot_heatmap, cell_colours_follow_the_values)
{
    ox_ctx *ctx = test_ctx();
    enum { R = 6, C = 9 };
    float v[R * C];
    for (int i = 0; i < R * C; i++)
        v[i] = (float)((i * 7) % 23) * 0.1f;   /* values 0 .. 2.2 */
    v[2 * C + 5] = 3.0f;                       /* the unique max */
    v[4 * C + 1] = -1.0f;                      /* the unique min */
    v[0 * C + 8] = NAN;
    ox_plot_heatmap hm = { .title = "heat", .xlabel = "col", .ylabel = "row", .values = v, .rows = R, .cols = C };
    char path[256];
    tmp_path(path, sizeof path, "heat.png");
    ox_plot_layout l;
    ox_plot_canvas *c = ox_plot_heatmap_draw(ctx, &hm, &l);
    cr_assert_not_null(c, "%s", ox_ctx_message(ctx));
    assert_ok(ctx, ox_plot_canvas_write_png(ctx, c, path));
    ox_plot_canvas_free(c);
    image im = read_png(path);
    for (int r = 0; r < R; r++)
        for (int k = 0; k < C; k++) {
            ox_plot_box b = ox_plot_cell_box(&l, R, C, r, k);
            uint32_t want = ox_plot_colormap(isnan(v[r * C + k]) ? NAN : (v[r * C + k] + 1.0) / 4.0);
            cr_assert_eq(pix(&im, (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2), want, "cell (%d, %d)", r, k);
            cr_assert_eq(pix(&im, b.x0, b.y0), want);
            cr_assert_eq(pix(&im, b.x1 - 1, b.y1 - 1), want);
        }
    ox_plot_box bmax = ox_plot_cell_box(&l, R, C, 2, 5), bmin = ox_plot_cell_box(&l, R, C, 4, 1);
    cr_assert_eq(pix(&im, bmax.x0 + 1, bmax.y0 + 1), ox_plot_colormap(1));
    cr_assert_eq(pix(&im, bmin.x0 + 1, bmin.y0 + 1), ox_plot_colormap(0));
    /* the colour bar: max colour at its top row, min colour at its bottom row, labels beside it */
    cr_assert_eq(pix(&im, l.colorbar.x0 + 2, l.colorbar.y0), ox_plot_colormap(1));
    cr_assert_eq(pix(&im, l.colorbar.x0 + 2, l.colorbar.y1 - 1), ox_plot_colormap(0));
    ox_plot_box labels = { l.colorbar.x1, l.colorbar.y0, im.w, l.colorbar.y1 };
    cr_assert_gt(count_color(&im, labels, OX_PLOT_TEXT_COLOR), 20);
    ox_plot_box text[5] = { l.title, l.xlabel, l.ylabel, l.xticks, l.yticks };
    for (int k = 0; k < 5; k++)
        cr_assert_gt(count_color(&im, text[k], OX_PLOT_TEXT_COLOR), 10, "text box %d", k);
    free(im.px);
    unlink(path);
    hm.rows = 0;
    cr_assert_null(ox_plot_heatmap_draw(ctx, &hm, NULL));
    cr_assert_eq(ox_ctx_status(ctx), OX_ERR_ARG);
    ox_ctx_free(ctx);
}

Test(plot_heatmap, grid_cells_match_the_map)
{
    ox_ctx *ctx = test_ctx();
    enum { R = 3, C = 100 };
    uint8_t cells[R * C];
    for (int r = 0; r < R; r++)
        for (int k = 0; k < C; k++)
            cells[r * C + k] = (uint8_t)(r == 2 ? 1 : (k / (r + 3)) % 2);
    const char *cats[2] = { "LIN", "ATTN" }, *rows[3] = { "layer 0", "layer 1", "layer 2" };
    const uint32_t colors[2] = { 0x9ecae1, 0xd62728 };
    ox_plot_grid g = { .title = "mode map", .xlabel = "position", .cells = cells, .rows = R, .cols = C,
                       .n_categories = 2, .category_labels = cats, .category_colors = colors, .row_labels = rows,
                       .marker_col = 40, .marker_label = "prompt | generated" };
    char path[256];
    tmp_path(path, sizeof path, "grid.png");
    ox_plot_layout l;
    ox_plot_canvas *c = ox_plot_grid_draw(ctx, &g, &l);
    cr_assert_not_null(c, "%s", ox_ctx_message(ctx));
    assert_ok(ctx, ox_plot_canvas_write_png(ctx, c, path));
    ox_plot_canvas_free(c);
    image im = read_png(path);
    int mx = ox_plot_cell_box(&l, R, C, 0, 40).x0;
    for (int r = 0; r < R; r++)
        for (int k = 0; k < C; k++) {
            ox_plot_box b = ox_plot_cell_box(&l, R, C, r, k);
            cr_assert_gt(b.x1, b.x0);
            int x = (b.x0 + b.x1) / 2;
            if (x == mx)
                continue;   /* the dashed marker line */
            cr_assert_eq(pix(&im, x, (b.y0 + b.y1) / 2), colors[cells[r * C + k]], "cell (%d, %d)", r, k);
        }
    /* the marker: dark pixels along column mx inside the plot area, its label above */
    ox_plot_box col = { mx, l.plot.y0, mx + 1, l.plot.y1 };
    cr_assert_gt(count_color(&im, col, OX_PLOT_TEXT_COLOR), (l.plot.y1 - l.plot.y0) / 3);
    ox_plot_box above = { l.plot.x0, l.title.y1, l.plot.x1, l.plot.y0 - 1 };
    cr_assert_gt(count_color(&im, above, OX_PLOT_TEXT_COLOR), 20);
    /* legend: a swatch of each category and text */
    cr_assert_gt(count_color(&im, l.legend, colors[0]), 20);
    cr_assert_gt(count_color(&im, l.legend, colors[1]), 20);
    cr_assert_gt(count_color(&im, l.legend, OX_PLOT_TEXT_COLOR), 20);
    cr_assert_gt(count_color(&im, l.yticks, OX_PLOT_TEXT_COLOR), 30);
    free(im.px);
    unlink(path);
    cells[5] = 2;
    cr_assert_null(ox_plot_grid_draw(ctx, &g, NULL));
    cr_assert(strstr(ox_ctx_message(ctx), "category 2"), "%s", ox_ctx_message(ctx));
    ox_ctx_free(ctx);
}
