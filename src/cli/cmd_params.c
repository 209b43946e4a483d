/* cmd_params.c - `umoe params MODEL [--json] [--seq T] [--causal-half]`: exact parameter counts (total,
 * active, MTP) with a per-layer-kind breakdown, and model FLOPs per token, of a model given as a preset name,
 * our JSON or a HuggingFace config.json. Definitions: docs/formats.md ("Parameter counts", "FLOPs").
 * Does not: simulate anything (umoe sim). */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "umoe/json.h"
#include "umoe/spec.h"

static void usage(FILE *f) {
    fprintf(f, "usage: umoe params MODEL [--json] [--seq T] [--causal-half]\n\n"
               "Parameter counts and FLOPs per token of a model.\n"
               "MODEL is a preset name from configs/models/ (e.g. pangu-ultra-moe-718b), our model JSON, or a\n"
               "HuggingFace config.json (deepseek_v3/v2, mixtral, qwen2_moe, qwen3_moe, llama, qwen2, qwen3).\n\n"
               "  --json         one JSON object on stdout\n"
               "  --seq T        sequence length for the attention FLOPs (default: the model's seq_len)\n"
               "  --causal-half  count only the causal half of attention's T^2 term (default: full, as Megatron-LM)\n\n"
               "active = parameters in the matrix products of one token (K routed + shared experts, LM head;\n"
               "not the embedding table, a lookup); MTP modules are counted separately. FLOPs: forward,\n"
               "multiply-add = 2; fwd+bwd = 3 x forward. See docs/formats.md.\n"
               "Exit codes: 0 ok, 2 bad input.\n");
}

static const char *human(double v, char *buf, size_t n) {
    if (v >= 1e12) snprintf(buf, n, "%.3fT", v / 1e12);
    else if (v >= 1e9) snprintf(buf, n, "%.3fB", v / 1e9);
    else if (v >= 1e6) snprintf(buf, n, "%.3fM", v / 1e6);
    else if (v >= 1e3) snprintf(buf, n, "%.3fK", v / 1e3);
    else snprintf(buf, n, "%.0f", v);
    return buf;
}

static const char *attn_name(spec_attn_kind a) { return a == SPEC_ATTN_MLA ? "MLA" : a == SPEC_ATTN_GQA ? "GQA" : "MHA"; }

static void row(const char *what, double per, int count, double total, double active) {
    char a[32], b[32], c[32];
    if (count > 0) printf("  %-30s %10s x %-4d %10s", what, human(per, a, sizeof a), count, human(total, b, sizeof b));
    else printf("  %-30s %10s   %-4s %10s", what, "", "", human(total, b, sizeof b));
    if (active >= 0) printf(" %10s\n", human(active, c, sizeof c));
    else printf(" %10s\n", "-");
}

static void print_human(const spec_model *m, const spec_params *p, const spec_flops *f, int causal_half) {
    char a[32], b[32];
    printf("model %s: %d layers (%d dense, %d MoE), hidden %d, %d heads %s", m->name, m->L, p->n_dense, p->n_moe,
           m->C, m->H, attn_name(m->attn));
    if (m->attn == SPEC_ATTN_GQA) printf(" (%d KV heads)", m->H_kv);
    if (m->E) printf(", %d routed + %d shared experts, top-%d", m->E, m->E_shared, m->K);
    printf(", vocab %d, seq %d%s%s\n\n", m->V, m->T, m->tied ? ", tied embeddings" : "",
           m->mtp ? ", MTP" : "");
    printf("  %-30s %10s   %-4s %10s %10s\n", "parameters", "each", "", "total", "active");
    row("embedding", 0, 0, p->embed, m->tied ? p->embed : 0);
    if (!m->tied) row("LM head", 0, 0, p->head, p->head);
    row("final norm", 0, 0, p->final_norm, p->final_norm);
    int L = m->L;
    row("attention + its norms / layer", p->attn_per_layer, L, L * p->attn_per_layer, L * p->attn_per_layer);
    row("FFN norms / layer", p->ffn_norms_per_layer, L, L * p->ffn_norms_per_layer, L * p->ffn_norms_per_layer);
    if (p->n_dense)
        row("dense FFN / dense layer", p->dense_ffn_per_layer, p->n_dense, p->n_dense * p->dense_ffn_per_layer,
            p->n_dense * p->dense_ffn_per_layer);
    if (p->n_moe) {
        row("router / MoE layer", p->moe_router_per_layer, p->n_moe, p->n_moe * p->moe_router_per_layer,
            p->n_moe * p->moe_router_per_layer);
        row("routed experts / MoE layer", m->E * p->expert, p->n_moe, p->n_moe * m->E * p->expert,
            (double)p->n_moe * m->K * p->expert);
        if (m->E_shared)
            row("shared experts / MoE layer", m->E_shared * p->expert, p->n_moe, p->n_moe * m->E_shared * p->expert,
                (double)p->n_moe * m->E_shared * p->expert);
        printf("  (one expert: %s)\n", human(p->expert, a, sizeof a));
    }
    row("model (no MTP)", 0, 0, p->total, p->active);
    if (!m->tied) printf("  %-30s %10s   %-4s %10s %10s\n", "active incl. embedding", "", "", "",
                         human(p->active_with_embed, a, sizeof a));
    if (m->mtp) row("MTP modules (separate)", p->mtp / m->mtp, m->mtp, p->mtp, p->mtp_active);
    printf("\n  exact: total %.0f, active %.0f, MTP %.0f\n", p->total, p->active, p->mtp);
    printf("\nFLOPs per token (forward, attention %s T^2, T = %d)\n", causal_half ? "causal half of" : "full", m->T);
    row("attention projections / layer", f->attn_proj, L, L * f->attn_proj, -1);
    row("attention core / layer", f->attn_core, L, L * f->attn_core, -1);
    if (p->n_dense) row("dense FFN / dense layer", f->dense_ffn, p->n_dense, p->n_dense * f->dense_ffn, -1);
    if (p->n_moe) row("MoE FFN + router / MoE layer", f->moe_ffn, p->n_moe, p->n_moe * f->moe_ffn, -1);
    row("LM head", 0, 0, f->head, -1);
    if (m->mtp) row("MTP modules", 0, 0, f->mtp, -1);
    printf("  %-30s %10s   %-4s %10s\n", "forward", "", "", human(f->fwd_total, a, sizeof a));
    printf("  %-30s %10s   %-4s %10s   (6 x active = %s)\n", "forward + backward (3x)", "", "",
           human(3 * f->fwd_total, a, sizeof a), human(6 * p->active, b, sizeof b));
}

static void print_json(const spec_model *m, const spec_params *p, const spec_flops *f, int causal_half) {
    json_writer w;
    jw_begin(&w, stdout);
    jw_obj_open(&w, NULL);
    jw_str(&w, "name", m->name);
    jw_int(&w, "layers", m->L);
    jw_int(&w, "dense_layers", p->n_dense);
    jw_int(&w, "moe_layers", p->n_moe);
    jw_int(&w, "seq_len", m->T);
    jw_int(&w, "params_total", (long long)p->total);
    jw_int(&w, "params_active", (long long)p->active);
    jw_int(&w, "params_active_with_embed", (long long)p->active_with_embed);
    jw_int(&w, "params_mtp", (long long)p->mtp);
    jw_int(&w, "params_mtp_active", (long long)p->mtp_active);
    jw_obj_open(&w, "params");
    jw_int(&w, "embed", (long long)p->embed);
    jw_int(&w, "head", (long long)p->head);
    jw_int(&w, "final_norm", (long long)p->final_norm);
    jw_int(&w, "attn_per_layer", (long long)p->attn_per_layer);
    jw_int(&w, "ffn_norms_per_layer", (long long)p->ffn_norms_per_layer);
    jw_int(&w, "norms_per_layer", (long long)p->norms_per_layer);
    jw_int(&w, "dense_ffn_per_layer", (long long)p->dense_ffn_per_layer);
    jw_int(&w, "moe_router_per_layer", (long long)p->moe_router_per_layer);
    jw_int(&w, "expert", (long long)p->expert);
    jw_int(&w, "dense_layer", (long long)p->dense_layer);
    jw_int(&w, "moe_layer", (long long)p->moe_layer);
    jw_int(&w, "moe_layer_active", (long long)p->moe_layer_active);
    jw_obj_close(&w);
    jw_bool(&w, "causal_half", causal_half);
    jw_num(&w, "flops_per_token_fwd", f->fwd_total);
    jw_num(&w, "flops_per_token", 3 * f->fwd_total); /* fwd + bwd, as sim's flops_per_token */
    jw_obj_open(&w, "flops");
    jw_num(&w, "attn_proj", f->attn_proj);
    jw_num(&w, "attn_core", f->attn_core);
    jw_num(&w, "dense_ffn", f->dense_ffn);
    jw_num(&w, "moe_ffn", f->moe_ffn);
    jw_num(&w, "head", f->head);
    jw_num(&w, "mtp", f->mtp);
    jw_num(&w, "fwd_total", f->fwd_total);
    jw_obj_close(&w);
    jw_obj_close(&w);
    jw_end(&w);
}

int cmd_params(int argc, char **argv) {
    const char *model = NULL;
    int json = 0, causal_half = 0;
    long long seq = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            usage(stdout);
            return UMOE_EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--causal-half")) {
            causal_half = 1;
        } else if (!strcmp(argv[i], "--seq")) {
            const char *v = cli_value("params", argc, argv, i);
            if (!v) return UMOE_EXIT_INPUT;
            if (cli_parse_int("params", "--seq", v, 1, 100000000, &seq)) return UMOE_EXIT_INPUT;
            i++;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return cli_unknown("params", argv[i]);
        } else if (!model) {
            model = argv[i];
        } else {
            return cli_unknown("params", argv[i]);
        }
    }
    if (!model) {
        fprintf(stderr, "umoe params: MODEL is missing\n\n");
        usage(stderr);
        return UMOE_EXIT_INPUT;
    }
    spec_model m;
    if (spec_model_load(model, &m)) return cli_input_error();
    if (seq) m.T = (int)seq;
    spec_params p;
    spec_flops f;
    spec_params_count(&m, &p);
    spec_flops_count(&m, causal_half, &f);
    if (json) print_json(&m, &p, &f, causal_half);
    else print_human(&m, &p, &f, causal_half);
    return UMOE_EXIT_OK;
}
