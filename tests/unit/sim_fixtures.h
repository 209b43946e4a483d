/* sim_fixtures.h - models, hardware and strategies filled in code for the sim unit tests (no file I/O, so
 * the tests do not depend on the spec loaders or the shipped presets). */
#ifndef UMOE_SIM_FIXTURES_H
#define UMOE_SIM_FIXTURES_H
#include <string.h>
#include "umoe/sim.h"

/* GPT-3 175B shape (Brown et al. 2020): MHA, GeLU, F = 4h, pre-norm, untied. */
static inline void fx_gpt(spec_model *m, int L, int C, int H, int T) {
    memset(m, 0, sizeof *m);
    strcpy(m->name, "gpt-test");
    m->L = L; m->C = C; m->H = H; m->H_kv = H; m->head_dim = C / H; m->attn = SPEC_ATTN_MHA;
    m->ffn = SPEC_FFN_GELU; m->F = 4 * C; m->V = 51200; m->T = T; m->norm = SPEC_NORM_PRE;
}

/* A small DeepSeek-style MoE: MLA, SwiGLU, 1 dense layer then MoE with shared expert. */
static inline void fx_moe(spec_model *m) {
    memset(m, 0, sizeof *m);
    strcpy(m->name, "moe-test");
    m->L = 8; m->C = 2048; m->H = 16; m->attn = SPEC_ATTN_MLA; m->q_lora = 512; m->kv_lora = 256;
    m->qk_nope = 64; m->qk_rope = 32; m->v_head = 64; m->ffn = SPEC_FFN_SWIGLU; m->F = 8192;
    m->first_k_dense = 1; m->E = 64; m->E_shared = 1; m->K = 6; m->F_expert = 1024; m->V = 32000; m->T = 4096;
    m->norm = SPEC_NORM_PRE;
}

/* Round numbers so communication times can be computed by hand. */
static inline void fx_hw_simple(spec_hardware *h) {
    memset(h, 0, sizeof *h);
    strcpy(h->name, "simple");
    h->peak_bf16 = 100e12; h->hbm_bytes = 80e9; h->hbm_bw = 1e12; h->devices_per_node = 8;
    h->intra_bw = 100e9; h->inter_bw = 10e9; h->intra_lat = 0; h->inter_lat = 0;
    h->attn_eff = 0.5; h->mem_eff = 1; h->comm_eff_intra = 1; h->comm_eff_inter = 1;
}

/* A100-like numbers for whole-step tests. */
static inline void fx_hw_a100(spec_hardware *h) {
    fx_hw_simple(h);
    strcpy(h->name, "a100-like");
    h->peak_bf16 = 312e12; h->hbm_bw = 2.039e12; h->hbm_bytes = 80.0 * 1024 * 1024 * 1024;
    h->intra_bw = 300e9; h->inter_bw = 25e9; h->intra_lat = 1e-6; h->inter_lat = 5e-6;
    h->n_gemm_eff = 2; h->gemm_eff_flops[0] = 1e9; h->gemm_eff[0] = 0.4; h->gemm_eff_flops[1] = 1e11;
    h->gemm_eff[1] = 0.85; h->attn_eff = 0.6; h->mem_eff = 0.85; h->comm_eff_intra = 0.78; h->comm_eff_inter = 0.9;
    h->mem_reserved = 2e9;
}

static inline void fx_strategy(spec_strategy *s, int tp, int pp, int dp, int mbs, int gbs) {
    memset(s, 0, sizeof *s);
    strcpy(s->name, "test");
    s->tp = tp; s->cp = 1; s->pp = pp; s->vpp = 1; s->ep = 1; s->etp = 1; s->dp = dp; s->mbs = mbs; s->gbs = gbs;
    s->imbalance = 1.0; s->precision_bits = 16; s->schedule = SPEC_SCHED_1F1B;
}
#endif
