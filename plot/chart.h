/* chart.h - pictures made of a plot area with axes: the line chart (several series, NaN gaps, log-y,
 * legend), the heatmap (values -> colour scale, with a colour bar) and the categorical grid (e.g. the
 * Oryx mode map: positions x layers, ATTN / LIN). Each draw call returns a heap canvas (canvas.h; the
 * caller frees it with ox_plot_canvas_free) and, if asked, the layout it used, so a caller (or a test)
 * can map data to pixels; each *_png call draws, writes the PNG (atomically) and frees.
 *
 * Picture anatomy (all sizes in pixels; the default picture is 800 x 500 with text at font scale 2):
 *   title    centred above the plot area;   ylabel  turned 90 degrees, left of the y tick labels;
 *   xlabel   centred below the x tick labels; plot  the rectangle holding the data (grid lines at the
 *   ticks, a dark frame around it, tick marks outside it); legend  a framed box of "swatch label" lines
 *   inside the plot area, in the corner where it covers the fewest drawn data pixels (line chart), or a
 *   row above the plot area (grid); colorbar  a vertical colour scale right of a heatmap, max at the top,
 *   its min and max values written beside its ends.
 *
 * Data -> pixel mapping of the line chart (ox_plot_map_x / ox_plot_map_y): x = xmin is pixel column
 * plot.x0 and x = xmax column plot.x1 - 1; y = ymin is row plot.y1 - 1 and y = ymax row plot.y0 (with
 * log-y, log10(y) is mapped linearly the same way). Values are rounded to the nearest pixel.
 * Cells of heatmaps and grids (ox_plot_cell_box): the plot area is split into rows x cols cells, row 0 at
 * the top, column 0 at the left; cell (r, c) covers columns plot.x0 + c W / cols .. plot.x0 + (c+1) W / cols
 * - 1 and rows plot.y0 + r H / rows .. (integer division; W, H = the plot area's size).
 *
 *   double x[3] = {0, 1, 2}, y[3] = {3, 1, 2};
 *   ox_plot_series s = { .label = "loss", .x = x, .y = y, .n = 3 };
 *   ox_plot_line_chart ch = { .title = "training", .xlabel = "step", .ylabel = "loss", .series = &s,
 *                             .n_series = 1 };
 *   if (ox_plot_line_chart_png(ctx, &ch, "loss.png")) puts(ox_ctx_message(ctx));
 */
#ifndef OX_PLOT_CHART_H
#define OX_PLOT_CHART_H

#include "plot/canvas.h"

/* A rectangle of pixels x0 <= x < x1, y0 <= y < y1 (empty when x0 >= x1). */
typedef struct ox_plot_box {
    int x0, y0, x1, y1;
} ox_plot_box;

/* Where a draw call put things, and the data ranges of its axes. */
typedef struct ox_plot_layout {
    ox_plot_box plot;               /* the data area (inside the frame) */
    ox_plot_box title, xlabel, ylabel, legend, colorbar;   /* empty when not drawn */
    ox_plot_box xticks, yticks;     /* the bands holding the tick labels */
    double xmin, xmax, ymin, ymax;  /* axis ranges (line chart: data units; heatmap/grid: 0..cols, 0..rows) */
    int log_y;
} ox_plot_layout;

/* The fixed series palette (10 colours, distinguishable, print-friendly): colour i % 10. */
uint32_t ox_plot_palette(int i);
/* The heatmap colour scale at t in [0, 1] (clamped): dark violet (0) through blue and green to yellow (1),
 * monotone in brightness; NaN gives OX_PLOT_EMPTY_COLOR. */
uint32_t ox_plot_colormap(double t);

/* "Nice" ticks for [lo, hi]: a step of 1, 2 or 5 times a power of ten giving about `target` (>= 2)
 * intervals; writes the multiples of the step inside [lo, hi] (a relative 1e-9 slack) to ticks[0 .. max-1]
 * and returns how many, and the step in *step (may be NULL). lo == hi is widened by 1 either side first. */
int ox_plot_nice_ticks(double lo, double hi, int target, double *ticks, int max, double *step);
/* A tick value as text with just enough decimals for the step ("0.5", "1200", "1e-05"). */
void ox_plot_format_tick(double v, double step, char *buf, int n);

/* ---- line chart ---------------------------------------------------------------------------------------- */

typedef struct ox_plot_series {
    const char *label;      /* legend text (NULL or "": not listed in the legend) */
    const double *x, *y;    /* n points; a point with a NaN coordinate (or y <= 0 under log-y) is a gap:
                               the line is broken there */
    int64_t n;
    uint32_t color;         /* 0xRRGGBB; 0 = palette colour of the series index (use 0x010101 for black) */
    int markers;            /* 1 = also draw a small square at each point (for sparse series) */
    int dashed;             /* 1 = dashed line */
} ox_plot_series;

typedef struct ox_plot_line_chart {
    const char *title, *xlabel, *ylabel;    /* each may be NULL */
    const ox_plot_series *series;
    int n_series;
    int log_y;              /* 1 = logarithmic y axis (ticks at 1, 2, 5 x 10^k, or powers of ten) */
    int fixed_x, fixed_y;   /* 1 = use [xmin, xmax] / [ymin, ymax] as given (lines outside are clipped) */
    double xmin, xmax, ymin, ymax;   /* otherwise: the data's range widened to whole ticks */
    int width, height;      /* pixels; 0 = 800 x 500 */
    int text_scale;         /* font scale; 0 = 2 */
    int no_legend;          /* 1 = no legend even with several labelled series */
} ox_plot_line_chart;

/* Draws the chart. Errors (NULL + message): no series, a series with n < 0 or NULL x/y with n > 0, no
 * finite point to set an automatic range from, a fixed range with min >= max (or <= 0 under log-y), a
 * size too small for the margins (under 200 x 150). layout may be NULL. */
ox_plot_canvas *ox_plot_line_chart_draw(ox_ctx *ctx, const ox_plot_line_chart *ch, ox_plot_layout *layout);
/* Draw + ox_plot_canvas_write_png + free. */
ox_status ox_plot_line_chart_png(ox_ctx *ctx, const ox_plot_line_chart *ch, const char *path);

/* Pixel column / row of a data value under a line chart's layout (see the mapping above). */
int ox_plot_map_x(const ox_plot_layout *l, double x);
int ox_plot_map_y(const ox_plot_layout *l, double y);

/* ---- heatmap ------------------------------------------------------------------------------------------- */

typedef struct ox_plot_heatmap {
    const char *title, *xlabel, *ylabel;
    const float *values;    /* rows x cols, row-major: values[r * cols + c] is cell (r, c); NaN = no value
                               (drawn OX_PLOT_EMPTY_COLOR) */
    int64_t rows, cols;
    int fixed_range;        /* 1 = colour scale over [vmin, vmax]; otherwise the finite values' min..max */
    double vmin, vmax;
    int width, height, text_scale;   /* 0 = 800 x 700, scale 2 */
} ox_plot_heatmap;

/* Cell (r, c) gets ox_plot_colormap((v - vmin) / (vmax - vmin)) (0.5 when vmin == vmax). Tick labels are
 * cell indices (nice steps) at cell centres. Errors: no values, rows or cols < 1, a fixed range with
 * vmin > vmax, a plot area smaller than one pixel per cell. */
ox_plot_canvas *ox_plot_heatmap_draw(ox_ctx *ctx, const ox_plot_heatmap *hm, ox_plot_layout *layout);
ox_status ox_plot_heatmap_png(ox_ctx *ctx, const ox_plot_heatmap *hm, const char *path);

/* ---- categorical grid ---------------------------------------------------------------------------------- */

#define OX_PLOT_MAX_CATEGORIES 8

typedef struct ox_plot_grid {
    const char *title, *xlabel, *ylabel;
    const uint8_t *cells;   /* rows x cols, row-major: category of cell (r, c), each < n_categories */
    int64_t rows, cols;
    int n_categories;       /* 1 .. OX_PLOT_MAX_CATEGORIES */
    const char *const *category_labels;   /* legend text of each category */
    const uint32_t *category_colors;      /* NULL = palette */
    const char *const *row_labels;        /* NULL = row indices; otherwise one label per row */
    int64_t marker_col;     /* > 0: a dashed vertical line at the left edge of this column ... */
    const char *marker_label;   /* ... with this text above it (e.g. the end of a prompt); may be NULL */
    int width, height, text_scale;   /* 0 = 800 x (enough for the rows), scale 2 */
} ox_plot_grid;

/* Cell (r, c) is filled with its category's colour, leaving a 1-pixel white gap between rows when cells
 * are at least 6 pixels tall. Errors: no cells, sizes < 1, a category out of range, a plot area smaller
 * than one pixel per cell. */
ox_plot_canvas *ox_plot_grid_draw(ox_ctx *ctx, const ox_plot_grid *g, ox_plot_layout *layout);
ox_status ox_plot_grid_png(ox_ctx *ctx, const ox_plot_grid *g, const char *path);

/* The pixels of cell (r, c) of a rows x cols heatmap or grid under its layout. */
ox_plot_box ox_plot_cell_box(const ox_plot_layout *l, int64_t rows, int64_t cols, int64_t r, int64_t c);

#endif
