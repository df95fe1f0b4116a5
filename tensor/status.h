/* status.h - the status codes every fallible library call returns (or leaves in its ox_ctx).
 *
 * The library never prints and never exits. A call that fails returns a status (or NULL) and leaves a
 * one-line message in its context: ox_ctx_message(ctx). Programs print that line and exit non-zero. */
#ifndef OX_STATUS_H
#define OX_STATUS_H

typedef enum ox_status {
    OX_OK = 0,          /* success */
    OX_ERR_NOMEM,       /* an allocation failed */
    OX_ERR_SHAPE,       /* tensor shapes do not fit the operation (the message names both shapes) */
    OX_ERR_DTYPE,       /* wrong element type (e.g. I32 where F32 is needed) */
    OX_ERR_ARG,         /* an argument is out of range (axis, size, count, flag value) */
    OX_ERR_IO,          /* a file could not be opened, read, written or renamed */
    OX_ERR_FORMAT,      /* a file is malformed (bad header, offsets, JSON, ...) */
    OX_ERR_STATE,       /* the call is not valid in the current state (e.g. backward twice) */
    OX_ERR_NUMERIC,     /* a NaN or Inf was found where finite numbers are required */
    OX_ERR_INTERRUPTED, /* the caller asked to stop */
    OX_ERR_MISMATCH     /* computed values disagree with a reference beyond the tolerance (e.g. gradcheck) */
} ox_status;

/* A short constant name for a status, e.g. "shape mismatch". Never NULL. */
const char *ox_status_string(ox_status s);

#endif
