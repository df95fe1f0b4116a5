/* bench_train.c - training throughput of ox_oryx_train_step (models/oryx/train.h) for every preset at the
 * default sizes (D = 256, L = 4, H = 4, dk = dv = 64, F = 704, V = 256), B = 8, T = 256, accumulation 1,
 * all cores (or [threads]), on data/tinyshakespeare.txt; the oryx presets train with the mixed-mode maps of MODELS 8.
 * One full optimizer step (sampling, forward, backward, clipping, AdamW) per sample; median of RUNS steps after
 * WARM warm-up steps. Each preset runs in its own forked process so that its peak RSS (getrusage) is its own.
 *
 * The step profile (tensor/profile.h) is on during the timed steps: BLIS share = BLIS time / step time, BLIS
 * GF/s = FLOPs inside BLIS / BLIS time, GFLOP/step = FLOPs inside BLIS per step (every product of the step,
 * attention and chunked mixers included, goes through ox_sgemm / ox_strsm). The profile costs two clock reads
 * per op (~1-2k ops per step: well under 1%).
 *
 * Roofline: before the presets this program times ox_sgemm (same threads) on the step's largest products, the
 * MLP's [B T = 2048] x [D = 256] x [F = 704] in the three forms a Linear layer uses (y = x W^T, dx = dy W,
 * dW = dy^T x) for both MLP matrices, and takes their FLOP-weighted rate R (GF/s). Best tokens/s on this
 * machine = B T / (GFLOP per step / R): the step if every FLOP ran at the rate of the biggest GEMMs and
 * nothing else took time. "of roof" = our tokens/s / that.
 *
 * The PyTorch baseline (../shared/peer-bench, its README) is a separate program: run the two alternately and
 * compare medians from the same run.
 *
 * --neighbour [preset] (default oryx-gdn): the default thread count (all cores) against 1 thread, 3 alternating
 * rounds on the machine as it is, then 3 with one busy process (a spinning child) beside them (tensor/ctx.h).
 *
 * Run from the repository root:
 *   make build/bench/bench_train && ./build/bench/bench_train [preset [threads]]
 *   ./build/bench/bench_train --neighbour [preset]
 * With a preset named, the profile table of that preset (per step: calls, exclusive ms, BLIS ms and GF/s per
 * kind and phase, largest first) is printed too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "models/oryx/train.h"
#include "tensor/alloc.h"
#include "tensor/gemm.h"
#include "tensor/profile.h"
#include "tensor/ctx.h"

#define RUNS 7
#define WARM 2

static int THREADS = 0;     /* 0: all cores */
static int PRINT_TABLE = 0;

struct row {
    double tok_s, ms, blis_share, blis_gfs, gflop, loss0, loss1;
    double rss_mb, arena_mb;
};

static int cmp_rows(const void *x, const void *y)
{
    const ox_profile_row *a = x, *b = y;
    double ta = a->seconds + a->blis_seconds, tb = b->seconds + b->blis_seconds;
    return (ta < tb) - (ta > tb);
}

static void print_table(const char *preset, ox_ctx *ctx, int steps)
{
    ox_profile_row rows[OX_PROFILE_MAX_ROWS];
    int n = ox_profile_rows(ctx, rows, OX_PROFILE_MAX_ROWS);
    if (n > OX_PROFILE_MAX_ROWS)
        n = OX_PROFILE_MAX_ROWS;
    qsort(rows, (size_t)n, sizeof *rows, cmp_rows);
    ox_profile_totals t = ox_profile_total(ctx);
    double per = 1e3 / steps;
    printf("\nprofile of %s, per step (mean of %d steps; exclusive = time of the kind minus BLIS inside it):\n",
           preset, steps);
    printf("  %-22s %-8s %7s %9s %9s %7s %9s %7s\n", "kind", "phase", "calls", "excl ms", "BLIS ms", "GF/s",
           "total ms", "share");
    for (int i = 0; i < n; i++) {
        const ox_profile_row *r = &rows[i];
        double tot = r->seconds + r->blis_seconds;
        if (tot * per < 0.05)
            continue;
        char gfs[16] = "-";
        if (r->blis_seconds > 0)
            snprintf(gfs, sizeof gfs, "%.1f", 1e-9 * r->blis_flops / r->blis_seconds);
        printf("  %-22s %-8s %7.0f %9.2f %9.2f %7s %9.2f %6.1f%%\n", r->name, ox_profile_phase_name(r->phase),
               (double)r->calls / steps, r->seconds * per, r->blis_seconds * per, gfs, tot * per,
               100 * tot / t.wall);
    }
    double ph[3] = { 0 }, phb[3] = { 0 };
    for (int i = 0; i < n; i++) {
        ph[rows[i].phase] += rows[i].seconds;
        phb[rows[i].phase] += rows[i].blis_seconds;
    }
    for (int p = 0; p < 3; p++)
        printf("  %-22s %-8s %7s %9.2f %9.2f %7s %9.2f %6.1f%%\n", "(all kinds)",
               ox_profile_phase_name((ox_profile_phase)p), "", ph[p] * per, phb[p] * per, "",
               (ph[p] + phb[p]) * per, 100 * (ph[p] + phb[p]) / t.wall);
    printf("  step %.1f ms: BLIS %.1f ms (%.0f%%, %.1f GF/s, %.2f GFLOP), everything else %.1f ms\n\n",
           t.wall * per, t.blis_seconds * per, 100 * t.blis_seconds / t.wall,
           1e-9 * t.blis_flops / t.blis_seconds, 1e-9 * t.blis_flops / steps, t.seconds * per);
}

/* One preset, in the child process; fills r. Returns 0 on success. */
static int run_preset(const char *preset, struct row *r)
{
    ox_ctx *ctx = ox_ctx_new();
    if (!ctx)
        return 1;
    ox_ctx_set_threads(ctx, THREADS);
    ox_oryx_train_config tc = ox_oryx_train_defaults();   /* B 8, T 256, mixed maps C = 64 */
    ox_oryx_data data;
    ox_oryx_config cfg;
    ox_oryx_model m;
    ox_oryx_trainer tr;
    ox_rng rng = ox_rng_seed(1);
    if (ox_oryx_data_load(ctx, "data/tinyshakespeare.txt", tc.seq_len, &data) ||
        ox_oryx_config_preset(ctx, preset, 4, &cfg) || ox_oryx_model_init(ctx, &m, &cfg, &rng) ||
        ox_oryx_trainer_init(ctx, &tr, &m, &data, &tc)) {
        fprintf(stderr, "%s: %s\n", preset, ox_ctx_message(ctx));
        return 1;
    }
    double ms[RUNS], share[RUNS];
    for (int s = 0; s < WARM + RUNS; s++) {
        if (s == WARM && ox_profile_enable(ctx, 1))
            return 1;
        ox_profile_totals before = ox_profile_total(ctx);
        ox_oryx_train_stats st;
        double t0 = now();
        if (ox_oryx_train_step(ctx, &tr, &st)) {
            fprintf(stderr, "%s: %s\n", preset, ox_ctx_message(ctx));
            return 1;
        }
        double dt = now() - t0;
        ox_profile_totals after = ox_profile_total(ctx);
        if (s == 0)
            r->loss0 = st.loss;
        r->loss1 = st.loss;
        if (s >= WARM) {
            ms[s - WARM] = 1e3 * dt;
            share[s - WARM] = (after.blis_seconds - before.blis_seconds) / dt;
        }
    }
    ox_profile_totals t = ox_profile_total(ctx);
    r->ms = median(ms, RUNS);
    r->tok_s = (double)(tc.batch * tc.seq_len * tc.accum) / (1e-3 * r->ms);
    r->blis_share = median(share, RUNS);
    r->blis_gfs = 1e-9 * t.blis_flops / t.blis_seconds;
    r->gflop = 1e-9 * t.blis_flops / RUNS;
    r->arena_mb = (double)ox_arena_capacity(&ctx->arena) / (1 << 20);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->rss_mb = (double)ru.ru_maxrss / 1024.0;
    if (PRINT_TABLE)
        print_table(preset, ctx, RUNS);
    ox_oryx_trainer_free(&tr);
    ox_oryx_model_free(&m);
    ox_oryx_data_free(&data);
    ox_ctx_free(ctx);
    return 0;
}

/* GF/s of ox_sgemm on the step's largest products (see the header): a Linear [BT, in] -> [BT, out] with
 * W [out, in] runs y = x W^T (BT x out x in), dx = dy W (BT x in x out), dW = dy^T x (out x in x BT). */
static double roofline_gfs(int threads, double *each)
{
    enum { BT = 2048, D = 256, F = 704 };
    float *x = calloc((size_t)BT * F, sizeof(float)), *w = calloc((size_t)F * D, sizeof(float));
    float *y = calloc((size_t)BT * F, sizeof(float));
    if (!x || !w || !y)
        return 0;
    for (size_t i = 0; i < (size_t)BT * F; i++)
        x[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < (size_t)F * D; i++)
        w[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
    double flops_all = 0, secs_all = 0;
    for (int s = 0; s < 6; s++) {
        int64_t in = s < 3 ? D : F, out = s < 3 ? F : D;    /* up projection, then down projection */
        double t[9];
        for (int rep = 0; rep < 9; rep++) {
            double t0 = now();
            switch (s % 3) {
            case 0: ox_sgemm(threads, BT, out, in, 1.0f, x, in, 1, w, 1, in, 0.0f, y, out, 1); break;
            case 1: ox_sgemm(threads, BT, in, out, 1.0f, x, out, 1, w, in, 1, 0.0f, y, in, 1); break;
            default: ox_sgemm(threads, out, in, BT, 1.0f, x, 1, out, y, in, 1, 1.0f, w, in, 1); break;
            }
            t[rep] = now() - t0;
        }
        double sec = median(t, 9), fl = 2.0 * BT * (double)in * (double)out;
        each[s] = 1e-9 * fl / sec;
        flops_all += fl;
        secs_all += sec;
    }
    free(x);
    free(w);
    free(y);
    return 1e-9 * flops_all / secs_all;
}

/* Runs one preset at `threads` threads in a forked child (its own peak RSS); 0 on success. */
static int measure(const char *preset, int threads, struct row *r)
{
    int fd[2];
    if (pipe(fd))
        return 1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        close(fd[0]);
        THREADS = threads;
        struct row out = { 0 };
        int rc = run_preset(preset, &out);
        fflush(stdout);
        if (write(fd[1], &out, sizeof out) != (ssize_t)sizeof out)
            rc = 1;
        _exit(rc);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], r, sizeof *r);
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != (ssize_t)sizeof *r || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "%s failed\n", preset);
        return 1;
    }
    return 0;
}

/* --neighbour: the default thread count (all cores) against one thread, first on the machine as it is, then
 * with one busy process (a spinning child) beside it; ROUNDS alternating rounds each, medians. */
static int neighbour_mode(const char *preset)
{
    enum { ROUNDS = 3 };
    int all = ox_cores_available();
    printf("threads: %s, default (%d threads) against 1 thread, %d alternating rounds, median ms/step of each\n",
           preset, all, ROUNDS);
    double res[2][2];    /* [busy][default, one] */
    for (int busy = 0; busy < 2; busy++) {
        pid_t spinner = 0;
        if (busy) {
            spinner = fork();
            if (spinner < 0)
                return 1;
            if (spinner == 0) {
                volatile unsigned long n = 0;
                for (;;)
                    n++;
            }
        }
        double ms[2][ROUNDS];
        for (int k = 0; k < ROUNDS; k++)
            for (int j = 0; j < 2; j++) {
                struct row r;
                if (measure(preset, j == 0 ? all : 1, &r)) {
                    if (spinner > 0)
                        kill(spinner, SIGKILL);
                    return 1;
                }
                ms[j][k] = r.ms;
            }
        if (spinner > 0) {
            kill(spinner, SIGKILL);
            waitpid(spinner, NULL, 0);
        }
        res[busy][0] = median(ms[0], ROUNDS);
        res[busy][1] = median(ms[1], ROUNDS);
        printf("  %-28s default %8.1f ms  1 thread %8.1f ms  default speed / 1-thread speed %.2fx\n",
               busy ? "one busy process beside it:" : "machine as it is:", res[busy][0], res[busy][1],
               res[busy][1] / res[busy][0]);
    }
    return 0;
}

int main(int argc, char **argv)
{
    ox_omp_bound_spin(argv);   /* idle OpenMP threads must not hold a core another process needs (tensor/ctx.h) */
    if (argc > 1 && strcmp(argv[1], "--neighbour") == 0)
        return neighbour_mode(argc > 2 ? argv[2] : "oryx-gdn");
    const char *only = argc > 1 ? argv[1] : NULL;   /* optional: one preset (then its profile table too) */
    if (argc > 2)
        THREADS = atoi(argv[2]);                      /* optional: thread count (default: all cores) */
    if (THREADS <= 0)
        THREADS = ox_cores_available();
    PRINT_TABLE = only != NULL;
    const char *presets[] = { "transformer",   "gdn",      "mamba2",     "hybrid-gdn",
                              "hybrid-mamba2", "oryx-gdn", "oryx-mamba2" };
    enum { N = sizeof presets / sizeof presets[0] };
    /* the parent never starts OpenMP or BLIS threads: a child forked after that would hang in libgomp, so
     * the roofline is measured in a child too */
    double each[7] = { 0 };
    int fdr[2];
    if (pipe(fdr))
        return 1;
    pid_t rp = fork();
    if (rp < 0)
        return 1;
    if (rp == 0) {
        close(fdr[0]);
        ox_gemm_setup();
        each[6] = roofline_gfs(THREADS, each);
        (void)ox_gemm_arch();
        _exit(write(fdr[1], each, sizeof each) == (ssize_t)sizeof each ? 0 : 1);
    }
    close(fdr[1]);
    if (read(fdr[0], each, sizeof each) != (ssize_t)sizeof each)
        return 1;
    close(fdr[0]);
    waitpid(rp, NULL, 0);
    double roof = each[6];
    printf("roofline: ox_sgemm on the MLP's 2048x256x704 products, %d threads, GF/s: "
           "up x W^T %.1f, dy W %.1f, dy^T x %.1f; down %.1f, %.1f, %.1f; FLOP-weighted %.1f\n",
           THREADS, each[0], each[1], each[2], each[3], each[4], each[5], roof);
    printf("training step (sample, forward, backward, clip, AdamW), B = 8, T = 256, D = 256, L = 4, H = 4, "
           "dk = dv = 64, F = 704, threads = %d, mixed maps for oryx; median of %d after %d warm-up\n",
           THREADS, RUNS, WARM);
    printf("%-14s %8s %9s %6s %7s %7s %10s %8s %8s %8s\n", "preset", "ms/step", "tokens/s", "BLIS", "BLIS",
           "GFLOP", "roof", "of roof", "peak RSS", "arena");
    printf("%-14s %8s %9s %6s %7s %7s %10s %8s %8s %8s\n", "", "", "", "share", "GF/s", "/step", "tok/s", "", "MB",
           "MB");
    for (int i = 0; i < N; i++) {
        if (only && strcmp(only, presets[i]) != 0)
            continue;
        struct row r;
        if (measure(presets[i], THREADS, &r))
            return 1;
        double roof_tok = 8.0 * 256.0 / (r.gflop / roof);
        printf("%-14s %8.1f %9.0f %5.0f%% %7.1f %7.1f %10.0f %7.0f%% %8.0f %8.1f   (loss %.3f -> %.3f)\n",
               presets[i], r.ms, r.tok_s, 100 * r.blis_share, r.blis_gfs, r.gflop, roof_tok,
               100 * r.tok_s / roof_tok, r.rss_mb, r.arena_mb, r.loss0, r.loss1);
    }
    return 0;
}
