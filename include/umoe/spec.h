/* spec.h - the shared vocabulary: model, hardware, cluster and parallel strategy.
 * Load (our JSON, a HuggingFace config.json, or a preset name from configs/), validate with clear errors,
 * and derive exact parameter counts and FLOPs. Used by both the simulator and the engine.
 * Dimension letters: B batch, T seq, C hidden, H heads, E experts, K top-k, F FFN width, L layers, V vocab. */
#ifndef UMOE_SPEC_H
#define UMOE_SPEC_H
#include <math.h>
#include <stdint.h>
#include "umoe/common.h"

/* ------------------------------------------------------------------ model */
typedef enum { SPEC_ATTN_MHA, SPEC_ATTN_GQA, SPEC_ATTN_MLA } spec_attn_kind;
typedef enum { SPEC_FFN_SWIGLU, SPEC_FFN_GELU } spec_ffn_kind;
typedef enum { SPEC_NORM_PRE, SPEC_NORM_SANDWICH } spec_norm_kind;       /* sandwich = depth-scaled (DSSN) */
typedef enum { SPEC_SCORE_SOFTMAX, SPEC_SCORE_SIGMOID } spec_score_kind;
typedef enum { SPEC_AUX_MICRO, SPEC_AUX_GLOBAL, SPEC_AUX_EP_GROUP } spec_aux_scope;

typedef struct {
    char name[64];
    int L;              /* transformer layers (not counting MTP modules) */
    int C;              /* hidden size */
    int H;              /* attention (query) heads */
    int H_kv;           /* key/value heads (MHA: H_kv = H; GQA: H % H_kv == 0); unused by MLA */
    int head_dim;       /* per-head dim for MHA/GQA (usually C / H) */
    spec_attn_kind attn;
    int q_lora;         /* MLA: query low-rank dim; 0 = no q compression (DeepSeek-V2-Lite style) */
    int kv_lora;        /* MLA: compressed KV dim */
    int qk_nope;        /* MLA: per-head non-rotary q/k dim */
    int qk_rope;        /* MLA: per-head rotary q/k dim (k rope part shared over heads) */
    int v_head;         /* MLA: per-head value dim */
    spec_ffn_kind ffn;
    int F;              /* dense FFN width */
    int first_k_dense;  /* the first k layers use the dense FFN; the rest are MoE when E > 0 */
    int E;              /* routed experts per MoE layer (0 = dense model) */
    int E_shared;       /* shared experts per MoE layer */
    int K;              /* top-k */
    int F_expert;       /* routed and shared expert FFN width */
    int V;              /* vocabulary */
    int tied;           /* tied embedding and LM head */
    int mtp;            /* MTP depth D (0 = none) */
    int T;              /* sequence length */
    int qkv_bias;       /* bias on q/k/v projections (Qwen2) */
    /* engine-facing settings (do not change counts except where noted) */
    spec_norm_kind norm;
    double norm_eps;
    double rope_theta;
    spec_score_kind score;
    int norm_topk;       /* renormalise the top-k weights */
    double routed_scale; /* routed output scaling factor */
    int score_bias;      /* aux-loss-free expert bias (DeepSeek-V3) */
    double aux_alpha;    /* aux-loss weight */
    spec_aux_scope aux_scope;
    double z_loss;       /* router z-loss weight */
    double mtp_weight;   /* MTP loss weight */
    double init_std;     /* 0 = TinyInit sqrt(1/(2 C L)) */
    int router_groups;   /* G > 1: grouped top-k (MoGE, Pangu Pro MoE): K/G experts from each of G equal groups */
} spec_model;

/* Exact counts derived from a model (all in parameters, not bytes). */
typedef struct {
    double total;          /* every parameter, MTP excluded */
    double active;         /* parameters in the matrix products one token goes through, MTP excluded: the
                            * LM head, K routed + shared experts, routers, attention, dense FFNs, norms, but
                            * not the embedding table (a lookup). This is the convention that reproduces the
                            * activated counts of DeepSeek-V2-Lite/V2/V3 and Pangu Ultra MoE (docs/formats.md) */
    double mtp;            /* parameters of the MTP modules (embedding/head shared, not counted again) */
    double embed;          /* embedding table */
    double head;           /* LM head (0 when tied) */
    double attn_per_layer; /* attention incl. its norm(s) */
    double dense_ffn_per_layer;
    double moe_router_per_layer;
    double expert;         /* one routed (or shared) expert */
    double norms_per_layer; /* every norm weight of one layer (overlaps attn_per_layer: informational) */
    /* added by the spec module (additive): */
    double ffn_norms_per_layer; /* the FFN branch's norm(s): 1 (pre) or 2 (sandwich) x C */
    double final_norm;          /* the norm before the LM head */
    double dense_layer;         /* one dense layer: attn + FFN norms + dense FFN */
    double moe_layer;           /* one MoE layer: attn + FFN norms + router + all routed and shared experts */
    double moe_layer_active;    /* the part of one MoE layer a token touches: K routed + shared experts */
    double mtp_active;          /* MTP parameters touched per token */
    double active_with_embed;   /* active + embedding table (Mistral's convention for Mixtral's 12.9B) */
    int n_dense, n_moe;         /* layers of each kind (MTP modules not counted) */
} spec_params;

/* Model FLOPs per token (forward, multiply-add = 2 FLOPs), by layer kind; backward = 2x forward.
 * attn_core counts the full s^2 term (Megatron-LM convention) unless causal_half is set. */
typedef struct {
    double attn_proj;     /* per layer: q/k/v/o projections incl. MLA low-rank ones */
    double attn_core;     /* per layer: QK^T and PV */
    double dense_ffn;     /* per dense layer */
    double moe_ffn;       /* per MoE layer: K routed + shared experts + router */
    double head;          /* LM head once */
    double mtp;           /* all MTP modules incl. their head passes */
    double fwd_total;     /* whole model forward per token */
} spec_flops;

/* ------------------------------------------------------------------ hardware / cluster */
#define SPEC_EFF_MAX 32
typedef struct {
    char name[64];
    double peak_bf16, peak_fp16, peak_fp32, peak_fp8; /* FLOP/s per device (dense) */
    double hbm_bytes;        /* device memory capacity, bytes */
    double hbm_bw;           /* device memory bandwidth, bytes/s */
    int devices_per_node;
    double intra_bw;         /* bytes/s per device per direction inside a node */
    double intra_lat;        /* seconds */
    double inter_bw;         /* bytes/s per device per direction across nodes */
    double inter_lat;        /* seconds */
    /* Measured-efficiency curves. GEMM efficiency vs GEMM work (FLOPs of one GEMM call): piecewise linear in
     * log10(flops) through the points; clamped at both ends. */
    int n_gemm_eff;
    double gemm_eff_flops[SPEC_EFF_MAX], gemm_eff[SPEC_EFF_MAX];
    double attn_eff;         /* attention core efficiency (flash-attention class kernel) */
    double mem_eff;          /* achieved / peak HBM bandwidth for element-wise kernels */
    double comm_eff_intra;   /* achieved / nominal link bandwidth, collectives inside a node */
    double comm_eff_inter;   /* the same across nodes */
    double mem_reserved;     /* bytes per device not available to the framework (runtime, fragmentation) */
    /* added for offload (additive; 0 = not given: the simulator then refuses strategies that offload) */
    double host_bw;          /* device <-> host link, bytes/s per device per direction, achieved (PCIe / HCCS) */
    double host_mem_bw;      /* host DRAM bandwidth available to one device's host-side optimizer, bytes/s */
    /* added for the engine model (additive; 0 = not given: every element-wise kernel runs at hbm_bw x mem_eff) */
    double cache_bw;         /* element-wise kernels on cache-resident arrays, bytes/s per device (umoe bench) */
    double cache_bytes;      /* working set below which cache_bw applies (per-core L2), bytes */
    double adamw_bw;         /* the engine's AdamW update over DRAM-sized arrays, bytes/s per device (28 B/param) */
    /* compute time of the host's cores relative to the written figures (umoe bench under mpirun: every rank
     * times the same compute-bound items at the same moments; 0 = not given = 1). A single process runs on
     * any of the cores (mean); ranks that exchange every layer wait for the slowest (max). */
    double rank_time_mean, rank_time_max;
    double oversub_wait;     /* extra seconds per collective when more ranks than cores share the host (two
                              * runnable per core; umoe bench); 0 = not given: not charged */
    /* the attention core by sequence length (additive; umoe bench with the engine's kernels: causal, MHA, head
     * dim 64, T x B = 1024 tokens per call): efficiency (the attn_eff convention) and the backward / forward
     * time ratio at each T, ascending; piecewise linear in log(T), clamped at both ends. 0 points = attn_eff
     * and the caller's ratio at every length (spec_attn_at) */
    int n_attn_seq;
    double attn_seq_T[SPEC_EFF_MAX], attn_seq_eff[SPEC_EFF_MAX], attn_seq_bwd[SPEC_EFF_MAX];
    /* added for speed (additive): derived from gemm_eff_flops by spec_hardware_prepare, never read from or
     * written to JSON. gemm_eff_lnr[i] = ln(gemm_eff_flops[i] / gemm_eff_flops[i-1]) (i >= 1), valid while
     * gemm_eff_lnr_src[i-1..i] equal gemm_eff_flops[i-1..i]; the lookups recompute a ratio that is not valid,
     * so a struct built or edited in code works without calling spec_hardware_prepare. */
    double gemm_eff_lnr[SPEC_EFF_MAX], gemm_eff_lnr_src[SPEC_EFF_MAX];
} spec_hardware;

typedef struct {
    char name[64];
    spec_hardware hw;
    int devices;
} spec_cluster;

/* ------------------------------------------------------------------ strategy */
typedef enum { SPEC_SCHED_1F1B, SPEC_SCHED_INTERLEAVED, SPEC_SCHED_ZB1P, SPEC_SCHED_DUALPIPE, SPEC_SCHED_COUNT } spec_schedule;
typedef enum { SPEC_A2A_FLAT, SPEC_A2A_HIER } spec_a2a;
typedef enum { SPEC_PREC_BF16, SPEC_PREC_FP16, SPEC_PREC_FP8 } spec_precision;
extern const char *const spec_schedule_names[];  /* "1f1b", "interleaved", "zb1p", "dualpipe", NULL */
extern const char *const spec_a2a_names[];       /* "flat", "hierarchical", NULL */
extern const char *const spec_precision_names[]; /* "bf16", "fp16", "fp8", NULL */
/* Recompute modules (bit flags). "selective" = Korthikanti et al. 2022: the attention core (softmax+dropout
 * + QK^T/PV); "full" = the whole layer (only the layer input kept). */
enum {
    SPEC_RC_NORM = 1 << 0,
    SPEC_RC_ACT = 1 << 1,         /* FFN activation function (SwiGLU/GeLU) */
    SPEC_RC_ATTN_CORE = 1 << 2,
    SPEC_RC_MLA_UP = 1 << 3,      /* MLA up-projections (q/kv from the low-rank latents) */
    SPEC_RC_EXPERT_FC1 = 1 << 4,
    SPEC_RC_PERMUTE = 1 << 5,     /* MoE token permutation / unpermutation */
    SPEC_RC_FULL = 1 << 6,
};
#define SPEC_RC_SELECTIVE SPEC_RC_ATTN_CORE
extern const char *const spec_recompute_names[]; /* NULL-terminated, index = bit */

typedef struct {
    char name[64];
    int tp, sp, cp, pp, vpp, ep, etp, dp;
    int zero1;          /* distributed optimizer */
    int mbs;            /* micro-batch size (sequences) */
    int gbs;            /* global batch (sequences) */
    unsigned recompute; /* SPEC_RC_* flags */
    int offload_optimizer, offload_activations;
    spec_schedule schedule;
    spec_a2a a2a;
    int overlap_tp, overlap_ep, overlap_dp, overlap_pp; /* overlap switches */
    double imbalance;   /* max/mean routed load per EP rank; 1.0 = balanced */
    int n_hist;         /* measured per-expert load histogram (relative loads), n_hist == E when given */
    double hist[1024];
    int precision_bits; /* 16 (bf16/fp16) or 8 (fp8 GEMMs) */
    /* added by the spec module (additive): */
    spec_precision precision; /* which 16-bit type (or fp8); precision_bits follows it */
    int pad_layers;     /* 1: layers need not divide over pp*vpp chunks; see spec_chunk_layers */
} spec_strategy;

/* ------------------------------------------------------------------ API */
/* Each loader takes a path or a preset name (looked up in configs/<kind>/NAME.json, relative to
 * UMOE_CONFIG_DIR or the directory of the running binary). On error: UMOE_EINPUT and umoe_err. */
umoe_status spec_model_load(const char *path_or_name, spec_model *m);
umoe_status spec_model_from_json(const void *cjson_obj, const char *file, spec_model *m);
umoe_status spec_model_validate(const spec_model *m, const char *file);
/* For models built in code (e.g. from a CSV row): fill what is derived when left 0 (kv_heads = heads,
 * head_dim = hidden/heads), then validate. */
umoe_status spec_model_finish(spec_model *m, const char *file);
void spec_model_defaults(spec_model *m);
umoe_status spec_hardware_load(const char *path_or_name, spec_hardware *h);
umoe_status spec_cluster_load(const char *path_or_name, spec_cluster *c);
/* Hardware/cluster from an already-parsed JSON object (`file` names it in messages). */
umoe_status spec_hardware_from_json(const void *cjson_obj, const char *file, spec_hardware *h);
umoe_status spec_hardware_validate(const spec_hardware *h, const char *file);
/* GEMM efficiency at a GEMM of `flops` FLOPs: piecewise linear in log10(flops) through the gemm_eff points,
 * clamped at both ends; 1.0 when the table is empty. */
double spec_gemm_eff(const spec_hardware *h, double flops);
/* Attention core at sequence length T: *eff and *bwd_over_fwd from the attn_seq table (1 returned), or
 * attn_eff and the given default ratio when the spec has no table (0 returned). */
int spec_attn_at(const spec_hardware *h, double T, double default_bwd_over_fwd, double *eff, double *bwd_over_fwd);
/* Fill the derived fields (gemm_eff_lnr). spec_hardware_from_json calls it; call it after building or
 * editing a table in code to make the lookups faster (they are correct without it). */
void spec_hardware_prepare(spec_hardware *h);
/* ln(gemm_eff_flops[i] / gemm_eff_flops[i-1]) for 1 <= i < n_gemm_eff: the cached value when valid. */
static inline double spec_gemm_eff_lnr(const spec_hardware *h, int i) {
    if (h->gemm_eff_lnr_src[i] == h->gemm_eff_flops[i] && h->gemm_eff_lnr_src[i - 1] == h->gemm_eff_flops[i - 1])
        return h->gemm_eff_lnr[i];
    return log(h->gemm_eff_flops[i] / h->gemm_eff_flops[i - 1]);
}
umoe_status spec_strategy_load(const char *path_or_name, spec_strategy *s);
void spec_strategy_defaults(spec_strategy *s);
/* Parse a recompute policy: none | selective | full | comma list of module names. */
umoe_status spec_recompute_parse(const char *text, const char *file, const char *field, unsigned *out);
void spec_recompute_format(unsigned rc, char *out, size_t n);

/* Checks the strategy against model and device count; message names the field and the rule. */
umoe_status spec_strategy_check(const spec_strategy *s, const spec_model *m, int devices, const char *file);
/* spec_strategy_check after deriving what is derived: dp = devices / (tp*cp*pp) when dp is 0. */
umoe_status spec_strategy_finish(spec_strategy *s, const spec_model *m, int devices, const char *file);
/* Strategy from an already-parsed JSON object. */
umoe_status spec_strategy_from_json(const void *cjson_obj, const char *file, spec_strategy *s);
/* Transformer layers held by model chunk c (0 <= c < pp*vpp, in model order; chunk c runs on stage c % pp;
 * DualPipe: vpp = 1, rank i holds chunk i and a copy of chunk pp-1-i).
 * Even split when L % (pp*vpp) == 0. Otherwise (only with pad_layers, MindSpeed's "noop layers"): every
 * chunk holds ceil(L / n) layers except r = n*ceil - L chunks that hold one fewer, taken alternately from the
 * end and the start of the pipeline (last chunk, first chunk, second-to-last, second, ...), because the
 * first and last chunks also carry the embedding and the LM head / MTP. */
int spec_chunk_layers(const spec_strategy *s, const spec_model *m, int c);

void spec_params_count(const spec_model *m, spec_params *p);
void spec_flops_count(const spec_model *m, int causal_half, spec_flops *f);
/* Forward FLOPs per token that a recompute policy (SPEC_RC_* flags) runs again in the backward pass: full =
 * every transformer layer (and MTP block, not the heads); attn_core = the attention core; mla_up = the MLA
 * up-projections (q_b, kv_b); expert_fc1 = the first GEMM(s) of the K routed + shared experts (gate and up
 * for SwiGLU). norm, activation and permute are element-wise: 0 matrix FLOPs (their time is the simulator's).
 * HFU counts these; MFU does not. */
double spec_flops_recompute(const spec_model *m, unsigned rc, int causal_half);
/* Does layer l (0-based) use MoE? */
int spec_layer_is_moe(const spec_model *m, int l);
/* Where presets live: configs/ (resolved once). */
const char *spec_config_dir(void);
/* Resolve "name" to configs/<kind>/name.json when it is not an existing path. out must hold 4096. */
int spec_resolve(const char *path_or_name, const char *kind, char *out, size_t n);
#endif
