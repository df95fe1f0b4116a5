/* io.h - the file handling every reader and writer of the library shares, so that bad input gets one clear
 * error and a failed or killed process never destroys a file it was replacing.
 *
 *  - Inputs must be regular files: ox_io_open_regular opens without blocking (a FIFO given as a data file
 *    would otherwise wait forever for a writer) and refuses a directory, FIFO, socket or device by name.
 *  - Outputs are replaced atomically: ox_io_atomic_open writes to "<path>.tmp.<pid>" (after removing the
 *    temporaries "<path>.tmp.<pid2>" of processes that no longer exist), ox_io_atomic_commit flushes,
 *    fsyncs, renames it over path and fsyncs the folder. At every instant path holds either the old or the
 *    new complete file.
 *  - One process per output: ox_io_lock takes an flock on a lock file; the kernel releases it when the
 *    holder exits or is killed, so a lock is never stale.
 *  - A test hook: ox_io_set_hook installs a function called after each write (flush), fsync and rename of
 *    an atomic replacement, so a test can end the process at each of those instants in turn.
 *
 *   ox_io_atomic w;
 *   if (ox_io_atomic_open(ctx, &w, "run/loss.csv") == OX_OK) {
 *       fprintf(w.fp, "step,loss\n");
 *       ox_io_atomic_commit(ctx, &w);          // or ox_io_atomic_abort(&w) to leave the old file alone
 *   }
 */
#ifndef OX_IO_H
#define OX_IO_H

#include <stdint.h>
#include <stdio.h>

#include "tensor/ctx.h"

/* Opens path read-only and checks that it is a regular file (what names it in the message, e.g. "data
 * file"). Returns a blocking descriptor (close it), or -1 with OX_ERR_IO recorded: "data file 'x' is a
 * FIFO, not a regular file", "cannot open data file 'x': No such file or directory". */
int ox_io_open_regular(ox_ctx *ctx, const char *path, const char *what);

/* The same as a stdio stream ("rb"); NULL with the error recorded. */
FILE *ox_io_fopen_regular(ox_ctx *ctx, const char *path, const char *what);

/* The whole of a regular file: *data (ox_free; one spare byte after the end holds 0) and *len.
 * An empty file is an error (OX_ERR_FORMAT, "... is empty") unless allow_empty. */
ox_status ox_io_read_file(ox_ctx *ctx, const char *path, const char *what, int allow_empty, uint8_t **data,
                          int64_t *len);

/* An atomic replacement in progress: write to fp, then commit or abort. */
typedef struct ox_io_atomic {
    FILE *fp;           /* open on tmp, "wb" */
    char *path;         /* owned copy of the destination */
    char *tmp;          /* owned: "<path>.tmp.<pid>" */
} ox_io_atomic;

/* Removes stale temporaries of path (see above), then creates the temporary file. On error (OX_ERR_IO,
 * OX_ERR_NOMEM) w is empty and nothing needs aborting. */
ox_status ox_io_atomic_open(ox_ctx *ctx, ox_io_atomic *w, const char *path);
/* Flush, fsync, close, rename over the destination, fsync its folder. On any failure the temporary is
 * removed, the destination is untouched and OX_ERR_IO names the path and the system's reason. w is empty
 * afterwards either way. */
ox_status ox_io_atomic_commit(ox_ctx *ctx, ox_io_atomic *w);
/* Closes and removes the temporary; the destination is untouched. NULL-safe, idempotent. */
void ox_io_atomic_abort(ox_io_atomic *w);

/* Removes "<path>.tmp.<pid>" files next to path whose process no longer exists (never this process's).
 * Returns how many were removed. Called by ox_io_atomic_open. */
int ox_io_remove_stale_temps(const char *path);

/* Takes an exclusive lock on lock_path (created if absent, then holding the holder's pid). *fd receives the
 * descriptor to keep open while the output is in use (ox_io_unlock, or process exit, releases it).
 * OX_ERR_STATE when another process holds it: "'run/x.lock' is held by another process (pid 123)". */
ox_status ox_io_lock(ox_ctx *ctx, const char *lock_path, int *fd);
void ox_io_unlock(int fd);

/* The instants of an atomic replacement the hook is called at. */
typedef enum ox_io_event {
    OX_IO_WRITTEN = 0,  /* the temporary's data is flushed to the kernel */
    OX_IO_SYNCED,       /* ... and fsync'ed */
    OX_IO_RENAMED       /* ... and renamed over the destination */
} ox_io_event;

typedef void (*ox_io_hook)(ox_io_event ev, const char *path, void *user);
/* Process-wide; NULL removes it. For tests (cli: the ORYX_TEST_EXIT_AFTER_IO variable). */
void ox_io_set_hook(ox_io_hook hook, void *user);
/* A name for an event: "write", "fsync", "rename". */
const char *ox_io_event_name(ox_io_event ev);

#endif
