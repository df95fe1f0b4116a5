/* bench_train.c - training throughput of ox_oryx_train_step (models/oryx/train.h) for every preset at the
 * default sizes (D = 256, L = 4, H = 4, dk = dv = 64, F = 704, V = 256), B = 8, T = 256, accumulation 1,
 * 2 threads, on data/tinyshakespeare.txt; the oryx presets train with the mixed-mode maps of MODELS 8.
 * One full optimizer step (sampling, forward, backward, clipping, AdamW) per sample; median of RUNS steps after
 * WARM warm-up steps. Each preset runs in its own forked process so that its peak RSS (getrusage) is its own.
 * BLIS share: this program interposes bli_sgemm_ex / bli_strsm_ex (the symbols tensor/gemm.c calls; the
 * definitions here win over libblis's and forward to them via dlsym(RTLD_NEXT)) and adds up the time spent in
 * them; calls made inside an OpenMP region run single-threaded in parallel with each other, so their time is
 * divided by the thread count. Share = that time / step time (an estimate).
 * Run from the repository root: make build/bench/bench_train && ./build/bench/bench_train [preset [threads]] */
#include <blis.h>
#include <dlfcn.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "models/oryx/train.h"

#define RUNS 7
#define WARM 2

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static _Atomic uint64_t blis_ns_outside, blis_ns_inside;
static int THREADS = 2;

static void blis_account(double t0)
{
    uint64_t ns = (uint64_t)((now() - t0) * 1e9);
    if (omp_in_parallel())
        atomic_fetch_add(&blis_ns_inside, ns);
    else
        atomic_fetch_add(&blis_ns_outside, ns);
}

typedef void (*sgemm_ex_fn)(trans_t, trans_t, dim_t, dim_t, dim_t, float *, float *, inc_t, inc_t, float *, inc_t,
                            inc_t, float *, float *, inc_t, inc_t, cntx_t *, rntm_t *);
typedef void (*strsm_ex_fn)(side_t, uplo_t, trans_t, diag_t, dim_t, dim_t, float *, float *, inc_t, inc_t, float *,
                            inc_t, inc_t, cntx_t *, rntm_t *);

void bli_sgemm_ex(trans_t ta, trans_t tb, dim_t m, dim_t n, dim_t k, float *alpha, float *a, inc_t rsa, inc_t csa,
                  float *b, inc_t rsb, inc_t csb, float *beta, float *c, inc_t rsc, inc_t csc, cntx_t *cntx,
                  rntm_t *rntm)
{
    static sgemm_ex_fn real;
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "bli_sgemm_ex");
    double t0 = now();
    real(ta, tb, m, n, k, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc, cntx, rntm);
    blis_account(t0);
}

void bli_strsm_ex(side_t side, uplo_t uplo, trans_t ta, diag_t diag, dim_t m, dim_t n, float *alpha, float *a,
                  inc_t rsa, inc_t csa, float *b, inc_t rsb, inc_t csb, cntx_t *cntx, rntm_t *rntm)
{
    static strsm_ex_fn real;
    if (!real)
        *(void **)&real = dlsym(RTLD_NEXT, "bli_strsm_ex");
    double t0 = now();
    real(side, uplo, ta, diag, m, n, alpha, a, rsa, csa, b, rsb, csb, cntx, rntm);
    blis_account(t0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

struct row {
    double tok_s, ms, blis_share, loss0, loss1;
    double rss_mb, arena_mb;
};

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
        ox_oryx_train_stats st;
        atomic_store(&blis_ns_outside, 0);
        atomic_store(&blis_ns_inside, 0);
        double t0 = now();
        if (ox_oryx_train_step(ctx, &tr, &st)) {
            fprintf(stderr, "%s: %s\n", preset, ox_ctx_message(ctx));
            return 1;
        }
        double dt = now() - t0;
        double blis = 1e-9 * ((double)atomic_load(&blis_ns_outside) + (double)atomic_load(&blis_ns_inside) / THREADS);
        if (s == 0)
            r->loss0 = st.loss;
        r->loss1 = st.loss;
        if (s >= WARM) {
            ms[s - WARM] = 1e3 * dt;
            share[s - WARM] = blis / dt;
        }
    }
    qsort(ms, RUNS, sizeof *ms, cmp_double);
    qsort(share, RUNS, sizeof *share, cmp_double);
    r->ms = ms[RUNS / 2];
    r->tok_s = (double)(tc.batch * tc.seq_len * tc.accum) / (1e-3 * r->ms);
    r->blis_share = share[RUNS / 2];
    r->arena_mb = (double)ox_arena_capacity(&ctx->arena) / (1 << 20);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    r->rss_mb = (double)ru.ru_maxrss / 1024.0;
    ox_oryx_trainer_free(&tr);
    ox_oryx_model_free(&m);
    ox_oryx_data_free(&data);
    ox_ctx_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;   /* optional: one preset */
    if (argc > 2)
        THREADS = atoi(argv[2]);                      /* optional: thread count (default 2) */
    const char *presets[] = { "transformer",   "gdn",      "mamba2",     "hybrid-gdn",
                              "hybrid-mamba2", "oryx-gdn", "oryx-mamba2" };
    /* tokens/s of the PyTorch peer implementation (the targets); 0 = none given */
    const double peer[] = { 9200, 6600, 8800, 6800, 0, 5100, 6400 };
    enum { N = sizeof presets / sizeof presets[0] };
    printf("training step (sample, forward, backward, clip, AdamW), B = 8, T = 256, D = 256, L = 4, H = 4, "
           "dk = dv = 64, F = 704, threads = %d, mixed maps for oryx; median of %d after %d warm-up\n",
           THREADS, RUNS, WARM);
    printf("%-14s %9s %10s %10s %9s %10s %10s %15s\n", "preset", "ms/step", "tokens/s", "peer tok/s", "vs peer",
           "BLIS share", "peak RSS MB", "arena MB");
    for (int i = 0; i < N; i++) {
        if (only && strcmp(only, presets[i]) != 0)
            continue;
        int fd[2];
        if (pipe(fd))
            return 1;
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            return 1;
        if (pid == 0) {
            close(fd[0]);
            struct row r = { 0 };
            int rc = run_preset(presets[i], &r);
            if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r)
                rc = 1;
            _exit(rc);
        }
        close(fd[1]);
        struct row r;
        ssize_t got = read(fd[0], &r, sizeof r);
        close(fd[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        if (got != (ssize_t)sizeof r || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "%s failed\n", presets[i]);
            return 1;
        }
        char vs[16] = "-", pr[16] = "-";
        if (peer[i] > 0) {
            snprintf(vs, sizeof vs, "%.2fx", r.tok_s / peer[i]);
            snprintf(pr, sizeof pr, "%.0f", peer[i]);
        }
        printf("%-14s %9.1f %10.0f %10s %9s %9.0f%% %10.0f %15.1f   (loss %.3f -> %.3f)\n", presets[i], r.ms,
               r.tok_s, pr, vs, 100 * r.blis_share, r.rss_mb, r.arena_mb, r.loss0, r.loss1);
    }
    return 0;
}
