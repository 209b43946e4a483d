/* plan.h - the strategy planner (`umoe plan`) and the architecture sweep (`umoe sweep`).
 * The planner enumerates every valid parallel strategy of a model on a device count, evaluates each with
 * the simulator's closed-form path, keeps the feasible ones (fits in memory), ranks them by tokens/s
 * (tie: more memory headroom first), then re-evaluates the best with the event-driven pipeline simulation
 * and re-ranks those. The sweep plans many model shapes within a parameter budget.
 * Reads spec.h and sim.h only; prints nothing to stdout (reports take a FILE* from the CLI). */
#ifndef UMOE_PLAN_H
#define UMOE_PLAN_H
#include <stdint.h>
#include "umoe/json.h"
#include "umoe/sim.h"

/* The evaluator: sim_run in the shipped planner; tests may pass a cheap stand-in. Must be re-entrant
 * (called from several threads at once with --threads) and must not depend on call order. */
typedef umoe_status (*plan_eval_fn)(const spec_model *m, const spec_cluster *c, const spec_strategy *s,
                                    const sim_options *o, sim_result *r);

#define PLAN_RC_MAX 128
typedef struct {
    int devices;        /* device count; 0 = the cluster's */
    int gbs;            /* global batch in sequences; 0 = plan_default_gbs() */
    int top;            /* K: how many strategies to return (default 10) */
    int detailed_top;   /* N: re-evaluate the best N with the event simulation; -1 = K, 0 = none */
    int threads;        /* OpenMP threads; 0 or 1 = one */
    int causal_half;    /* passed to sim_options */
    int no_prune;       /* 1: evaluate every candidate: no memory pruning, no throughput bound (slow; same ranking) */
    int no_bound;       /* 1: memory pruning only, no throughput bound (then `feasible` counts every fit) */
    int exhaustive;     /* 1: lift the default search-space restrictions (plan_layouts) */
    int no_overlap;     /* 1: every overlap switch off (default: on, see plan_strategy_base) */
    int progress;       /* 1: progress line on stderr (umoe_progress_*) */
    /* Recompute policies to try (SPEC_RC_* masks); n_recompute == 0 = plan_recompute_default(). */
    int n_recompute;
    unsigned recompute[PLAN_RC_MAX];
    int no_offload;     /* 1: do not search offload (default: searched when the hardware has host_bw; plan_offload_variants) */
} plan_options;

/* The part of a sim_result the planner keeps (sim_result itself carries a pipeline record of ~4 KB). */
typedef struct {
    double params_total, params_active, flops_per_token;
    double step_time_s, tokens_per_s, mfu, hfu;
    double breakdown[SIM_T_COUNT];
    double memory[SIM_M_COUNT];
    double memory_peak_bytes;
    int fits, worst_stage;
    double bubble_frac;
} plan_sim;
void plan_sim_from(plan_sim *p, const sim_result *r);

/* One evaluated strategy, compact (spec_strategy is large): the searched fields and the result.
 * key = position in the enumeration order; the last tie-break, so rankings are total and identical for any
 * number of threads. */
typedef struct {
    int tp, cp, pp, vpp, ep, etp, dp, mbs, zero1;
    int offload_act;    /* strategy offload_activations */
    int offload_opt;    /* strategy offload_optimizer */
    unsigned recompute;
    spec_schedule schedule;
    spec_a2a a2a;
    uint64_t key;
    plan_sim r;
} plan_entry;

typedef struct {
    long long evaluated;   /* evaluator calls on the closed-form path */
    long long feasible;    /* of those, how many fit in memory (pruned candidates provably do not; bounded ones
                            * may: with no_bound or no_prune this is every strategy that fits) */
    long long pruned;      /* candidates skipped because a lighter variant already did not fit */
    long long bounded;     /* candidates skipped because a faster variant already ranks below the best K */
    long long layouts;     /* (tp, cp, pp, vpp, ep, etp, dp) tuples accepted by spec_strategy_check */
    double seconds;        /* wall time of the whole search incl. the detailed re-evaluation */
    double seconds_closed; /* wall time of the closed-form part alone */
    double min_peak_bytes; /* smallest memory peak among the evaluated candidates (why nothing fits) */
    int devices, gbs, seq, gbs_defaulted;
    int overlap;           /* the overlap switches of every strategy (1 = all on) */
    int detailed;          /* how many entries were re-evaluated with the event simulation */
    int n_cap;             /* how many best entries the search kept exact: max(K, N) */
    int n;                 /* entries in best[], best first */
    plan_entry *best;
} plan_result;

void plan_options_defaults(plan_options *o);
/* Default global batch when --gbs is not given: one sequence per device (gbs = devices). Every data-parallel
 * degree then divides it and every pipeline gets at least tp*cp*pp sequences per step (>= pp micro-batches at
 * micro-batch 1). On 6144 devices at 4096 tokens: 25.2M tokens per step, the order of the 16M-63M tokens of
 * published runs (Llama 3 405B: 16M; DeepSeek-V3: 61M at the end of its batch ramp). */
int plan_default_gbs(int devices, int seq);
/* The default recompute policies: none, selective, full and a ladder of the paper's fine-grained lists
 * (Pangu Ultra MoE sec. 4: recompute MLA up-projection, permutation and the activation function) filtered to
 * the modules this model has. Returns the count written to out (at most PLAN_RC_MAX). */
int plan_recompute_default(const spec_model *m, unsigned *out);
/* Every subset of the modules this model has, plus full ("--recompute-space all"). */
int plan_recompute_all(const spec_model *m, unsigned *out);
/* Offload in the searched space. In a policy list, PLAN_RC_OFFLOAD marks "this recompute policy and
 * offload_activations", PLAN_RC_OFFLOAD_OPT "and offload_optimizer" (planner-only bits, never in a strategy's
 * recompute field). plan_offload_variants appends, after the n policies of rc[], the activation-offload
 * variant of each one except full (which keeps only the layer inputs: nothing left to offload) when the
 * hardware has a host link (host_bw > 0), then the optimizer-offload variant of every policy so far when it
 * also has host_mem_bw; returns the new count (at most cap). An offloaded candidate is kept only where no
 * variant of it with fewer offloads fits (offload only adds time: such a variant is never slower;
 * docs/planner.md). Policy lists passed in must not carry these bits. */
#define PLAN_RC_OFFLOAD (1u << 31)
#define PLAN_RC_OFFLOAD_OPT (1u << 30)
int plan_offload_variants(const spec_hardware *h, unsigned *rc, int n, int cap);
/* "activation,norm" or "activation,norm+offload_act+offload_opt": the recompute policy and offloads of an
 * entry. */
void plan_entry_policy_label(const plan_entry *e, char *out, size_t n);
/* Writes the strategy fields (tp, cp, pp, vpp, ep, etp, dp, mbs, recompute, schedule, zero1, offload_*, a2a). */
void plan_entry_json_fields(json_writer *w, const plan_entry *e);


/* Enumerate the structural layouts (tp, cp, pp, vpp, ep, etp, dp) for `devices` that pass
 * spec_strategy_check (with base's other fields; tp and etp divide tp_max, the devices per node), in a fixed
 * order. Unless exhaustive: cp only while every CP rank keeps >= PLAN_CP_MIN_TOKENS tokens of the sequence,
 * and etp is 1 or tp. *out: caller frees with umoe_free(*out, (n ? n : 1) * sizeof **out). */
#define PLAN_CP_MIN_TOKENS 1024
typedef struct { int tp, cp, pp, vpp, ep, etp, dp; } plan_layout;
umoe_status plan_layouts(const spec_model *m, const spec_strategy *base, int devices, int tp_max, int exhaustive,
                         plan_layout **out, int *n);

/* The planner's base strategy: spec_strategy_defaults, the global batch, micro-batch 1, uneven layer splits
 * allowed (pad_layers = 1: MindSpeed's no-op layers; Pangu Ultra MoE runs 61 layers on PP16) and every
 * overlap switch on (TP, EP, DP, PP: what Megatron-LM / MindSpeed offer and the paper used; overlap only hides
 * time, so a search over the switches would always pick them). Offload is off here; the search adds
 * activation and optimizer offload as variants of the recompute policies (plan_offload_variants). */
void plan_strategy_base(spec_strategy *s, int gbs);
/* Fill a full strategy from base (plan_strategy_base) and an entry's searched fields. */
void plan_entry_strategy(const plan_entry *e, const spec_strategy *base, spec_strategy *s);
/* Ranking order: more tokens/s first; tie: lower peak memory (more headroom); tie: lower key. <0 if a first. */
int plan_entry_cmp(const plan_entry *a, const plan_entry *b);

/* The search. m->T is the sequence length used; the caller applies --seq before. On success the result
 * owns best[] (plan_result_free). When nothing fits: UMOE_OK with feasible == 0 and n == 0. */
umoe_status plan_search(const spec_model *m, const spec_cluster *c, const plan_options *o, plan_eval_fn eval,
                        plan_result *out);
void plan_result_free(plan_result *r);

/* Reports (the CLI passes stdout). */
const char *plan_schedule_name(spec_schedule s);
const char *plan_a2a_name(spec_a2a a);
void plan_report_table(FILE *f, const spec_model *m, const spec_cluster *c, const plan_result *r);
void plan_report_json(FILE *f, const spec_model *m, const plan_result *r);

/* ------------------------------------------------------------------ architecture sweep (`umoe sweep`)
 * A space of model shapes around a base model: lists of values per dimension (an absent list keeps the
 * base's value), and an optional parameter budget: a shape is planned only when its total (or activated)
 * parameter count is within budget x (1 +- tolerance). Shapes are ranked by the best simulated tokens/s of
 * their best strategy (tie: more memory headroom). Keys of the JSON file: see docs/planner.md. */
#define SWEEP_MAXV 32
typedef enum { SWEEP_DIM_LAYERS, SWEEP_DIM_HIDDEN, SWEEP_DIM_HEADS, SWEEP_DIM_EXPERTS, SWEEP_DIM_TOPK,
               SWEEP_DIM_SHARED, SWEEP_DIM_FEXPERT, SWEEP_DIM_FIRST_DENSE, SWEEP_DIM_ATTN, SWEEP_DIM_COUNT } sweep_dim;
extern const char *const sweep_dim_keys[SWEEP_DIM_COUNT]; /* JSON keys, the model file's names */
typedef enum { SWEEP_BUDGET_NONE, SWEEP_BUDGET_TOTAL, SWEEP_BUDGET_ACTIVE } sweep_budget_kind;

typedef struct {
    char name[64];
    spec_model base;
    int n[SWEEP_DIM_COUNT];
    int v[SWEEP_DIM_COUNT][SWEEP_MAXV]; /* SWEEP_DIM_ATTN holds spec_attn_kind values */
    sweep_budget_kind budget_kind;      /* the primary budget (also the x axis of the SVG) */
    double budget, tolerance;           /* parameters; fraction */
    sweep_budget_kind budget2_kind;     /* an optional second budget on the other count (both must hold) */
    double budget2, tolerance2;
    int gbs, seq;                       /* 0: the planner's default / the base model's */
} sweep_space;

typedef struct {
    spec_model m;
    double params_total, params_active;
    int in_budget;        /* within the parameter budget */
    int planned;          /* plan_search ran */
    long long evaluated, feasible;
    int has_best;         /* some strategy fits */
    plan_entry best;      /* its best strategy (after the detailed re-ranking) */
    char skip[160];       /* why a shape was not planned ("" when planned) */
} sweep_shape;

typedef struct {
    int n_total;          /* shapes in the space (the Cartesian product) */
    int n_valid;          /* shapes that are valid models */
    int n_budget;         /* valid and within budget: planned */
    int n_feasible;       /* planned and something fits */
    long long evaluated;  /* strategies evaluated over all shapes */
    double seconds;
    int devices, gbs, seq;
    int n;                /* shapes in s[]: every valid shape, ranked (planned+feasible first) */
    sweep_shape *s;
} sweep_result;

umoe_status sweep_space_load(const char *path, sweep_space *sp);
umoe_status sweep_space_from_json(const void *cjson_obj, const char *file, sweep_space *sp);
/* Plans every shape of the space within the budget on cluster c with options o (o->top is ignored: one best
 * strategy per shape, the best of the o->detailed_top (-1: 10) re-simulated with the event simulation). */
umoe_status sweep_run(const sweep_space *sp, const spec_cluster *c, const plan_options *o, plan_eval_fn eval,
                      sweep_result *out);
void sweep_result_free(sweep_result *r);
void sweep_report_table(FILE *f, const sweep_space *sp, const spec_cluster *c, const sweep_result *r, int top);
void sweep_report_json(FILE *f, const sweep_space *sp, const sweep_result *r, int top);
/* SVG scatter of best tokens/s against parameters (total or activated, as the budget), written atomically. */
umoe_status sweep_report_svg(const char *path, const sweep_space *sp, const sweep_result *r);
#endif
