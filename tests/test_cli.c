/* test_cli.c - bin/oryx end to end: the built program (OX_ORYX_BIN, default bin/oryx, run from the repo
 * root) trains a tiny model on a small temporary text, resumes, evaluates, generates and reports; its
 * results are compared with the library called directly from the test. Bad input must give the documented
 * exit code and exactly one line on stderr and leave no files behind; SIGINT during training must leave a
 * checkpoint that loads and resumes. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autograd/tape.h"
#include "models/oryx/checkpoint.h"
#include "models/oryx/modes.h"
#include "cli_util.h"

/* ---- helpers ---- */










#define TINY "--d-model", "32", "--heads", "2", "--layers", "2", "--batch", "2", "--seq", "32", "--threads", "1", \
             "--warmup", "0", "--lr", "0.003", "--lr-min", "0.003", "--eval-windows", "4"

/* The last line of s (without its newline), copied to buf. */
static void last_line(const char *s, char *buf, size_t n)
{
    size_t len = strlen(s);
    while (len && s[len - 1] == '\n')
        len--;
    size_t start = len;
    while (start && s[start - 1] != '\n')
        start--;
    snprintf(buf, n, "%.*s", (int)(len - start), s + start);
}

/* Runs eval and parses its last line, which must be exactly "val_loss <x> bpb <y>". */
static double eval_loss(const char *dir, const char *ckpt, const char *data, const char *spec)
{
    const char *args[] = { "eval", "--ckpt", ckpt, "--data", data, "--modes", spec, "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, args), 0, "eval --modes %s failed", spec);
    char *out = out_of(dir, "out"), line[256];
    last_line(out, line, sizeof line);
    free(out);
    double loss, bpb;
    int used = 0;
    cr_assert_eq(sscanf(line, "val_loss %lf bpb %lf%n", &loss, &bpb, &used), 2, "last line '%s'", line);
    cr_assert_eq((size_t)used, strlen(line), "last line '%s' has trailing text", line);
    /* bpb = nats / ln 2; both printed with 6 decimals, so they agree to 1e-6 absolute after conversion. */
    cr_assert(fabs(bpb - loss / log(2.0)) < 2e-6, "bpb %f vs loss %f / ln 2", bpb, loss);
    return loss;
}

/* ---- end to end ---- */

Test(cli, train_resume_eval_info_generate)
{
    char dir[64], data[128], a[128], b[128], c[128], path[256];
    make_tmp(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(c, sizeof c, "%s/c", dir);
    write_text(data, 6000);

    /* A: 4 steps. B: resume A to 6 steps. C: 6 steps straight. With a constant learning rate, the data
     * windows and mode maps drawn from (seed, step) and the optimizer state restored, B must equal C bit
     * for bit (one thread). */
    const char *ta[] = { "train", "--data", data, "--steps", "4", "--out", a, TINY, NULL };
    cr_assert_eq(run_oryx(dir, ta), 0);
    const char *tb[] = { "train", "--data", data, "--steps", "6", "--out", b, "--resume", a, "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, tb), 0);
    const char *tc[] = { "train", "--data", data, "--steps", "6", "--out", c, TINY, NULL };
    cr_assert_eq(run_oryx(dir, tc), 0);

    snprintf(path, sizeof path, "%s.loss.csv", a);
    char *csv = read_all(path);
    int lines = 0;
    for (char *p = csv; *p; p++)
        lines += *p == '\n';
    cr_assert_eq(lines, 5, "header + 4 steps:\n%s", csv);
    cr_assert(strncmp(csv, "step,loss,val_loss,lr,tokens_per_s\n", 35) == 0);
    free(csv);

    ox_ctx *ctx = test_ctx();
    ox_oryx_model mb, mc;
    int64_t sb, sc, tb_len;
    snprintf(path, sizeof path, "%s.safetensors", b);
    assert_ok(ctx, ox_oryx_load(ctx, path, &mb, &sb, &tb_len));
    snprintf(path, sizeof path, "%s.safetensors", c);
    assert_ok(ctx, ox_oryx_load(ctx, path, &mc, &sc, NULL));
    cr_assert_eq(sb, 6);
    cr_assert_eq(sc, 6);
    cr_assert_eq(tb_len, 32);
    cr_assert_eq(mb.params.n, mc.params.n);
    for (int i = 0; i < mb.params.n; i++) {
        ox_tensor *x = mb.params.items[i].t, *y = mc.params.items[i].t;
        cr_assert(memcmp(ox_tensor_f32(x), ox_tensor_f32(y), sizeof(float) * (size_t)ox_tensor_numel(x)) == 0,
                  "resumed and straight runs differ in %s", mb.params.items[i].name);
    }

    /* eval (attn, the default) against the loss computed here window by window in double: windows of T + 1
     * = 33 bytes (the training run's window), the last one (6000 % 33 = 27 bytes) shorter. The program batches
     * 8 windows per pass, so the float sums differ in order only: 1e-5 absolute on a loss near 5 (float32
     * means over <= 256 terms). */
    double got = eval_loss(dir, c, data, "attn");
    uint8_t *text = (uint8_t *)read_all(data);
    double nats = 0;
    int64_t count = 0;
    ox_ag_set_grad_enabled(ctx, 0);
    for (int64_t w0 = 0; w0 < 6000; w0 += 33) {
        int64_t n = 6000 - w0 < 33 ? 6000 - w0 : 33;
        ox_tensor *in = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, n - 1));
        ox_tensor *tg = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, n - 1));
        for (int64_t t = 0; t < n - 1; t++) {
            ox_tensor_i32(in)[t] = text[w0 + t];
            ox_tensor_i32(tg)[t] = text[w0 + t + 1];
        }
        ox_tensor *mode = ox_oryx_modes_fill(ctx, 1, n - 1, OX_NN_ATTN);
        ox_tensor *logits = ox_oryx_forward(ctx, &mc, in, mode);
        cr_assert_not_null(logits, "%s", ox_ctx_message(ctx));
        for (int64_t t = 0; t < n - 1; t++) {
            const float *z = ox_tensor_f32(logits) + t * 256;
            double mx = z[0], s = 0;
            for (int v = 1; v < 256; v++)
                mx = z[v] > mx ? z[v] : mx;
            for (int v = 0; v < 256; v++)
                s += exp(z[v] - mx);
            nats += mx + log(s) - z[text[w0 + t + 1]];
            count++;
        }
        ox_ctx_reset(ctx);
    }
    cr_assert(fabs(got - nats / (double)count) < 1e-5, "eval %f vs reference %f", got, nats / (double)count);

    /* Schedules: chunks:1 and every:1 are all-attention, chunks:0 and a map file without 'a' all-linear, a
     * map file of 'a' covering the window all-attention; attention and linear differ for an oryx model. */
    double lin = eval_loss(dir, c, data, "lin");
    cr_assert(fabs(lin - got) > 1e-4, "attn %f and lin %f should differ", got, lin);
    cr_assert_eq(eval_loss(dir, c, data, "chunks:1"), got);
    cr_assert_eq(eval_loss(dir, c, data, "every:1"), got);
    cr_assert_eq(eval_loss(dir, c, data, "chunks:0"), lin);
    snprintf(path, sizeof path, "%s/map_l.txt", dir);
    write_file(path, "l l\n l\n", 7);
    cr_assert_eq(eval_loss(dir, c, data, path), lin);
    snprintf(path, sizeof path, "%s/map_a.txt", dir);
    write_file(path, "aaaaaaaaaaaaaaaa\naaaaaaaaaaaaaaaa\n", 34);
    cr_assert_eq(eval_loss(dir, c, data, path), got);
    double e4 = eval_loss(dir, c, data, "every:4"), mh = eval_loss(dir, c, data, "chunks:0.5");
    cr_assert(isfinite(e4) && isfinite(mh));

    /* info */
    const char *ia[] = { "info", "--ckpt", c, NULL };
    cr_assert_eq(run_oryx(dir, ia), 0);
    char *out = out_of(dir, "out"), want[128];
    cr_assert(strstr(out, "arch           oryx"), "%s", out);
    cr_assert(strstr(out, "step           6"), "%s", out);
    snprintf(want, sizeof want, "parameters: total %lld,", (long long)ox_nn_params_numel(&mc.params));
    cr_assert(strstr(out, want), "want '%s' in\n%s", want, out);
    cr_assert(strstr(out, "shared"), "%s", out);
    cr_assert(strstr(out, ".state.safetensors ("), "the training state file is reported:\n%s", out);
    free(out);
    const char *gattn[] = { "generate", "--ckpt", c, "--tokens", "4", "--modes", "every:2", "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, gattn), 0);
    out = out_of(dir, "out");
    cr_assert(strstr(out, "KV cache kept: yes"), "%s", out);
    free(out);

    /* generate, greedy: the bytes must be the argmax continuation computed here under prompt-attn. */
    const char *ga[] = { "generate", "--ckpt", c, "--prompt", "ROMEO:", "--tokens", "12", "--temperature", "0",
                         "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, ga), 0);
    out = out_of(dir, "out");
    char seq[32] = "ROMEO:";
    for (int n = 6; n < 18; n++) {
        ox_tensor *in = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, n));
        ox_tensor *mode = ox_tensor_empty(ctx, OX_I32, OX_DIMS(1, n));
        for (int t = 0; t < n; t++) {
            ox_tensor_i32(in)[t] = (uint8_t)seq[t];
            ox_tensor_i32(mode)[t] = t < 6 ? OX_NN_ATTN : OX_NN_LIN;
        }
        ox_tensor *logits = ox_oryx_forward(ctx, &mc, in, mode);
        cr_assert_not_null(logits, "%s", ox_ctx_message(ctx));
        const float *z = ox_tensor_f32(logits) + (n - 1) * 256;
        int best = 0;
        for (int v = 1; v < 256; v++)
            best = z[v] > z[best] ? v : best;
        seq[n] = (char)best;
        ox_ctx_reset(ctx);
    }
    cr_assert(memcmp(out, seq, 18) == 0, "generated text differs from the greedy reference");
    /* prompt-attn (the default): no generated token uses attention, so the cache is dropped after the prompt */
    cr_assert(strstr(out + 18, "tokens/s") && strstr(out + 18, "KV cache kept: no"), "%s", out + 18);
    free(out);

    /* sampling is reproducible for a seed */
    const char *sa[] = { "generate", "--ckpt", c, "--tokens", "16", "--seed", "7", "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, sa), 0);
    char *s1 = out_of(dir, "out");
    cr_assert_eq(run_oryx(dir, sa), 0);
    char *s2 = out_of(dir, "out");
    cr_assert(memcmp(s1, s2, 6 + 16) == 0);
    free(s1);
    free(s2);

    free(text);
    ox_oryx_model_free(&mb);
    ox_oryx_model_free(&mc);
    ox_ctx_free(ctx);
    cleanup_dir(dir);
}

/* Whether the checkpoints <a>.safetensors and <b>.safetensors hold the same step and bit-identical weights. */
static void assert_same_weights(const char *a, const char *b)
{
    ox_ctx *ctx = test_ctx();
    ox_oryx_model ma, mb;
    int64_t sa, sb;
    char path[256];
    snprintf(path, sizeof path, "%s.safetensors", a);
    assert_ok(ctx, ox_oryx_load(ctx, path, &ma, &sa, NULL));
    snprintf(path, sizeof path, "%s.safetensors", b);
    assert_ok(ctx, ox_oryx_load(ctx, path, &mb, &sb, NULL));
    cr_assert_eq(sa, sb);
    cr_assert_eq(ma.params.n, mb.params.n);
    for (int i = 0; i < ma.params.n; i++) {
        ox_tensor *x = ma.params.items[i].t, *y = mb.params.items[i].t;
        cr_assert(memcmp(ox_tensor_f32(x), ox_tensor_f32(y), sizeof(float) * (size_t)ox_tensor_numel(x)) == 0,
                  "%s and %s differ in %s", a, b, ma.params.items[i].name);
    }
    ox_oryx_model_free(&ma);
    ox_oryx_model_free(&mb);
    ox_ctx_free(ctx);
}

/* Training maps have no cap on ATTN positions: at T = 256, every:2 (128 positions per window) trains,
 * resumes bit-identically (A: 2 steps, B: A resumed to 3, C: 3 straight), and a map file alternating 'l'/'a'
 * over the 256 positions (the same map as a list of 128 positions) gives the same weights as every:2. */
Test(cli, train_every_and_map_file_at_t256)
{
    char dir[64], data[128], a[128], b[128], c[128], d[128], map[128];
    make_tmp(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);
    snprintf(c, sizeof c, "%s/c", dir);
    snprintf(d, sizeof d, "%s/d", dir);
    snprintf(map, sizeof map, "%s/map.txt", dir);
    write_text(data, 6000);
    char alt[2 * 128 + 2];
    for (int i = 0; i < 128; i++) {
        alt[2 * i] = 'l';
        alt[2 * i + 1] = 'a';
    }
    alt[256] = '\n';
    write_file(map, alt, 257);
    const char *ta[] = { "train", "--data", data, "--steps", "2", "--out", a, TINY, "--seq", "256", "--modes",
                         "every:2", NULL };
    cr_assert_eq(run_oryx(dir, ta), 0);
    char *out = out_of(dir, "out");
    cr_assert(strstr(out, "batch 2 x 256") && strstr(out, "modes every:2"), "%s", out);
    free(out);
    const char *tb[] = { "train", "--data", data, "--steps", "3", "--out", b, "--resume", a, "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, tb), 0);
    const char *tc[] = { "train", "--data", data, "--steps", "3", "--out", c, TINY, "--seq", "256", "--modes",
                         "every:2", NULL };
    cr_assert_eq(run_oryx(dir, tc), 0);
    const char *td[] = { "train", "--data", data, "--steps", "3", "--out", d, TINY, "--seq", "256", "--modes", map,
                         NULL };
    cr_assert_eq(run_oryx(dir, td), 0);
    assert_same_weights(b, c);
    assert_same_weights(c, d);
    cleanup_dir(dir);
}

Test(cli, help_lists_every_flag)
{
    char dir[64];
    make_tmp(dir, sizeof dir);
    const char *cmds[][14] = {
        { "train", "--data", "--preset", "--steps", "--out", "--resume", "--seed", "--threads", "--modes", "--batch",
          "--eval-every", "--save-every", "--force" },
        { "generate", "--ckpt", "--prompt", "--tokens", "--modes", "--temperature", "--top-k", "--top-p", "--seed" },
        { "eval", "--ckpt", "--data", "--modes", "--seq", "--split", "--windows" },
        { "info", "--ckpt" },
    };
    for (int i = 0; i < 4; i++) {
        const char *args[] = { cmds[i][0], "--help", NULL };
        cr_assert_eq(run_oryx(dir, args), 0, "%s --help", cmds[i][0]);
        char *out = out_of(dir, "out");
        for (int j = 1; j < 12 && cmds[i][j]; j++)
            cr_assert(strstr(out, cmds[i][j]), "%s --help does not mention %s", cmds[i][0], cmds[i][j]);
        free(out);
    }
    cleanup_dir(dir);
}

/* ---- bad input: exit code, one line on stderr, nothing written ---- */


Test(cli, bad_input_is_one_line_and_an_exit_code)
{
    char dir[64], outdir[128], data[128], empty[128], out[160], junk[128], wrong[128], badmap[128];
    make_tmp(dir, sizeof dir);
    snprintf(outdir, sizeof outdir, "%s/out", dir);
    cr_assert_eq(mkdir(outdir, 0777), 0);
    snprintf(out, sizeof out, "%s/run", outdir);
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(empty, sizeof empty, "%s/empty.txt", dir);
    snprintf(junk, sizeof junk, "%s/junk.safetensors", dir);
    snprintf(wrong, sizeof wrong, "%s/wrong.safetensors", dir);
    snprintf(badmap, sizeof badmap, "%s/map.txt", dir);
    write_text(data, 3000);
    write_file(empty, "", 0);
    write_file(junk, "not a checkpoint at all", 23);
    write_file(badmap, "aalx", 4);
    /* a valid safetensors file that is not an Oryx model */
    ox_ctx *ctx = test_ctx();
    ox_tensor *t = ox_tensor_zeros(ctx, OX_F32, OX_DIMS(2, 2));
    ox_st_entry e = { "weight", t };
    assert_ok(ctx, ox_safetensors_write(ctx, wrong, &e, 1, NULL, 0));
    ox_ctx_free(ctx);

    const char *missing_data[] = { "train", "--data", "/nonexistent/x.txt", "--out", out, NULL };
    expect_error(dir, missing_data, 3);
    const char *empty_data[] = { "train", "--data", empty, "--out", out, NULL };
    expect_error(dir, empty_data, 3);
    const char *preset[] = { "train", "--data", data, "--preset", "gpt-5", "--out", out, NULL };
    expect_error(dir, preset, 2);
    const char *heads[] = { "train", "--data", data, "--d-model", "32", "--heads", "3", "--out", out, NULL };
    expect_error(dir, heads, 2);
    const char *steps[] = { "train", "--data", data, "--steps", "0", "--out", out, NULL };
    expect_error(dir, steps, 2);
    const char *steps_nan[] = { "train", "--data", data, "--steps", "ten", "--out", out, NULL };
    expect_error(dir, steps_nan, 2);
    const char *flag[] = { "train", "--data", data, "--frobnicate", "--out", out, NULL };
    expect_error(dir, flag, 2);
    const char *noval[] = { "train", "--data", NULL };
    expect_error(dir, noval, 2);
    const char *spec[] = { "train", "--data", data, "--modes", "chunks:1.5", "--out", out, NULL };
    expect_error(dir, spec, 2);
    const char *old_spelling[] = { "train", "--data", data, "--modes", "mixed:0.5", "--out", out, NULL };
    expect_error(dir, old_spelling, 2);
    char *why = out_of(dir, "err");
    cr_assert(strstr(why, "chunks:0.5"), "the old spelling's error names the new one: %s", why);
    free(why);
    const char *resume_bad[] = { "train", "--data", data, "--resume", junk, "--out", out, NULL };
    expect_error(dir, resume_bad, 3);
    cr_assert_eq(count_files(outdir), 0, "a failed train left files behind");

    const char *ev_prompt[] = { "eval", "--ckpt", wrong, "--data", data, "--modes", "prompt-attn", NULL };
    expect_error(dir, ev_prompt, 2);
    const char *ev_spec[] = { "eval", "--ckpt", wrong, "--data", data, "--modes", "every:x", NULL };
    expect_error(dir, ev_spec, 2);
    const char *ev_map[] = { "eval", "--ckpt", wrong, "--data", data, "--modes", badmap, NULL };
    expect_error(dir, ev_map, 2);
    const char *ev_nofile[] = { "eval", "--ckpt", wrong, "--data", data, "--modes", "/nonexistent/map", NULL };
    expect_error(dir, ev_nofile, 2);
    const char *ev_data[] = { "eval", "--ckpt", wrong, "--data", "/nonexistent/x.txt", NULL };
    expect_error(dir, ev_data, 3);
    const char *ev_wrong[] = { "eval", "--ckpt", wrong, "--data", data, NULL };
    expect_error(dir, ev_wrong, 3);
    const char *gen_spec[] = { "generate", "--ckpt", wrong, "--modes", "every:0", NULL };
    expect_error(dir, gen_spec, 2);
    const char *gen_ckpt[] = { "generate", "--ckpt", junk, NULL };
    expect_error(dir, gen_ckpt, 3);
    const char *info_missing[] = { "info", "--ckpt", "/nonexistent/ckpt", NULL };
    expect_error(dir, info_missing, 3);
    const char *info_junk[] = { "info", "--ckpt", junk, NULL };
    expect_error(dir, info_junk, 3);
    const char *info_wrong[] = { "info", "--ckpt", wrong, NULL };
    expect_error(dir, info_wrong, 3);
    const char *cmd[] = { "fly", NULL };
    expect_error(dir, cmd, 2);
    cleanup_dir(outdir);
    cleanup_dir(dir);
}

/* No subcommand: "oryx: ...", without the stray space of "oryx : ..." (issue 11, item 8). */
Test(cli, no_command_line_has_no_stray_space)
{
    char dir[64];
    make_tmp(dir, sizeof dir);
    const char *none[] = { NULL };
    cr_assert_eq(run_oryx(dir, none), 2);
    char *err = out_of(dir, "err");
    cr_assert(strncmp(err, "oryx: no command given", 22) == 0, "stderr: '%s'", err);
    free(err);
    cleanup_dir(dir);
}

/* ---- SIGINT ---- */

Test(cli, sigint_saves_a_checkpoint_that_resumes)
{
    char dir[64], data[128], run[128], path[256];
    make_tmp(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    write_text(data, 6000);

    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    const char *argv[] = { oryx_bin(), "train", "--data", data, "--steps", "1000000", "--out", run, "--log-every", "1",
                           "--eval-every", "0", "--save-every", "0", TINY, NULL };
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);

    /* Wait (at most 30 s) until the first step is logged: the handler is installed before step 1. */
    char buf[4096];
    size_t got = 0;
    buf[0] = 0;
    while (!strstr(buf, "step 2/")) {
        struct pollfd p = { fds[0], POLLIN, 0 };
        cr_assert(poll(&p, 1, 30000) == 1, "no progress line from train");
        ssize_t r = read(fds[0], buf + got, sizeof buf - 1 - got);
        cr_assert(r > 0, "train exited early: %s", buf);
        got += (size_t)r;
        buf[got] = 0;
        if (got > 2048) {  /* keep the tail */
            memmove(buf, buf + got - 1024, 1024);
            got = 1024;
            buf[got] = 0;
        }
    }
    cr_assert_eq(kill(pid, SIGINT), 0);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    close(fds[0]);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 130, "status %d", st);

    ox_ctx *ctx = test_ctx();
    ox_oryx_model m;
    int64_t step;
    snprintf(path, sizeof path, "%s.safetensors", run);
    assert_ok(ctx, ox_oryx_load(ctx, path, &m, &step, NULL));
    cr_assert(step >= 2, "saved step %lld", (long long)step);
    ox_oryx_model_free(&m);

    char steps[32];
    snprintf(steps, sizeof steps, "%lld", (long long)step + 2);
    const char *resume[] = { "train", "--data", data, "--steps", steps, "--out", run, "--resume", run, "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, resume), 0);
    assert_ok(ctx, ox_oryx_load(ctx, path, &m, &step, NULL));
    cr_assert_eq(step, atoll(steps));
    ox_oryx_model_free(&m);
    ox_ctx_free(ctx);
    cleanup_dir(dir);
}

/* ---- mqar ---- */

/* A tiny MQAR run of an Oryx preset and a baseline: PREFIX.csv has the header and, per preset, one row per
 * (map, slice) plus a pooled "all" row, with the attention fractions and query counts the maps imply
 * (queries: N / T; sweep f: round(f T) / T; model rows: attention layers / L) and accuracies in [0, 1]. */
Test(cli, mqar_writes_the_csv)
{
    char dir[64], out[128], path[160];
    make_tmp(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/sub/res", dir);
    const char *args[] = { "mqar", "--presets", "oryx-gdn,transformer", "--layers", "1", "--d-model", "16",
                           "--heads", "2", "--vocab", "32", "--slices", "32x4,16x2", "--steps", "3", "--warmup", "1",
                           "--batch", "4", "--eval-examples", "5", "--fractions", "0,3/10,1", "--threads", "1",
                           "--out", out, NULL };
    int rc = run_oryx(dir, args);
    char *err = out_of(dir, "err");
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    free(err);
    snprintf(path, sizeof path, "%s.csv", out);
    char *csv = read_all(path);
    /* expected rows: oryx-gdn has lin, queries, attn and 3 sweep maps, transformer one "model" map; each
     * map gives rows for 32x4, 16x2 and all */
    struct { const char *preset, *map; double f32, f16; } want[] = {
        { "oryx-gdn", "lin", 0, 0 },         { "oryx-gdn", "queries", 4.0 / 32, 2.0 / 16 },
        { "oryx-gdn", "attn", 1, 1 },        { "oryx-gdn", "sweep", 0, 0 },
        { "oryx-gdn", "sweep", 10.0 / 32, 5.0 / 16 },   /* round(0.3 * 32) = 10, round(0.3 * 16) = 5 */
        { "oryx-gdn", "sweep", 1, 1 },       { "transformer", "model", 1, 1 },
    };
    char *line = strtok(csv, "\n");
    cr_assert_str_eq(line, "preset,T,N,map,attn_fraction,accuracy,n_queries");
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        for (int k = 0; k < 3; k++) {
            line = strtok(NULL, "\n");
            cr_assert_not_null(line, "row %zu.%d missing", i, k);
            char preset[32], T[8], N[8], map[16];
            double f, acc;
            long long nq;
            cr_assert_eq(sscanf(line, "%31[^,],%7[^,],%7[^,],%15[^,],%lf,%lf,%lld", preset, T, N, map, &f, &acc, &nq), 7,
                         "row '%s'", line);
            cr_assert_str_eq(preset, want[i].preset, "row '%s'", line);
            cr_assert_str_eq(map, want[i].map, "row '%s'", line);
            const char *tw[] = { "32", "16", "all" }, *nw[] = { "4", "2", "all" };
            cr_assert_str_eq(T, tw[k], "row '%s'", line);
            cr_assert_str_eq(N, nw[k], "row '%s'", line);
            double fw = k == 0 ? want[i].f32 : k == 1 ? want[i].f16 : (want[i].f32 + want[i].f16) / 2;
            cr_assert(fabs(f - fw) < 1e-5, "row '%s': fraction %g, want %g", line, f, fw);
            long long nw_q = k == 0 ? 5 * 4 : k == 1 ? 5 * 2 : 5 * 6;
            cr_assert_eq(nq, nw_q, "row '%s'", line);
            cr_assert(acc >= 0 && acc <= 1, "row '%s'", line);
        }
    cr_assert_null(strtok(NULL, "\n"), "extra rows");
    free(csv);
    char *o = out_of(dir, "out");
    cr_assert_not_null(strstr(o, "oryx-gdn: "), "%s", o);
    cr_assert_not_null(strstr(o, "transformer: "), "%s", o);
    cr_assert_not_null(strstr(o, "MQAR accuracy"), "%s", o);
    free(o);
    /* --help works and names the flags */
    const char *help[] = { "mqar", "--help", NULL };
    cr_assert_eq(run_oryx(dir, help), 0);
    o = out_of(dir, "out");
    cr_assert_not_null(strstr(o, "usage: oryx mqar"));
    cr_assert_not_null(strstr(o, "--fractions"));
    free(o);
    snprintf(path, sizeof path, "%s/sub", dir);
    cleanup_dir(path);
    cleanup_dir(dir);
}

Test(cli, mqar_bad_input_is_one_line_and_exit_2)
{
    char dir[64], outdir[128], out[160];
    make_tmp(dir, sizeof dir);
    snprintf(outdir, sizeof outdir, "%s/out", dir);
    cr_assert_eq(mkdir(outdir, 0777), 0);
    snprintf(out, sizeof out, "%s/res", outdir);
    const char *a1[] = { "mqar", "--slices", "30x8", "--out", out, NULL };             /* 4N > T */
    expect_error(dir, a1, 2);
    const char *a2[] = { "mqar", "--slices", "256x16", "--vocab", "16", "--out", out, NULL };  /* 7 keys < 16 */
    expect_error(dir, a2, 2);
    const char *a3[] = { "mqar", "--slices", "256-16", "--out", out, NULL };
    expect_error(dir, a3, 2);
    const char *a4[] = { "mqar", "--presets", "oryx-gdn,gpt-5", "--out", out, NULL };
    expect_error(dir, a4, 2);
    const char *a5[] = { "mqar", "--fractions", "0,2", "--out", out, NULL };
    expect_error(dir, a5, 2);
    const char *a6[] = { "mqar", "--fractions", "3/2", "--out", out, NULL };
    expect_error(dir, a6, 2);
    const char *a7[] = { "mqar", "--d-model", "32", "--heads", "3", "--out", out, NULL };
    expect_error(dir, a7, 2);
    const char *a8[] = { "mqar", "--minutes", "soon", "--out", out, NULL };
    expect_error(dir, a8, 2);
    const char *a9[] = { "mqar", "--frobnicate", "--out", out, NULL };
    expect_error(dir, a9, 2);
    const char *a10[] = { "mqar", "--vocab", "33", "--out", out, NULL };
    expect_error(dir, a10, 2);
    cr_assert_eq(count_files(outdir), 0, "a failed mqar left files behind");
    cleanup_dir(outdir);
    cleanup_dir(dir);
}

/* --profile: the table follows the run's last line; the step's main kinds appear with the forward/backward
 * phases, and a Linear row has BLIS time (its GF/s column is a number, not "-"). */
Test(cli, train_profile_table)
{
    char dir[64], data[128], a[128];
    make_tmp(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(a, sizeof a, "%s/a", dir);
    write_text(data, 6000);
    const char *ta[] = { "train", "--data", data, "--steps", "2", "--out", a, TINY, "--profile", NULL };
    cr_assert_eq(run_oryx(dir, ta), 0);
    char *out = out_of(dir, "out");
    const char *tab = strstr(out, "profile, per step (mean of 2 steps");
    cr_assert_not_null(tab, "%s", out);
    cr_assert(strstr(tab, "\n  linear                 forward ") && strstr(tab, "\n  linear                 backward") &&
              strstr(tab, "optim.adamw") && strstr(tab, "eval ") && strstr(tab, "  step "), "%s", tab);
    const char *lin = strstr(tab, "\n  linear                 backward");
    double calls, excl, blis, gfs;
    cr_assert_eq(sscanf(lin, " linear backward %lf %lf %lf %lf", &calls, &excl, &blis, &gfs), 4, "%s", lin);
    cr_assert(calls >= 1 && blis > 0 && gfs > 0, "%s", lin);
    free(out);
    const char *tb[] = { "train", "--data", data, "--steps", "1", "--out", a, "--force", TINY, NULL };
    cr_assert_eq(run_oryx(dir, tb), 0);
    out = out_of(dir, "out");
    cr_assert_null(strstr(out, "profile, per step"), "%s", out);   /* only with --profile */
    free(out);
    cleanup_dir(dir);
}

/* One evaluator: `oryx eval --split val` scores the checkpoint's validation split with the function, windows
 * and modes of the training run's logged validation loss; the two agree within 1e-6 absolute (both are the
 * same float computation, printed with 9 significant digits). */
Test(cli, eval_split_val_is_the_logged_val_loss)
{
    char dir[64], data[128], a[128], csv[256];
    make_tmp(dir, sizeof dir);
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(csv, sizeof csv, "%s.loss.csv", a);
    write_text(data, 6000);
    const char *ta[] = { "train", "--data", data, "--steps", "3", "--out", a, TINY, "--eval-windows", "5", NULL };
    cr_assert_eq(run_oryx(dir, ta), 0, "%s", out_of(dir, "err"));
    char *text = read_all(csv), *last = text;
    for (char *p = text; *p; p++)
        if (*p == '\n' && p[1])
            last = p + 1;
    double logged;
    cr_assert_eq(sscanf(strchr(strchr(last, ',') + 1, ',') + 1, "%lf", &logged), 1, "%s", last);
    free(text);
    const char *ev[] = { "eval", "--ckpt", a, "--split", "val", "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, ev), 0, "%s", out_of(dir, "err"));
    char *out = out_of(dir, "out"), line[256];
    last_line(out, line, sizeof line);
    free(out);
    double got, bpb;
    cr_assert_eq(sscanf(line, "val_loss %lf bpb %lf", &got, &bpb), 2, "%s", line);
    cr_assert(fabs(got - logged) < 1e-6, "eval --split val %.9g vs logged %.9g", got, logged);
    const char *ev2[] = { "eval", "--ckpt", a, "--split", "val", "--windows", "2", "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, ev2), 0, "%s", out_of(dir, "err"));
    out = out_of(dir, "out");
    cr_assert(strstr(out, "(2 windows, 66 bytes)"), "%s", out);
    free(out);
    const char *bad[] = { "eval", "--ckpt", a, "--split", "test", NULL };
    expect_error(dir, bad, 2);
    cleanup_dir(dir);
}
