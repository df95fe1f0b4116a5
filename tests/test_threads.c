/* test_threads.c - the threading rules of tensor/ctx.h: ox_omp_bound_spin re-executes a program with
 * GOMP_SPINCOUNT set (and leaves a user's own setting alone), and ox_sgemm's blocks give the same bits at any
 * thread count and the product of a plain loop. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tensor/ctx.h"
#include "tensor/gemm.h"

/* The child half of bound_spin_reexecutes_with_the_spin_count: runs only inside the re-executed test binary
 * (OX_TEST_SPIN_MARK names a file), records what GOMP_SPINCOUNT the process started with; in a normal run it
 * has nothing to check. */
Test(threads, spin_probe)
{
    const char *mark = getenv("OX_TEST_SPIN_MARK");
    if (!mark)
        return;
    FILE *f = fopen(mark, "w");
    cr_assert_not_null(f);
    const char *sc = getenv("GOMP_SPINCOUNT");
    fprintf(f, "%s", sc ? sc : "(unset)");
    fclose(f);
}

/* Forks a child that clears the wait-policy variables (unless keep_user), calls ox_omp_bound_spin with an argv
 * that runs only threads/spin_probe of this binary, and returns what the probe recorded ("" if it never ran). */
static void run_bound_spin(const char *user_setting, char *out, size_t cap)
{
    char mark[] = "/tmp/ox_spin_markXXXXXX";
    int fd = mkstemp(mark);
    cr_assert(fd >= 0);
    close(fd);
    unlink(mark);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        unsetenv("BXFI_MAP");   /* else the re-executed binary takes itself for Criterion's sandboxed worker */
        unsetenv("OMP_WAIT_POLICY");
        unsetenv("GOMP_SPINCOUNT");
        if (user_setting)
            setenv("GOMP_SPINCOUNT", user_setting, 1);
        setenv("OX_TEST_SPIN_MARK", mark, 1);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(4);
        char *argv[] = { "oryx-tests", "--filter", "threads/spin_probe", "--jobs", "1", NULL };
        if (ox_omp_bound_spin(argv) == 0) {
            /* nothing to do (the user's setting stands): record that the program carried on here */
            FILE *f = fopen(mark, "w");
            if (f) {
                fprintf(f, "not re-executed, %s", getenv("GOMP_SPINCOUNT"));
                fclose(f);
            }
            _exit(0);
        }
        _exit(3);   /* the exec failed */
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    out[0] = 0;
    FILE *f = fopen(mark, "r");
    if (f) {
        if (!fgets(out, (int)cap, f))
            out[0] = 0;
        fclose(f);
        unlink(mark);
    }
}

Test(threads, bound_spin_reexecutes_with_the_spin_count)
{
    char got[128];
    run_bound_spin(NULL, got, sizeof got);
    cr_assert_str_eq(got, OX_OMP_SPINCOUNT, "the re-executed program saw GOMP_SPINCOUNT '%s'", got);
}

Test(threads, bound_spin_keeps_the_users_setting)
{
    char got[128];
    run_bound_spin("77", got, sizeof got);
    cr_assert_str_eq(got, "not re-executed, 77");
}

/* A product of the size that ox_sgemm cuts into blocks: at 1 and 2 threads the same bits (the blocks depend on
 * the shape only), and against a plain double loop within float rounding: k = 300 terms of magnitude <= 1
 * accumulate at most ~k * 2^-24 relative; 1e-5 of max|C| leaves room for that and catches a wrong block edge. */
Test(threads, sgemm_blocks_bit_identical_and_correct)
{
    enum { M = 301, N = 203, K = 300 };
    cr_assert(ox_sgemm_blocks(M, N, K) >= 1);
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *c1 = malloc(sizeof(float) * M * N), *c2 = malloc(sizeof(float) * M * N);
    cr_assert(a && b && c1 && c2);
    for (int i = 0; i < M * K; i++)
        a[i] = (float)(((long)i * 7919) % 1000) * 1e-3f - 0.5f;
    for (int i = 0; i < K * N; i++)
        b[i] = (float)(((long)i * 104729) % 1000) * 1e-3f - 0.5f;
    ox_sgemm(1, M, N, K, 1.0f, a, K, 1, b, N, 1, 0.0f, c1, N, 1);
    ox_sgemm(2, M, N, K, 1.0f, a, K, 1, b, N, 1, 0.0f, c2, N, 1);
    cr_assert(memcmp(c1, c2, sizeof(float) * M * N) == 0, "1 and 2 threads differ");
    double worst = 0, scale = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)a[i * K + k] * b[k * N + j];
            worst = fmax(worst, fabs(s - c1[i * N + j]));
            scale = fmax(scale, fabs(s));
        }
    cr_assert(worst <= 1e-5 * scale, "max error %g of %g", worst, scale);
    free(a);
    free(b);
    free(c1);
    free(c2);
}
