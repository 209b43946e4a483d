/* stats.c - small statistics over measured samples: the median (of timings, rates, ratios), used by the
 * bench, the engine validation and the benchmarks.
 * Does not: interpolate quantiles other than the median. */
#include <stdlib.h>
#include "umoe/common.h"

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double umoe_median(double *v, int n) {
    if (n <= 0) return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
