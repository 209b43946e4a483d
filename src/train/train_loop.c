/* train_loop.c - the training loop of one process: load data and (optionally) a checkpoint, then per
 * optimizer step: zero grads (first step only: the fused AdamW pass zeroes them as it reads them), `accum`
 * micro-batches of forward + backward with grad_scale 1/accum (gradient accumulation), the global gradient
 * norm, the scheduled learning rate, AdamW with the clip's scale folded in, the aux-loss-free expert-bias
 * update, the metrics line, validation and checkpoints on their schedules.
 * A resumed run continues bit-exactly: weights (F32), AdamW m/v, the step and the loader position
 * (generator state included) are all restored, and nothing else carries state between steps.
 * Does not: know the model's internals (model.h only) or talk MPI (src/dist will wrap this loop). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "train_internal.h"

void train_config_defaults(train_config *c) {
    memset(c, 0, sizeof *c);
    c->progress = -1;
    c->val_batches = 4;
    train_opts *o = &c->o;
    o->B = 8;
    o->T = 0; /* 0 = the model's sequence length */
    o->accum = 1;
    o->steps = 100;
    o->warmup = -1; /* -1 = min(100, steps / 10) */
    o->lr = 1e-3;
    o->min_lr = -1; /* -1 = lr / 10 */
    o->wd = 0.1;
    o->clip = 1.0;
    o->beta1 = 0.9;
    o->beta2 = 0.95;
    o->eps = 1e-8;
    o->val_frac = 0.1;
    o->bias_rate = 1e-3; /* DeepSeek-V3 (arXiv 2412.19437) sec. 4.2: bias update speed 0.001 */
    o->seed = 1;
}

static umoe_status check_opts(const spec_model *s, const train_config *c) {
    const train_opts *o = &c->o;
    if (o->T < 1 || o->T > s->T)
        return umoe_fail("--seq %d is not allowed for model \"%s\" (1..%d, the model's sequence length)", o->T,
                         s->name, s->T);
    if (o->min_lr > o->lr) return umoe_fail("--min-lr %g is larger than --lr %g", o->min_lr, o->lr);
    if (o->warmup > o->steps) return umoe_fail("--warmup %ld is more than --steps %ld", o->warmup, o->steps);
    if (c->stop_at < 0 || c->stop_at > o->steps)
        return umoe_fail("--stop-at %ld is not allowed (1..--steps %ld)", c->stop_at, o->steps);
    return UMOE_OK;
}

/* A resumed run must read the same data the same way; the optimizer settings may change (with a warning,
 * since the run then differs from an uninterrupted one). */
static umoe_status check_resume(const char *dir, const train_state_header *h, const train_config *c,
                                uint64_t shape_hash, uint64_t spec_hash) {
    const train_opts *a = &h->opts, *b = &c->o;
    if (h->shape_hash != shape_hash)
        return umoe_fail("checkpoint %s is of a different model shape (shape hash %016" PRIx64 ", this model "
                         "%016" PRIx64 "): cannot resume", dir, h->shape_hash, shape_hash);
    if (h->spec_hash != spec_hash)
        LOG_WARN("checkpoint %s was trained with different model settings (same shapes); continuing", dir);
#define SAME(field, flag, fmt)                                                                                \
    if (a->field != b->field)                                                                                 \
        return umoe_fail("checkpoint %s was trained with " flag " " fmt "; this run has " fmt                   \
                         " (a resumed run must read the data the same way)", dir, a->field, b->field)
    SAME(B, "--batch", "%d");
    SAME(T, "--seq", "%d");
    SAME(accum, "--accum", "%d");
    SAME(seed, "--seed", "%" PRIu64);
    SAME(val_frac, "--val-frac", "%g");
    SAME(data_tokens, "a data file of", "%" PRIu64 " tokens");
#undef SAME
#define WARN(field, flag, fmt)                                                                                 \
    if (a->field != b->field)                                                                                  \
        LOG_WARN("resuming with " flag " " fmt " (checkpoint: " fmt "): the run will differ from an uninterrupted one", \
                 b->field, a->field)
    WARN(lr, "--lr", "%g");
    WARN(min_lr, "--min-lr", "%g");
    WARN(warmup, "--warmup", "%ld");
    WARN(steps, "--steps", "%ld");
    WARN(wd, "--wd", "%g");
    WARN(clip, "--clip", "%g");
    WARN(bias_rate, "--bias-rate", "%g");
#undef WARN
    if (h->step >= b->steps)
        return umoe_fail("checkpoint %s is already at step %ld; --steps %ld leaves nothing to do (--steps is the "
                         "total, not the number of extra steps)", dir, h->step, b->steps);
    return UMOE_OK;
}

/* Restore weights, AdamW state, step and loader position from c->resume_dir, after checking that the run can
 * continue it. */
static umoe_status resume_from(const train_config *c, umoe_model *m, train_adamw *opt, train_loader *ld,
                               uint64_t shape_hash, uint64_t spec_hash, long *step0) {
    char path[4200];
    snprintf(path, sizeof path, "%s/train_state.bin", c->resume_dir);
    train_state_header h;
    umoe_status st = train_state_read(path, &h, NULL);
    if (!st) st = check_resume(c->resume_dir, &h, c, shape_hash, spec_hash);
    long wstep = 0;
    if (!st) st = train_checkpoint_load_weights(c->resume_dir, m, &wstep);
    if (!st && wstep != h.step)
        st = umoe_fail("checkpoint %s is inconsistent: weights at step %ld, train_state.bin at step %ld "
                       "(interrupted while saving?)", c->resume_dir, wstep, h.step);
    if (!st) st = train_state_read(path, &h, opt);
    if (st) return st;
    train_loader_seek(ld, &h.pos);
    *step0 = h.step;
    LOG_INFO("resuming from %s at step %ld", c->resume_dir, *step0);
    return UMOE_OK;
}

umoe_status train_run(const spec_model *s, const train_config *cin, train_result *r) {
    train_config cfg = *cin;
    train_config *c = &cfg;
    train_opts *o = &c->o;
    if (o->T == 0) o->T = s->T;
    if (o->min_lr < 0) o->min_lr = o->lr / 10;
    if (o->warmup < 0) o->warmup = o->steps / 10 < 100 ? o->steps / 10 : 100;
    memset(r, 0, sizeof *r);
    r->val_loss = NAN;
    umoe_status st = check_opts(s, c);
    if (st) return st;

    train_data data;
    st = train_data_load(&data, c->data_path);
    if (st) return st;
    umoe_model *m = NULL;
    train_loader ld = {0};
    train_adamw opt = {0};
    FILE *log = NULL;
    int32_t *tok = NULL;
    double *load = NULL;
    int *moe_layers = NULL, n_moe = 0;
    size_t tok_bytes = 0, load_bytes = 0;
    if ((st = train_data_check_vocab(&data, s->V))) goto done;
    if (data.is_shard && data.vocab && data.vocab != (uint32_t)s->V)
        LOG_WARN("data file %s was made for a vocabulary of %u; the model has V = %d", data.path, data.vocab, s->V);
    o->data_tokens = data.n;
    /* the loader's generator is seeded apart from the model's initialisation */
    if ((st = train_loader_init(&ld, &data, o->B, o->T, s->mtp, o->val_frac, o->seed ^ 0x6c6f61646572ULL))) goto done;
    if ((st = model_init(&m, s, o->B, o->T, o->seed))) goto done;
    if ((st = model_set_recompute(m, c->recompute)) || (st = model_set_offload(m, c->offload, c->offload_dir)))
        goto done;
    int n_t = 0;
    const model_tensor *tt = model_tensors(m, &n_t);
    size_t n_params = model_n_params(m);
    train_adamw_init(&opt, n_params, o->beta1, o->beta2, o->eps, o->wd);
    uint64_t shape_hash = train_shape_hash(tt, n_t), spec_hash = train_spec_hash(s);
    long step0 = 0;
    if (c->resume_dir && (st = resume_from(c, m, &opt, &ld, shape_hash, spec_hash, &step0))) goto done;
    if (c->stop_at > 0 && c->stop_at <= step0) {
        st = umoe_fail("--stop-at %ld is not after the checkpoint's step %ld (%s)", c->stop_at, step0, c->resume_dir);
        goto done;
    }
    if (c->log_path) {
        log = fopen(c->log_path, c->resume_dir ? "a" : "w");
        if (!log) {
            st = umoe_fail("--log %s: cannot open for writing", c->log_path);
            goto done;
        }
    }
    n_moe = model_n_moe_layers(m);
    moe_layers = umoe_malloc((size_t)(n_moe + 1) * sizeof *moe_layers, "MoE layer ids");
    for (int k = 0; k < n_moe; k++) moe_layers[k] = model_moe_layer_index(m, k);
    /* one step's micro-batches are all kept: the global-batch aux scope routes them twice (see below) */
    size_t mb_tokens = (size_t)o->B * (size_t)ld.W;
    tok_bytes = mb_tokens * (size_t)o->accum * sizeof *tok;
    tok = umoe_malloc(tok_bytes, "batch tokens");
    load_bytes = (size_t)(n_moe ? n_moe : 1) * (size_t)(s->E ? s->E : 1) * sizeof *load;
    load = umoe_malloc(load_bytes, "expert loads");
    int global_aux = s->aux_scope == SPEC_AUX_GLOBAL && n_moe > 0 && o->accum > 1;
    int overwrite = c->progress < 0 ? isatty(2) : c->progress == 1, quiet = c->progress == 2;
    long print_every = o->steps / 20 > 1 ? o->steps / 20 : 1;
    train_schedule sched = {o->lr, o->min_lr, o->warmup, o->steps};
    double t_run = umoe_now(), tokens_run = 0, t_print = 0;
    LOG_INFO("training \"%s\": %zu parameters, %d x %d tokens x %d micro-batches per step, %llu training and "
             "%llu validation windows", s->name, n_params, o->B, o->T, o->accum,
             (unsigned long long)ld.n_train_win, (unsigned long long)ld.n_val_win);
    /* The fused optimizer pass zeroes every gradient of the table once it has used it, so after the first step
     * the gradients are already 0 at the start of a step (when the table covers the whole block, as the
     * model's layout makes it: checked here, else every step zeroes as before). */
    size_t table_numel = 0;
    for (int i = 0; i < n_t; i++) table_numel += tt[i].numel;
    int fused_zero = table_numel == n_params, grads_zero = 0;
    for (long step = step0; step < o->steps; step++) {
        double t0 = umoe_now();
        if (!grads_zero) model_zero_grad(m);
        train_step_metrics sm = {0};
        sm.step = step + 1;
        sm.val_loss = NAN;
        memset(load, 0, load_bytes);
        for (int a = 0; a < o->accum; a++) train_loader_next(&ld, tok + (size_t)a * mb_tokens);
        if (global_aux) {
            /* Global-batch balancing scope (Qiu et al. 2025, "Demons in the Detail", arXiv 2501.11873): f_i
             * counts the token-assignments of the whole step, not one micro-batch. Routing depends only on
             * the weights, which do not change within a step, so a forward-only pass over the micro-batches
             * gives the exact counts before any backward (cost: one extra forward per micro-batch). */
            for (int a = 0; a < o->accum; a++) {
                model_losses L;
                model_forward(m, tok + (size_t)a * mb_tokens, o->B, o->T, &L);
                for (size_t i = 0; i < (size_t)n_moe * (size_t)s->E; i++) load[i] += L.expert_load[i];
            }
            model_set_aux_counts(m, load, (double)o->B * o->T * o->accum);
            memset(load, 0, load_bytes);
        }
        for (int a = 0; a < o->accum; a++) {
            model_losses L;
            model_forward_backward(m, tok + (size_t)a * mb_tokens, o->B, o->T, 1.0f / (float)o->accum, &L);
            sm.loss += L.loss / o->accum;
            sm.lm_loss += L.lm_loss / o->accum;
            sm.aux_loss += L.aux_loss / o->accum;
            sm.z_loss += L.z_loss / o->accum;
            sm.mtp_loss += L.mtp_loss / o->accum;
            if (L.expert_load && L.n_moe_layers == n_moe)
                for (size_t i = 0; i < (size_t)n_moe * (size_t)s->E; i++) load[i] += L.expert_load[i];
        }
        if (global_aux) model_set_aux_counts(m, NULL, 0);
        if (!isfinite(sm.loss)) {
            st = umoe_fail("the loss became %g at step %ld: the run diverged (try a lower --lr or a --clip)", sm.loss,
                           step + 1);
            st = UMOE_EFAIL;
            goto done;
        }
        /* global-norm clipping (optimizer.c): the norm here, the scale applied inside the AdamW pass */
        sm.grad_norm = train_grad_norm(model_grads(m), n_params);
        sm.lr = train_lr_at(&sched, step);
        train_adamw_step_fused(&opt, model_params(m), model_grads(m), tt, n_t, sm.lr, step + 1,
                               train_clip_scale(sm.grad_norm, o->clip), fused_zero);
        grads_zero = fused_zero;
        /* aux-loss-free balancing (DeepSeek-V3 sec. 2.1.2), on the step's summed loads; no-op without score_bias */
        if (s->score_bias && n_moe > 0 && o->bias_rate > 0) model_score_bias_update(m, load, (float)o->bias_rate);
        double dt = umoe_now() - t0;
        sm.tokens = (long long)o->B * o->T * o->accum;
        sm.tokens_per_s = dt > 0 ? (double)sm.tokens / dt : 0;
        sm.seconds = dt;
        sm.n_moe_layers = n_moe;
        sm.E = s->E;
        sm.moe_layer = moe_layers;
        sm.load = load;
        tokens_run += (double)sm.tokens;
        int last = step + 1 == o->steps, stop = step + 1 == c->stop_at;
        int interrupted = !last && c->interrupt && *c->interrupt;
        if ((c->val_every > 0 && (step + 1) % c->val_every == 0) || last) {
            if (ld.n_val_win > 0) {
                train_eval_result ev;
                train_evaluate(m, &data, ld.val_begin, ld.val_end, o->B, o->T, c->val_batches, &ev);
                sm.val_loss = ev.lm_loss;
                r->val_loss = ev.lm_loss;
            }
        }
        model_memory mem; /* the model's own report; the AdamW m and v are the trainer's */
        model_memory_report(m, &mem);
        mem.optimizer = 2 * n_params * sizeof(float);
        sm.mem = &mem;
        train_metrics_log(log, &sm);
        double el = umoe_now() - t_run;
        double eta = el / (double)(step + 1 - step0) * (double)(o->steps - step - 1);
        double now = umoe_now();
        int due = overwrite ? now - t_print >= 0.1 : (step + 1) % print_every == 0; /* tty: at most 10 per s */
        if (!quiet && (due || step == step0 || last || stop)) {
            train_metrics_progress(overwrite, &sm, o->steps, eta);
            t_print = now;
        }
        if (!isnan(sm.val_loss)) {
            if (overwrite) fputc('\n', stderr);
            LOG_INFO("step %ld: validation loss %.4f nats/token (perplexity %.3f)", step + 1, sm.val_loss,
                     exp(sm.val_loss));
        }
        r->steps_done = step + 1;
        r->last_loss = sm.loss;
        r->last_lm_loss = sm.lm_loss;
        if (c->out_dir && ((c->save_every > 0 && (step + 1) % c->save_every == 0) || last || stop || interrupted)) {
            train_state_header h = {0};
            h.shape_hash = shape_hash;
            h.spec_hash = spec_hash;
            h.step = step + 1;
            h.n_params = n_params;
            h.pos = ld.pos;
            h.opts = *o;
            if ((st = train_checkpoint_save(c->out_dir, m, &opt, &h))) goto done;
            LOG_INFO("step %ld: checkpoint saved to %s", step + 1, c->out_dir);
        }
        if (stop || interrupted) {
            if (overwrite) fputc('\n', stderr);
            LOG_INFO("stopped at step %ld of %ld (%s)%s%s", step + 1, o->steps, stop ? "--stop-at" : "interrupted",
                     c->out_dir ? "; continue with --resume " : "", c->out_dir ? c->out_dir : "");
            r->interrupted = interrupted;
            overwrite = 0;
            break;
        }
    }
    if (overwrite) fputc('\n', stderr);
    r->seconds = umoe_now() - t_run;
    r->tokens_per_s = r->seconds > 0 ? tokens_run / r->seconds : 0;
done:
    if (log) fclose(log);
    if (tok) umoe_free(tok, tok_bytes);
    if (load) umoe_free(load, load_bytes);
    if (moe_layers) umoe_free(moe_layers, (size_t)(n_moe + 1) * sizeof *moe_layers);
    if (opt.m) train_adamw_free(&opt);
    if (m) model_free(m);
    train_loader_free(&ld);
    train_data_free(&data);
    return st;
}
