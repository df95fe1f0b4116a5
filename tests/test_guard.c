/* test_guard.c - debug aids for library users (issue 11 item 5): the arena hands out and reuses memory
 * correctly across reset and rewind (every build); in the sanitizer build it poisons what it does not hand
 * out, so a tensor used after ox_ctx_reset dies with an ASan "use-after-poison" report at the faulty line. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define GUARD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GUARD_ASAN 1
#endif
#endif

#ifdef GUARD_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* ---- the arena, every build ---------------------------------------------------------------------------- */

static void fill(unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(seed + i * 7);
}

static int holds(const unsigned char *p, size_t n, unsigned char seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)(seed + i * 7))
            return 0;
    return 1;
}

/* Allocations are bump-allocated at 64-byte steps and do not overlap (each keeps its own pattern, written
 * over its whole size); a rewind gives back exactly what followed the mark and keeps what preceded it; a
 * reset merges the blocks and the next steps get the same addresses again, all writable to their full size
 * (under ASan this also shows nothing handed out is left poisoned). */
Test(guard, arena_reuses_memory_after_reset_and_rewind)
{
    ox_arena a;
    ox_arena_init(&a);
    const size_t sizes[] = { 100, 1000, 13, 64, 3 << 20, 5000, 1 };
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *p[N], *first_step[N];
    for (int step = 0; step < 3; step++) {
        for (int i = 0; i < N; i++) {
            p[i] = ox_arena_alloc(&a, sizes[i]);
            cr_assert_not_null(p[i]);
            cr_assert_eq((uintptr_t)p[i] % 64, 0, "64-byte aligned");
            fill(p[i], sizes[i], (unsigned char)(i + 10 * step));
        }
        for (int i = 0; i < N; i++)
            cr_assert(holds(p[i], sizes[i], (unsigned char)(i + 10 * step)), "step %d: allocation %d overwritten",
                      step, i);
        cr_assert_eq(p[1] - p[0], 128, "bump allocation at 64-byte steps");
        cr_assert_eq(p[2] - p[1], 1024);
        if (step == 1)
            memcpy(first_step, p, sizeof p);
        if (step == 2)
            for (int i = 0; i < N; i++)
                cr_assert_eq(p[i], first_step[i], "allocation %d moved between two steps after the merge", i);
        ox_arena_reset(&a);
        if (step == 0)
            cr_assert_null(a.first->next, "the reset merged the blocks into one");
    }
    /* rewind: what follows the mark is handed out again at the same place, what precedes it is kept */
    unsigned char *x = ox_arena_alloc(&a, 200);
    fill(x, 200, 1);
    ox_arena_mark m = ox_arena_get_mark(&a);
    unsigned char *y = ox_arena_alloc(&a, 300);
    unsigned char *z = ox_arena_alloc(&a, 8 << 20);    /* more than the block holds: a second block */
    cr_assert(y && z);
    fill(y, 300, 2);
    fill(z, 8 << 20, 3);
    ox_arena_rewind(&a, m);
    cr_assert_eq(a.used, 256);
    unsigned char *y2 = ox_arena_alloc(&a, 300);
    cr_assert_eq(y2, y, "the first allocation after the rewind starts at the mark");
    fill(y2, 300, 4);
    cr_assert(holds(x, 200, 1), "the rewind kept what was allocated before the mark");
    unsigned char *z2 = ox_arena_alloc(&a, 8 << 20);
    cr_assert_eq(z2, z, "the second block is reused");
    fill(z2, 8 << 20, 5);
    /* a mark taken on an empty arena rewinds everything */
    ox_arena_reset(&a);
    ox_arena_mark m0 = ox_arena_get_mark(&a);
    unsigned char *w = ox_arena_alloc(&a, 10);
    ox_arena_rewind(&a, m0);
    cr_assert_eq(ox_arena_alloc(&a, 10), w);
    ox_arena_free(&a);
}

#ifdef GUARD_ASAN
/* The tests below need AddressSanitizer: in the normal build the arena poisons nothing (by design, it costs
 * nothing there), so a use after reset reads stale or reused bytes and nothing could observe it. They run
 * under `make test-asan` (SAN=1), which CI runs. */

/* 1 when every byte of [p, p + n) is poisoned (checked byte by byte: a partly poisoned granule counts). */
static int all_poisoned(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!__asan_address_is_poisoned(p + i))
            return 0;
    return 1;
}

/* Exactly the bytes handed out are addressable: the alignment padding after an allocation, the rest of the
 * block, everything after a rewind's mark and everything after a reset (merged block included) are poisoned. */
Test(guard, arena_poisons_what_it_does_not_hand_out)
{
    ox_arena a;
    ox_arena_init(&a);
    unsigned char *p = ox_arena_alloc(&a, 100);
    cr_assert_null(__asan_region_is_poisoned(p, 100), "the 100 bytes handed out are addressable");
    cr_assert(all_poisoned(p + 100, 28), "alignment padding 100..127 is poisoned");
    cr_assert(all_poisoned(p + 128, 4096), "the rest of the block is poisoned");
    unsigned char *q = ox_arena_alloc(&a, 13);          /* ends inside an 8-byte granule */
    cr_assert_eq(q, p + 128);
    cr_assert_null(__asan_region_is_poisoned(q, 13));
    cr_assert(all_poisoned(q + 13, 51), "the partial granule after 13 bytes is poisoned");
    ox_arena_mark m = ox_arena_get_mark(&a);
    unsigned char *r = ox_arena_alloc(&a, 1000);
    unsigned char *s = ox_arena_alloc(&a, 2 << 20);     /* a second block */
    cr_assert_null(__asan_region_is_poisoned(r, 1000));
    cr_assert_null(__asan_region_is_poisoned(s, 2 << 20));
    ox_arena_rewind(&a, m);
    cr_assert(all_poisoned(r, 1024) && all_poisoned(s, 2 << 20), "the rewind poisons what it released");
    cr_assert_null(__asan_region_is_poisoned(p, 100), "what precedes the mark stays addressable");
    cr_assert_null(__asan_region_is_poisoned(q, 13));
    /* spill over a third block, then reset: the blocks are freed and merged into a new, fully poisoned one */
    cr_assert_not_null(ox_arena_alloc(&a, 2 << 20));
    cr_assert_not_null(ox_arena_alloc(&a, 3 << 20));
    ox_arena_reset(&a);
    cr_assert_null(a.first->next);
    cr_assert(all_poisoned(a.first->data, a.first->size), "the merged block is poisoned");
    unsigned char *t = ox_arena_alloc(&a, 5 << 20);
    cr_assert_eq(t, a.first->data);
    cr_assert_null(__asan_region_is_poisoned(t, 5 << 20));
    cr_assert(all_poisoned(t + (5 << 20), 64));
    /* a reset of a single block (no merge) poisons what was used */
    ox_arena_reset(&a);
    cr_assert(all_poisoned(t, 5 << 20), "the reset poisons the step's memory");
    ox_arena_free(&a);
}

/* Runs `body` in a child whose stderr goes to buf; returns the child's wait status. */
static int run_child(void (*body)(void), char *buf, size_t cap)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        body();
        _exit(0);               /* not detected */
    }
    close(fds[1]);
    size_t n = 0;
    char chunk[4096];
    ssize_t got;
    while ((got = read(fds[0], chunk, sizeof chunk)) > 0) {     /* read all, so the child never blocks */
        size_t keep = (size_t)got < cap - 1 - n ? (size_t)got : cap - 1 - n;
        memcpy(buf + n, chunk, keep);
        n += keep;
    }
    buf[n] = 0;
    close(fds[0]);
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

/* The faulty read, with its line number beside it for the test (one line on purpose). */
static float read_stale(const ox_tensor *t) { return ox_tensor_f32(t)[4]; } enum { FAULTY_LINE = __LINE__ };

/* A user's mistake: a tensor of one step read after ox_ctx_reset (its header lived in the arena too). */
static void use_after_reset(void)
{
    ox_ctx *ctx = ox_ctx_new();
    ox_tensor *t = ox_tensor_full(ctx, OX_F32, OX_DIMS(2, 3), 1.5);
    if (!t)
        _exit(3);
    ox_ctx_reset(ctx);
    volatile float v = read_stale(t);
    (void)v;
    ox_ctx_free(ctx);
}

/* The child dies (abort_on_error=1 under make test-asan: SIGABRT; otherwise ASan's exit code 1) and the report
 * names the kind of error and the line of the read (symbolized by llvm-symbolizer or, without it, binutils'
 * addr2line, which gcc depends on). */
Test(guard, use_after_ctx_reset_is_reported_by_asan)
{
    static char out[1 << 16];
    int st = run_child(use_after_reset, out, sizeof out);
    cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), "the use after reset was not detected; stderr:\n%s", out);
    cr_assert_not(WIFEXITED(st) && WEXITSTATUS(st) == 3, "the child could not make its tensor");
    cr_assert(strstr(out, "use-after-poison"), "no use-after-poison in the report:\n%s", out);
    char where[64];
    snprintf(where, sizeof where, "test_guard.c:%d", FAULTY_LINE);
    cr_assert(strstr(out, where), "the report does not point at %s:\n%s", where, out);
}
#endif

