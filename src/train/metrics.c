/* metrics.c - what a training run reports: one JSON object per optimizer step appended to the JSONL log
 * (step, loss, lm_loss, aux_loss, z_loss, mtp_loss, grad_norm, lr, tokens, tokens_per_s, seconds, per-MoE-
 * layer expert loads in token-assignments and their imbalance max/mean, val_loss when evaluated, the memory
 * report "mem" in bytes), and the
 * progress line on stderr (step, loss, aux loss, tokens/s, ETA). Losses are printed with 17 significant
 * digits so that two runs can be compared bit for bit from their logs.
 * Does not: compute any of the values (train_loop.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "train_internal.h"

static void num(FILE *f, const char *k, double v, int digits) {
    if (isfinite(v)) fprintf(f, ",\"%s\":%.*g", k, digits, v);
    else fprintf(f, ",\"%s\":null", k);
}

void train_metrics_log(FILE *f, const train_step_metrics *s) {
    if (!f) return;
    fprintf(f, "{\"step\":%ld", s->step);
    num(f, "loss", s->loss, 17);
    num(f, "lm_loss", s->lm_loss, 17);
    num(f, "aux_loss", s->aux_loss, 17);
    num(f, "z_loss", s->z_loss, 17);
    num(f, "mtp_loss", s->mtp_loss, 17);
    num(f, "grad_norm", s->grad_norm, 17);
    num(f, "lr", s->lr, 17);
    fprintf(f, ",\"tokens\":%lld", (long long)s->tokens);
    num(f, "tokens_per_s", s->tokens_per_s, 6);
    num(f, "seconds", s->seconds, 6);
    if (s->n_moe_layers > 0) {
        fputs(",\"expert_load\":[", f);
        for (int l = 0; l < s->n_moe_layers; l++) {
            fprintf(f, "%s{\"layer\":%d,\"load\":[", l ? "," : "", s->moe_layer[l]);
            double sum = 0, mx = 0;
            for (int e = 0; e < s->E; e++) {
                double v = s->load[(size_t)l * s->E + e];
                fprintf(f, "%s%.0f", e ? "," : "", v);
                sum += v;
                if (v > mx) mx = v;
            }
            fprintf(f, "],\"imbalance\":%.4f}", sum > 0 ? mx * s->E / sum : 0.0);
        }
        fputc(']', f);
    }
    if (!isnan(s->val_loss)) num(f, "val_loss", s->val_loss, 17);
    if (s->mem) { /* bytes (docs/engine-memory.md) */
        const model_memory *m = s->mem;
        fprintf(f, ",\"mem\":{\"params\":%zu,\"grads\":%zu,\"optimizer\":%zu,\"arena\":%zu,\"arena_resident\":%zu,"
                "\"arena_shared\":%zu,\"arena_slots\":%zu,\"dispatch\":%zu,\"offload_pool\":%zu,"
                "\"offload_busy_s\":%.6g,\"offload_wait_s\":%.6g,\"recompute_s\":%.6g,\"alloc_peak\":%zu,"
                "\"peak_rss\":%zu}", m->params, m->grads, m->optimizer, m->arena, m->arena_resident, m->arena_shared,
                m->arena_slots, m->dispatch, m->offload_pool, m->offload_busy_s, m->offload_wait_s, m->recompute_s,
                m->alloc_peak, m->peak_rss);
    }
    fputs("}\n", f);
    fflush(f);
}

static void fmt_eta(char *out, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) { snprintf(out, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, n, "%ld:%02ld", t / 60, t % 60);
}

void train_metrics_progress(int overwrite, const train_step_metrics *s, long total, double eta_s) {
    char eta[32];
    fmt_eta(eta, sizeof eta, eta_s);
    fprintf(stderr, "%sstep %ld/%ld  loss %.4f  aux %.4f  lr %.2e  %.0f tok/s  ETA %s%s", overwrite ? "\r" : "",
            s->step, total, s->loss, s->aux_loss, s->lr, s->tokens_per_s, eta, overwrite ? "   " : "\n");
    fflush(stderr);
}
