/* log.c - leveled logging and rate-limited progress lines, both on stderr. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "umoe/common.h"

static int g_level = -1;

static int level(void) {
    if (g_level < 0) {
        const char *e = getenv("UMOE_LOG");
        g_level = UMOE_LOG_INFO;
        if (e && !strcmp(e, "debug")) g_level = UMOE_LOG_DEBUG;
        if (e && !strcmp(e, "warn")) g_level = UMOE_LOG_WARN;
        if (e && !strcmp(e, "error")) g_level = UMOE_LOG_ERROR;
    }
    return g_level;
}

void umoe_log_set_level(umoe_log_level lvl) { g_level = (int)lvl; }

int umoe_log_enabled(umoe_log_level lvl) { return (int)lvl >= level(); }

void umoe_log(umoe_log_level lvl, const char *fmt, ...) {
    static const char *tag[] = {"debug", "info", "warning", "error"};
    if (!umoe_log_enabled(lvl)) return;
    va_list ap;
    fprintf(stderr, "umoe: %s: ", tag[lvl]);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double umoe_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void umoe_progress_start(umoe_progress *p, const char *what, double total) {
    const char *e = getenv("UMOE_PROGRESS");
    p->what = what;
    p->total = total;
    p->t_start = p->t_last = umoe_now();
    p->enabled = e ? atoi(e) != 0 : isatty(2);
}

void umoe_progress_update(umoe_progress *p, double done) {
    if (!p->enabled) return;
    double t = umoe_now();
    if (t - p->t_last < 0.25) return;
    p->t_last = t;
    double el = t - p->t_start, frac = p->total > 0 ? done / p->total : 0;
    double eta = frac > 0 ? el * (1 - frac) / frac : 0;
    fprintf(stderr, "\r%s: %.0f/%.0f (%.1f%%) %.1fs elapsed, ETA %.1fs   ", p->what, done, p->total,
            100 * frac, el, eta);
    fflush(stderr);
}

void umoe_progress_end(umoe_progress *p) {
    if (p->enabled && p->t_last > p->t_start) fprintf(stderr, "\r%*s\r", 78, "");
}
