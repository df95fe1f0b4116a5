/* io.c - regular-file inputs, atomic replacement of outputs, output locks and the save test hook (io.h). */
#include "tensor/io.h"
#include "tensor/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static ox_io_hook g_hook;
static void *g_hook_user;

void ox_io_set_hook(ox_io_hook hook, void *user)
{
    g_hook = hook;
    g_hook_user = user;
}

const char *ox_io_event_name(ox_io_event ev)
{
    switch (ev) {
    case OX_IO_WRITTEN: return "write";
    case OX_IO_SYNCED: return "fsync";
    case OX_IO_RENAMED: return "rename";
    }
    return "?";
}

static void event(ox_io_event ev, const char *path)
{
    if (g_hook)
        g_hook(ev, path, g_hook_user);
}

static const char *kind_name(mode_t m)
{
    if (S_ISDIR(m))
        return "a directory";
    if (S_ISFIFO(m))
        return "a FIFO";
    if (S_ISSOCK(m))
        return "a socket";
    if (S_ISCHR(m) || S_ISBLK(m))
        return "a device";
    return "not a regular file";
}

/* ---- inputs ----------------------------------------------------------------------------------------------- */

int ox_io_open_regular(ox_ctx *ctx, const char *path, const char *what)
{
    if (ctx->status)
        return -1;
    if (!path || !*path || !what) {
        ox_ctx_fail(ctx, OX_ERR_ARG, "open: the path and what it is must be given");
        return -1;
    }
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        ox_ctx_fail(ctx, OX_ERR_IO, "cannot open %s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        ox_ctx_fail(ctx, OX_ERR_IO, "%s '%s' cannot be examined: %s", what, path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        const char *k = kind_name(st.st_mode);
        ox_ctx_fail(ctx, OX_ERR_IO, "%s '%s' is %s%s", what, path, k,
                    strcmp(k, "not a regular file") ? ", not a regular file" : "");
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        ox_ctx_fail(ctx, OX_ERR_IO, "%s '%s': %s", what, path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

FILE *ox_io_fopen_regular(ox_ctx *ctx, const char *path, const char *what)
{
    int fd = ox_io_open_regular(ctx, path, what);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        ox_ctx_fail(ctx, OX_ERR_IO, "%s '%s': %s", what, path, strerror(errno));
        close(fd);
    }
    return f;
}

ox_status ox_io_read_file(ox_ctx *ctx, const char *path, const char *what, int allow_empty, uint8_t **data,
                          int64_t *len)
{
    if (!data || !len)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "read file: data and len must not be NULL");
    *data = NULL;
    *len = 0;
    int fd = ox_io_open_regular(ctx, path, what);
    if (fd < 0)
        return ctx->status;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return ox_ctx_fail(ctx, OX_ERR_IO, "%s '%s' cannot be examined: %s", what, path, strerror(errno));
    }
    int64_t n = (int64_t)st.st_size;
    if (n == 0 && !allow_empty) {
        close(fd);
        return ox_ctx_fail(ctx, OX_ERR_FORMAT, "%s '%s' is empty", what, path);
    }
    uint8_t *buf = ox_malloc((size_t)n + 1);
    if (!buf) {
        close(fd);
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s '%s': out of memory for %lld bytes", what, path, (long long)n);
    }
    int64_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, (size_t)(n - got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int err = r < 0 ? errno : 0;
            close(fd);
            ox_free(buf);
            return ox_ctx_fail(ctx, OX_ERR_IO, "%s '%s': read %lld of %lld bytes%s%s", what, path, (long long)got,
                               (long long)n, err ? ": " : " (the file shrank)", err ? strerror(err) : "");
        }
        got += r;
    }
    close(fd);
    buf[n] = 0;
    *data = buf;
    *len = n;
    return OX_OK;
}

/* ---- atomic replacement ----------------------------------------------------------------------------------- */

/* The folder of path (into dir, of size >= strlen(path) + 2) and the position of its base name. */
static const char *split_dir(const char *path, char *dir)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
        return path;
    }
    size_t n = (size_t)(slash - path);
    if (n == 0)
        n = 1;  /* "/name": the root */
    memcpy(dir, path, n);
    dir[n] = 0;
    return slash + 1;
}

int ox_io_remove_stale_temps(const char *path)
{
    if (!path || !*path)
        return 0;
    char *dir = ox_malloc(strlen(path) + 2);
    if (!dir)
        return 0;
    const char *base = split_dir(path, dir);
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    int removed = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp.", 5) != 0)
            continue;
        const char *digits = n + bl + 5;
        char *end;
        errno = 0;
        long pid = strtol(digits, &end, 10);
        if (end == digits || *end || errno || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;   /* alive (or not ours to judge) */
        size_t dl = strlen(dir), nl = strlen(n);
        char *full = ox_malloc(dl + nl + 2);
        if (!full)
            break;
        memcpy(full, dir, dl);
        full[dl] = '/';
        memcpy(full + dl + 1, n, nl + 1);
        removed += unlink(full) == 0;
        ox_free(full);
    }
    if (d)
        closedir(d);
    ox_free(dir);
    return removed;
}

ox_status ox_io_atomic_open(ox_ctx *ctx, ox_io_atomic *w, const char *path)
{
    if (!w)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "atomic write: w must not be NULL");
    memset(w, 0, sizeof *w);
    if (ctx->status)
        return ctx->status;
    if (!path || !*path)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "atomic write: empty path");
    size_t n = strlen(path);
    w->path = ox_malloc(n + 1);
    w->tmp = ox_malloc(n + 32);
    if (!w->path || !w->tmp) {
        ox_io_atomic_abort(w);
        return ox_ctx_fail(ctx, OX_ERR_NOMEM, "%s: out of memory", path);
    }
    memcpy(w->path, path, n + 1);
    snprintf(w->tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
    ox_io_remove_stale_temps(path);
    w->fp = fopen(w->tmp, "wb");
    if (!w->fp) {
        int err = errno;
        ox_free(w->tmp);    /* nothing was created: nothing to unlink */
        w->tmp = NULL;
        ox_io_atomic_abort(w);
        return ox_ctx_fail(ctx, OX_ERR_IO, "%s: cannot create the temporary file next to it: %s", path,
                           strerror(err));
    }
    return OX_OK;
}

/* fsync of the folder holding path, so that the rename itself is durable (best effort: some file systems
 * refuse fsync on a directory). */
static void sync_dir(const char *path)
{
    char *dir = ox_malloc(strlen(path) + 2);
    if (!dir)
        return;
    split_dir(path, dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    ox_free(dir);
}

ox_status ox_io_atomic_commit(ox_ctx *ctx, ox_io_atomic *w)
{
    if (!w || !w->fp) {
        ox_io_atomic_abort(w);
        return ox_ctx_fail(ctx, OX_ERR_STATE, "atomic write: nothing open to commit");
    }
    const char *step = "write";
    int err = 0;
    errno = 0;
    if (ferror(w->fp) || fflush(w->fp) != 0)
        err = errno ? errno : EIO;
    if (!err) {
        event(OX_IO_WRITTEN, w->path);
        step = "fsync";
        if (fsync(fileno(w->fp)) != 0)
            err = errno;
    }
    if (!err)
        event(OX_IO_SYNCED, w->path);
    int cerr = fclose(w->fp) != 0 ? (errno ? errno : EIO) : 0;
    w->fp = NULL;
    if (!err && cerr) {
        err = cerr;
        step = "close";
    }
    if (!err && rename(w->tmp, w->path) != 0) {
        err = errno;
        step = "rename";
    }
    if (err) {
        if (!ctx->status)
            ox_ctx_fail(ctx, OX_ERR_IO, "%s: %s of the new file failed (%s); the previous file is kept", w->path, step,
                        strerror(err));
        ox_io_atomic_abort(w);
        return ctx->status ? ctx->status : OX_ERR_IO;
    }
    ox_free(w->tmp);    /* renamed: nothing left to remove */
    w->tmp = NULL;
    event(OX_IO_RENAMED, w->path);
    sync_dir(w->path);
    ox_io_atomic_abort(w);
    return ctx->status;
}

void ox_io_atomic_abort(ox_io_atomic *w)
{
    if (!w)
        return;
    if (w->fp)
        fclose(w->fp);
    if (w->tmp)
        unlink(w->tmp);
    ox_free(w->tmp);
    ox_free(w->path);
    memset(w, 0, sizeof *w);
}

/* ---- output locks ----------------------------------------------------------------------------------------- */

ox_status ox_io_lock(ox_ctx *ctx, const char *lock_path, int *fd)
{
    if (!fd)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "lock: fd must not be NULL");
    *fd = -1;
    if (ctx->status)
        return ctx->status;
    if (!lock_path || !*lock_path)
        return ox_ctx_fail(ctx, OX_ERR_ARG, "lock: empty path");
    int f = open(lock_path, O_RDWR | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
    if (f < 0)
        return ox_ctx_fail(ctx, OX_ERR_IO, "cannot open the lock file '%s': %s", lock_path, strerror(errno));
    struct stat st;
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return ox_ctx_fail(ctx, OX_ERR_IO, "the lock file '%s' is not a regular file", lock_path);
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char buf[32] = { 0 };
        ssize_t r = pread(f, buf, sizeof buf - 1, 0);
        close(f);
        if (err != EWOULDBLOCK)
            return ox_ctx_fail(ctx, OX_ERR_IO, "cannot lock '%s': %s", lock_path, strerror(err));
        long pid = r > 0 ? strtol(buf, NULL, 10) : 0;
        if (pid > 0)
            return ox_ctx_fail(ctx, OX_ERR_STATE, "'%s' is held by another process (pid %ld)", lock_path, pid);
        return ox_ctx_fail(ctx, OX_ERR_STATE, "'%s' is held by another process", lock_path);
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, buf, (size_t)n, 0) != n) {
        int err = errno;
        close(f);
        return ox_ctx_fail(ctx, OX_ERR_IO, "cannot write the lock file '%s': %s", lock_path, strerror(err));
    }
    *fd = f;
    return OX_OK;
}

void ox_io_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}
