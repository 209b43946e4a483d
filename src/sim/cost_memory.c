/* cost_memory.c - activation memory of one layer and one micro-batch on one device, and the number of
 * micro-batches whose activations a pipeline stage holds at its peak, per schedule.
 * Does not: weights/grads/optimizer bytes or peak assembly (step.c). No allocation.
 * Source: Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models"
 * (arXiv 2205.05198), Sec. 4 and Table 2: per layer sbh(34 + 5as/h) bytes without parallelism;
 * sbh(10 + 24/t + 5as/(ht)) with TP; sbh(34/t + 5as/(ht)) with TP + SP; sbh(34/t) with SP + selective
 * recompute; 2sbh with full recompute. Generalised here term by term (docs/cost-model.md "Memory"):
 *   sequence-parallel region (divided by t only with SP): norm inputs 2h each, attention and MLP inputs
 *   2h each, two dropout masks h each  -> 10h for a pre-norm layer;
 *   tensor-parallel region (divided by t): Q, K 4h; V 2h; attention output 2h; FFN fc1 output and activation
 *   output (8h + 8h for GeLU with F = 4h)  -> 24h; unfused attention adds 5as (softmax 2, dropout mask 1,
 *   dropout output 2 bytes per score); a flash kernel stores only the fp32 log-sum-exp (4a).
 * Recompute modules free exactly the tensors the engine frees for the same SPEC_RC_* flag (src/model/model_arena.c;
 * table in docs/cost-model.md "Recompute modules"): norm = the RMSNorm outputs that feed GEMMs (attention and
 * FFN inputs; MLA's q and kv latent norm outputs); activation = the activation outputs (dense FFN, shared and
 * routed experts); attn_core = with a flash kernel the attention output and the log-sum-exp (the engine reruns
 * the whole core), unfused the 5as score bytes (Korthikanti's selective recompute keeps the output); mla_up =
 * Q, K, V after the up-projections, keeping the kv_a output (kv latent + k_rope) instead; expert_fc1 = the
 * routed experts' FC1 output and activation; permute = the permuted rows; full = all but the layer input. */
#include "cost.h"

double sim_layer_input_bytes(const spec_model *m, const spec_strategy *s) {
    double tp = s->tp > 0 ? s->tp : 1, cp = s->cp > 0 ? s->cp : 1;
    int sp = s->sp && tp > 1;
    return 2.0 * ((double)s->mbs * m->T / cp) * m->C / (sp ? tp : 1); /* bf16, SP-sharded with SP */
}

double sim_layer_act_bytes(const spec_model *m, const spec_strategy *s, const sim_options *o, int moe) {
    double tp = s->tp > 0 ? s->tp : 1, cp = s->cp > 0 ? s->cp : 1;
    double etp = s->etp > 0 ? s->etp : 1;
    int sp = s->sp && tp > 1;
    double n = (double)s->mbs * m->T / cp; /* tokens of the micro-batch on this CP rank */
    double C = m->C;
    unsigned rc = s->recompute;
    int swiglu = m->ffn == SPEC_FFN_SWIGLU;
    if (rc & SPEC_RC_FULL) return sim_layer_input_bytes(m, s); /* only the layer input is kept */

    int n_norm = m->norm == SPEC_NORM_SANDWICH ? 4 : 2;
    /* sequence-parallel region, per token */
    double seq = n_norm * 2.0 * C /* norm inputs */ + 2.0 * C + 2.0 * C /* attn + MLP inputs */ + 2.0 * C /* masks */;
    if (rc & SPEC_RC_NORM) seq -= 4.0 * C; /* norm outputs (attn / MLP inputs) recomputed */
    /* tensor-parallel region, per token, before dividing by tp; `rep`: replicated over TP */
    double par = 0, rep = 0;
    double a_full = m->H;
    int no_flash = o && o->attn_no_flash;
    /* the attention output (o-proj input) is freed by attn_core only with a flash kernel (see the header) */
    int keep_out = !(rc & SPEC_RC_ATTN_CORE) || no_flash;
    if (m->attn == SPEC_ATTN_MLA) {
        double qk = m->qk_nope + m->qk_rope;
        double lat_norm = (rc & SPEC_RC_NORM) ? 0 : 1;      /* latent norm outputs: freed by norm */
        if (m->q_lora > 0) rep += 2.0 * m->q_lora * (1 + lat_norm); /* q latent (norm input) + its norm output */
        rep += 2.0 * m->kv_lora * (1 + lat_norm);           /* kv latent (norm input) + its norm output */
        double up = 2.0 * m->H * qk * 2 + 2.0 * m->H * m->v_head; /* Q, K, V after up-projection */
        if (!(rc & SPEC_RC_MLA_UP)) par += up;
        else rep += 2.0 * (m->kv_lora + m->qk_rope);        /* kv_a output kept to rebuild K (its k_rope part) */
        if (keep_out) par += 2.0 * m->H * m->v_head;        /* attention output (o-proj input) */
    } else {
        double hd = m->head_dim > 0 ? m->head_dim : C / m->H;
        double hkv = m->H_kv > 0 ? m->H_kv : m->H;
        double q = m->H * hd, kv = hkv * hd;
        par += 2.0 * (q + kv) + 2.0 * kv;                   /* Q, K; V */
        if (keep_out) par += 2.0 * q;                       /* attention output */
    }
    if (no_flash) {
        if (!(rc & SPEC_RC_ATTN_CORE)) par += 5.0 * a_full * m->T; /* scores: each query token vs all T keys */
    } else if (!(rc & SPEC_RC_ATTN_CORE)) {
        par += 4.0 * a_full;                                 /* log-sum-exp, fp32 */
    }
    double per_tok = seq / (sp ? tp : 1) + par / tp + rep;
    double bytes = per_tok * n;
    if (!moe) {
        double F = m->F;
        double ffn = 2.0 * (swiglu ? 2 : 1) * F + ((rc & SPEC_RC_ACT) ? 0 : 2.0 * F);
        bytes += n * ffn / tp;
    } else {
        double imb = s->imbalance > 1 ? s->imbalance : 1;
        double asg = n / tp * m->K * etp * imb;             /* token-assignments on the slowest EP rank */
        double Fe = m->F_expert / etp;
        double per = 2.0 * C /* permuted input */ + 2.0 * C /* expert output for the combine */;
        if (rc & SPEC_RC_PERMUTE) per -= 2.0 * C;
        if (!(rc & SPEC_RC_EXPERT_FC1)) {
            per += 2.0 * (swiglu ? 2 : 1) * Fe;
            if (!(rc & SPEC_RC_ACT)) per += 2.0 * Fe;
        }
        bytes += asg * per + n / tp * 4.0 * m->E * 2;       /* router logits + probabilities, fp32 */
        if (m->E_shared > 0) {
            double Fs = (double)m->F_expert * m->E_shared;
            bytes += n * (2.0 * (swiglu ? 2 : 1) * Fs + ((rc & SPEC_RC_ACT) ? 0 : 2.0 * Fs)) / tp;
        }
    }
    return bytes;
}
