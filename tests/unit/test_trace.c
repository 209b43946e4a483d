/* test_trace.c - the timeline writers (src/sim/trace_chrome.c, trace_svg.c): the Chrome trace parses back
 * as JSON with one "X" event per op (ts/dur in microseconds, pid/tid = device, names "F mb3 c1"); the SVG is
 * well formed (tags balance), has one rect per op coloured by kind, device labels and a time axis; titles
 * are escaped; files are replaced atomically and nothing is written on failure. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "test.h"
#include "umoe/sim.h"

static char dir[256];

static void path_in_dir(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static sim_pipeline_result run_small(void) {
    double F[8], B[8];
    for (int i = 0; i < 8; i++) {
        F[i] = 1e-3 * (1 + i % 3);
        B[i] = 2e-3 * (1 + i % 2);
    }
    sim_pipeline_result r;
    umoe_status st = sim_pipeline_run(SPEC_SCHED_INTERLEAVED, 4, 2, 8, F, B, NULL, 1e-4, 1, &r);
    CHECK(st == UMOE_OK && r.n_events == 2 * 8 * 8, "%s", umoe_err);
    return r;
}

static int count_str(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

static void test_chrome_parses_back(void) {
    sim_pipeline_result r = run_small();
    char path[512];
    path_in_dir(path, sizeof path, "t.json");
    const char *title = "pangu \"718B\" \\ pp4\tvpp2";
    CHECK(sim_trace_write_chrome(path, &r, title) == UMOE_OK, "%s", umoe_err);
    size_t len = 0;
    char *txt = umoe_read_file(path, &len);
    CHECK(txt != NULL, "%s", umoe_err);
    if (!txt) { sim_pipeline_free(&r); return; }
    cJSON *root = cJSON_Parse(txt);
    CHECK(root != NULL, "not valid JSON near: %.60s", cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "?");
    if (root) {
        const cJSON *other = cJSON_GetObjectItemCaseSensitive(root, "otherData");
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(other, "title");
        CHECK(cJSON_IsString(t) && strcmp(t->valuestring, title) == 0, "title round trip");
        const cJSON *mk = cJSON_GetObjectItemCaseSensitive(other, "makespan_s");
        CHECK(cJSON_IsNumber(mk) && fabs(mk->valuedouble - r.makespan) <= 1e-12, "makespan_s");
        const cJSON *evs = cJSON_GetObjectItemCaseSensitive(root, "traceEvents");
        CHECK(cJSON_IsArray(evs), "traceEvents is an array");
        int nx = 0, nm = 0, found_named = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, evs) {
            const cJSON *ph = cJSON_GetObjectItemCaseSensitive(e, "ph");
            if (!cJSON_IsString(ph)) { CHECK(0, "event without ph"); continue; }
            if (strcmp(ph->valuestring, "M") == 0) { nm++; continue; }
            CHECK(strcmp(ph->valuestring, "X") == 0, "ph %s", ph->valuestring);
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
            const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "ts");
            const cJSON *dur = cJSON_GetObjectItemCaseSensitive(e, "dur");
            const cJSON *pid = cJSON_GetObjectItemCaseSensitive(e, "pid");
            const cJSON *tid = cJSON_GetObjectItemCaseSensitive(e, "tid");
            CHECK(cJSON_IsString(name) && cJSON_IsNumber(ts) && cJSON_IsNumber(dur) && cJSON_IsNumber(pid) &&
                      cJSON_IsNumber(tid), "X event fields");
            if (!(cJSON_IsString(name) && cJSON_IsNumber(ts) && cJSON_IsNumber(dur) && cJSON_IsNumber(pid))) continue;
            if (nx < r.n_events) { /* written in the order of the events */
                const sim_event *s = &r.events[nx];
                char want[64];
                snprintf(want, sizeof want, "%c mb%d c%d", s->kind, s->mb, s->chunk);
                CHECK(strcmp(name->valuestring, want) == 0, "name %s, want %s", name->valuestring, want);
                CHECK(fabs(ts->valuedouble - s->t0 * 1e6) <= 1e-3, "ts %g us, want %g", ts->valuedouble, s->t0 * 1e6);
                CHECK(fabs(dur->valuedouble - (s->t1 - s->t0) * 1e6) <= 1e-3, "dur in us");
                CHECK(pid->valueint == s->device && tid->valueint == s->device, "pid/tid = device");
            }
            if (strcmp(name->valuestring, "F mb3 c1") == 0) found_named++;
            nx++;
        }
        CHECK(nx == r.n_events, "%d X events for %d ops", nx, r.n_events);
        CHECK(nm >= 4, "metadata names for the 4 devices (%d)", nm);
        CHECK(found_named == 4, "'F mb3 c1' once per device: found %d", found_named);
        cJSON_Delete(root);
    }
    umoe_free(txt, len + 1);
    sim_pipeline_free(&r);
}

/* Minimal XML well-formedness: every <tag> is closed by </tag> in order, or self-closed; no stray '<'. */
static int xml_balanced(const char *s, char *why, size_t n) {
    char stack[64][32];
    int depth = 0;
    for (const char *p = s; (p = strchr(p, '<')) != NULL;) {
        if (p[1] == '?') { p = strstr(p, "?>"); if (!p) return snprintf(why, n, "unclosed <?"), 0; p += 2; continue; }
        const char *end = strchr(p, '>');
        if (!end) return snprintf(why, n, "unclosed <"), 0;
        if (memchr(p + 1, '<', (size_t)(end - p - 1))) return snprintf(why, n, "'<' inside a tag"), 0;
        int closing = p[1] == '/', selfc = end[-1] == '/';
        const char *nm = p + 1 + closing;
        size_t l = strcspn(nm, " \t\n/>");
        if (l == 0 || l >= 32) return snprintf(why, n, "bad tag name"), 0;
        if (closing) {
            if (depth == 0 || strncmp(stack[depth - 1], nm, l) != 0 || stack[depth - 1][l] != 0)
                return snprintf(why, n, "</%.*s> does not close <%s>", (int)l, nm, depth ? stack[depth - 1] : ""), 0;
            depth--;
        } else if (!selfc) {
            if (depth == 64) return snprintf(why, n, "too deep"), 0;
            memcpy(stack[depth], nm, l);
            stack[depth++][l] = 0;
        }
        p = end + 1;
    }
    if (depth != 0) return snprintf(why, n, "<%s> never closed", stack[depth - 1]), 0;
    return 1;
}

static void test_svg_well_formed(void) {
    sim_pipeline_result r = run_small();
    char path[512];
    path_in_dir(path, sizeof path, "t.svg");
    CHECK(sim_trace_write_svg(path, &r, "a<b & \"c\"") == UMOE_OK, "%s", umoe_err);
    size_t len = 0;
    char *txt = umoe_read_file(path, &len);
    CHECK(txt != NULL, "%s", umoe_err);
    if (!txt) { sim_pipeline_free(&r); return; }
    char why[160] = "";
    CHECK(strncmp(txt, "<?xml", 5) == 0 && strstr(txt, "<svg xmlns=\"http://www.w3.org/2000/svg\"") != NULL,
          "SVG header");
    CHECK(len > 7 && strcmp(txt + len - 7, "</svg>\n") == 0, "ends with </svg>");
    CHECK(xml_balanced(txt, why, sizeof why), "not well formed: %s", why);
    int nf = 0, nb = 0;
    for (int i = 0; i < r.n_events; i++) {
        nf += r.events[i].kind == 'F';
        nb += r.events[i].kind == 'B';
    }
    CHECK(count_str(txt, "<rect class=\"op ") == r.n_events, "one rect per op: %d rects, %d ops",
          count_str(txt, "<rect class=\"op "), r.n_events);
    CHECK(count_str(txt, "<rect class=\"op F\"") == nf && count_str(txt, "<rect class=\"op B\"") == nb,
          "rects by kind");
    CHECK(count_str(txt, "fill=\"#4e79a7\"") >= 1 && count_str(txt, "fill=\"#59a14f\"") >= 1, "F and B colours");
    CHECK(strstr(txt, "a&lt;b &amp; &quot;c&quot;") != NULL, "title escaped");
    CHECK(strstr(txt, ">device 3</text>") != NULL && strstr(txt, ">device 4</text>") == NULL, "device labels");
    CHECK(strstr(txt, "time (ms)") != NULL && count_str(txt, "class=\"tick\"") >= 3, "time axis with ticks");
    umoe_free(txt, len + 1);
    sim_pipeline_free(&r);
}

static void test_write_failures(void) {
    sim_pipeline_result empty;
    memset(&empty, 0, sizeof empty);
    char path[512];
    path_in_dir(path, sizeof path, "never.json");
    CHECK(sim_trace_write_chrome(path, &empty, "x") != UMOE_OK, "no events must fail");
    CHECK(sim_trace_write_svg(path, &empty, "x") != UMOE_OK, "no events must fail");
    CHECK(access(path, F_OK) != 0, "nothing written");
    sim_pipeline_result r = run_small();
    path_in_dir(path, sizeof path, "missing-dir/t.json");
    CHECK(sim_trace_write_chrome(path, &r, "x") != UMOE_OK, "missing directory must fail");
    CHECK(strstr(umoe_err, "missing-dir") != NULL, "message names the path: %s", umoe_err);
    /* replacing an existing file leaves the new content and no temp file */
    path_in_dir(path, sizeof path, "t2.svg");
    CHECK(umoe_write_atomic(path, "old", 3) == UMOE_OK, "%s", umoe_err);
    CHECK(sim_trace_write_svg(path, &r, "new") == UMOE_OK, "%s", umoe_err);
    size_t len = 0;
    char *txt = umoe_read_file(path, &len);
    CHECK(txt && len > 100 && strstr(txt, "</svg>"), "replaced");
    if (txt) umoe_free(txt, len + 1);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", dir);
    CHECK(system(cmd) != 0, "temp file left in %s", dir);
    sim_pipeline_free(&r);
}

int main(void) {
    snprintf(dir, sizeof dir, "/tmp/umoe_test_trace.XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    size_t before = umoe_alloc_current();
    RUN(test_chrome_parses_back);
    RUN(test_svg_well_formed);
    RUN(test_write_failures);
    if (umoe_alloc_current() != before) { printf("FAIL leak (%zu bytes)\n", umoe_alloc_current() - before); t_failed++; }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    TEST_MAIN_END();
}
