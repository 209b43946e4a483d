/* trace_chrome.c - sim_trace_write_chrome: a recorded pipeline run as a Chrome-trace / Perfetto JSON file
 * (the "Trace Event Format": an object with "traceEvents", complete events "ph":"X" with ts and dur in
 * microseconds). One process per device (pid = tid = device index, named "device d"), one "X" event per
 * op named like "F mb3 c1" (kind, micro-batch, chunk; for DualPipe the chunk is the direction), category
 * = the kind. The step's makespan and bubble go to "otherData". Written atomically (umoe_write_atomic).
 * Open it in https://ui.perfetto.dev or chrome://tracing.
 * Does not: record communication or anything outside the pipeline ops. */
#include "umoe/sim.h"
#include "trace_buf.h"

umoe_status sim_trace_write_chrome(const char *path, const sim_pipeline_result *p, const char *title) {
    if (!p || !p->events || p->n_events < 1)
        return umoe_fail("%s: no recorded pipeline events to write (run sim_pipeline_run with record = 1)",
                         path ? path : "(null)");
    trace_buf t;
    trace_buf_init(&t);
    int nd = trace_n_devices(p);
    trace_buf_printf(&t, "{\"displayTimeUnit\": \"ms\",\n\"otherData\": {\"title\": \"");
    trace_buf_json_str(&t, title);
    trace_buf_printf(&t, "\", \"makespan_s\": %.9g, \"bubble_frac\": %.6f, \"devices\": %d, \"ops\": %d},\n",
                     p->makespan, p->bubble_frac, nd, p->n_events);
    trace_buf_printf(&t, "\"traceEvents\": [\n");
    for (int d = 0; d < nd; d++) {
        trace_buf_printf(&t, "{\"name\": \"process_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, "
                             "\"args\": {\"name\": \"device %d\"}},\n", d, d, d);
        trace_buf_printf(&t, "{\"name\": \"process_sort_index\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, "
                             "\"args\": {\"sort_index\": %d}},\n", d, d, d);
        trace_buf_printf(&t, "{\"name\": \"thread_name\", \"ph\": \"M\", \"pid\": %d, \"tid\": %d, "
                             "\"args\": {\"name\": \"device %d\"}},\n", d, d, d);
    }
    for (int i = 0; i < p->n_events; i++) {
        const sim_event *e = &p->events[i];
        char name[64];
        trace_event_name(e, name, sizeof name);
        trace_buf_printf(&t, "{\"name\": \"%s\", \"cat\": \"%c\", \"ph\": \"X\", \"ts\": %.3f, \"dur\": %.3f, "
                             "\"pid\": %d, \"tid\": %d, \"args\": {\"mb\": %d, \"chunk\": %d}}%s\n",
                         name, e->kind, e->t0 * 1e6, (e->t1 - e->t0) * 1e6, e->device, e->device, e->mb, e->chunk,
                         i + 1 < p->n_events ? "," : "");
    }
    trace_buf_printf(&t, "]}\n");
    umoe_status st = umoe_write_atomic(path, t.p, t.len);
    trace_buf_free(&t);
    return st;
}
