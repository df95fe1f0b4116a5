/* safetensors_util.h - file helpers shared by tests/test_safetensors.c, test_safetensors_malformed.c and
 * test_safetensors_golden.c: a temporary directory and its removal, directory entry counts, reading and
 * writing whole files, a hand-made safetensors file, and the bit pattern of a float. */
#ifndef OX_TEST_SAFETENSORS_UTIL_H
#define OX_TEST_SAFETENSORS_UTIL_H

#include "test_util.h"
#include "tensor/safetensors.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOLDEN "tests/data/golden/"

/* ---- file helpers ---- */

static inline void make_tmpdir(char *dir)
{
    strcpy(dir, "/tmp/ox_st_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

/* Removes dir and what it holds (files, and directories one level down). */
static inline void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
            continue;   /* a path this long is not one the tests made */
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Number of directory entries of dir (without . and ..), and how many have ".tmp." in their name. */
static inline int count_entries(const char *dir, int *n_tmp)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    int n = 0;
    *n_tmp = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        n++;
        if (strstr(e->d_name, ".tmp."))
            (*n_tmp)++;
    }
    closedir(d);
    return n;
}

static inline unsigned char *read_all(const char *path, long *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)*len + 1);
    cr_assert_eq(fread(buf, 1, (size_t)*len, f), (size_t)*len);
    fclose(f);
    return buf;
}

static inline void write_bytes(const char *path, const void *buf, long len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
}

/* A hand-made safetensors file: N = strlen(header), the header, then data_len bytes; byte i of the data
 * is the byte i of the float sequence 0, 0.5, 1, 1.5, ... */
static inline void write_st(const char *path, const char *header, long data_len)
{
    uint64_t n = strlen(header);
    long len = 8 + (long)n + data_len;
    unsigned char *buf = calloc(1, (size_t)len + 4);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(n >> (8 * i));
    memcpy(buf + 8, header, n);
    for (long i = 0; i < (data_len + 3) / 4; i++) {
        float v = 0.5f * (float)i;
        memcpy(buf + 8 + n + 4 * i, &v, 4);
    }
    write_bytes(path, buf, len);
    free(buf);
}

static inline uint32_t bits_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

#endif
