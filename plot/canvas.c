/* canvas.c - the RGB8 canvas, its drawing primitives and the PNG writer (see canvas.h). */
#include "plot/canvas.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plot/font.h"
#include "tensor/io.h"

ox_plot_canvas *ox_plot_canvas_new(ox_ctx *ctx, int w, int h, uint32_t bg)
{
    if (!ctx || ctx->status)
        return NULL;
    if (w < 1 || h < 1 || w > OX_PLOT_MAX_SIDE || h > OX_PLOT_MAX_SIDE) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "plot canvas: size %d x %d is outside 1 .. %d", w, h, OX_PLOT_MAX_SIDE);
        return NULL;
    }
    ox_plot_canvas *c = malloc(sizeof *c);
    uint8_t *px = malloc((size_t)w * (size_t)h * 3);
    if (!c || !px) {
        free(c);
        free(px);
        ox_ctx_fail(ctx, OX_ERR_NOMEM, "plot canvas: out of memory for %d x %d pixels", w, h);
        return NULL;
    }
    *c = (ox_plot_canvas){ .w = w, .h = h, .px = px, .cx1 = w, .cy1 = h };
    ox_plot_fill_rect(c, 0, 0, w, h, bg);
    return c;
}

void ox_plot_canvas_free(ox_plot_canvas *c)
{
    if (!c)
        return;
    free(c->px);
    free(c);
}

uint32_t ox_plot_get(const ox_plot_canvas *c, int x, int y)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return 0xffffffffu;
    const uint8_t *p = c->px + 3 * ((size_t)y * (size_t)c->w + (size_t)x);
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

void ox_plot_set(ox_plot_canvas *c, int x, int y, uint32_t color)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    uint8_t *p = c->px + 3 * ((size_t)y * (size_t)c->w + (size_t)x);
    p[0] = (uint8_t)(color >> 16);
    p[1] = (uint8_t)(color >> 8);
    p[2] = (uint8_t)color;
}

void ox_plot_clip(ox_plot_canvas *c, int x0, int y0, int x1, int y1)
{
    c->cx0 = x0 < 0 ? 0 : x0;
    c->cy0 = y0 < 0 ? 0 : y0;
    c->cx1 = x1 > c->w ? c->w : x1;
    c->cy1 = y1 > c->h ? c->h : y1;
}

void ox_plot_clip_reset(ox_plot_canvas *c) { ox_plot_clip(c, 0, 0, c->w, c->h); }

void ox_plot_fill_rect(ox_plot_canvas *c, int x0, int y0, int x1, int y1, uint32_t color)
{
    x0 = x0 < c->cx0 ? c->cx0 : x0;
    y0 = y0 < c->cy0 ? c->cy0 : y0;
    x1 = x1 > c->cx1 ? c->cx1 : x1;
    y1 = y1 > c->cy1 ? c->cy1 : y1;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            ox_plot_set(c, x, y, color);
}

void ox_plot_rect(ox_plot_canvas *c, int x0, int y0, int x1, int y1, uint32_t color)
{
    ox_plot_fill_rect(c, x0, y0, x1, y0 + 1, color);
    ox_plot_fill_rect(c, x0, y1 - 1, x1, y1, color);
    ox_plot_fill_rect(c, x0, y0, x0 + 1, y1, color);
    ox_plot_fill_rect(c, x1 - 1, y0, x1, y1, color);
}

/* Bresenham from (x0, y0) to (x1, y1); pixel i of the walk is drawn when (i mod (on + off)) < on. Ends far
 * outside the canvas are first pulled in along the line, so a huge coordinate costs no long walk. */
static void walk(ox_plot_canvas *c, int x0, int y0, int x1, int y1, int t, int on, int off, uint32_t color)
{
    if (t < 1)
        t = 1;
    long dx = labs((long)x1 - x0), dy = -labs((long)y1 - y0);
    int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    long err = dx + dy;
    long limit = 4L * (c->w + c->h) + dx - dy + 8;   /* at most dx - dy + 1 steps */
    int lo = -(t - 1) / 2, hi = t / 2;
    for (long i = 0; i < limit; i++) {
        if (off <= 0 || i % (on + off) < on)
            ox_plot_fill_rect(c, x0 + lo, y0 + lo, x0 + hi + 1, y0 + hi + 1, color);
        if (x0 == x1 && y0 == y1)
            break;
        long e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

/* Clips the segment to a box a little larger than the canvas (Liang-Barsky), so coordinates such as
 * +-1e9 from a wild data point draw the visible part quickly. Returns 0 when nothing is visible. */
static int clip(const ox_plot_canvas *c, int t, double *x0, double *y0, double *x1, double *y1)
{
    double m = t + 2, xmin = -m, ymin = -m, xmax = c->w + m, ymax = c->h + m;
    double dx = *x1 - *x0, dy = *y1 - *y0, u0 = 0, u1 = 1;
    double p[4] = { -dx, dx, -dy, dy }, q[4] = { *x0 - xmin, xmax - *x0, *y0 - ymin, ymax - *y0 };
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0)
                return 0;
            continue;
        }
        double r = q[i] / p[i];
        if (p[i] < 0 && r > u0)
            u0 = r;
        if (p[i] > 0 && r < u1)
            u1 = r;
        if (u0 > u1)
            return 0;
    }
    double ax = *x0 + u0 * dx, ay = *y0 + u0 * dy, bx = *x0 + u1 * dx, by = *y0 + u1 * dy;
    *x0 = ax, *y0 = ay, *x1 = bx, *y1 = by;
    return 1;
}

void ox_plot_line_dashed(ox_plot_canvas *c, int x0, int y0, int x1, int y1, int thickness, int on, int off,
                         uint32_t color)
{
    double a = x0, b = y0, d = x1, e = y1;
    if (on < 1)
        on = 1;
    if (off < 0)
        off = 0;
    if (clip(c, thickness, &a, &b, &d, &e))
        walk(c, (int)lround(a), (int)lround(b), (int)lround(d), (int)lround(e), thickness, on, off, color);
}

void ox_plot_line(ox_plot_canvas *c, int x0, int y0, int x1, int y1, int thickness, uint32_t color)
{
    ox_plot_line_dashed(c, x0, y0, x1, y1, thickness, 1, 0, color);
}

/* Draws s with font pixel (col, row) of character i at the square whose corner is given by map(). */
static void text_any(ox_plot_canvas *c, int x, int y, const char *s, int scale, uint32_t color, int up)
{
    if (!s)
        return;
    if (scale < 1)
        scale = 1;
    for (int i = 0; s[i]; i++) {
        const uint8_t *g = ox_plot_glyph((unsigned char)s[i]);
        for (int r = 0; r < OX_PLOT_GLYPH_H; r++)
            for (int col = 0; col < OX_PLOT_GLYPH_W; col++) {
                if (!(g[r] >> (OX_PLOT_GLYPH_W - 1 - col) & 1))
                    continue;
                int u = (i * OX_PLOT_ADVANCE + col) * scale, v = r * scale;   /* offsets along / across */
                if (up)
                    ox_plot_fill_rect(c, x + v, y - u - scale + 1, x + v + scale, y - u + 1, color);
                else
                    ox_plot_fill_rect(c, x + u, y + v, x + u + scale, y + v + scale, color);
            }
    }
}

void ox_plot_text(ox_plot_canvas *c, int x, int y, const char *s, int scale, uint32_t color)
{
    text_any(c, x, y, s, scale, color, 0);
}

void ox_plot_text_up(ox_plot_canvas *c, int x, int y, const char *s, int scale, uint32_t color)
{
    text_any(c, x, y, s, scale, color, 1);
}

void ox_plot_text_center(ox_plot_canvas *c, int cx, int y, const char *s, int scale, uint32_t color)
{
    text_any(c, cx - ox_plot_text_width(s, scale) / 2, y, s, scale, color, 0);
}

void ox_plot_text_right(ox_plot_canvas *c, int x_right, int y, const char *s, int scale, uint32_t color)
{
    text_any(c, x_right - ox_plot_text_width(s, scale), y, s, scale, color, 0);
}

/* ---- PNG ---------------------------------------------------------------------------------------------- */

typedef struct png_err {
    jmp_buf jb;
    char msg[200];
} png_err;

static void on_png_error(png_structp png, png_const_charp msg)
{
    png_err *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg ? msg : "libpng error");
    longjmp(e->jb, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;   /* the library never prints; warnings do not stop the write */
}

/* The libpng part: writes c to the open file f. 0 on success, else -1 with e->msg set. Kept apart from
 * the caller so that no local of the caller is live across setjmp. */
static int png_write(FILE *f, const ox_plot_canvas *c, png_err *e)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, e, on_png_error, on_png_warning);
    if (!png) {
        snprintf(e->msg, sizeof e->msg, "libpng could not start");
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(e->msg, sizeof e->msg, "libpng could not start");
        return -1;
    }
    if (setjmp(e->jb)) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++)
        png_write_row(png, c->px + (size_t)y * (size_t)c->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

ox_status ox_plot_canvas_write_png(ox_ctx *ctx, const ox_plot_canvas *c, const char *path)
{
    if (!ctx || ctx->status)
        return ctx ? ctx->status : OX_ERR_ARG;
    if (!c || !path || !*path)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "plot png: canvas or path missing");
    ox_io_atomic w;
    if (ox_io_atomic_open(ctx, &w, path))
        return ctx->status;
    png_err e;
    e.msg[0] = 0;
    if (png_write(w.fp, c, &e)) {
        ox_io_atomic_abort(&w);
        return ox_ctx_fail(ctx, OX_ERR_IO, "plot png: cannot write '%s': %s", path, e.msg);
    }
    return ox_io_atomic_commit(ctx, &w);
}

ox_status ox_plot_canvas_save_and_free(ox_ctx *ctx, ox_plot_canvas *c, const char *path)
{
    if (!c)
        return ctx && ctx->status ? ctx->status : OX_ERR_ARG;
    ox_status st = ox_plot_canvas_write_png(ctx, c, path);
    ox_plot_canvas_free(c);
    return st;
}
