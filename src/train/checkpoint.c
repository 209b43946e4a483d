/* checkpoint.c - a checkpoint directory: model.safetensors (weights, HF names), config.json (HF DeepSeek-V3
 * fields + the exact spec) and train_state.bin (optimizer, step, loader position). Saving writes and fsyncs
 * all three as temp files first and renames them only when all three succeeded, so a failed write (disk
 * full, I/O error) leaves the previous checkpoint intact; the weights carry the step in their metadata and a
 * resume checks it against the state file, which is renamed last. Also the shape hash of a tensor table.
 * Does not: choose when to save (train_loop.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "umoe/train.h"

uint64_t train_shape_hash(const model_tensor *t, int n) {
    uint64_t h = TRAIN_FNV_INIT;
    for (int i = 0; i < n; i++) {
        h = train_fnv1a(h, t[i].name, strlen(t[i].name) + 1);
        uint64_t nd = (uint64_t)t[i].ndim;
        h = train_fnv1a(h, &nd, sizeof nd);
        for (int d = 0; d < t[i].ndim; d++) {
            uint64_t v = t[i].shape[d];
            h = train_fnv1a(h, &v, sizeof v);
        }
    }
    return h;
}

static umoe_status make_dirs(const char *dir) {
    char p[4096];
    umoe_strlcpy(p, dir, sizeof p);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) return umoe_fail("%s: cannot create directory: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) return umoe_fail("%s: cannot create directory: %s", p, strerror(errno));
    struct stat sb;
    if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) return umoe_fail("%s: exists and is not a directory", p);
    return UMOE_OK;
}

umoe_status train_checkpoint_save(const char *dir, umoe_model *m, const train_adamw *o,
                                  const train_state_header *h) {
    umoe_status st = make_dirs(dir);
    if (st) return st;
    enum { N_FILES = 3 };
    static const char *const names[N_FILES] = {"model.safetensors", "config.json", "train_state.bin"};
    train_afile f[N_FILES];
    memset(f, 0, sizeof f);
    int n_t = 0;
    const model_tensor *t = model_tensors(m, &n_t);
    char step[32], shape[32];
    snprintf(step, sizeof step, "%ld", h->step);
    snprintf(shape, sizeof shape, "%016llx", (unsigned long long)h->shape_hash);
    const char *meta[] = {"format", "pt", "step", step, "umoe_shape_hash", shape, "producer", "umoe train", NULL};
    int opened = 0;
    for (int i = 0; i < N_FILES && !st; i++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= sizeof path) {
            st = umoe_fail("%s: checkpoint path too long", dir);
            break;
        }
        st = train_afile_open(&f[i], path);
        if (st) break;
        opened = i + 1;
        if (i == 0) st = train_safetensors_write(&f[i], t, n_t, model_params(m), meta);
        if (i == 1) st = train_config_write(&f[i], model_spec(m), h->step);
        if (i == 2) st = train_state_write(&f[i], h, o);
        if (!st) st = train_afile_sync(&f[i]);
    }
    if (st) {
        for (int i = 0; i < opened; i++) train_afile_abort(&f[i]);
        return UMOE_EFAIL;
    }
    for (int i = 0; i < N_FILES && !st; i++) st = train_afile_rename(&f[i]);
    return st ? UMOE_EFAIL : UMOE_OK;
}

umoe_status train_checkpoint_load_weights(const char *dir, umoe_model *m, long *step_out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    spec_model ck;
    long step = 0;
    umoe_status st = train_config_read(path, &ck, &step);
    if (st) return st;
    int n_t = 0;
    const model_tensor *t = model_tensors(m, &n_t);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    long long wstep = -1;
    st = train_safetensors_read(path, t, n_t, model_params(m), &wstep);
    if (st) {
        char diff[600];
        train_spec_diff(&ck, model_spec(m), diff, sizeof diff);
        if (diff[0]) {
            char first[UMOE_ERRLEN];
            umoe_strlcpy(first, umoe_err, sizeof first);
            return umoe_fail("checkpoint %s is of a different model (%s): %s", dir, diff, first);
        }
        return st;
    }
    if (wstep != step)
        return umoe_fail("checkpoint %s is inconsistent: weights at step %lld, config.json at step %ld "
                         "(interrupted while saving?)", dir, wstep, step);
    if (step_out) *step_out = step;
    return UMOE_OK;
}
