/* spec_strategy_check.c - is a parallel strategy valid for a model on N devices? Each failed rule gives a
 * message naming the file, the field, the value and the rule. The rules (docs/formats.md, "Strategy rules")
 * follow Megatron-LM's argument checks (megatron/training/arguments.py) unless stated:
 *   dp * tp * cp * pp == devices (dp 0 = derived by spec_strategy_finish)
 *   tp divides heads, and kv_heads for GQA/MHA (query groups are split over TP)
 *   tp divides the dense FFN width; etp divides the expert FFN width
 *   sp needs tp > 1
 *   cp > 1: seq_len divisible by 2*cp (load-balanced causal CP splits the sequence into 2*cp chunks)
 *   layers divisible by pp*vpp, or pad_layers set and layers >= pp*vpp (see spec_chunk_layers)
 *   vpp > 1 only with the interleaved schedule, which needs pp >= 2 and a number of micro-batches
 *   (gbs / (mbs dp)) that is a multiple of pp (Megatron-LM's interleaved 1F1B)
 *   DualPipe (DeepSeek-V3 Sec. 3.2.1): pp even, vpp 1 (the model is split into pp stages; rank i holds stage
 *   i and a copy of stage pp-1-i, one per direction), and an even number of micro-batches >= 2 pp (half
 *   enter at each end); these match sim_pipeline_run's requirements
 *   MoE: ep*etp divides dp*tp*cp (experts are sharded over the same devices as the dense part); ep divides
 *   experts. Dense model: ep == etp == 1.
 *   gbs >= 1 and gbs divisible by mbs*dp
 *   imbalance >= 1 and <= ep (one EP rank cannot receive more than all token-assignments); a histogram has
 *   one entry per routed expert.
 * Does not: check memory or hardware (the simulator does). */
#include <string.h>
#include "umoe/spec.h"

umoe_status spec_strategy_check(const spec_strategy *s, const spec_model *m, int devices, const char *file) {
    const char *f = file ? file : "strategy";
    if (devices < 1) return umoe_fail("%s: device count %d must be >= 1", f, devices);
    if (s->tp < 1 || s->cp < 1 || s->pp < 1 || s->vpp < 1 || s->ep < 1 || s->etp < 1 || s->mbs < 1 || s->dp < 0)
        return umoe_fail("%s: tp, cp, pp, vpp, ep, etp, mbs must be >= 1 and dp >= 0 (got tp %d cp %d pp %d vpp %d "
                         "ep %d etp %d mbs %d dp %d)", f, s->tp, s->cp, s->pp, s->vpp, s->ep, s->etp, s->mbs, s->dp);
    long long mp = (long long)s->tp * s->cp * s->pp;
    long long dp = s->dp;
    if (dp == 0) {
        if (devices % mp)
            return umoe_fail("%s: tp*cp*pp = %d*%d*%d = %lld does not divide the %d devices (dp would not be "
                             "a whole number)", f, s->tp, s->cp, s->pp, mp, devices);
        dp = devices / mp;
    }
    if (dp * mp != devices)
        return umoe_fail("%s: field \"dp\": dp*tp*cp*pp = %lld*%d*%d*%d = %lld must equal the device count %d "
                         "(or set dp 0 to derive it)", f, dp, s->tp, s->cp, s->pp, dp * mp, devices);
    if (m->H % s->tp)
        return umoe_fail("%s: field \"tp\" = %d must divide the model's heads = %d", f, s->tp, m->H);
    if (m->attn != SPEC_ATTN_MLA && m->H_kv % s->tp)
        return umoe_fail("%s: field \"tp\" = %d must divide the model's kv_heads = %d (KV groups are split over TP)",
                         f, s->tp, m->H_kv);
    if (m->F > 0 && (m->E == 0 || m->first_k_dense > 0) && m->F % s->tp)
        return umoe_fail("%s: field \"tp\" = %d must divide the dense FFN width ffn_hidden = %d", f, s->tp, m->F);
    if (s->sp && s->tp < 2) return umoe_fail("%s: field \"sp\" = true needs tp > 1 (tp = %d)", f, s->tp);
    if (s->cp > 1 && m->T % (2 * s->cp))
        return umoe_fail("%s: field \"cp\" = %d: seq_len = %d must be divisible by 2*cp = %d (load-balanced causal "
                         "context parallelism splits the sequence into 2*cp chunks)", f, s->cp, m->T, 2 * s->cp);
    long long chunks = (long long)s->pp * s->vpp;
    if (chunks > m->L)
        return umoe_fail("%s: fields \"pp\"*\"vpp\" = %d*%d = %lld exceed the model's %d layers (every model chunk "
                         "needs a layer)", f, s->pp, s->vpp, chunks, m->L);
    if (!s->pad_layers && m->L % chunks)
        return umoe_fail("%s: fields \"pp\"*\"vpp\" = %d*%d = %lld must divide the model's %d layers (or set "
                         "\"pad_layers\": true for an uneven split)", f, s->pp, s->vpp, chunks, m->L);
    if ((unsigned)s->schedule >= SPEC_SCHED_COUNT)
        return umoe_fail("%s: field \"schedule\" has an unknown value", f);
    if (s->vpp > 1 && s->schedule != SPEC_SCHED_INTERLEAVED)
        return umoe_fail("%s: field \"vpp\" = %d > 1 needs schedule \"interleaved\" (schedule is \"%s\")", f, s->vpp,
                         spec_schedule_names[s->schedule]);
    if (s->schedule == SPEC_SCHED_INTERLEAVED && s->pp < 2)
        return umoe_fail("%s: field \"schedule\" = \"interleaved\" needs pp >= 2 (pp = %d)", f, s->pp);
    if (s->schedule == SPEC_SCHED_DUALPIPE && (s->pp < 2 || s->pp % 2))
        return umoe_fail("%s: field \"schedule\" = \"dualpipe\" needs pp even and >= 2 (pp = %d): DualPipe pairs "
                         "rank i with rank pp-1-i", f, s->pp);
    if (m->E == 0) {
        if (s->ep != 1 || s->etp != 1)
            return umoe_fail("%s: fields \"ep\" = %d and \"etp\" = %d must be 1 for a dense model (experts = 0)", f,
                             s->ep, s->etp);
    } else {
        long long edp = dp * s->tp * s->cp;
        if (edp % ((long long)s->ep * s->etp))
            return umoe_fail("%s: fields \"ep\"*\"etp\" = %d*%d = %d must divide dp*tp*cp = %lld (the devices of one "
                             "pipeline stage)", f, s->ep, s->etp, s->ep * s->etp, edp);
        if (m->E % s->ep)
            return umoe_fail("%s: field \"ep\" = %d must divide the model's experts = %d", f, s->ep, m->E);
        if (m->F_expert % s->etp)
            return umoe_fail("%s: field \"etp\" = %d must divide the expert FFN width expert_ffn_hidden = %d", f,
                             s->etp, m->F_expert);
    }
    if (s->gbs < 1)
        return umoe_fail("%s: field \"gbs\" = %d: the global batch (sequences) must be set, >= 1 (in the strategy or "
                         "with --gbs)", f, s->gbs);
    if (s->gbs % ((long long)s->mbs * dp))
        return umoe_fail("%s: field \"gbs\" = %d must be divisible by mbs*dp = %d*%lld = %lld", f, s->gbs, s->mbs, dp,
                         s->mbs * dp);
    long long n_mb = s->gbs / ((long long)s->mbs * dp);
    if (s->schedule == SPEC_SCHED_INTERLEAVED && n_mb % s->pp)
        return umoe_fail("%s: field \"gbs\" = %d: schedule \"interleaved\" needs the micro-batches per step "
                         "gbs/(mbs*dp) = %lld to be a multiple of pp = %d", f, s->gbs, n_mb, s->pp);
    if (s->schedule == SPEC_SCHED_DUALPIPE && (n_mb % 2 || n_mb < 2LL * s->pp))
        return umoe_fail("%s: field \"gbs\" = %d: schedule \"dualpipe\" needs the micro-batches per step "
                         "gbs/(mbs*dp) = %lld to be even and >= 2*pp = %d (half enter at each end)", f, s->gbs, n_mb,
                         2 * s->pp);
    if (!(s->imbalance >= 1.0))
        return umoe_fail("%s: field \"imbalance\" = %g must be >= 1 (max/mean load per EP rank)", f, s->imbalance);
    if (s->ep > 1 && s->imbalance > s->ep)
        return umoe_fail("%s: field \"imbalance\" = %g must be <= ep = %d (one rank cannot get more than all "
                         "token-assignments)", f, s->imbalance, s->ep);
    if (s->n_hist && s->n_hist != m->E)
        return umoe_fail("%s: field \"hist\" has %d entries: it needs one per routed expert (experts = %d)", f,
                         s->n_hist, m->E);
    if (s->precision_bits != 8 && s->precision_bits != 16)
        return umoe_fail("%s: precision_bits = %d (allowed 16 or 8)", f, s->precision_bits);
    return UMOE_OK;
}

umoe_status spec_strategy_finish(spec_strategy *s, const spec_model *m, int devices, const char *file) {
    umoe_status st = spec_strategy_check(s, m, devices, file);
    if (st) return st;
    if (s->dp == 0) s->dp = devices / (s->tp * s->cp * s->pp);
    return UMOE_OK;
}
