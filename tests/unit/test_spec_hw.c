/* test_spec_hw.c - hardware and cluster loaders (with files this test writes, not the shipped presets),
 * the GEMM-efficiency interpolation, and preset-name resolution. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "test.h"
#include "umoe/spec.h"

static char tmpdir[256];

static const char *write_tmp(const char *name, const char *text) {
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "w");
    UMOE_CHECK(f != NULL, p);
    fputs(text, f);
    fclose(f);
    return p;
}

#define HW_BASE "\"peak_bf16\": 312e12, \"hbm_bytes\": 80e9, \"hbm_bw\": 2.039e12, \"devices_per_node\": 8, " \
                "\"intra_bw\": 300e9, \"intra_lat\": 5e-6, \"inter_bw\": 25e9, \"inter_lat\": 1e-5"

static void test_hardware_load(void) {
    spec_hardware h;
    const char *p = write_tmp("gpu.json", "{\"name\": \"testgpu\", " HW_BASE ", \"peak_fp8\": 0, "
                                          "\"gemm_eff\": [[1e6, 0.1], [1e9, 0.5], [1e12, 0.8]], \"attn_eff\": 0.6, "
                                          "\"mem_reserved\": 2e9}");
    CHECK(spec_hardware_load(p, &h) == UMOE_OK, "%s", umoe_err);
    CHECK(!strcmp(h.name, "testgpu") && h.devices_per_node == 8 && h.peak_bf16 == 312e12, "fields");
    CHECK(h.peak_fp16 == 312e12, "fp16 defaults to the bf16 rate");
    CHECK(h.n_gemm_eff == 3 && h.gemm_eff[2] == 0.8 && h.gemm_eff_flops[1] == 1e9, "table");
    CHECK(h.attn_eff == 0.6 && h.mem_eff == 1.0 && h.mem_reserved == 2e9, "efficiencies");
    /* interpolation: linear in log10(flops), clamped */
    CHECK_CLOSE(spec_gemm_eff(&h, 1e3), 0.1, 0, 1e-12, "clamp low");
    CHECK_CLOSE(spec_gemm_eff(&h, 1e15), 0.8, 0, 1e-12, "clamp high");
    CHECK_CLOSE(spec_gemm_eff(&h, 1e9), 0.5, 0, 1e-12, "at a point");
    CHECK_CLOSE(spec_gemm_eff(&h, 3.1622776601683795e7), 0.3, 0, 1e-9, "half-way in log");
    CHECK_CLOSE(spec_gemm_eff(&h, 1e10), 0.6, 0, 1e-9, "a third of the way");
    spec_hardware e = h;
    e.n_gemm_eff = 0;
    CHECK(spec_gemm_eff(&e, 1e9) == 1.0, "empty table = ideal");
}

static void expect_bad_hw(const char *json, const char *field) {
    spec_hardware h;
    const char *p = write_tmp("badhw.json", json);
    CHECK(spec_hardware_load(p, &h) == UMOE_EINPUT, "accepted bad %s", field);
    CHECK(strstr(umoe_err, "badhw.json") && strstr(umoe_err, field), "message must name %s: %s", field, umoe_err);
}

static void test_hardware_errors(void) {
    expect_bad_hw("{" HW_BASE ", \"peak_bf61\": 1}", "peak_bf61");
    expect_bad_hw("{\"hbm_bytes\": 80e9, \"hbm_bw\": 2e12, \"devices_per_node\": 8, \"intra_bw\": 3e11, "
                  "\"intra_lat\": 0, \"inter_bw\": 2e10, \"inter_lat\": 0}", "peak_bf16");
    expect_bad_hw("{" HW_BASE ", \"gemm_eff\": [[1e9, 0.5], [1e6, 0.1]]}", "gemm_eff");
    expect_bad_hw("{" HW_BASE ", \"gemm_eff\": [[1e9, 1.5]]}", "gemm_eff");
    expect_bad_hw("{" HW_BASE ", \"gemm_eff\": [1e9, 0.5]}", "gemm_eff");
    expect_bad_hw("{" HW_BASE ", \"attn_eff\": 0}", "attn_eff");
    expect_bad_hw("{" HW_BASE ", \"mem_reserved\": 90e9}", "mem_reserved");
    expect_bad_hw("{" HW_BASE ", \"devices_per_node\": 2.5}", "devices_per_node");
    expect_bad_hw("{" HW_BASE ", \"attn_eff_seq\": [[256, 0.3, 2], [128, 0.2, 1.6]]}", "attn_eff_seq");
    expect_bad_hw("{" HW_BASE ", \"attn_eff_seq\": [[128, 1.5, 2]]}", "attn_eff_seq");
    expect_bad_hw("{" HW_BASE ", \"attn_eff_seq\": [[128, 0.2, 0]]}", "attn_eff_seq");
    expect_bad_hw("{" HW_BASE ", \"attn_eff_seq\": [[128, 0.2]]}", "attn_eff_seq");
    expect_bad_hw("{" HW_BASE ", \"attn_eff_seq\": 0.3}", "attn_eff_seq");
}

/* attn_eff_seq: [T, eff, backward/forward] points, linear in log(T), clamped; absent = attn_eff and the
 * caller's ratio */
static void test_attn_seq(void) {
    spec_hardware h;
    const char *p = write_tmp("attn.json", "{" HW_BASE ", \"attn_eff\": 0.6, "
                                           "\"attn_eff_seq\": [[128, 0.2, 1.6], [512, 0.4, 2.0], [1024, 0.6, 2.2]]}");
    CHECK(spec_hardware_load(p, &h) == UMOE_OK, "%s", umoe_err);
    double e, r;
    CHECK(h.n_attn_seq == 3, "3 points");
    CHECK(spec_attn_at(&h, 64, 2.5, &e, &r) == 1 && e == 0.2 && r == 1.6, "clamped low: %g %g", e, r);
    CHECK(spec_attn_at(&h, 4096, 2.5, &e, &r) == 1 && e == 0.6 && r == 2.2, "clamped high");
    spec_attn_at(&h, 256, 2.5, &e, &r);
    CHECK_CLOSE(e, 0.3, 0, 1e-12, "half-way in log(T) between 128 and 512");
    CHECK_CLOSE(r, 1.8, 0, 1e-12, "ratio half-way");
    spec_attn_at(&h, 512, 2.5, &e, &r);
    CHECK_CLOSE(e, 0.4, 0, 1e-12, "at a point");
    h.n_attn_seq = 0;
    CHECK(spec_attn_at(&h, 256, 2.5, &e, &r) == 0 && e == 0.6 && r == 2.5, "no table: attn_eff and the default");
}

static void test_cluster_load(void) {
    spec_cluster c;
    write_tmp("hwfile.json", "{\"name\": \"hw-from-file\", " HW_BASE "}");
    char hwpath[600], text[1200];
    snprintf(hwpath, sizeof hwpath, "%s/hwfile.json", tmpdir);
    snprintf(text, sizeof text, "{\"hardware\": \"%s\", \"devices\": 64}", hwpath);
    const char *p = write_tmp("c64.json", text);
    CHECK(spec_cluster_load(p, &c) == UMOE_OK, "%s", umoe_err);
    CHECK(c.devices == 64 && !strcmp(c.hw.name, "hw-from-file") && !strcmp(c.name, "c64"), "cluster fields");
    /* inline hardware object */
    p = write_tmp("inline.json", "{\"name\": \"x\", \"devices\": 16, \"hardware\": {" HW_BASE "}}");
    CHECK(spec_cluster_load(p, &c) == UMOE_OK && c.devices == 16 && c.hw.inter_bw == 25e9, "inline: %s", umoe_err);
    /* errors: unknown preset named in the message with the field; missing devices; bad devices */
    p = write_tmp("nohw.json", "{\"hardware\": \"no-such-device\", \"devices\": 8}");
    CHECK(spec_cluster_load(p, &c) == UMOE_EINPUT && strstr(umoe_err, "hardware") &&
          strstr(umoe_err, "no-such-device") && strstr(umoe_err, "nohw.json"), "%s", umoe_err);
    snprintf(text, sizeof text, "{\"hardware\": \"%s\"}", hwpath);
    p = write_tmp("nodev.json", text);
    CHECK(spec_cluster_load(p, &c) == UMOE_EINPUT && strstr(umoe_err, "devices"), "%s", umoe_err);
    snprintf(text, sizeof text, "{\"hardware\": \"%s\", \"devices\": 0}", hwpath);
    p = write_tmp("zerodev.json", text);
    CHECK(spec_cluster_load(p, &c) == UMOE_EINPUT && strstr(umoe_err, "devices"), "%s", umoe_err);
    p = write_tmp("typo.json", "{\"hardwar\": \"x\", \"devices\": 8}");
    CHECK(spec_cluster_load(p, &c) == UMOE_EINPUT && strstr(umoe_err, "hardwar"), "%s", umoe_err);
}

static void test_resolve(void) {
    char out[4096];
    /* the configs dir is found next to the binary (tests run from build/tests/) */
    CHECK(spec_resolve("deepseek-v3-671b", "models", out, sizeof out) &&
          strstr(out, "configs/models/deepseek-v3-671b.json"), "resolved %s (dir %s)", out, spec_config_dir());
    const char *p = write_tmp("direct.json", "{}");
    CHECK(spec_resolve(p, "models", out, sizeof out) && !strcmp(out, p), "existing path used as is");
    CHECK(!spec_resolve("nope/missing.json", "models", out, sizeof out) && strstr(umoe_err, "nope/missing.json"),
          "missing path: %s", umoe_err);
    CHECK(!spec_resolve("ghost", "clusters", out, sizeof out) && strstr(umoe_err, "ghost") &&
          strstr(umoe_err, "clusters"), "missing preset: %s", umoe_err);
}

static void test_cluster_presets(void) {
    /* The shipped cluster files name hardware presets written by the simulator engineer; check only what
     * this module owns: the cluster files parse and name the hardware and device count. */
    char out[4096];
    const char *names[] = {"ascend-910b-6144", "a100-sxm-80gb-8", "h100-sxm-8", "b200-8"};
    for (int i = 0; i < 4; i++) CHECK(spec_resolve(names[i], "clusters", out, sizeof out), "%s", umoe_err);
    /* Where the hardware presets are present, each cluster loads completely. */
    const char *hw[] = {"ascend-910b", "a100-sxm-80gb", "h100-sxm", "b200"};
    const int n[] = {6144, 8, 8, 8};
    for (int i = 0; i < 4; i++) {
        spec_cluster c;
        if (!spec_resolve(hw[i], "hardware", out, sizeof out)) continue;
        CHECK(spec_cluster_load(names[i], &c) == UMOE_OK && c.devices == n[i] && c.hw.peak_bf16 > 0, "%s: %s",
              names[i], umoe_err);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/umoe_test_spec_hw.%d", (int)getpid());
    mkdir(tmpdir, 0700);
    RUN(test_hardware_load);
    RUN(test_hardware_errors);
    RUN(test_attn_seq);
    RUN(test_cluster_load);
    RUN(test_resolve);
    RUN(test_cluster_presets);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) {}
    TEST_MAIN_END();
}
