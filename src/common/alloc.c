/* alloc.c - the counted allocator. Every allocation goes through here so that peak host memory of the
 * engine and the tools can be reported. Sizes are passed back on free (no hidden header). */
#include <stdlib.h>
#include <string.h>
#include "umoe/common.h"

static size_t g_current, g_peak;

static void count(size_t add, size_t sub) {
#pragma omp critical(umoe_alloc)
    {
        g_current = g_current + add - sub;
        if (g_current > g_peak) g_peak = g_current;
    }
}

void *umoe_malloc(size_t bytes, const char *what) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) umoe_panic(__FILE__, __LINE__, "out of memory allocating %zu bytes for %s", bytes, what);
    count(bytes, 0);
    return p;
}

void *umoe_calloc(size_t n, size_t size, const char *what) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) umoe_panic(__FILE__, __LINE__, "out of memory allocating %zu x %zu bytes for %s", n, size, what);
    count(n * size, 0);
    return p;
}

void *umoe_realloc(void *p, size_t old_bytes, size_t new_bytes, const char *what) {
    void *q = realloc(p, new_bytes ? new_bytes : 1);
    if (!q) umoe_panic(__FILE__, __LINE__, "out of memory growing %s to %zu bytes", what, new_bytes);
    count(new_bytes, old_bytes);
    return q;
}

void umoe_free(void *p, size_t bytes) {
    if (!p) return;
    free(p);
    count(0, bytes);
}

size_t umoe_alloc_current(void) { return g_current; }
size_t umoe_alloc_peak(void) { return g_peak; }
