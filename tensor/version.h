/* version.h - version of the Oryx library (liboryx), as numbers a program can test at compile time.
 * The shared library's SONAME carries OX_VERSION_MAJOR; ox_version_string() returns the run-time value. */
#ifndef OX_VERSION_H
#define OX_VERSION_H

#define OX_VERSION_MAJOR 0
#define OX_VERSION_MINOR 1
#define OX_VERSION_PATCH 0
#define OX_VERSION_STRING "0.1.0"

/* The version of the library actually linked (may differ from the header's macros). */
const char *ox_version_string(void);

#endif
