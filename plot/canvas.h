/* canvas.h - an RGB8 raster the plots are drawn on, the drawing primitives (rectangles, thick and dashed
 * lines, text in the font of font.h, horizontal or turned 90 degrees), and the PNG writer (libpng).
 *
 * Coordinates: pixel (x, y) with x = column 0 .. w-1 from the left and y = row 0 .. h-1 from the top;
 * pixel (x, y) is px[3 * (y * w + x) + 0..2] = R, G, B. Every primitive clips to the canvas, so any
 * coordinates are safe. Colours are 0xRRGGBB.
 *
 * Ownership: ox_plot_canvas_new allocates on the heap (not the context's arena, so a canvas outlives
 * ox_ctx_reset); the caller frees it with ox_plot_canvas_free.
 *
 *   ox_plot_canvas *c = ox_plot_canvas_new(ctx, 800, 500, OX_PLOT_WHITE);
 *   ox_plot_line(c, 10, 10, 790, 490, 2, 0x1f77b4);
 *   ox_plot_text(c, 20, 20, "hello", 2, OX_PLOT_TEXT_COLOR);
 *   if (ox_plot_canvas_write_png(ctx, c, "out.png")) puts(ox_ctx_message(ctx));
 *   ox_plot_canvas_free(c);
 */
#ifndef OX_PLOT_CANVAS_H
#define OX_PLOT_CANVAS_H

#include <stdint.h>

#include "tensor/ctx.h"

#define OX_PLOT_WHITE 0xffffffu
#define OX_PLOT_TEXT_COLOR 0x222222u   /* text, axes and tick marks */
#define OX_PLOT_GRID_COLOR 0xe6e6e6u   /* grid lines inside the plot area */
#define OX_PLOT_EMPTY_COLOR 0xd0d0d0u  /* "no value" cells of heatmaps */

#define OX_PLOT_MAX_SIDE 16384          /* largest width or height of a canvas */

typedef struct ox_plot_canvas {
    int w, h;
    uint8_t *px;            /* w * h * 3 bytes, rows top to bottom, owned */
    int cx0, cy0, cx1, cy1; /* clip rectangle of the drawing primitives (the whole canvas unless set) */
} ox_plot_canvas;

/* A w x h canvas (1 .. OX_PLOT_MAX_SIDE each) filled with colour bg. NULL with OX_ERR_ARG (bad size) or
 * OX_ERR_NOMEM in ctx; NULL at once if ctx already holds an error. */
ox_plot_canvas *ox_plot_canvas_new(ox_ctx *ctx, int w, int h, uint32_t bg);
void ox_plot_canvas_free(ox_plot_canvas *c);    /* NULL-safe */

/* Restricts every drawing primitive below to x0 <= x < x1, y0 <= y < y1 (intersected with the canvas);
 * ox_plot_clip_reset restores the whole canvas. ox_plot_set ignores the clip rectangle. */
void ox_plot_clip(ox_plot_canvas *c, int x0, int y0, int x1, int y1);
void ox_plot_clip_reset(ox_plot_canvas *c);

/* The colour of pixel (x, y), or 0xffffffff outside the canvas. */
uint32_t ox_plot_get(const ox_plot_canvas *c, int x, int y);
void ox_plot_set(ox_plot_canvas *c, int x, int y, uint32_t color);

/* Fills the pixels x0 <= x < x1, y0 <= y < y1. */
void ox_plot_fill_rect(ox_plot_canvas *c, int x0, int y0, int x1, int y1, uint32_t color);
/* The 1-pixel outline of the same rectangle (its pixels x0, x1-1, y0, y1-1). */
void ox_plot_rect(ox_plot_canvas *c, int x0, int y0, int x1, int y1, uint32_t color);

/* A straight line from (x0, y0) to (x1, y1), both ends included: Bresenham's walk, each visited pixel
 * stamped as a square of side `thickness` (>= 1) centred on it (offsets -(t-1)/2 .. t/2). */
void ox_plot_line(ox_plot_canvas *c, int x0, int y0, int x1, int y1, int thickness, uint32_t color);
/* The same walk drawing `on` pixels, then skipping `off`, repeatedly (on, off >= 1). */
void ox_plot_line_dashed(ox_plot_canvas *c, int x0, int y0, int x1, int y1, int thickness, int on, int off,
                         uint32_t color);

/* One line of text whose top-left corner is (x, y), at an integer scale (each font pixel becomes a
 * scale x scale square); its size is ox_plot_text_width(s, scale) x ox_plot_text_height(scale). */
void ox_plot_text(ox_plot_canvas *c, int x, int y, const char *s, int scale, uint32_t color);
/* The same text turned 90 degrees counter-clockwise (read bottom to top, as a y-axis label): it occupies
 * x .. x + height - 1 and y - width + 1 .. y, so (x, y) is the bottom-left corner. */
void ox_plot_text_up(ox_plot_canvas *c, int x, int y, const char *s, int scale, uint32_t color);

/* Text centred on column cx (top at row y), and right-aligned so that its last column is x_right - 1. */
void ox_plot_text_center(ox_plot_canvas *c, int cx, int y, const char *s, int scale, uint32_t color);
void ox_plot_text_right(ox_plot_canvas *c, int x_right, int y, const char *s, int scale, uint32_t color);

/* Writes the canvas as an 8-bit RGB PNG by tensor/io.h's atomic replacement ("<path>.tmp.<pid>", fsync,
 * rename), so path is either the old file or the complete new one, and two writers never share a temporary. On failure (cannot create, libpng error, short write)
 * the temporary file is removed and OX_ERR_IO is returned with a message naming the path. */
ox_status ox_plot_canvas_write_png(ox_ctx *ctx, const ox_plot_canvas *c, const char *path);
/* Writes c as above, then frees it: what the *_png calls of chart.h do with a freshly drawn canvas. c == NULL
 * (a draw call that failed) returns the context's error (OX_ERR_ARG if none is set) and writes nothing. */
ox_status ox_plot_canvas_save_and_free(ox_ctx *ctx, ox_plot_canvas *c, const char *path);

#endif
