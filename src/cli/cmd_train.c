/* cmd_train.c - `umoe train MODEL --data FILE ...`: parse the flags, load the model spec (a JSON file, a
 * preset name, or a checkpoint directory), and run the training loop (src/train). Input errors exit 2,
 * a failed run exits 1. Does not: implement any of the training itself. */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "umoe/train.h"
#include "umoe/train_ep.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: umoe train MODEL --data FILE [options]\n\n"
            "Train the model MODEL (a JSON file, a preset name from configs/models, or a checkpoint directory)\n"
            "on FILE: any file of bytes (byte-level vocabulary, 256) or a token shard made by `umoe tokens`.\n\n"
            "options (default):\n"
            "  --steps N        total optimizer steps (100)\n"
            "  --batch B        sequences per micro-batch (8)\n"
            "  --seq T          tokens per sequence (the model's T)\n"
            "  --accum A        micro-batches per optimizer step, gradient accumulation (1)\n"
            "  --lr LR          peak learning rate (1e-3)\n"
            "  --min-lr LR      final learning rate of the cosine decay (lr / 10)\n"
            "  --warmup W       linear warmup steps (min(100, steps / 10))\n"
            "  --wd WD          AdamW decoupled weight decay on matrices (0.1)\n"
            "  --clip C         global gradient-norm clip, 0 = off (1.0)\n"
            "  --bias-rate G    aux-loss-free expert-bias update speed when the model uses score_bias (1e-3)\n"
            "  --seed S         initialisation and data-order seed (1)\n"
            "  --val-frac F     fraction of FILE held out for validation, taken from its end (0.1)\n"
            "  --val-every N    validate every N steps, 0 = only at the end (0)\n"
            "  --val-batches N  batches per validation, 0 = the whole split (4)\n"
            "  --out DIR        checkpoint directory (model.safetensors, config.json, train_state.bin)\n"
            "  --save-every N   checkpoint every N steps, 0 = only at the end (0)\n"
            "  --log FILE       one JSON object per step (JSONL; appended to when resuming)\n"
            "  --resume DIR     continue bit-exactly from a checkpoint (same --batch/--seq/--accum/--seed/data)\n"
            "  --stop-at N      stop after step N (checkpointing it) as if interrupted; --steps still sets the\n"
            "                   schedule, so a later --resume continues the same run\n"
            "  --progress MODE  auto, line (a line every few steps), tty (one updating line) or off (auto)\n"
            "  --recompute P    recompute activations in backward: none, selective, full, or a comma list of\n"
            "                   norm, activation, attn_core, mla_up, expert_fc1, permute (none)\n"
            "  --offload MODE   move activations out of the arena between forward and backward: none, host,\n"
            "                   or file:DIR (a file in DIR, removed at exit) (none)\n"
            "\nexpert parallelism, under mpirun (any of these, or running under mpirun, selects it):\n"
            "  --ep E           ranks per expert-parallel group; R / E groups replicate the experts (1)\n"
            "                   --batch is then the global batch: each of the R ranks takes B / R sequences\n"
            "  --a2a KIND       flat or hierarchical all-to-all (flat)\n"
            "  --overlap on|off keep the dispatch in flight while the shared experts compute (off)\n"
            "  --ranks-per-node N  emulate nodes of N ranks (default: detect nodes)\n"
            "  --placement P    dynamic expert placement every P steps, or off (off)\n"
            "  --placement-window W  steps of expert-load history for the placement (10)\n"
            "  --placement-bw B bytes/s assumed for moving experts when weighing a re-placement (1e9)\n"
            "  --aux-scope S    aux-loss count scope: micro, global or ep_group (the model's)\n"
            "  --grad-bucket N  gradient all-reduce bucket in floats, 0 = one call per run (1048576)\n\n"
            "The progress line on stderr shows step, loss, aux loss, learning rate, tokens/s and ETA.\n"
            "Ctrl-C (or SIGTERM) finishes the current step, checkpoints it (with --out) and exits 1.\n"
            "Formats: docs/formats-engine.md. Exit codes: 0 ok, 1 the run failed, 2 bad input.\n");
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* MODEL: a checkpoint directory (its config.json) or anything spec_model_load takes. */
int cli_load_model_or_checkpoint(const char *arg, spec_model *s) {
    umoe_status st;
    if (is_dir(arg)) {
        char path[4200];
        snprintf(path, sizeof path, "%s/config.json", arg);
        st = train_config_read(path, s, NULL);
    } else {
        st = spec_model_load(arg, s);
    }
    if (!st) st = spec_model_validate(s, arg);
    return st ? cli_input_error() : 0;
}

static volatile sig_atomic_t g_interrupt;
static void on_signal(int sig) {
    if (g_interrupt) signal(sig, SIG_DFL); /* a second Ctrl-C stops at once */
    g_interrupt = 1;
}

int cmd_train(int argc, char **argv) {
    train_config c;
    train_config_defaults(&c);
    const char *model = NULL;
    train_ep_opts ep;
    train_ep_opts_defaults(&ep);
    int use_ep = getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMI_SIZE") != NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        long long n;
        double x;
        if (cli_is_help(a)) { usage(stdout); return UMOE_EXIT_OK; }
        if (a[0] != '-' || !a[1]) {
            if (model) return cli_unknown("train", a);
            model = a;
            continue;
        }
        if (!(v = cli_value("train", argc, argv, i))) return UMOE_EXIT_INPUT;
        i++;
#define INT(flag, lo, hi, dst) else if (!strcmp(a, flag)) { if (cli_parse_int("train", flag, v, lo, hi, &n)) return UMOE_EXIT_INPUT; dst = n; }
#define NUM(flag, lo, hi, dst) else if (!strcmp(a, flag)) { if (cli_parse_num("train", flag, v, lo, hi, &x)) return UMOE_EXIT_INPUT; dst = x; }
        if (!strcmp(a, "--ep") || !strcmp(a, "--a2a") || !strcmp(a, "--overlap") || !strcmp(a, "--ranks-per-node") ||
            !strcmp(a, "--aux-scope") || !strncmp(a, "--placement", 11) || !strcmp(a, "--grad-bucket"))
            use_ep = 1;
        if (!strcmp(a, "--data")) c.data_path = v;
        else if (!strcmp(a, "--out")) c.out_dir = v;
        else if (!strcmp(a, "--log")) c.log_path = v;
        else if (!strcmp(a, "--resume")) c.resume_dir = v;
        else if (!strcmp(a, "--progress")) {
            if (!strcmp(v, "auto")) c.progress = -1;
            else if (!strcmp(v, "line")) c.progress = 0;
            else if (!strcmp(v, "tty")) c.progress = 1;
            else if (!strcmp(v, "off")) c.progress = 2;
            else { fprintf(stderr, "umoe train: --progress = \"%s\" is not allowed (auto, line, tty or off)\n", v); return UMOE_EXIT_INPUT; }
        }
        else if (!strcmp(a, "--a2a")) {
            if (!strcmp(v, "flat")) ep.hierarchical = 0;
            else if (!strcmp(v, "hierarchical")) ep.hierarchical = 1;
            else { fprintf(stderr, "umoe train: --a2a = \"%s\" is not allowed (flat or hierarchical)\n", v); return UMOE_EXIT_INPUT; }
        } else if (!strcmp(a, "--overlap")) {
            if (!strcmp(v, "on")) ep.overlap = 1;
            else if (!strcmp(v, "off")) ep.overlap = 0;
            else { fprintf(stderr, "umoe train: --overlap = \"%s\" is not allowed (on or off)\n", v); return UMOE_EXIT_INPUT; }
        } else if (!strcmp(a, "--placement") && !strcmp(v, "off")) {
            ep.placement = 0;
        } else if (!strcmp(a, "--aux-scope")) {
            if (!strcmp(v, "micro")) ep.aux_scope = SPEC_AUX_MICRO;
            else if (!strcmp(v, "global")) ep.aux_scope = SPEC_AUX_GLOBAL;
            else if (!strcmp(v, "ep_group")) ep.aux_scope = SPEC_AUX_EP_GROUP;
            else { fprintf(stderr, "umoe train: --aux-scope = \"%s\" is not allowed (micro, global or ep_group)\n", v); return UMOE_EXIT_INPUT; }
        }
        INT("--ep", 1, 65536, ep.ep)
        INT("--ranks-per-node", 1, 65536, ep.ranks_per_node)
        INT("--placement", 1, 1000000000LL, ep.placement)
        INT("--placement-window", 1, 100000, ep.placement_window)
        INT("--grad-bucket", 0, 1LL << 40, ep.bucket_floats)
        NUM("--placement-bw", 1, 1e18, ep.placement_bw)
        else if (!strcmp(a, "--recompute")) {
            if (spec_recompute_parse(v, "command line", "--recompute", &c.recompute)) return cli_input_error();
        } else if (!strcmp(a, "--offload")) {
            if (model_offload_parse(v, "--offload", &c.offload, &c.offload_dir)) return cli_input_error();
        }
        INT("--steps", 1, 1000000000LL, c.o.steps)
        INT("--batch", 1, 65536, c.o.B)
        INT("--seq", 1, 1 << 20, c.o.T)
        INT("--accum", 1, 65536, c.o.accum)
        INT("--warmup", 0, 1000000000LL, c.o.warmup)
        INT("--seed", 0, (long long)(~0ULL >> 1), c.o.seed)
        INT("--val-every", 0, 1000000000LL, c.val_every)
        INT("--val-batches", 0, 1000000000LL, c.val_batches)
        INT("--save-every", 0, 1000000000LL, c.save_every)
        INT("--stop-at", 1, 1000000000LL, c.stop_at)
        NUM("--lr", 0, 10, c.o.lr)
        NUM("--min-lr", 0, 10, c.o.min_lr)
        NUM("--wd", 0, 10, c.o.wd)
        NUM("--clip", 0, 1e9, c.o.clip)
        NUM("--val-frac", 0, 0.9, c.o.val_frac)
        NUM("--bias-rate", 0, 1, c.o.bias_rate)
        else return cli_unknown("train", a);
#undef INT
#undef NUM
    }
    if (!model || !c.data_path) {
        fprintf(stderr, "umoe train: %s\n\n", !model ? "MODEL is missing" : "--data FILE is missing");
        usage(stderr);
        return UMOE_EXIT_INPUT;
    }
    spec_model s;
    int rc = cli_load_model_or_checkpoint(model, &s);
    if (rc) return rc;
    train_result r;
    c.interrupt = &g_interrupt; /* Ctrl-C / SIGTERM: finish the step, checkpoint it, stop */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int root = 1;
    umoe_status st = use_ep ? train_ep_run(&s, &c, &ep, &r, &root) : train_run(&s, &c, &r);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (use_ep && (st || !root)) { /* rank 0 prints first, then every rank finalises MPI */
        int code = st == UMOE_EINPUT ? (root ? cli_input_error() : UMOE_EXIT_INPUT) : st ? UMOE_EXIT_FAIL : UMOE_EXIT_OK;
        if (st && st != UMOE_EINPUT && root) fprintf(stderr, "umoe train: %s\n", umoe_err);
        if (!st && r.interrupted) code = UMOE_EXIT_FAIL;
        train_ep_finalize();
        return code;
    }
    if (st == UMOE_EINPUT) return cli_input_error();
    if (st) {
        fprintf(stderr, "umoe train: %s\n", umoe_err);
        return UMOE_EXIT_FAIL;
    }
    printf("trained %ld steps: loss %.4f (lm %.4f)", r.steps_done, r.last_loss, r.last_lm_loss);
    if (!isnan(r.val_loss)) printf(", validation loss %.4f (perplexity %.3f)", r.val_loss, exp(r.val_loss));
    printf(", %.0f tokens/s over %.1f s\n", r.tokens_per_s, r.seconds);
    if (c.out_dir) printf("checkpoint: %s\n", c.out_dir);
    if (use_ep) {
        fflush(stdout);
        fflush(stderr);
    }
    if (r.interrupted) {
        fprintf(stderr, "umoe train: interrupted after step %ld%s%s\n", r.steps_done,
                c.out_dir ? "; continue with --resume " : " (no --out: nothing saved)", c.out_dir ? c.out_dir : "");
        if (use_ep) train_ep_finalize();
        return UMOE_EXIT_FAIL;
    }
    if (use_ep) train_ep_finalize();
    return UMOE_EXIT_OK;
}
