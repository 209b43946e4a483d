/* train.h - everything around the model: token data (raw bytes or token shards), the shuffled seeded
 * window loader with its train/validation split, checkpoints (safetensors weights with HuggingFace names, an
 * HF-style config.json, and train_state.bin with the optimizer state), the learning-rate schedule, gradient
 * clipping, AdamW state, the training loop with its metrics log, and evaluation.
 * Does not: define the model or its kernels (model.h, nn.h), parse command lines (src/cli), or talk MPI.
 * Formats are documented in docs/formats-engine.md. Counts: "tokens" are token positions; windows hold
 * T + 1 + mtp tokens (inputs plus the shifted targets of the main head and each MTP depth). */
#ifndef UMOE_TRAIN_H
#define UMOE_TRAIN_H
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "umoe/common.h"
#include "umoe/model.h"
#include "umoe/spec.h"

/* ------------------------------------------------------------------ small helpers */
/* FNV-1a 64-bit (Fowler/Noll/Vo), for config hashes and file checksums. h0 = TRAIN_FNV_INIT to start. */
#define TRAIN_FNV_INIT 0xcbf29ce484222325ULL
uint64_t train_fnv1a(uint64_t h, const void *data, size_t n);

/* Streaming atomic file writes: bytes go to "PATH.tmp.PID"; commit = fflush + fsync + rename + fsync of the
 * directory; abort removes the temp file. Several files can be staged and committed together so that a
 * failure before the first rename leaves every previous file untouched. */
typedef struct {
    char path[4096], tmp[4200];
    FILE *f;
    int failed;   /* a write failed: commit will refuse */
} train_afile;
umoe_status train_afile_open(train_afile *a, const char *path);
umoe_status train_afile_write(train_afile *a, const void *data, size_t n);
umoe_status train_afile_sync(train_afile *a);     /* flush + fsync + close; the temp file stays */
umoe_status train_afile_rename(train_afile *a);   /* rename temp -> path, fsync the directory */
void train_afile_abort(train_afile *a);           /* close and remove the temp file */
/* Test hook: when > 0, the Nth train_afile_sync from now fails as if the disk were full (0 = off). */
extern int train_afile_fail_countdown;

/* ------------------------------------------------------------------ token data */
/* Token shard: 32-byte little-endian header then the tokens (docs/formats-engine.md):
 *   0 magic "UMOETOKS" | 8 u32 version (1) | 12 u32 bytes per token (2 or 4) | 16 u64 n_tokens |
 *   24 u32 vocabulary the ids were made for (0 = unknown) | 28 u32 reserved (0) */
#define TRAIN_SHARD_MAGIC "UMOETOKS"
#define TRAIN_SHARD_VERSION 1u
#define TRAIN_SHARD_HEADER 32
/* Write n tokens as a shard with `width` bytes per token (2 or 4); ids must fit the width. Atomic. */
umoe_status train_shard_write(const char *path, const uint32_t *tok, uint64_t n, int width, uint32_t vocab);

typedef struct {
    char path[4096];
    int is_shard;        /* 1: token shard; 0: raw bytes, one token per byte (vocabulary 256) */
    int width;           /* bytes per token: 1 (raw), 2 or 4 */
    uint64_t n;          /* tokens */
    uint32_t vocab;      /* vocabulary declared by the shard (256 for raw bytes, 0 = unknown) */
    uint32_t max_id;     /* largest token id in the file */
    const uint8_t *tok;  /* n * width bytes, little-endian */
    char *buf;           /* owned file contents */
    size_t buf_len;
} train_data;

/* Load a data file: a token shard if it starts with the shard magic, an error if it is named *.bin without
 * it, raw bytes otherwise. Missing, empty, truncated or malformed files are UMOE_EINPUT naming the file. */
umoe_status train_data_load(train_data *d, const char *path);
/* Every token id must be < V (the model's vocabulary): the message names the file, the position and the id. */
umoe_status train_data_check_vocab(const train_data *d, int V);
void train_data_free(train_data *d);
static inline uint32_t train_data_at(const train_data *d, uint64_t i) {
    const uint8_t *p = d->tok + i * (uint64_t)d->width;
    if (d->width == 1) return p[0];
    if (d->width == 2) return (uint32_t)p[0] | (uint32_t)p[1] << 8;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------------ loader */
/* Train split = the first tokens, validation split = the last ceil(n * val_frac) tokens (at least one window
 * when val_frac > 0), so no window crosses the boundary. Training windows start every T tokens and are
 * visited in a fresh seeded permutation each epoch; validation windows are read in order. */
typedef struct {
    uint64_t epoch;      /* completed passes over the training windows */
    uint64_t cursor;     /* next index into this epoch's permutation */
    umoe_rng rng;        /* generator state before this epoch's shuffle (the permutation is rebuilt from it) */
} train_loader_pos;

typedef struct {
    const train_data *d;
    int B, T, W;                      /* W = T + 1 + mtp tokens per window */
    uint64_t train_end;               /* training tokens are [0, train_end) */
    uint64_t val_begin, val_end;      /* validation tokens are [val_begin, val_end) */
    uint64_t n_train_win, n_val_win;
    uint64_t *perm;                   /* (n_train_win) this epoch's order */
    train_loader_pos pos;
    umoe_rng rng_next;                /* state after this epoch's shuffle */
} train_loader;

umoe_status train_loader_init(train_loader *l, const train_data *d, int B, int T, int mtp, double val_frac,
                              uint64_t seed);
void train_loader_free(train_loader *l);
/* Next training micro-batch into tokens (B, W) int32. */
void train_loader_next(train_loader *l, int32_t *tokens);
/* Data parallelism: the next global batch is world x B windows of the same permutation; rank r gets rows
 * r*B .. r*B+B-1 of it. Every rank advances the position identically (so checkpoints agree), and the union
 * over ranks is exactly what one process with world*B rows would read. world = 1 is train_loader_next. */
void train_loader_next_shard(train_loader *l, int32_t *tokens, int rank, int world);
/* Restore a saved position (rebuilds that epoch's permutation). */
void train_loader_seek(train_loader *l, const train_loader_pos *p);
/* Windows of stride T over [begin, end): count, and rows [first, first + rows) into tokens (rows, W). */
uint64_t train_windows_count(uint64_t begin, uint64_t end, int T, int W);
void train_windows_read(const train_data *d, uint64_t begin, int T, int W, uint64_t first, int rows, int32_t *tokens);

/* ------------------------------------------------------------------ safetensors */
/* Weights as safetensors: u64 header length N, N bytes of JSON header (padded with spaces to a multiple of
 * 8), then F32 little-endian data in tensor-table order. `meta` (may be NULL) is a list of key/value string
 * pairs, NULL-terminated, stored under "__metadata__". */
umoe_status train_safetensors_write(train_afile *a, const model_tensor *t, int n, const float *params,
                                    const char *const *meta);
/* Read a safetensors file into params: every tensor of the table must be present, F32, with the same shape;
 * extra tensors are an error too. meta_step (may be NULL) receives __metadata__["step"] or -1. */
umoe_status train_safetensors_read(const char *path, const model_tensor *t, int n, float *params,
                                   long long *meta_step);

/* ------------------------------------------------------------------ schedule, clipping, optimizer */
typedef struct {
    double lr, min_lr;       /* peak and final learning rate */
    long warmup, steps;      /* linear warmup steps, total steps */
} train_schedule;
/* Learning rate of step s (0-based): linear warmup (s+1)/warmup * lr, then cosine decay to min_lr over the
 * remaining steps (Loshchilov & Hutter, SGDR, ICLR 2017, eq. 5, without restarts). */
double train_lr_at(const train_schedule *s, long step);
/* Global-norm clipping (Pascanu et al. 2013, sec. 3.2): returns the norm before clipping; scales g by
 * clip / (norm + 1e-6) when norm > clip (clip <= 0: no clipping). */
double train_clip_global_norm(float *g, size_t n, double clip);
/* The two halves of it, for the fused step: the global norm sqrt(sum g^2) (thread-count independent), and the
 * scale clip / (norm + 1e-6) when clip > 0 and norm > clip, else 1. */
double train_grad_norm(const float *g, size_t n);
float train_clip_scale(double norm, double clip);

typedef struct {
    float *m, *v;    /* (n_params) each: AdamW first and second moments */
    size_t n;
    double beta1, beta2, eps, wd;
} train_adamw;
void train_adamw_init(train_adamw *o, size_t n, double beta1, double beta2, double eps, double wd);
void train_adamw_free(train_adamw *o);
/* One AdamW step (t = 1-based step) over every tensor; weight decay only where the table says decay. */
void train_adamw_step(train_adamw *o, float *params, const float *grads, const model_tensor *t, int n_t, double lr,
                      long t_step);
/* The same step in one pass over the parameters (adamw_update_many) with the clip's scale applied to each
 * gradient as it is read (the same bits as train_clip_global_norm's scaling first); zero_grads != 0 leaves every
 * gradient of the table 0 afterwards (the skipped expert biases included), so the next step needs no
 * model_zero_grad when the table covers the whole block. */
void train_adamw_step_fused(train_adamw *o, float *params, float *grads, const model_tensor *t, int n_t, double lr,
                            long t_step, float gscale, int zero_grads);

/* ------------------------------------------------------------------ checkpoints */
/* Hash of the model's shape: every tensor's name and shape, in order. Equal hashes = loadable weights. */
uint64_t train_shape_hash(const model_tensor *t, int n);
/* Hash of every field of the model spec (shape and training settings such as aux_alpha). */
uint64_t train_spec_hash(const spec_model *s);
/* Human-readable list of the first fields that differ ("L = 4 in the checkpoint, 2 in this model; ..."). */
void train_spec_diff(const spec_model *ckpt, const spec_model *here, char *out, size_t n);

/* Training options that decide what the next step does; stored in the state file. */
typedef struct {
    int B, T, accum;
    long steps, warmup;
    double lr, min_lr, wd, clip, beta1, beta2, eps, val_frac, bias_rate;
    uint64_t seed;
    uint64_t data_tokens;   /* tokens in the data file (a different file cannot continue a run) */
} train_opts;

typedef struct {
    uint64_t shape_hash, spec_hash;
    long step;              /* optimizer steps completed */
    train_loader_pos pos;
    train_opts opts;
    size_t n_params;
} train_state_header;

#define TRAIN_STATE_MAGIC "UMOESTAT"
#define TRAIN_STATE_VERSION 1u
/* train_state.bin: header, m, v, then an FNV-1a checksum of everything before it (docs/formats-engine.md). */
umoe_status train_state_write(train_afile *a, const train_state_header *h, const train_adamw *o);
/* Reads the header, and m/v into o when o is not NULL (o->n must equal h->n_params). */
umoe_status train_state_read(const char *path, train_state_header *h, train_adamw *o);

/* config.json: HuggingFace DeepSeek-V3 fields plus "umoe_spec" (every spec_model field, so that the exact
 * model can be rebuilt) and "umoe_step". */
umoe_status train_config_write(train_afile *a, const spec_model *s, long step);
umoe_status train_config_read(const char *path, spec_model *s, long *step);

/* Save DIR/{model.safetensors, config.json, train_state.bin}: all three are written and fsynced to temp files
 * first, then renamed; a failure before the renames leaves the previous checkpoint intact. */
umoe_status train_checkpoint_save(const char *dir, umoe_model *m, const train_adamw *o,
                                  const train_state_header *h);
/* Load the weights of DIR into m (refused with a clear message when the shape differs). step_out: the
 * checkpoint's step (may be NULL). */
umoe_status train_checkpoint_load_weights(const char *dir, umoe_model *m, long *step_out);

/* ------------------------------------------------------------------ evaluation and the loop */
typedef struct {
    double lm_loss;     /* mean next-token cross-entropy over every evaluated token, nats */
    double loss;        /* mean total loss (incl. MTP and aux terms) */
    double tokens;      /* tokens evaluated */
} train_eval_result;
/* Forward-only pass over windows of stride T in [begin, end) of d, B rows at a time, at most max_batches
 * batches (0 = all). */
void train_evaluate(umoe_model *m, const train_data *d, uint64_t begin, uint64_t end, int B, int T,
                    long max_batches, train_eval_result *r);

typedef struct {
    const char *data_path;
    const char *out_dir;      /* NULL: no checkpoint */
    const char *log_path;     /* NULL: no JSONL log */
    const char *resume_dir;   /* NULL: fresh run */
    long save_every;          /* 0: only at the end */
    long val_every;           /* 0: only at the end */
    long val_batches;         /* validation batches per evaluation (0 = all) */
    long stop_at;             /* > 0: stop after this step (checkpointing it) as if interrupted; the schedule
                               * still runs to o.steps, so a --resume continues the same run */
    const volatile sig_atomic_t *interrupt; /* may be NULL; when it becomes non-zero (e.g. on SIGINT) the
                               * loop finishes the current step, checkpoints it (with out_dir) and returns */
    int progress;             /* -1 auto (stderr is a terminal), 0 a line every few steps, 1 one \r-updated
                               * line, 2 none */
    train_opts o;
    /* memory optimisations (model.h, docs/engine-memory.md); zero = none */
    unsigned recompute;       /* SPEC_RC_* flags (--recompute) */
    model_offload_kind offload; /* --offload none | host | file:DIR */
    const char *offload_dir;
} train_config;
void train_config_defaults(train_config *c);

typedef struct {
    long steps_done;
    int interrupted;          /* stopped early through c->interrupt */
    double last_loss, last_lm_loss;
    double val_loss;          /* last validation lm loss (NAN if none) */
    double tokens_per_s;      /* over the whole run */
    double seconds;
} train_result;
/* Train (or resume) the model of spec s. UMOE_EINPUT: bad data/flags/checkpoint (umoe_err says which);
 * UMOE_EFAIL: the run failed (non-finite loss, a write failed). */
umoe_status train_run(const spec_model *s, const train_config *c, train_result *r);
#endif
