/* trace_buf.h - private to src/sim/trace_*.c: a growable text buffer (counted allocator) that the
 * timeline writers fill and then hand to umoe_write_atomic, plus the few helpers both writers share.
 * Does not: write files itself. */
#ifndef UMOE_SIM_TRACE_BUF_H
#define UMOE_SIM_TRACE_BUF_H
#include <stddef.h>
#include "umoe/sim.h"

typedef struct { char *p; size_t len, cap; } trace_buf;

void trace_buf_init(trace_buf *t);
void trace_buf_free(trace_buf *t);
void trace_buf_printf(trace_buf *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s escaped for a JSON string body (no quotes added). */
void trace_buf_json_str(trace_buf *t, const char *s);
/* Append s escaped for XML text or an attribute value. */
void trace_buf_xml_str(trace_buf *t, const char *s);
/* Number of devices of a recorded run (1 + the largest device index), 0 when there are no events. */
int trace_n_devices(const sim_pipeline_result *p);
/* "F mb3 c1": kind, micro-batch, chunk (model chunk; DualPipe: direction). */
void trace_event_name(const sim_event *e, char *out, size_t n);
#endif
