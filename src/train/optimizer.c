/* optimizer.c - AdamW state (first and second moments, one flat block each, the same layout as the
 * parameters) and the step over the model's tensor table: weight decay only on tensors the table marks
 * (matrices; not norms or biases), as in Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
 * ICLR 2019, Algorithm 2. Global-norm gradient clipping (Pascanu, Mikolov & Bengio, "On the difficulty of
 * training recurrent neural networks", ICML 2013, sec. 3.2): g <- g * clip / ||g|| when ||g|| > clip, with
 * the 1e-6 guard of PyTorch's clip_grad_norm_.
 * The aux-loss-free expert biases (...e_score_correction_bias) get no gradient and are skipped: the
 * training loop moves them by the balancing rule of DeepSeek-V3 instead.
 * Does not: compute the update rule itself (adamw_update in src/nn) or schedule the rate (schedule.c). */
#include <math.h>
#include <string.h>
#include "umoe/nn.h"
#include "umoe/train.h"

void train_adamw_step(train_adamw *o, float *params, const float *grads, const model_tensor *t, int n_t, double lr,
                      long t_step) {
    static const char bias_suffix[] = ".e_score_correction_bias";
    for (int i = 0; i < n_t; i++) {
        size_t len = strlen(t[i].name), k = sizeof bias_suffix - 1;
        if (len >= k && !strcmp(t[i].name + len - k, bias_suffix)) continue; /* moved by the balancing rule */
        size_t off = t[i].offset;
        adamw_update(params + off, grads + off, o->m + off, o->v + off, t[i].numel, (float)lr, (float)o->beta1,
                     (float)o->beta2, (float)o->eps, t[i].decay ? (float)o->wd : 0.0f, (int)t_step);
    }
}

double train_clip_global_norm(float *g, size_t n, double clip) {
    double norm = sqrt(nn_sumsq(g, n));
    if (clip > 0 && norm > clip) {
        float scale = (float)(clip / (norm + 1e-6));
        nn_scale_inplace(g, n, scale);
    }
    return norm;
}
