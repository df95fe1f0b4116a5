/* test_cli_nothing_lost.c - `oryx train` never loses a checkpoint or a history (issue "Nothing lost"):
 * a save interrupted at each of its writes, fsyncs and renames in turn (ORYX_TEST_EXIT_AFTER_IO, cli/main.c)
 * always resumes, to the same weights as an uninterrupted run; a save that fails for lack of space
 * (RLIMIT_FSIZE) keeps the previous checkpoint; one run per output (flock); --force for a new run over a
 * checkpoint; histories without lost or repeated steps; inputs that are not regular files refused by name;
 * NaN and divergence stop with one line, keeping the last checkpoint; resume keeps the eval schedule and
 * finds the data file on its own. Each test failed before the change it covers. */
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "cli_util.h"
#include "tensor/safetensors.h"

#define TINY "--d-model", "32", "--heads", "2", "--layers", "2", "--batch", "2", "--seq", "32", "--threads", "1", \
             "--warmup", "0", "--lr", "0.003", "--lr-min", "0.003", "--eval-windows", "2", "--eval-every", "0"

static void path_of(char *buf, size_t n, const char *dir, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

static char *slurp(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot read %s", path);
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)*len + 1);
    cr_assert_eq(fread(b, 1, (size_t)*len, f), (size_t)*len);
    b[*len] = 0;
    fclose(f);
    return b;
}

static int same_file(const char *a, const char *b)
{
    long la, lb;
    char *x = slurp(a, &la), *y = slurp(b, &lb);
    int same = la == lb && memcmp(x, y, (size_t)la) == 0;
    free(x);
    free(y);
    return same;
}

static void copy_file(const char *from, const char *to)
{
    long n;
    char *b = slurp(from, &n);
    write_file(to, b, (size_t)n);
    free(b);
}

/* The checkpoint files of prefix `from` copied to prefix `to` (those that exist). */
static void copy_ckpt(const char *from, const char *to)
{
    static const char *const ext[] = { ".safetensors", ".state.safetensors", ".loss.csv" };
    for (int i = 0; i < 3; i++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s%s", from, ext[i]);
        snprintf(b, sizeof b, "%s%s", to, ext[i]);
        if (exists(a))
            copy_file(a, b);
    }
}

/* The step column of a loss history: asserts every step from 1 to last appears exactly once, in order. */
static void assert_history_steps(const char *csv_path, long last)
{
    long len;
    char *csv = slurp(csv_path, &len);
    char *line = strchr(csv, '\n');
    cr_assert_not_null(line, "%s: no header", csv_path);
    cr_assert_eq(strncmp(csv, "step,loss,val_loss,lr,tokens_per_s\n", 35), 0, "%s", csv);
    long want = 1;
    for (char *p = line + 1; *p; p = strchr(p, '\n') + 1) {
        cr_assert_eq(strtol(p, NULL, 10), want, "%s: step %ld where %ld was expected:\n%s", csv_path,
                     strtol(p, NULL, 10), want, csv);
        want++;
    }
    cr_assert_eq(want, last + 1, "%s: %ld rows, want %ld:\n%s", csv_path, want - 1, last, csv);
    free(csv);
}

static int count_temps(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".tmp") != NULL;
    closedir(d);
    return n;
}

/* ---- kill -9 at every instant of a save --------------------------------------------------------------- */

/* A: 1 step. REF: A resumed to 3 steps, saving at every step. For N = 1, 2, ...: a copy B of A resumed the
 * same way but ended (as by kill -9) right after the N-th write / fsync / rename of its saves; then B resumed
 * again must finish with the same model file as REF, a history with each step once, and no temporary left.
 * N goes on until the run is no longer interrupted; at least the 12 instants of the first save are met. */
Test(nothing_lost, kill_at_every_instant_of_a_save_still_resumes)
{
    char dir[64], data[128], a[128], ref[128], b[200], path[256], path2[256];
    make_tmp(dir, sizeof dir);
    path_of(data, sizeof data, dir, "text.txt");
    path_of(a, sizeof a, dir, "a");
    path_of(ref, sizeof ref, dir, "ref");
    write_text(data, 6000);
    const char *ta[] = { "train", "--data", data, "--steps", "1", "--out", a, TINY, NULL };
    cr_assert_eq(run_oryx(dir, ta), 0, "%s", out_of(dir, "err"));
    copy_ckpt(a, ref);
    const char *tr[] = { "train", "--steps", "3", "--save-every", "1", "--resume", ref, "--threads", "1", NULL };
    cr_assert_eq(run_oryx(dir, tr), 0, "%s", out_of(dir, "err"));
    char ref_model[256];
    snprintf(ref_model, sizeof ref_model, "%s.safetensors", ref);

    int kills = 0;
    for (int n = 1; n <= 60; n++) {
        char sub[160], env[16];
        snprintf(sub, sizeof sub, "%s/k%d", dir, n);
        cr_assert_eq(mkdir(sub, 0700), 0);
        snprintf(b, sizeof b, "%s/b", sub);
        copy_ckpt(a, b);
        const char *tb[] = { "train", "--steps", "3", "--save-every", "1", "--resume", b, "--threads", "1", NULL };
        snprintf(env, sizeof env, "%d", n);
        setenv("ORYX_TEST_EXIT_AFTER_IO", env, 1);
        int rc = run_oryx(dir, tb);
        unsetenv("ORYX_TEST_EXIT_AFTER_IO");
        if (rc == 0) {
            cleanup_dir(sub);
            break;
        }
        cr_assert_eq(rc, 99, "instant %d: exit %d: %s", n, rc, out_of(dir, "err"));
        kills++;
        cr_assert_eq(run_oryx(dir, tb), 0, "instant %d: resume failed: %s", n, out_of(dir, "err"));
        snprintf(path, sizeof path, "%s.safetensors", b);
        cr_assert(same_file(path, ref_model), "instant %d: the resumed run's model differs from the reference", n);
        snprintf(path2, sizeof path2, "%s.loss.csv", b);
        assert_history_steps(path2, 3);
        cr_assert_eq(count_temps(sub), 0, "instant %d: a temporary file of the killed run was left", n);
        cleanup_dir(sub);
    }
    cr_assert_geq(kills, 12, "only %d instants were interrupted", kills);
    cleanup_dir(dir);
}

/* ---- a full disk --------------------------------------------------------------------------------------- */

/* A file-size limit below the state file's size (as a full disk would): the save fails with one line, the
 * previous checkpoint and history are untouched, no temporary is left, and the checkpoint still resumes. */
Test(nothing_lost, failed_write_keeps_the_previous_checkpoint)
{
    char dir[64], data[128], a[128], state[256], model[256], csv[256], keep[3][256];
    make_tmp(dir, sizeof dir);
    path_of(data, sizeof data, dir, "text.txt");
    path_of(a, sizeof a, dir, "a");
    write_text(data, 6000);
    const char *ta[] = { "train", "--data", data, "--steps", "2", "--out", a, TINY, NULL };
    cr_assert_eq(run_oryx(dir, ta), 0);
    snprintf(state, sizeof state, "%s.state.safetensors", a);
    snprintf(model, sizeof model, "%s.safetensors", a);
    snprintf(csv, sizeof csv, "%s.loss.csv", a);
    const char *files[3] = { state, model, csv };
    for (int i = 0; i < 3; i++) {
        snprintf(keep[i], sizeof keep[i], "%s/keep%d", dir, i);
        copy_file(files[i], keep[i]);
    }
    struct stat st;
    cr_assert_eq(stat(state, &st), 0);

    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size / 2;     /* the history and the lock fit, the state file does not */
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);   /* inherited by the child: write fails with EFBIG */
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    const char *tb[] = { "train", "--steps", "4", "--save-every", "1", "--resume", a, "--threads", "1", NULL };
    int rc = run_oryx(dir, tb);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_sig);
    char *err = out_of(dir, "err");
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "File too large") && strchr(err, '\n') == err + strlen(err) - 1, "%s", err);
    free(err);
    for (int i = 0; i < 3; i++)
        cr_assert(same_file(files[i], keep[i]), "%s changed", files[i]);
    cr_assert_eq(count_temps(dir), 0, "a temporary file was left");
    cr_assert_eq(run_oryx(dir, tb), 0, "%s", out_of(dir, "err"));
    assert_history_steps(csv, 4);
    cleanup_dir(dir);
}

/* ---- one run per output -------------------------------------------------------------------------------- */

/* A run holds its --out: a second run on it refuses at once, naming the holder's pid, and touches nothing;
 * after the holder is killed (kill -9) the next run proceeds. */
Test(nothing_lost, one_run_per_output)
{
    char dir[64], data[128], a[128], lock[256], csv[256];
    make_tmp(dir, sizeof dir);
    path_of(data, sizeof data, dir, "text.txt");
    path_of(a, sizeof a, dir, "a");
    snprintf(lock, sizeof lock, "%s.lock", a);
    snprintf(csv, sizeof csv, "%s.loss.csv", a);
    write_text(data, 6000);
    const char *t1[] = { "train", "--data", data, "--steps", "1000000", "--save-every", "0", "--out", a, TINY, NULL };
    pid_t holder = spawn_oryx(dir, t1, "bg_");
    char want[32];
    snprintf(want, sizeof want, "%ld\n", (long)holder);
    for (int i = 0; i < 600; i++) {     /* until the holder has taken the lock (it writes its pid) */
        if (exists(lock)) {
            char *l = read_all(lock);
            int held = strcmp(l, want) == 0;
            free(l);
            if (held)
                break;
        }
        usleep(20000);
    }
    char *l = read_all(lock);
    cr_assert_str_eq(l, want, "the first run did not take the lock");
    free(l);
    const char *t2[] = { "train", "--data", data, "--steps", "2", "--out", a, "--force", TINY, NULL };
    expect_error(dir, t2, 1);
    char *err = out_of(dir, "err");
    char pid_s[32];
    snprintf(pid_s, sizeof pid_s, "pid %ld", (long)holder);
    cr_assert(strstr(err, "in use") && strstr(err, pid_s), "%s", err);
    free(err);
    cr_assert(!exists(csv), "the refused run wrote a history");
    kill(holder, SIGKILL);
    int st;
    cr_assert_eq(waitpid(holder, &st, 0), holder);
    cr_assert(!exists(csv), "the killed run, which never saved, published a history");
    cr_assert_eq(run_oryx(dir, t2), 0, "%s", out_of(dir, "err"));
    assert_history_steps(csv, 2);
    cr_assert_eq(count_temps(dir), 0);
    cleanup_dir(dir);
}

/* A new run over an existing checkpoint needs --force (the line suggests --resume); a forced run that fails
 * before its first checkpoint leaves the old checkpoint and history as they were. */
Test(nothing_lost, new_run_over_a_checkpoint_needs_force)
{
    char dir[64], data[128], a[128], csv[256], state[256], keep_csv[256], keep_state[256];
    make_tmp(dir, sizeof dir);
    path_of(data, sizeof data, dir, "text.txt");
    path_of(a, sizeof a, dir, "a");
    snprintf(csv, sizeof csv, "%s.loss.csv", a);
    snprintf(state, sizeof state, "%s.state.safetensors", a);
    path_of(keep_csv, sizeof keep_csv, dir, "keep.csv");
    path_of(keep_state, sizeof keep_state, dir, "keep.state");
    write_text(data, 6000);
    const char *ta[] = { "train", "--data", data, "--steps", "3", "--out", a, TINY, NULL };
    cr_assert_eq(run_oryx(dir, ta), 0);
    copy_file(csv, keep_csv);
    copy_file(state, keep_state);
    expect_error(dir, ta, 2);
    char *err = out_of(dir, "err");
    cr_assert(strstr(err, "--resume") && strstr(err, "--force"), "%s", err);
    free(err);
    /* forced, then killed after its first row but before its first checkpoint is complete */
    const char *tf[] = { "train", "--data", data, "--steps", "3", "--save-every", "1", "--out", a, "--force",
                         TINY, NULL };
    setenv("ORYX_TEST_EXIT_AFTER_IO", "2", 1);
    int rc = run_oryx(dir, tf);
    unsetenv("ORYX_TEST_EXIT_AFTER_IO");
    cr_assert_eq(rc, 99);
    cr_assert(same_file(csv, keep_csv) && same_file(state, keep_state), "the killed forced run changed the old run");
    cr_assert_eq(run_oryx(dir, tf), 0, "%s", out_of(dir, "err"));
    assert_history_steps(csv, 3);
    cr_assert_eq(count_temps(dir), 0);
    cleanup_dir(dir);
}

/* ---- inputs that are not regular files ------------------------------------------------------------------ */

/* A FIFO (which used to block forever), a directory or a device where a file belongs, and an empty mode
 * map: one line naming the file, nothing written. */
Test(nothing_lost, inputs_must_be_regular_files)
{
    /* A run that blocks on a FIFO would hang the suite: SIGALRM ends this test (a crash) after 60 s instead.
     * (Not Criterion's .timeout: with several timed tests running in parallel its runner leaks, which fails
     * make test-asan.) */
    alarm(60);
    char dir[64], data[128], fifo[128], empty[128], out[128], blank[128], ck[128], ck_state[160], ck_model[160];
    char hist_dir[128];
    make_tmp(dir, sizeof dir);
    path_of(data, sizeof data, dir, "text.txt");
    path_of(fifo, sizeof fifo, dir, "fifo");
    path_of(empty, sizeof empty, dir, "empty.txt");
    path_of(blank, sizeof blank, dir, "blank.txt");
    path_of(out, sizeof out, dir, "out/run");
    path_of(ck, sizeof ck, dir, "ck");
    path_of(hist_dir, sizeof hist_dir, dir, "hist.csv");
    snprintf(ck_state, sizeof ck_state, "%s.state.safetensors", ck);
    snprintf(ck_model, sizeof ck_model, "%s.safetensors", ck);
    write_text(data, 6000);
    write_string(empty, "");
    write_string(blank, " \n\n");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(mkfifo(ck_state, 0600), 0);    /* a checkpoint whose files are FIFOs */
    cr_assert_eq(mkfifo(ck_model, 0600), 0);
    cr_assert_eq(mkdir(hist_dir, 0700), 0);
    struct { const char *flag, *value, *says; int code; } cases[] = {
        { "--data", fifo, "is a FIFO", 3 },       { "--data", dir, "is a directory", 3 },
        { "--data", "/dev/null", "is a device", 3 }, { "--modes", fifo, "is a FIFO", 3 },
        { "--modes", dir, "is a directory", 3 },  { "--modes", "/dev/null", "is a device", 3 },
        { "--modes", empty, "is empty", 3 },      { "--modes", blank, "no 'a'/'l'", 2 },
        { "--resume", ck, "is a FIFO", 3 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[] = { "train", "--data", data, "--steps", "1", "--out", out, cases[i].flag, cases[i].value,
                               NULL };
        if (strcmp(cases[i].flag, "--data") == 0)
            args[2] = cases[i].value, args[7] = NULL;
        expect_error(dir, args, cases[i].code);
        char *err = out_of(dir, "err");
        cr_assert(strstr(err, cases[i].says), "%s %s: %s", cases[i].flag, cases[i].value, err);
        free(err);
    }
    const char *gen[] = { "generate", "--ckpt", ck, "--prompt", "a", "--tokens", "1", NULL };
    expect_error(dir, gen, 3);
    char *err = out_of(dir, "err");
    cr_assert(strstr(err, "is a FIFO"), "%s", err);
    free(err);
    const char *plot[] = { "plot", "--out", out, hist_dir, NULL };
    expect_error(dir, plot, 3);
    err = out_of(dir, "err");
    cr_assert(strstr(err, "is a directory"), "%s", err);
    free(err);
    char sub[160];
    path_of(sub, sizeof sub, dir, "out");
    cr_assert(!exists(sub), "a refused run created its output folder");
    rmdir(hist_dir);
    cleanup_dir(dir);
}

/* ---- stops with one line -------------------------------------------------------------------------------- */

/* NaN second moments planted in a checkpoint: its first step makes every weight NaN, then every retry is
 * non-finite; the run stops with one line after 10 tries and keeps the checkpoint. */
Test(nothing_lost, nan_halt_is_one_line)
{
    char dir[64], data[128], a[128], state[256], keep[256];
    make_tmp(dir, sizeof dir);
    path_of(data, sizeof data, dir, "text.txt");
    path_of(a, sizeof a, dir, "a");
    path_of(keep, sizeof keep, dir, "keep");
    write_text(data, 6000);
    const char *ta[] = { "train", "--data", data, "--steps", "1", "--out", a, TINY, NULL };
    cr_assert_eq(run_oryx(dir, ta), 0);
    snprintf(state, sizeof state, "%s.state.safetensors", a);
    ox_ctx *ctx = test_ctx();
    ox_st_file *f = ox_safetensors_load(ctx, state);
    cr_assert_not_null(f, "%s", ox_ctx_message(ctx));
    int planted = 0;
    for (int64_t i = 0; i < f->n; i++)
        if (strncmp(f->entries[i].name, "optim.v.", 8) == 0) {
            float *w = ox_tensor_f32(f->entries[i].tensor);
            for (int64_t j = 0; j < ox_tensor_numel(f->entries[i].tensor); j++)
                w[j] = NAN;
            planted++;
        }
    cr_assert_gt(planted, 0);
    assert_ok(ctx, ox_safetensors_write(ctx, state, f->entries, f->n, f->meta->kv, f->meta->n));
    ox_st_file_free(f);
    ox_ctx_free(ctx);
    copy_file(state, keep);
    const char *tb[] = { "train", "--steps", "5", "--resume", a, "--threads", "1", NULL };
    expect_error(dir, tb, 1);
    char *err = out_of(dir, "err");
    cr_assert(strstr(err, "10 tries") && strstr(err, "kept"), "%s", err);
    free(err);
    cr_assert(same_file(state, keep), "the checkpoint changed");
    cleanup_dir(dir);
}

/* A learning rate of 10 without clipping: the loss climbs from 5.5 to hundreds; the run stops once the mean
 * of 50 steps exceeds 2 ln 256, with one line, exit 1, and keeps its last checkpoint. */
Test(nothing_lost, divergence_stops_the_run)
{
    char dir[64], data[128], a[128];
    make_tmp(dir, sizeof dir);
    path_of(data, sizeof data, dir, "text.txt");
    path_of(a, sizeof a, dir, "a");
    write_text(data, 20000);
    const char *ta[] = { "train", "--data", data, "--steps", "400", "--save-every", "20", "--out", a, TINY,
                         "--lr", "10", "--lr-min", "10", "--clip", "1e12", NULL };
    expect_error(dir, ta, 1);
    char *err = out_of(dir, "err");
    cr_assert(strstr(err, "diverged") && strstr(err, "kept"), "%s", err);
    free(err);
    char state[256];
    snprintf(state, sizeof state, "%s.state.safetensors", a);
    cr_assert(exists(state), "the last checkpoint is gone");
    cleanup_dir(dir);
}

/* ---- resume keeps every setting ------------------------------------------------------------------------- */

/* Trained from inside its folder with a relative --data and an eval schedule (every 3 steps); resumed from
 * elsewhere with no --data: the corpus is found and the schedule kept (validation at 3 and 6, and at the end
 * of each run: 2, 5, 7; the default schedule would skip 3 and 6); changing a setting on resume is refused;
 * --data naming a copy of the corpus elsewhere works. */
Test(nothing_lost, resume_keeps_every_setting)
{
    char dir[64], data[128], a[128], csv[256], bin[PATH_MAX], moved[160];
    make_tmp(dir, sizeof dir);
    path_of(data, sizeof data, dir, "text.txt");
    path_of(a, sizeof a, dir, "a");
    snprintf(csv, sizeof csv, "%s.loss.csv", a);
    write_text(data, 6000);
    cr_assert_not_null(realpath(oryx_bin(), bin));
    setenv("OX_ORYX_BIN", bin, 1);
    char cwd[PATH_MAX];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir(dir), 0);
    const char *ta[] = { "train", "--data", "text.txt", "--steps", "2", "--out", "a", TINY, "--eval-every", "3",
                         "--eval-windows", "3", NULL };
    int rc = run_oryx(dir, ta);
    cr_assert_eq(chdir("/"), 0);
    cr_assert_eq(rc, 0, "%s", out_of(dir, "err"));
    const char *tb[] = { "train", "--steps", "5", "--resume", a, NULL };
    cr_assert_eq(run_oryx(dir, tb), 0, "%s", out_of(dir, "err"));
    const char *bad[] = { "train", "--steps", "7", "--resume", a, "--eval-every", "1", NULL };
    expect_error(dir, bad, 2);
    char *err = out_of(dir, "err");
    cr_assert(strstr(err, "--eval-every") && strstr(err, "--resume"), "%s", err);
    free(err);
    path_of(moved, sizeof moved, dir, "moved.txt");
    copy_file(data, moved);
    unlink(data);
    const char *tc[] = { "train", "--steps", "7", "--resume", a, "--data", moved, NULL };
    cr_assert_eq(run_oryx(dir, tc), 0, "%s", out_of(dir, "err"));
    cr_assert_eq(chdir(cwd), 0);
    assert_history_steps(csv, 7);
    long len;
    char *text = slurp(csv, &len);
    int vals = 0;
    for (char *p = strchr(text, '\n') + 1; *p; p = strchr(p, '\n') + 1) {
        long step = strtol(p, NULL, 10);
        const char *v = strchr(strchr(p, ',') + 1, ',') + 1;   /* the val_loss field */
        int has = *v != ',', want = step == 2 || step == 3 || step == 5 || step == 6 || step == 7;
        cr_assert_eq(has, want, "step %ld: validation %s:\n%s", step, has ? "present" : "missing", text);
        vals += has;
    }
    cr_assert_eq(vals, 5);
    free(text);
    cleanup_dir(dir);
}
