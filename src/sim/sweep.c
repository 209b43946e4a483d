/* sweep.c - the architecture study (`umoe sweep`), as in Pangu Ultra MoE sec. 3 (simulation-driven model
 * design: expert count, shared expert, depth vs width chosen by simulated throughput on the target cluster).
 * Loads a space of model shapes around a base model, counts each shape's parameters (spec_params_count),
 * keeps those within the parameter budget, plans each one (plan_search) and ranks the shapes by the tokens/s
 * of their best strategy (tie: more memory headroom).
 * Shape rules: a changed hidden size keeps the heads (MHA/GQA head_dim = hidden / heads); attention "mha"
 * sets kv_heads = heads, "gqa" keeps the base's kv_heads when it has them (else min(8, heads)), "mla" keeps
 * the base's MLA dimensions when it has them (else DeepSeek-V3's: q/kv LoRA 1536/512, qk nope/rope 128/64,
 * v 128). Every shape is checked with spec_model_validate; an invalid one is listed as skipped with the reason.
 * Does not: print (sweep_report.c). */
#include <string.h>
#include "search_internal.h"
#include "umoe/json.h"

const char *const sweep_dim_keys[SWEEP_DIM_COUNT] = {"layers", "hidden", "heads", "experts", "top_k",
                                                      "shared_experts", "expert_ffn_hidden", "first_k_dense",
                                                      "attention"};
static const char *const attn_names[] = {"mha", "gqa", "mla", NULL};
static const char *const space_keys[] = {"name", "base", "budget", "layers", "hidden", "heads", "experts", "top_k",
                                         "shared_experts", "expert_ffn_hidden", "first_k_dense", "attention", "gbs",
                                         "seq_len", NULL};

static umoe_status get_list(const cJSON *o, const char *file, int d, sweep_space *sp) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, sweep_dim_keys[d]);
    if (!it) return UMOE_OK;
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) < 1 || cJSON_GetArraySize(it) > SWEEP_MAXV)
        return umoe_fail("%s: field \"%s\" must be a list of 1..%d values", file, sweep_dim_keys[d], SWEEP_MAXV);
    const cJSON *e;
    int k = 0;
    cJSON_ArrayForEach(e, it) {
        int v = -1;
        if (d == SWEEP_DIM_ATTN) {
            for (int i = 0; cJSON_IsString(e) && attn_names[i]; i++)
                if (umoe_streq_nocase(e->valuestring, attn_names[i])) v = i;
            if (v < 0)
                return umoe_fail("%s: field \"attention\" entry %d must be one of \"mha\", \"gqa\", \"mla\"", file, k);
        } else {
            long lo = (d == SWEEP_DIM_SHARED || d == SWEEP_DIM_FIRST_DENSE || d == SWEEP_DIM_EXPERTS ||
                       d == SWEEP_DIM_TOPK) ? 0 : 1;
            if (!cJSON_IsNumber(e) || e->valuedouble != (double)(long)e->valuedouble || e->valuedouble < lo ||
                e->valuedouble > 1e8)
                return umoe_fail("%s: field \"%s\" entry %d must be an integer in %ld..100000000", file,
                                 sweep_dim_keys[d], k, lo);
            v = (int)e->valuedouble;
        }
        for (int j = 0; j < k; j++)
            if (sp->v[d][j] == v) return umoe_fail("%s: field \"%s\" lists a value twice", file, sweep_dim_keys[d]);
        sp->v[d][k++] = v;
    }
    sp->n[d] = k;
    return UMOE_OK;
}

static umoe_status get_one_budget(const cJSON *b, const char *file, int i, sweep_budget_kind *kind_out,
                                  double *value, double *tol) {
    static const char *const keys[] = {"params", "value", "tolerance", NULL};
    static const char *const kinds[] = {"total", "active", NULL};
    char where[600];
    snprintf(where, sizeof where, "%s: budget[%d]", file, i);
    if (!cJSON_IsObject(b))
        return umoe_fail("%s: field \"budget\" must be an object {\"params\": \"total\"|\"active\", \"value\": N, "
                         "\"tolerance\": F} or a list of two such objects", file);
    umoe_status st = json_check_known(b, where, keys);
    if (st) return st;
    int kind = 0;
    *tol = 0.1;
    if ((st = json_get_enum_opt(b, where, "params", kinds, &kind))) return st;
    if ((st = json_get_num(b, where, "value", 1, 1e16, value))) return st;
    if ((st = json_get_num_opt(b, where, "tolerance", 0, 10, tol))) return st;
    *kind_out = kind == 1 ? SWEEP_BUDGET_ACTIVE : SWEEP_BUDGET_TOTAL;
    return UMOE_OK;
}

static umoe_status get_budget(const cJSON *o, const char *file, sweep_space *sp) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "budget");
    sp->budget_kind = sp->budget2_kind = SWEEP_BUDGET_NONE;
    sp->tolerance = sp->tolerance2 = 0.1;
    if (!b || cJSON_IsNull(b)) return UMOE_OK;
    if (!cJSON_IsArray(b)) return get_one_budget(b, file, 0, &sp->budget_kind, &sp->budget, &sp->tolerance);
    int n = cJSON_GetArraySize(b);
    if (n < 1 || n > 2) return umoe_fail("%s: field \"budget\" lists %d budgets (allowed 1 or 2)", file, n);
    umoe_status st = get_one_budget(cJSON_GetArrayItem(b, 0), file, 0, &sp->budget_kind, &sp->budget, &sp->tolerance);
    if (st || n == 1) return st;
    st = get_one_budget(cJSON_GetArrayItem(b, 1), file, 1, &sp->budget2_kind, &sp->budget2, &sp->tolerance2);
    if (st) return st;
    if (sp->budget2_kind == sp->budget_kind)
        return umoe_fail("%s: field \"budget\": the two budgets must be on different counts (one \"total\", one "
                         "\"active\")", file);
    return UMOE_OK;
}

umoe_status sweep_space_from_json(const void *obj, const char *file, sweep_space *sp) {
    const cJSON *o = obj;
    memset(sp, 0, sizeof *sp);
    umoe_status st = json_check_known(o, file, space_keys);
    if (st) return st;
    char base[4096];
    if ((st = json_get_str_opt(o, file, "name", sp->name, sizeof sp->name))) return st;
    if ((st = json_get_str(o, file, "base", base, sizeof base))) return st;
    if (spec_model_load(base, &sp->base) != UMOE_OK) {
        char inner[UMOE_ERRLEN];
        memcpy(inner, umoe_err, sizeof inner);
        return umoe_fail("%s: field \"base\" = \"%s\": %s", file, base, inner);
    }
    for (int d = 0; d < SWEEP_DIM_COUNT; d++)
        if ((st = get_list(o, file, d, sp))) return st;
    if ((st = get_budget(o, file, sp))) return st;
    long long v = 0;
    if ((st = json_get_int_opt(o, file, "gbs", 1, 1 << 26, &v))) return st;
    sp->gbs = (int)v;
    v = 0;
    if ((st = json_get_int_opt(o, file, "seq_len", 1, 1 << 24, &v))) return st;
    sp->seq = (int)v;
    if (!sp->name[0]) umoe_strlcpy(sp->name, sp->base.name, sizeof sp->name);
    return UMOE_OK;
}

umoe_status sweep_space_load(const char *path, sweep_space *sp) {
    char full[4096];
    if (!spec_resolve(path, "sweeps", full, sizeof full)) return UMOE_EINPUT;
    cJSON *o = json_load_file(full);
    if (!o) return UMOE_EINPUT;
    umoe_status st = sweep_space_from_json(o, full, sp);
    cJSON_Delete(o);
    return st;
}

/* The shape at position idx of the Cartesian product (the last dimension varies fastest). */
static void shape_at(const sweep_space *sp, long idx, spec_model *m) {
    int val[SWEEP_DIM_COUNT];
    for (int d = SWEEP_DIM_COUNT - 1; d >= 0; d--) {
        int n = sp->n[d] ? sp->n[d] : 1;
        val[d] = sp->n[d] ? sp->v[d][idx % n] : -1;
        idx /= n;
    }
    *m = sp->base;
    if (val[SWEEP_DIM_LAYERS] >= 0) m->L = val[SWEEP_DIM_LAYERS];
    if (val[SWEEP_DIM_HIDDEN] >= 0) m->C = val[SWEEP_DIM_HIDDEN];
    if (val[SWEEP_DIM_HEADS] >= 0) m->H = val[SWEEP_DIM_HEADS];
    if (val[SWEEP_DIM_EXPERTS] >= 0) m->E = val[SWEEP_DIM_EXPERTS];
    if (val[SWEEP_DIM_TOPK] >= 0) m->K = val[SWEEP_DIM_TOPK];
    if (val[SWEEP_DIM_SHARED] >= 0) m->E_shared = val[SWEEP_DIM_SHARED];
    if (val[SWEEP_DIM_FEXPERT] >= 0) m->F_expert = val[SWEEP_DIM_FEXPERT];
    if (val[SWEEP_DIM_FIRST_DENSE] >= 0) m->first_k_dense = val[SWEEP_DIM_FIRST_DENSE];
    if (val[SWEEP_DIM_ATTN] >= 0) m->attn = (spec_attn_kind)val[SWEEP_DIM_ATTN];
    if (m->attn != SPEC_ATTN_MLA) {
        m->head_dim = m->H > 0 ? m->C / m->H : 0;
        if (m->attn == SPEC_ATTN_MHA) m->H_kv = m->H;
        else if (sp->base.attn != SPEC_ATTN_GQA || m->H_kv < 1 || m->H % m->H_kv) m->H_kv = m->H < 8 ? m->H : 8;
    } else if (sp->base.attn != SPEC_ATTN_MLA) {
        m->q_lora = 1536, m->kv_lora = 512, m->qk_nope = 128, m->qk_rope = 64, m->v_head = 128;
    }
    if (sp->seq > 0) m->T = sp->seq;
    if (m->E == 0) m->K = 0, m->E_shared = 0;
    snprintf(m->name, sizeof m->name, "L%d-C%d-E%d-K%d-S%d-F%d-%s", m->L, m->C, m->E, m->K, m->E_shared, m->F_expert,
             attn_names[m->attn]);
}

/* Is the shape within one budget? Writes the reason into why when not. */
static int within(sweep_budget_kind kind, double budget, double tol, const sweep_shape *s, char *why, size_t n) {
    if (kind == SWEEP_BUDGET_NONE) return 1;
    double x = kind == SWEEP_BUDGET_ACTIVE ? s->params_active : s->params_total;
    if (x >= budget * (1 - tol) && x <= budget * (1 + tol)) return 1;
    snprintf(why, n, "%.1fB %s parameters: outside the budget %.1fB +- %.0f%%", x / 1e9,
             kind == SWEEP_BUDGET_ACTIVE ? "activated" : "total", budget / 1e9, 100 * tol);
    return 0;
}

static int shape_cmp(const void *pa, const void *pb) {
    const sweep_shape *a = pa, *b = pb;
    int ra = a->has_best ? 0 : a->planned ? 1 : 2, rb = b->has_best ? 0 : b->planned ? 1 : 2;
    if (ra != rb) return ra - rb;
    if (ra == 0) {
        if (a->best.r.tokens_per_s != b->best.r.tokens_per_s)
            return a->best.r.tokens_per_s > b->best.r.tokens_per_s ? -1 : 1;
        if (a->best.r.memory_peak_bytes != b->best.r.memory_peak_bytes)
            return a->best.r.memory_peak_bytes < b->best.r.memory_peak_bytes ? -1 : 1;
    }
    if (a->params_total != b->params_total) return a->params_total < b->params_total ? -1 : 1;
    return strcmp(a->m.name, b->m.name);
}

umoe_status sweep_run(const sweep_space *sp, const spec_cluster *c, const plan_options *o_in, plan_eval_fn eval,
                      sweep_result *out) {
    double t0 = umoe_now();
    memset(out, 0, sizeof *out);
    long total = 1;
    for (int d = 0; d < SWEEP_DIM_COUNT; d++) {
        total *= sp->n[d] ? sp->n[d] : 1;
        if (total > 100000) return umoe_fail("sweep: the space has more than 100000 shapes; narrow the lists");
    }
    out->n_total = (int)total;
    out->s = umoe_calloc((size_t)total, sizeof *out->s, "sweep shapes");
    plan_options o = *o_in;
    o.top = 1;
    if (o.detailed_top < 0) o.detailed_top = 10; /* the best of plan's default ten, re-simulated */
    o.progress = 0;
    if (o.gbs <= 0 && sp->gbs > 0) o.gbs = sp->gbs;
    umoe_progress prog;
    umoe_progress_start(&prog, "sweep", (double)total);
    if (!o_in->progress) prog.enabled = 0;
    char saved[UMOE_ERRLEN];
    for (long i = 0; i < total; i++) {
        sweep_shape *s = &out->s[out->n];
        memset(s, 0, sizeof *s);
        shape_at(sp, i, &s->m);
        memcpy(saved, umoe_err, sizeof saved);
        if (spec_model_validate(&s->m, s->m.name) != UMOE_OK) {
            LOG_DEBUG("sweep: shape %s skipped: %s", s->m.name, umoe_err);
            memcpy(umoe_err, saved, sizeof saved);
            continue; /* not a model: counted in n_total - n_valid */
        }
        out->n++;
        out->n_valid++;
        spec_params p;
        spec_params_count(&s->m, &p);
        s->params_total = p.total;
        s->params_active = p.active;
        s->in_budget = within(sp->budget_kind, sp->budget, sp->tolerance, s, s->skip, sizeof s->skip) &&
                       within(sp->budget2_kind, sp->budget2, sp->tolerance2, s, s->skip, sizeof s->skip);
        if (!s->in_budget) continue;
        out->n_budget++;
        plan_result r;
        umoe_status st = plan_search(&s->m, c, &o, eval, &r);
        if (st != UMOE_OK) {
            snprintf(s->skip, sizeof s->skip, "plan failed: %.140s", umoe_err);
            continue;
        }
        s->planned = 1;
        s->evaluated = r.evaluated;
        s->feasible = r.feasible;
        out->evaluated += r.evaluated;
        out->devices = r.devices, out->gbs = r.gbs, out->seq = out->seq ? out->seq : r.seq;
        if (r.n > 0) {
            s->has_best = 1;
            s->best = r.best[0];
            out->n_feasible++;
        } else {
            snprintf(s->skip, sizeof s->skip, "no strategy fits in memory (lightest needs %.1f GiB)",
                     r.min_peak_bytes / (1024.0 * 1024 * 1024));
        }
        plan_result_free(&r);
        umoe_progress_update(&prog, (double)i + 1);
    }
    umoe_progress_end(&prog);
    qsort(out->s, (size_t)out->n, sizeof *out->s, shape_cmp);
    out->seconds = umoe_now() - t0;
    return UMOE_OK;
}

void sweep_result_free(sweep_result *r) {
    if (r->s) umoe_free(r->s, (size_t)r->n_total * sizeof *r->s);
    r->s = NULL;
    r->n = 0;
}
