/* status.c - names of the status codes. */
#include "tensor/status.h"
#include "tensor/version.h"

const char *ox_status_string(ox_status s)
{
    switch (s) {
    case OX_OK: return "ok";
    case OX_ERR_NOMEM: return "out of memory";
    case OX_ERR_SHAPE: return "shape mismatch";
    case OX_ERR_DTYPE: return "wrong dtype";
    case OX_ERR_ARG: return "bad argument";
    case OX_ERR_IO: return "i/o error";
    case OX_ERR_FORMAT: return "malformed file";
    case OX_ERR_STATE: return "invalid state";
    case OX_ERR_NUMERIC: return "non-finite value";
    case OX_ERR_INTERRUPTED: return "interrupted";
    case OX_ERR_MISMATCH: return "values disagree";
    }
    return "unknown status";
}

const char *ox_version_string(void) { return OX_VERSION_STRING; }
