/* bench_omp.c - what an OpenMP parallel region costs on this machine, under each libgomp wait policy.
 *
 * A training step runs hundreds of parallel regions separated by short serial stretches (BLIS calls,
 * bookkeeping). If libgomp's idle threads have gone to sleep, each region pays a wake-up. libgomp reads
 * OMP_WAIT_POLICY / GOMP_SPINCOUNT once at start-up, so this bench re-runs itself as a child process
 * under each setting and reports the median cost of one small region:
 *   back to back, and after 50 us / 1 ms / 10 ms of serial work (the gaps a training step has).
 * Programs (bin/oryx, examples) pick the policy from these numbers; the library never sets it. */
#include "bench_util.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void busy(double seconds)     /* serial work on the main thread, like a BLIS call or bookkeeping */
{
    double t0 = now();
    volatile double s = 0;
    while (now() - t0 < seconds)
        s += 1;
}

static double region_cost(double gap, int reps)
{
    double *t = malloc(sizeof(double) * (size_t)reps);
    static float buf[2][1024];
    for (int r = 0; r < reps; r++) {
        busy(gap);
        double t0 = now();
#pragma omp parallel num_threads(2)
        {
            float *b = buf[omp_get_thread_num()];
            for (int i = 0; i < 1024; i++)
                b[i] += 1.0f;
        }
        t[r] = now() - t0;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    double med = t[reps / 2];
    free(t);
    return med;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--child") == 0) {
        printf("  %-34s %9.1f %9.1f %9.1f %9.1f\n", argv[2], 1e6 * region_cost(0, 400),
               1e6 * region_cost(50e-6, 400), 1e6 * region_cost(1e-3, 200), 1e6 * region_cost(10e-3, 40));
        return 0;
    }
    const char *settings[][2] = {
        { "default (libgomp)", "" },
        { "OMP_WAIT_POLICY=passive", "OMP_WAIT_POLICY=passive" },
        { "OMP_WAIT_POLICY=active", "OMP_WAIT_POLICY=active" },
        { "GOMP_SPINCOUNT=10000000", "GOMP_SPINCOUNT=10000000" },
    };
    printf("median cost of one 2-thread parallel region, microseconds\n");
    printf("  %-34s %9s %9s %9s %9s\n", "policy", "b2b", "gap 50us", "gap 1ms", "gap 10ms");
    fflush(stdout);
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT %s %s --child '%s'",
                 settings[i][1], argv[0], settings[i][0]);
        if (system(cmd) != 0)
            return 1;
    }
    return 0;
}
