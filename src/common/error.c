/* error.c - the recoverable-error buffer and the fatal panic used by UMOE_ASSERT / UMOE_CHECK. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "umoe/common.h"

char umoe_err[UMOE_ERRLEN];

umoe_status umoe_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(umoe_err, sizeof umoe_err, fmt, ap);
    va_end(ap);
    return UMOE_EINPUT;
}

void umoe_panic(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "umoe: internal error at %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    abort();
}
