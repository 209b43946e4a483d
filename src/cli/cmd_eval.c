/* cmd_eval.c - `umoe eval CHECKPOINT --data FILE [--json]`: mean next-token cross-entropy (nats/token) and
 * perplexity of a checkpoint on a data file (the whole file, or the validation split that training used).
 * Does not: train or change the checkpoint. */
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include "cli.h"
#include "umoe/json.h"
#include "umoe/train.h"

static void usage(FILE *f) {
    fprintf(f, "usage: umoe eval CHECKPOINT --data FILE [--json] [--split all|val] [--val-frac F] [--batch B]\n"
               "                 [--seq T] [--batches N]\n\n"
               "Loss (mean next-token cross-entropy, nats/token) and perplexity exp(loss) of the checkpoint\n"
               "directory CHECKPOINT (written by umoe train --out) on FILE (bytes or a token shard).\n"
               "  --split all   every window of FILE (default)\n"
               "  --split val   only the validation split training used (the last --val-frac, default 0.1)\n"
               "  --batch B     sequences per forward pass (8); --seq T tokens per sequence (training's T)\n"
               "  --batches N   evaluate at most N batches (0 = all)\n"
               "  --json        print one JSON object instead of text\n");
}

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *data_path = NULL;
    int json = 0, split_val = 0;
    long long B = 8, T = 0, batches = 0;
    double val_frac = 0.1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (cli_is_help(a)) { usage(stdout); return UMOE_EXIT_OK; }
        if (!strcmp(a, "--json")) { json = 1; continue; }
        if (a[0] != '-' || !a[1]) {
            if (ckpt) return cli_unknown("eval", a);
            ckpt = a;
            continue;
        }
        if (!(v = cli_value("eval", argc, argv, i))) return UMOE_EXIT_INPUT;
        i++;
        if (!strcmp(a, "--data")) data_path = v;
        else if (!strcmp(a, "--split")) {
            if (!strcmp(v, "all")) split_val = 0;
            else if (!strcmp(v, "val")) split_val = 1;
            else { fprintf(stderr, "umoe eval: --split = \"%s\" is not allowed (all or val)\n", v); return UMOE_EXIT_INPUT; }
        } else if (!strcmp(a, "--batch")) { if (cli_parse_int("eval", a, v, 1, 65536, &B)) return UMOE_EXIT_INPUT; }
        else if (!strcmp(a, "--seq")) { if (cli_parse_int("eval", a, v, 1, 1 << 20, &T)) return UMOE_EXIT_INPUT; }
        else if (!strcmp(a, "--batches")) { if (cli_parse_int("eval", a, v, 0, 1000000000LL, &batches)) return UMOE_EXIT_INPUT; }
        else if (!strcmp(a, "--val-frac")) { if (cli_parse_num("eval", a, v, 0.0001, 0.9, &val_frac)) return UMOE_EXIT_INPUT; }
        else return cli_unknown("eval", a);
    }
    if (!ckpt || !data_path) {
        fprintf(stderr, "umoe eval: %s\n\n", !ckpt ? "CHECKPOINT is missing" : "--data FILE is missing");
        usage(stderr);
        return UMOE_EXIT_INPUT;
    }
    struct stat sb;
    if (stat(ckpt, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "umoe eval: checkpoint directory %s does not exist (write one with umoe train --out DIR)\n",
                ckpt);
        return UMOE_EXIT_INPUT;
    }
    spec_model s;
    int rc = cli_load_model_or_checkpoint(ckpt, &s);
    if (rc) return rc;
    if (T == 0) {
        char path[4200];
        train_state_header h;
        snprintf(path, sizeof path, "%s/train_state.bin", ckpt);
        T = train_state_read(path, &h, NULL) == UMOE_OK ? h.opts.T : s.T;
    }
    if (T > s.T) {
        fprintf(stderr, "umoe eval: --seq %lld is not allowed (1..%d, the model's sequence length)\n", T, s.T);
        return UMOE_EXIT_INPUT;
    }
    train_data d;
    if (train_data_load(&d, data_path) || train_data_check_vocab(&d, s.V)) {
        if (d.buf) train_data_free(&d);
        return cli_input_error();
    }
    uint64_t begin = 0, end = d.n;
    if (split_val) {
        train_loader l;
        if (train_loader_init(&l, &d, (int)B, (int)T, s.mtp, val_frac, 0)) {
            train_data_free(&d);
            return cli_input_error();
        }
        begin = l.val_begin;
        end = l.val_end;
        train_loader_free(&l);
    } else if (train_windows_count(0, d.n, (int)T, (int)T + 1 + s.mtp) == 0) {
        fprintf(stderr, "umoe eval: data file %s is too short: %llu tokens, one window needs %lld (T + 1 + mtp)\n",
                data_path, (unsigned long long)d.n, T + 1 + s.mtp);
        train_data_free(&d);
        return UMOE_EXIT_INPUT;
    }
    umoe_model *m = NULL;
    if (model_init(&m, &s, (int)B, (int)T, 0) || train_checkpoint_load_weights(ckpt, m, NULL)) {
        if (m) model_free(m);
        train_data_free(&d);
        return cli_input_error();
    }
    train_eval_result r;
    double t0 = umoe_now();
    train_evaluate(m, &d, begin, end, (int)B, (int)T, (long)batches, &r);
    double sec = umoe_now() - t0;
    if (json) {
        json_writer w;
        jw_begin(&w, stdout);
        jw_obj_open(&w, NULL);
        jw_str(&w, "checkpoint", ckpt);
        jw_str(&w, "data", data_path);
        jw_str(&w, "split", split_val ? "val" : "all");
        jw_num(&w, "tokens", r.tokens);
        jw_num(&w, "loss", r.lm_loss);
        jw_num(&w, "perplexity", exp(r.lm_loss));
        jw_num(&w, "total_loss", r.loss);
        jw_num(&w, "tokens_per_s", sec > 0 ? r.tokens / sec : 0);
        jw_obj_close(&w);
        jw_end(&w);
    } else {
        printf("loss %.4f nats/token, perplexity %.3f (%.0f tokens of %s, %s)\n", r.lm_loss, exp(r.lm_loss),
               r.tokens, data_path, split_val ? "validation split" : "whole file");
    }
    model_free(m);
    train_data_free(&d);
    return UMOE_EXIT_OK;
}
