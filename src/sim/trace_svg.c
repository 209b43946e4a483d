/* trace_svg.c - sim_trace_write_svg: a recorded pipeline run as an SVG picture: one row per device, one
 * rect per op (class "op F|B|W", coloured by kind, the odd chunk / DualPipe's second direction in a lighter
 * shade, a <title> tooltip with name and times), the micro-batch number inside rects wide enough for it,
 * device labels, a time axis with round ticks, a legend, and the makespan and bubble under the title.
 * Written atomically (umoe_write_atomic).
 * Does not: draw communication or anything outside the pipeline ops. */
#include <math.h>
#include "umoe/sim.h"
#include "trace_buf.h"

enum { SVG_W = 1200, SVG_LEFT = 90, SVG_RIGHT = 30, SVG_TOP = 64, SVG_ROW = 22, SVG_GAP = 4 };

/* [kind][chunk parity] fill colours: F blue, B green, W orange. */
static const char *svg_fill(char kind, int chunk) {
    static const char *const c[3][2] = {{"#4e79a7", "#a0cbe8"}, {"#59a14f", "#8cd17d"}, {"#f28e2b", "#ffbe7d"}};
    int k = kind == 'F' ? 0 : kind == 'B' ? 1 : 2;
    return c[k][chunk & 1];
}

/* A round tick step (1, 2 or 5 x 10^k) giving about 8 ticks over `span`. */
static double svg_tick_step(double span) {
    double raw = span / 8.0, mag = pow(10.0, floor(log10(raw)));
    double m = raw / mag;
    return mag * (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10);
}

umoe_status sim_trace_write_svg(const char *path, const sim_pipeline_result *p, const char *title) {
    if (!p || !p->events || p->n_events < 1)
        return umoe_fail("%s: no recorded pipeline events to write (run sim_pipeline_run with record = 1)",
                         path ? path : "(null)");
    int nd = trace_n_devices(p);
    double span = p->makespan > 0 ? p->makespan : 1e-9;
    /* time unit of the axis */
    double unit = span < 1e-3 ? 1e-6 : span < 1.0 ? 1e-3 : 1.0;
    const char *uname = unit == 1e-6 ? "us" : unit == 1e-3 ? "ms" : "s";
    double plot_w = SVG_W - SVG_LEFT - SVG_RIGHT, sx = plot_w / span;
    int axis_y = SVG_TOP + nd * (SVG_ROW + SVG_GAP) + 4, height = axis_y + 44;

    trace_buf t;
    trace_buf_init(&t);
    trace_buf_printf(&t, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                         "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                         "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n",
                     SVG_W, height, SVG_W, height);
    trace_buf_printf(&t, "<rect class=\"bg\" x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
                     SVG_W, height);
    trace_buf_printf(&t, "<text x=\"%d\" y=\"20\" font-size=\"15\" font-weight=\"bold\">", SVG_LEFT);
    trace_buf_xml_str(&t, title ? title : "pipeline");
    trace_buf_printf(&t, "</text>\n<text x=\"%d\" y=\"38\">step %.6g %s, bubble %.2f%%, %d devices, %d ops</text>\n",
                     SVG_LEFT, p->makespan / unit, uname, 100.0 * p->bubble_frac, nd, p->n_events);
    /* legend */
    int has_w = 0;
    for (int i = 0; i < p->n_events && !has_w; i++) has_w = p->events[i].kind == 'W';
    const char *kinds = "FBW", *knames[3] = {"forward", has_w ? "backward (input)" : "backward", "weight gradient"};
    for (int k = 0; k < 2 + has_w; k++) {
        int x = SVG_W - SVG_RIGHT - 390 + k * 130;
        trace_buf_printf(&t, "<rect class=\"legend\" x=\"%d\" y=\"28\" width=\"12\" height=\"12\" fill=\"%s\"/>"
                             "<text x=\"%d\" y=\"38\">%c: %s</text>\n",
                         x, svg_fill(kinds[k], 0), x + 16, kinds[k], knames[k]);
    }
    /* device rows */
    for (int d = 0; d < nd; d++) {
        int y = SVG_TOP + d * (SVG_ROW + SVG_GAP);
        trace_buf_printf(&t, "<text class=\"device\" x=\"%d\" y=\"%d\" text-anchor=\"end\">device %d</text>\n",
                         SVG_LEFT - 8, y + SVG_ROW / 2 + 4, d);
        trace_buf_printf(&t, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#dddddd\"/>\n", SVG_LEFT,
                         y + SVG_ROW, SVG_W - SVG_RIGHT, y + SVG_ROW);
    }
    /* ops */
    for (int i = 0; i < p->n_events; i++) {
        const sim_event *e = &p->events[i];
        char name[64];
        trace_event_name(e, name, sizeof name);
        double x = SVG_LEFT + e->t0 * sx, w = (e->t1 - e->t0) * sx;
        int y = SVG_TOP + e->device * (SVG_ROW + SVG_GAP);
        trace_buf_printf(&t, "<rect class=\"op %c\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\" "
                             "stroke=\"white\" stroke-width=\"0.5\"><title>%s: %.6g-%.6g %s</title></rect>\n",
                         e->kind, x, y, w, SVG_ROW, svg_fill(e->kind, e->chunk), name, e->t0 / unit, e->t1 / unit,
                         uname);
        if (w >= 16)
            trace_buf_printf(&t, "<text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\" font-size=\"9\" fill=\"%s\">%d"
                                 "</text>\n", x + w / 2, y + SVG_ROW / 2 + 3, (e->chunk & 1) ? "black" : "white",
                             e->mb);
    }
    /* time axis */
    trace_buf_printf(&t, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n",
                     SVG_LEFT, axis_y, SVG_W - SVG_RIGHT, axis_y);
    double step = svg_tick_step(span);
    for (int k = 0; k * step <= span * (1 + 1e-9); k++) {
        double x = SVG_LEFT + k * step * sx;
        trace_buf_printf(&t, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"black\"/>"
                             "<text class=\"tick\" x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%.6g</text>\n",
                         x, axis_y, x, axis_y + 5, x, axis_y + 17, k * step / unit);
    }
    trace_buf_printf(&t, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">time (%s)</text>\n",
                     SVG_LEFT + (int)plot_w / 2, axis_y + 34, uname);
    trace_buf_printf(&t, "</svg>\n");
    umoe_status st = umoe_write_atomic(path, t.p, t.len);
    trace_buf_free(&t);
    return st;
}
