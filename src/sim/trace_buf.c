/* trace_buf.c - growable text buffer for the timeline writers (trace_chrome.c, trace_svg.c), with JSON
 * and XML escaping. Every allocation goes through the counted allocator.
 * Does not: know either output format beyond escaping. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "umoe/common.h"
#include "trace_buf.h"

void trace_buf_init(trace_buf *t) {
    t->cap = 1 << 16;
    t->len = 0;
    t->p = umoe_malloc(t->cap, "trace text");
    t->p[0] = 0;
}

void trace_buf_free(trace_buf *t) {
    if (t->p) umoe_free(t->p, t->cap);
    t->p = NULL;
    t->len = t->cap = 0;
}

static void trace_buf_reserve(trace_buf *t, size_t extra) {
    if (t->len + extra + 1 <= t->cap) return;
    size_t cap = t->cap;
    while (t->len + extra + 1 > cap) cap *= 2;
    t->p = umoe_realloc(t->p, t->cap, cap, "trace text");
    t->cap = cap;
}

void trace_buf_printf(trace_buf *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    UMOE_ASSERT(n >= 0);
    if (t->len + (size_t)n + 1 > t->cap) {
        trace_buf_reserve(t, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
    }
    t->len += (size_t)n;
}

void trace_buf_json_str(trace_buf *t, const char *s) {
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\') trace_buf_printf(t, "\\%c", *c);
        else if (*c < 0x20) trace_buf_printf(t, "\\u%04x", *c);
        else trace_buf_printf(t, "%c", *c);
    }
}

void trace_buf_xml_str(trace_buf *t, const char *s) {
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        switch (*c) {
        case '&': trace_buf_printf(t, "&amp;"); break;
        case '<': trace_buf_printf(t, "&lt;"); break;
        case '>': trace_buf_printf(t, "&gt;"); break;
        case '"': trace_buf_printf(t, "&quot;"); break;
        default:
            if (*c < 0x20 && *c != '\t' && *c != '\n') trace_buf_printf(t, " "); /* not allowed in XML 1.0 */
            else trace_buf_printf(t, "%c", *c);
        }
    }
}

int trace_n_devices(const sim_pipeline_result *p) {
    int n = 0;
    for (int i = 0; i < p->n_events; i++)
        if (p->events[i].device + 1 > n) n = p->events[i].device + 1;
    return n;
}

void trace_event_name(const sim_event *e, char *out, size_t n) {
    snprintf(out, n, "%c mb%d c%d", e->kind, e->mb, e->chunk);
}
