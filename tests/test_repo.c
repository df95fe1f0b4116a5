/* test_repo.c - checks on the repository itself rather than on the library: the math contract's citations
 * resolve, the build's header dependencies are the compiler's, and the dependency script asks for nothing
 * when everything is installed.
 *
 * 1. Every citation of the contract, "MODELS N", "MODELS N.M", "MODELS.md N.M", "MODELS.md section(s) N.M",
 *    with an optional range end ("5.4-5.5") and an optional "item K" after section N, in any source, test,
 *    bench, example, script, Makefile or Markdown file of the repository, names a heading of docs/MODELS.md
 *    ("## N." or "### N.M") and, for "item K", a numbered item "K." of that section. The checker is first run
 *    on text with known bad citations, so a checker that accepts everything fails the test.
 * 2. The objects of library sources depend on no test header (their .d files, written by -MMD, name none):
 *    touching a test helper rebuilds only tests.
 * 3. scripts/deps.sh with every package installed exits 0 without running apt-get: an apt-get earlier on PATH
 *    records that it was called.
 *
 * `make test-run` runs the tests from the repository root and passes OX_BUILD (the build folder). */
#include "test_util.h"

#include <dirent.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the contract's headings and items ---- */

#define MAX_HEADINGS 256
#define MAX_ITEMS 64

typedef struct contract {
    char heading[MAX_HEADINGS][16];   /* "7", "7.6", ... */
    int n_heading;
    int items[MAX_HEADINGS][MAX_ITEMS]; /* numbered items "K." inside top-level section heading[i] */
    int n_items[MAX_HEADINGS];
} contract;

static char *slurp_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_not_null(s);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static int find_heading(const contract *c, const char *num)
{
    for (int i = 0; i < c->n_heading; i++)
        if (!strcmp(c->heading[i], num))
            return i;
    return -1;
}

/* Reads "## N. title" and "### N.M title" lines, and the "K. " items of each top-level section. */
static void read_contract(const char *text, contract *c)
{
    memset(c, 0, sizeof *c);
    int section = -1;
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        char num[16];
        int len = 0;
        if (sscanf(line, "## %15[0-9]. %n", num, &len) == 1 && len > 0) {
            cr_assert_lt(c->n_heading, MAX_HEADINGS);
            section = c->n_heading;
            snprintf(c->heading[c->n_heading++], 16, "%s", num);
        } else if (sscanf(line, "### %15[0-9.] %n", num, &len) == 1 && len > 0) {
            cr_assert_lt(c->n_heading, MAX_HEADINGS);
            snprintf(c->heading[c->n_heading++], 16, "%s", num);
        } else if (section >= 0 && line[0] >= '1' && line[0] <= '9') {
            int k, klen = 0;
            if (sscanf(line, "%d. %n", &k, &klen) == 1 && klen > 0 && c->n_items[section] < MAX_ITEMS)
                c->items[section][c->n_items[section]++] = k;
        }
    }
}

/* Counts the citations in text that name no heading (or no item); reports each on stderr with `where`
 * (NULL: silently). Adds the number of citations seen to *seen. */
static int bad_citations(const contract *c, const char *text, const char *where, int *seen)
{
    regex_t re;
    const char *pat = "MODELS(\\.md)?( sections?| §)? ([0-9]+(\\.[0-9]+)?)(-([0-9]+(\\.[0-9]+)?))?"
                      "( item ([0-9]+))?";
    cr_assert_eq(regcomp(&re, pat, REG_EXTENDED), 0);
    regmatch_t m[10];
    int bad = 0;
    for (const char *p = text; regexec(&re, p, 10, m, p == text ? 0 : REG_NOTBOL) == 0; p += m[0].rm_eo) {
        char num[16], end[16] = "";
        int nlen = (int)(m[3].rm_eo - m[3].rm_so);
        snprintf(num, sizeof num, "%.*s", nlen < 15 ? nlen : 15, p + m[3].rm_so);
        if (m[6].rm_so >= 0) {
            int elen = (int)(m[6].rm_eo - m[6].rm_so);
            snprintf(end, sizeof end, "%.*s", elen < 15 ? elen : 15, p + m[6].rm_so);
        }
        (*seen)++;
        int h = find_heading(c, num);
        if (h < 0 || (end[0] && find_heading(c, end) < 0)) {
            if (where)
                fprintf(stderr, "%s: \"%.*s\" names no heading of docs/MODELS.md\n", where,
                        (int)(m[0].rm_eo - m[0].rm_so), p + m[0].rm_so);
            bad++;
            continue;
        }
        if (m[9].rm_so >= 0) {
            int k = atoi(p + m[9].rm_so), found = 0;
            for (int i = 0; i < c->n_items[h]; i++)
                found |= c->items[h][i] == k;
            if (!strchr(num, '.') && !found) {
                if (where)
                    fprintf(stderr, "%s: \"%.*s\": section %s has no item %d\n", where,
                            (int)(m[0].rm_eo - m[0].rm_so), p + m[0].rm_so, num, k);
                bad++;
            }
        }
    }
    regfree(&re);
    return bad;
}

static int cited_kind(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!strcmp(name, "Makefile"))
        return 1;
    return dot && (!strcmp(dot, ".c") || !strcmp(dot, ".h") || !strcmp(dot, ".md") || !strcmp(dot, ".sh") ||
                   !strcmp(dot, ".in"));
}

/* Walks dir (relative to the repository root), skipping build output, runs and .git. */
static void walk(const contract *c, const char *dir, int *bad, int *seen, int *files)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (n[0] == '.' && strcmp(n, ".ci"))
            continue;
        if (!strcmp(dir, ".") && (!strcmp(n, "build") || !strcmp(n, "bin") || !strcmp(n, "runs") ||
                                  !strcmp(n, "data")))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, n);
        struct stat st;
        if (lstat(path, &st))
            continue;
        if (S_ISDIR(st.st_mode)) {
            walk(c, path, bad, seen, files);
        } else if (S_ISREG(st.st_mode) && cited_kind(n)) {
            char *text = slurp_file(path);
            cr_assert_not_null(text, "cannot read %s", path);
            *bad += bad_citations(c, text, path, seen);
            (*files)++;
            free(text);
        }
    }
    closedir(d);
}

Test(repo, models_citations_name_existing_headings)
{
    char *text = slurp_file("docs/MODELS.md");
    cr_assert_not_null(text, "docs/MODELS.md is missing (the tests run from the repository root)");
    contract *c = malloc(sizeof *c);
    cr_assert_not_null(c);
    read_contract(text, c);
    free(text);
    cr_assert_geq(c->n_heading, 40, "only %d headings read from docs/MODELS.md", c->n_heading);
    int h11 = find_heading(c, "11");
    cr_assert_geq(h11, 0);
    cr_assert_geq(c->n_items[h11], 20, "section 11 lists %d numbered items", c->n_items[h11]);

    /* the checker itself: known good and known bad citations */
    int seen = 0;
    cr_assert_eq(bad_citations(c, "see MODELS 7.6, MODELS.md section 5, MODELS 11 item 10 and MODELS 12.3.",
                               NULL, &seen), 0);
    cr_assert_eq(seen, 4);
    seen = 0;
    /* (spelt in pieces so that the walk below does not find them in this file) */
    cr_assert_eq(bad_citations(c, "MODEL" "S 99 / MODEL" "S 7.9 / MODEL" "S.md sections 5.4-5.9 / MODEL" "S 11 item 77",
                               NULL, &seen), 4);

    int bad = 0, files = 0;
    seen = 0;
    walk(c, ".", &bad, &seen, &files);
    free(c);
    cr_assert_geq(files, 100, "only %d files read", files);
    cr_assert_geq(seen, 150, "only %d citations found: the pattern no longer matches how the code cites", seen);
    cr_assert_eq(bad, 0, "%d of %d citations name no heading of docs/MODELS.md (listed above)", bad, seen);
}

/* ---- build dependencies ---- */

static void check_no_test_header(const char *dir, int *objects)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t n = strlen(e->d_name);
        if (n > 2 && !strcmp(e->d_name + n - 2, ".d")) {
            char *deps = slurp_file(path);
            cr_assert_not_null(deps);
            cr_assert_null(strstr(deps, "tests/"), "%s: a library object depends on a test header", path);
            cr_assert_not_null(strstr(deps, ".h"), "%s names no header", path);
            (*objects)++;
            free(deps);
        }
    }
    closedir(d);
}

Test(repo, library_objects_depend_on_no_test_header)
{
    const char *build = getenv("OX_BUILD");
    if (!build || !*build)
        build = "build";
    const char *dirs[] = {"tensor", "autograd", "nn", "optim", "models/oryx", "plot"};
    int objects = 0;
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/obj/%s", build, dirs[i]);
        check_no_test_header(dir, &objects);
    }
    cr_assert_geq(objects, 50, "%d dependency files found under %s/obj (the build writes them with -MMD)",
                  objects, build);
}

/* ---- the dependency script ---- */

Test(repo, deps_script_runs_no_apt_get_when_everything_is_installed)
{
    char dir[] = "/tmp/oryx-deps-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char fake[256], mark[256], cmd[2048];
    snprintf(fake, sizeof fake, "%s/apt-get", dir);
    snprintf(mark, sizeof mark, "%s/called", dir);
    FILE *f = fopen(fake, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\necho \"$@\" >> '%s'\nexit 1\n", mark);
    fclose(f);
    cr_assert_eq(chmod(fake, 0755), 0);
    snprintf(cmd, sizeof cmd, "PATH='%s':\"$PATH\" sh scripts/deps.sh > '%s/out' 2>&1", dir, dir);
    int st = system(cmd);
    int called = access(mark, F_OK) == 0;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(st, 0, "scripts/deps.sh failed although make test-run needs every package installed");
    cr_assert_not(called, "scripts/deps.sh ran apt-get although every package is installed");
}
