/* cli_util.h - helpers shared by the tests that run the bin/oryx program (test_cli.c, test_cli_plot.c): a
 * temporary folder per test, running the program (OX_ORYX_BIN, default bin/oryx) with its stdout and stderr
 * captured in files, reading them back, and the bad-input check (exit code, exactly one line on stderr).
 * The tests run from the repository root (make test-run). */
#ifndef OX_TESTS_CLI_UTIL_H
#define OX_TESTS_CLI_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

extern char **environ;

static inline const char *oryx_bin(void)
{
    const char *b = getenv("OX_ORYX_BIN");
    return b && *b ? b : "bin/oryx";
}

/* A fresh temporary folder (removed by cleanup_dir). */
static inline void make_tmp(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/oryx-cli-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static inline void cleanup_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

static inline int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static inline char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

static inline void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static inline void write_string(const char *path, const char *text)
{
    write_file(path, text, strlen(text));
}

static inline int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Starts bin/oryx with args (NULL-terminated, without the program name), its stdout and stderr going to
 * <dir>/<stem>out.txt and <dir>/<stem>err.txt; returns its pid. */
static inline pid_t spawn_oryx(const char *dir, const char *const *args, const char *stem)
{
    char out[512], err[512];
    snprintf(out, sizeof out, "%s/%sout.txt", dir, stem);
    snprintf(err, sizeof err, "%s/%serr.txt", dir, stem);
    const char *argv[64];
    int n = 0;
    argv[n++] = oryx_bin();
    while (*args)
        argv[n++] = *args++;
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot run %s: %s (build it with make build-all)", argv[0], strerror(rc));
    return pid;
}

/* Runs bin/oryx with args (NULL-terminated, without the program name); stdout and stderr go to
 * <dir>/out.txt and <dir>/err.txt. Returns the exit code (128 + signal if killed). */
static inline int run_oryx(const char *dir, const char *const *args)
{
    pid_t pid = spawn_oryx(dir, args, "");
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static inline char *out_of(const char *dir, const char *which)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s.txt", dir, which);
    return read_all(p);
}

/* The text the tiny runs train on: the first n bytes of the bundled Shakespeare. */
static inline void write_text(const char *path, size_t n)
{
    FILE *f = fopen("data/tinyshakespeare.txt", "rb");
    cr_assert_not_null(f, "the tests run from the repo root (data/tinyshakespeare.txt)");
    char *buf = malloc(n);
    cr_assert_eq(fread(buf, 1, n, f), n);
    fclose(f);
    write_file(path, buf, n);
    free(buf);
}

static inline void expect_error(const char *dir, const char *const *args, int code)
{
    int rc = run_oryx(dir, args);
    char *err = out_of(dir, "err");
    size_t len = strlen(err);
    int nl = 0;
    for (size_t i = 0; i < len; i++)
        nl += err[i] == '\n';
    cr_assert_eq(rc, code, "oryx %s %s: exit %d, want %d (stderr: %s)", args[0], args[1] ? args[1] : "", rc, code,
                 err);
    cr_assert(len > 12 && nl == 1 && err[len - 1] == '\n', "stderr must be one line, got '%s'", err);
    cr_assert(strncmp(err, "oryx ", 5) == 0 || strncmp(err, "oryx: ", 6) == 0, "%s", err);
    free(err);
}

#endif
