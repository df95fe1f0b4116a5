/* test_install.c - issue 5: after `make install PREFIX=<temporary folder>`, an example copied out of the
 * repository builds with `cc ... $(pkg-config --cflags --libs oryx)` and runs, and every installed header
 * compiles on its own.
 *
 * `make test-run` passes OX_REPO (the repository root), OX_BUILD and OX_SAN (the build being tested: build
 * with SAN empty, or build/asan with SAN=1), so the test installs the very build it belongs to: under
 * `make test-asan` the installed library is the sanitizer build and the example is linked with
 * -fsanitize=address,undefined (and runs with the inherited ASAN_OPTIONS, leak detection included). The
 * shared library is a prerequisite of test-run, so the install copies files and builds nothing: the test
 * checks that liboryx.a and liboryx.so keep their modification times. The nested make runs with MAKEFLAGS
 * and MAKELEVEL removed from its environment (they belong to the make that started the tests).
 *
 * Checked: make install's exit code; the installed files; the .pc file has no @...@ left; the example (02,
 * the two spirals, --quick --threads 1, run from the temporary folder, outside the repository) links
 * against the installed liboryx.so (ldd, normal build) and reaches held-out accuracy > 0.9 (the bar of
 * test_examples.c); the same example linked statically (liboryx.a, pkg-config --static) runs too; a file
 * including every installed header as <oryx/...> compiles with -std=c11 -Wall -Wextra -Werror -pedantic.
 * The temporary folder is removed at the end. */
#include "test_util.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Runs `cmd` through sh with stdout and stderr in `log`; returns the exit status. */
static int sh(const char *cmd, const char *log)
{
    char full[8192];
    int w = snprintf(full, sizeof full, "{ %s ; } > '%s' 2>&1", cmd, log);
    cr_assert(w > 0 && (size_t)w < sizeof full, "command too long");
    int st = system(full);
    return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The first n - 1 bytes of a file as a string ("" when missing). */
static void slurp(const char *path, char *buf, size_t n)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    size_t got = fread(buf, 1, n - 1, f);
    buf[got] = '\0';
    fclose(f);
}

static double mtime(const char *path)
{
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s does not exist (make test-run builds it)", path);
    return (double)st.st_mtim.tv_sec + 1e-9 * (double)st.st_mtim.tv_nsec;
}

static void assert_file(const char *prefix, const char *rel)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", prefix, rel);
    cr_assert_eq(access(p, R_OK), 0, "make install did not install %s", p);
}

/* The number after `key` in text, or -1 when the key is missing. */
static double value_after(const char *text, const char *key)
{
    const char *at = strstr(text, key);
    double v;
    return at && sscanf(at + strlen(key), "%lf", &v) == 1 ? v : -1;
}

Test(install, example_builds_out_of_tree_with_pkg_config, .timeout = 120)
{
    const char *repo = getenv("OX_REPO"), *build = getenv("OX_BUILD"), *san_s = getenv("OX_SAN");
    repo = repo && *repo ? repo : ".";
    build = build && *build ? build : "build";
    int san = san_s && strcmp(san_s, "1") == 0;
    const char *sanflags = san ? "-fsanitize=address,undefined" : "";

    char dir[64] = "/tmp/oryx-install-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char prefix[128], log[128], out[32768], cmd[4096], lib_a[1024], lib_so[1024], pc[256];
    snprintf(prefix, sizeof prefix, "%s/prefix", dir);
    snprintf(log, sizeof log, "%s/log.txt", dir);
    snprintf(lib_a, sizeof lib_a, "%s/%s/liboryx.a", repo, build);
    snprintf(lib_so, sizeof lib_so, "%s/%s/liboryx.so.0.1.0", repo, build);
    double ta = mtime(lib_a), tso = mtime(lib_so);

    /* make install from the repository root, for the build under test */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES make --no-print-directory install "
             "PREFIX='%s' BUILD='%s' SAN='%s'",
             repo, prefix, build, san ? "1" : "");
    int rc = sh(cmd, log);
    slurp(log, out, sizeof out);
    cr_assert_eq(rc, 0, "make install failed (%d):\n%s", rc, out);
    cr_assert_eq(mtime(lib_a), ta, "make install rebuilt %s:\n%s", lib_a, out);
    cr_assert_eq(mtime(lib_so), tso, "make install rebuilt %s:\n%s", lib_so, out);
    const char *files[] = { "lib/liboryx.a", "lib/liboryx.so", "lib/liboryx.so.0", "lib/liboryx.so.0.1.0",
                            "lib/pkgconfig/oryx.pc", "include/oryx/autograd/ops.h", "include/oryx/tensor/tensor.h",
                            "include/oryx/models/oryx/train.h", "include/oryx/optim/adamw.h" };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        assert_file(prefix, files[i]);
    snprintf(pc, sizeof pc, "%s/lib/pkgconfig/oryx.pc", prefix);
    slurp(pc, out, sizeof out);
    cr_assert_null(strchr(out, '@'), "oryx.pc has an unreplaced @...@:\n%s", out);

    /* the example, copied out of the tree, built the README's way and run from there */
    snprintf(cmd, sizeof cmd, "cp '%s/examples/02_mlp_classifier.c' '%s/'", repo, dir);
    cr_assert_eq(sh(cmd, log), 0, "cannot copy the example");
    const char *pkg = "PKG_CONFIG_PATH=\"$P/lib/pkgconfig\" pkg-config";
    snprintf(cmd, sizeof cmd,
             "P='%s' && cd '%s' && cc -Wall -Wextra -Werror %s 02_mlp_classifier.c -o mlp $(%s --cflags --libs oryx)",
             prefix, dir, sanflags, pkg);
    rc = sh(cmd, log);
    slurp(log, out, sizeof out);
    cr_assert_eq(rc, 0, "the example does not build against the installed library:\n%s", out);
    if (!san) {     /* it uses the installed shared library (found through the run-path of the .pc) */
        snprintf(cmd, sizeof cmd, "ldd '%s/mlp'", dir);
        cr_assert_eq(sh(cmd, log), 0);
        slurp(log, out, sizeof out);
        char want[256];
        snprintf(want, sizeof want, "%s/lib/liboryx.so.0", prefix);
        cr_assert_not_null(strstr(out, want), "the example does not load %s:\n%s", want, out);
    }
    snprintf(cmd, sizeof cmd, "cd '%s' && ./mlp --quick --threads 1", dir);
    rc = sh(cmd, log);
    slurp(log, out, sizeof out);
    cr_assert_eq(rc, 0, "the installed example exited with %d:\n%s", rc, out);
    double acc = value_after(out, "held-out accuracy:");
    cr_assert_gt(acc, 0.9, "held-out accuracy %.4f (-1: missing):\n%s", acc, out);

    /* a static link: liboryx.a with the private libraries of the .pc */
    snprintf(cmd, sizeof cmd,
             "P='%s' && cd '%s' && cc %s 02_mlp_classifier.c -o mlp_static $(%s --cflags oryx) -Wl,-Bstatic -loryx "
             "-Wl,-Bdynamic $(%s --static --libs oryx) && ./mlp_static --quick --threads 1",
             prefix, dir, sanflags, pkg, pkg);
    rc = sh(cmd, log);
    slurp(log, out, sizeof out);
    cr_assert_eq(rc, 0, "the statically linked example failed (%d):\n%s", rc, out);
    cr_assert_gt(value_after(out, "held-out accuracy:"), 0.9, "%s", out);

    /* every installed header, included as <oryx/...>, compiles on its own terms */
    snprintf(cmd, sizeof cmd,
             "P='%s' && cd \"$P/include\" && for h in $(find oryx -name '*.h' | sort); do echo \"#include <$h>\"; "
             "done > '%s/all.c' && echo 'int main(void) { return 0; }' >> '%s/all.c' && grep -c include '%s/all.c' && "
             "cc -std=c11 -pedantic -Wall -Wextra -Werror -c '%s/all.c' -o '%s/all.o' $(%s --cflags oryx)",
             prefix, dir, dir, dir, dir, dir, pkg);
    rc = sh(cmd, log);
    slurp(log, out, sizeof out);
    cr_assert_eq(rc, 0, "the installed headers do not compile:\n%s", out);
    cr_assert_gt(atoi(out), 30, "only %d headers installed", atoi(out));

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_neq(access(dir, F_OK), 0, "%s was not removed", dir);
}
