/* test_cli_plot.c - the picture-making parts of bin/oryx end to end (OX_ORYX_BIN, run from the repo root):
 * `train` keeps <stem>.loss.png beside its CSV, `plot` overlays histories, `attention` draws one head's
 * probabilities, `generate --mode-map-png` draws the mode map. Pictures are decoded with libpng and
 * checked by colour: the loss lines in the palette's colours, grey (empty) rows exactly when some tokens
 * are LIN, and ATTN / LIN cells in the proportion the SPEC or the layer kinds give. Bad input gives the
 * documented exit code, one line on stderr, and no picture. */
#include <dirent.h>
#include <fcntl.h>
#include <png.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plot/chart.h"
#include "cli_util.h"

/* Pixels of each colour in a decoded PNG. */
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

static int64_t count_color(const image *im, uint32_t col)
{
    int64_t n = 0;
    for (int64_t i = 0; i < (int64_t)im->w * im->h; i++) {
        const uint8_t *p = im->px + 3 * i;
        n += ((uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]) == col;
    }
    return n;
}

#define TINY "--d-model", "32", "--heads", "2", "--batch", "2", "--seq", "32", "--threads", "1", "--warmup", "0", \
             "--eval-windows", "2"

#define ATTN_RED 0xd62728u
#define LIN_BLUE 0x9ecae1u

/* ---- tests ---- */

Test(cli_plot, train_writes_the_loss_picture_and_plot_overlays_runs)
{
    char dir[64], data[128], a[128], b[128], path[256], out[256];
    make_tmp(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    write_text(data, 4000);
    const char *ta[] = { "train", "--data", data, "--steps", "6", "--eval-every", "2", "--save-every", "3",
                         "--out", a, "--layers", "2", TINY, NULL };
    cr_assert_eq(run_oryx(dir, ta), 0);
    char *so = out_of(dir, "out");
    snprintf(path, sizeof path, "%s.loss.png", a);
    cr_assert(strstr(so, path), "the final message names the picture: %s", so);
    free(so);
    image im = read_png(path);
    cr_assert_eq(im.w, 800);
    cr_assert_eq(im.h, 500);
    cr_assert_gt(count_color(&im, ox_plot_palette(0)), 100, "train loss line");
    cr_assert_gt(count_color(&im, ox_plot_palette(1)), 30, "val loss markers");
    cr_assert_gt(count_color(&im, OX_PLOT_TEXT_COLOR), 1000, "axes and text");
    free(im.px);
    const char *tb[] = { "train", "--data", data, "--steps", "4", "--eval-every", "2", "--out", b, "--layers",
                         "1", TINY, NULL };
    cr_assert_eq(run_oryx(dir, tb), 0);

    /* two runs (a CSV path and a checkpoint name): one colour each */
    snprintf(out, sizeof out, "%s/cmp.png", dir);
    snprintf(path, sizeof path, "%s.loss.csv", a);
    const char *pa[] = { "plot", "--out", out, path, b, "--title", "a vs b", NULL };
    cr_assert_eq(run_oryx(dir, pa), 0);
    im = read_png(out);
    cr_assert_gt(count_color(&im, ox_plot_palette(0)), 100);
    cr_assert_gt(count_color(&im, ox_plot_palette(1)), 100);
    cr_assert_eq(count_color(&im, ox_plot_palette(2)), 0, "only two runs");
    free(im.px);
    /* --val-only, from a hand-written history: val rows only every third step, other columns absent */
    snprintf(path, sizeof path, "%s/hand.loss.csv", dir);
    write_string(path, "step,loss,val_loss\n1,3.0,\n2,2.5,\n3,2.2,2.4\n4,2.0,\n5,1.9,\n6,1.8,2.0\n");
    const char *pv[] = { "plot", "--out", out, path, "--val-only", NULL };
    cr_assert_eq(run_oryx(dir, pv), 0);
    im = read_png(out);
    cr_assert_eq(count_color(&im, ox_plot_palette(0)), 0, "no training line with --val-only");
    cr_assert_gt(count_color(&im, ox_plot_palette(1)), 100, "the val line");
    free(im.px);
    cleanup_dir(dir);
}

Test(cli_plot, attention_heatmap_and_mode_maps)
{
    char dir[64], data[128], o[128], h[128], out[256];
    make_tmp(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(o, sizeof o, "%s/o", dir);
    snprintf(h, sizeof h, "%s/h", dir);
    write_text(data, 4000);
    const char *to[] = { "train", "--data", data, "--steps", "2", "--out", o, "--layers", "2", TINY, NULL };
    cr_assert_eq(run_oryx(dir, to), 0);
    const char *th[] = { "train", "--data", data, "--steps", "2", "--out", h, "--preset", "hybrid-gdn", "--layers",
                         "4", TINY, NULL };
    cr_assert_eq(run_oryx(dir, th), 0);

    /* attention: all-ATTN rows leave no grey cell; every:2 makes half of the rows grey (LIN) */
    snprintf(out, sizeof out, "%s/attn.png", dir);
    const char *aa[] = { "attention", "--ckpt", o, "--prompt", "To be, or not to be", "--layer", "1", "--head", "1",
                         "--out", out, "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, aa), 0);
    image im = read_png(out);
    cr_assert_eq(count_color(&im, OX_PLOT_EMPTY_COLOR), 0);
    cr_assert_gt(count_color(&im, ox_plot_colormap(0)), 1000, "the zero upper triangle");
    free(im.px);
    const char *ae[] = { "attention", "--ckpt", o, "--prompt", "To be, or not to be", "--modes", "every:2", "--out",
                         out, "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, ae), 0);
    im = read_png(out);
    int64_t grey = count_color(&im, OX_PLOT_EMPTY_COLOR);
    free(im.px);
    /* 19 tokens, 10 LIN rows (positions 0, 2, ..., 18) of 19 cells each: about 10/19 of the cell area */
    cr_assert_gt(grey, 10000, "LIN rows are grey (%lld pixels)", (long long)grey);
    /* the hybrid's default layer is its attention layer (3); its LIN layers have no attention */
    const char *ah[] = { "attention", "--ckpt", h, "--prompt", "abc", "--out", out, NULL };
    cr_assert_eq(run_oryx(dir, ah), 0);
    char *so = out_of(dir, "out");
    cr_assert(strstr(so, "layer 3"), "%s", so);
    free(so);

    /* mode maps: an oryx model under every:4 is ATTN at positions 3, 7, ..., 23 of 7 + 20 = 27 */
    snprintf(out, sizeof out, "%s/map.png", dir);
    const char *go[] = { "generate", "--ckpt", o, "--prompt", "ROMEO:\n", "--tokens", "20", "--modes", "every:4",
                         "--mode-map-png", out, "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, go), 0);
    im = read_png(out);
    double red = (double)count_color(&im, ATTN_RED), blue = (double)count_color(&im, LIN_BLUE);
    free(im.px);
    /* cells are equal to a pixel (+-1 of ~24 per column), the legend adds one swatch of each colour */
    cr_assert(fabs(red / (red + blue) - 6.0 / 27.0) < 0.03, "ATTN share %f", red / (red + blue));
    /* the hybrid ignores the map: one ATTN layer of four, whatever the SPEC */
    const char *gh[] = { "generate", "--ckpt", h, "--tokens", "20", "--modes", "lin", "--mode-map-png", out,
                         "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, gh), 0);
    im = read_png(out);
    red = (double)count_color(&im, ATTN_RED), blue = (double)count_color(&im, LIN_BLUE);
    free(im.px);
    cr_assert(fabs(red / (red + blue) - 0.25) < 0.03, "ATTN share %f", red / (red + blue));
    cleanup_dir(dir);
}

Test(cli_plot, bad_input_is_one_line_and_no_picture)
{
    char dir[64], data[128], o[128], h[128], out[256], csv[256], bad[256], junk[256];
    make_tmp(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(o, sizeof o, "%s/o", dir);
    snprintf(h, sizeof h, "%s/h", dir);
    snprintf(out, sizeof out, "%s/pic.png", dir);
    snprintf(csv, sizeof csv, "%s/good.loss.csv", dir);
    snprintf(bad, sizeof bad, "%s/bad.loss.csv", dir);
    snprintf(junk, sizeof junk, "%s/junk.loss.csv", dir);
    write_text(data, 3000);
    write_string(csv, "step,loss,val_loss,lr,tokens_per_s\n1,5.5,,0.003,100\n2,5.4,5.3,0.003,100\n");
    write_string(bad, "step,loss,val_loss\n1,5.5,\n2,oops,\n");
    write_string(junk, "hello world\n");

    const char *nofile[] = { "plot", "--out", out, NULL };
    expect_error(dir, nofile, 2);
    const char *noout[] = { "plot", csv, NULL };
    expect_error(dir, noout, 2);
    const char *missing[] = { "plot", "--out", out, "/nonexistent/x.loss.csv", NULL };
    expect_error(dir, missing, 3);
    const char *malformed[] = { "plot", "--out", out, csv, bad, NULL };
    expect_error(dir, malformed, 3);
    const char *header[] = { "plot", "--out", out, junk, NULL };
    expect_error(dir, header, 3);
    const char *flag[] = { "plot", "--out", out, "--frobnicate", csv, NULL };
    expect_error(dir, flag, 2);
    const char *unwritable[] = { "plot", "--out", "/nonexistent-dir/p.png", csv, NULL };
    expect_error(dir, unwritable, 1);
    cr_assert(!exists(out), "no picture after an error");

    const char *to[] = { "train", "--data", data, "--steps", "1", "--out", o, "--layers", "1", TINY, NULL };
    cr_assert_eq(run_oryx(dir, to), 0);
    const char *th[] = { "train", "--data", data, "--steps", "1", "--out", h, "--preset", "hybrid-gdn", "--layers",
                         "4", TINY, NULL };
    cr_assert_eq(run_oryx(dir, th), 0);
    const char *lin_layer[] = { "attention", "--ckpt", h, "--layer", "0", "--out", out, NULL };
    expect_error(dir, lin_layer, 2);
    const char *head[] = { "attention", "--ckpt", o, "--head", "2", "--out", out, NULL };
    expect_error(dir, head, 2);
    const char *noout2[] = { "attention", "--ckpt", o, NULL };
    expect_error(dir, noout2, 2);
    const char *empty[] = { "attention", "--ckpt", o, "--prompt", "", "--out", out, NULL };
    expect_error(dir, empty, 2);
    const char *ckpt[] = { "attention", "--ckpt", "/nonexistent/ck", "--out", out, NULL };
    expect_error(dir, ckpt, 3);
    const char *spec[] = { "attention", "--ckpt", o, "--modes", "prompt-attn", "--out", out, NULL };
    expect_error(dir, spec, 2);
    cr_assert(!exists(out), "no picture after an error");
    const char *gen[] = { "generate", "--ckpt", o, "--tokens", "3", "--mode-map-png", "/nonexistent-dir/m.png",
                          "--threads", "1", NULL };
    expect_error(dir, gen, 1);
    const char *big[] = { "generate", "--ckpt", o, "--tokens", "20000", "--mode-map-png", out, NULL };
    expect_error(dir, big, 2);
    cr_assert(!exists(out));

    const char *cmds[][8] = {
        { "plot", "--out", "--title", "--val-only", "--log-y" },
        { "attention", "--ckpt", "--prompt", "--layer", "--head", "--modes", "--out" },
        { "generate", "--mode-map-png" },
    };
    for (int i = 0; i < 3; i++) {
        const char *args[] = { cmds[i][0], "--help", NULL };
        cr_assert_eq(run_oryx(dir, args), 0);
        char *so = out_of(dir, "out");
        for (int j = 1; j < 8 && cmds[i][j]; j++)
            cr_assert(strstr(so, cmds[i][j]), "%s --help does not mention %s", cmds[i][0], cmds[i][j]);
        free(so);
    }
    cleanup_dir(dir);
}

/* oryx mqar draws PREFIX.png beside PREFIX.csv: the Oryx preset is a line across the fraction axis (its maps
 * run from all-LIN to all-ATTN), the single-mixer baseline one marked point; axes and text are drawn. */
Test(cli_plot, mqar_draws_accuracy_vs_attention_fraction)
{
    char dir[64], out[128], path[160];
    make_tmp(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/res", dir);
    const char *args[] = { "mqar", "--presets", "oryx-gdn,transformer", "--layers", "1", "--d-model", "16",
                           "--heads", "2", "--vocab", "32", "--slices", "32x4", "--steps", "2", "--warmup", "1",
                           "--batch", "4", "--eval-examples", "3", "--fractions", "0,1/2,1", "--threads", "1",
                           "--out", out, NULL };
    cr_assert_eq(run_oryx(dir, args), 0);
    char *so = out_of(dir, "out");
    snprintf(path, sizeof path, "%s.png", out);
    cr_assert(strstr(so, path), "the output names the picture: %s", so);
    free(so);
    image im = read_png(path);
    /* the line spans the whole x axis (~650 px of plot width at 800 x 500) with thickness >= 2 */
    cr_assert_gt(count_color(&im, ox_plot_palette(0)), 600, "oryx-gdn line");
    int64_t point = count_color(&im, ox_plot_palette(1));
    cr_assert(point > 4 && point < 400, "transformer: one marker (plus its legend swatch), got %lld px",
              (long long)point);
    cr_assert_eq(count_color(&im, ox_plot_palette(2)), 0, "two presets only");
    cr_assert_gt(count_color(&im, OX_PLOT_TEXT_COLOR), 1000, "axes and text");
    free(im.px);
    cleanup_dir(dir);
}
