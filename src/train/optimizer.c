/* optimizer.c - AdamW state (first and second moments, one flat block each, the same layout as the
 * parameters) and the step over the model's tensor table: weight decay only on tensors the table marks
 * (matrices; not norms or biases), as in Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
 * ICLR 2019, Algorithm 2. Global-norm gradient clipping (Pascanu, Mikolov & Bengio, "On the difficulty of
 * training recurrent neural networks", ICML 2013, sec. 3.2): g <- g * clip / ||g|| when ||g|| > clip, with
 * the 1e-6 guard of PyTorch's clip_grad_norm_.
 * The training loops use the fused form: the norm (train_grad_norm), then one pass (adamw_update_many) that
 * applies the clip's scale as it reads each gradient and can zero it, instead of a scaling pass, an AdamW
 * pass and a zeroing pass (same bits: the scaled gradient is the same float product).
 * The aux-loss-free expert biases (...e_score_correction_bias) get no gradient and are skipped: the
 * training loop moves them by the balancing rule of DeepSeek-V3 instead.
 * Does not: compute the update rule itself (adamw_update_many in src/nn) or schedule the rate (schedule.c). */
#include <math.h>
#include <string.h>
#include "umoe/nn.h"
#include "umoe/train.h"

static int is_score_bias(const model_tensor *t) {
    static const char bias_suffix[] = ".e_score_correction_bias";
    size_t len = strlen(t->name), k = sizeof bias_suffix - 1;
    return len >= k && !strcmp(t->name + len - k, bias_suffix);
}

void train_adamw_step_fused(train_adamw *o, float *params, float *grads, const model_tensor *t, int n_t, double lr,
                            long t_step, float gscale, int zero_grads) {
    size_t bytes = (size_t)(n_t > 0 ? n_t : 1) * sizeof(adamw_segment);
    adamw_segment *seg = umoe_malloc(bytes, "adamw segments");
    int ns = 0;
    for (int i = 0; i < n_t; i++) {
        if (is_score_bias(&t[i])) { /* moved by the balancing rule; its (never written) gradient is cleared */
            if (zero_grads) memset(grads + t[i].offset, 0, t[i].numel * sizeof(float));
            continue;
        }
        seg[ns++] = (adamw_segment){.off = t[i].offset, .n = t[i].numel, .wd = t[i].decay ? (float)o->wd : 0.0f};
    }
    adamw_update_many(params, grads, o->m, o->v, seg, ns, (float)lr, (float)o->beta1, (float)o->beta2, (float)o->eps,
                      (int)t_step, gscale, zero_grads);
    umoe_free(seg, bytes);
}

void train_adamw_step(train_adamw *o, float *params, const float *grads, const model_tensor *t, int n_t, double lr,
                      long t_step) {
    /* gscale 1 and no zeroing: grads are only read */
    train_adamw_step_fused(o, params, (float *)grads, t, n_t, lr, t_step, 1.0f, 0);
}

double train_grad_norm(const float *g, size_t n) { return sqrt(nn_sumsq(g, n)); }

float train_clip_scale(double norm, double clip) {
    return clip > 0 && norm > clip ? (float)(clip / (norm + 1e-6)) : 1.0f;
}

double train_clip_global_norm(float *g, size_t n, double clip) {
    double norm = train_grad_norm(g, n);
    if (clip > 0 && norm > clip) nn_scale_inplace(g, n, train_clip_scale(norm, clip));
    return norm;
}
