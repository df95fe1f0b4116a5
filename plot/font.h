/* font.h - the plot module's embedded bitmap font: printable ASCII 32..126, drawn on a 5 x 8 grid
 * (5 columns; rows 0..6 hold capitals and digits, row 7 the descenders of g j p q y , _), designed for
 * this library. Each glyph is 8 row bit masks, bit 4 = leftmost column. A character advances 6 columns
 * (1 column of spacing) and a line is 10 rows tall (2 rows of leading), all times an integer scale.
 * Characters outside 32..126 are drawn as '?'.
 *
 *   const uint8_t *g = ox_plot_glyph('A');             // g[0..7], row r, column c lit iff g[r] >> (4 - c) & 1
 *   int w = ox_plot_text_width("loss", 2);             // 46 pixels
 */
#ifndef OX_PLOT_FONT_H
#define OX_PLOT_FONT_H

#include <stdint.h>

#define OX_PLOT_GLYPH_W 5      /* columns of a glyph */
#define OX_PLOT_GLYPH_H 8      /* rows of a glyph (7 above the baseline, 1 descender row) */
#define OX_PLOT_ADVANCE 6      /* columns from one character to the next */
#define OX_PLOT_LINE_H 10      /* rows from one text line to the next */

/* The 8 row masks of character c (c outside 32..126: the glyph of '?'). Static storage. */
const uint8_t *ox_plot_glyph(int c);

/* Size in pixels of a one-line string at an integer scale >= 1 (scale < 1 counts as 1):
 * width = scale * (6 * strlen(s) - 1) (0 for ""), height = scale * 8. */
int ox_plot_text_width(const char *s, int scale);
int ox_plot_text_height(int scale);

#endif
