/* model_offload.c - activation offload (swapping), as Pangu Ultra MoE (arXiv 2505.04519, its memory section)
 * does for what is not worth recomputing: "offload in forward, prefetch before backward".
 * With offload on, the arena gives each layer's kept activations (all but the layer output and the router
 * top-k, which later code reads) one of two working slots, slot l % 2. ONE background thread (pthreads) runs a
 * FIFO of moves:
 *   forward:  before layer l runs, wait until slot l % 2 is free (the move of layer l-2 is done); after it
 *             ran, queue "store l": slot -> pool block l (memcpy, or pwrite into the file); a forward-only
 *             call (model_forward, evaluation) stores nothing;
 *   backward: before layer l's backward, make sure slot l % 2 holds layer l (the last two forward layers are
 *             still there), queue "load l-1" into the other slot (prefetch: it overlaps layer l's backward),
 *             and wait for layer l's own load.
 * FIFO order makes a load of a slot run after the store that emptied it. The bytes that come back are the
 * bytes that went out, so results are identical (tests/unit/test_model_offload.c).
 * Pool: host memory (a separate allocation), or one file created in a directory and unlinked at once (so it
 * disappears with the process), for models whose activations exceed memory.
 * A failed read or write of the file during a run is fatal (logged, exit code 1): the model's forward and
 * backward have no error return.
 * Does not: choose the slot layout (model_arena.c) or recompute anything (model_recompute.c). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "model_internal.h"

enum { OFF_STORE, OFF_LOAD, OFF_QCAP = 16 };

typedef struct { int op, layer, slot; uint64_t ticket; } off_job;

struct model_offload {
    model_offload_kind kind;
    char path[4200];              /* file mode: the file (already unlinked), for messages */
    char dir[4096];               /* file mode: the directory it was created in */
    int fd;
    char *pool;                   /* host mode */
    size_t pool_bytes;
    size_t *pos;                  /* (n_layers) byte offset of layer l's block in the pool or file */
    int n_layers;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv_job, cv_done;
    off_job q[OFF_QCAP];
    int q_head, q_len, stop;
    uint64_t issued, done;        /* tickets: job k is done when done >= k */
    int owner[2];                 /* layer whose data is (or will be, once its ticket is done) in slot s */
    uint64_t slot_ticket[2];      /* last queued move touching slot s */
    int io_errno, io_layer, io_op;
    double moved, wait_s, busy_s; /* statistics: bytes moved, seconds the compute thread waited, seconds moving */
};

static void io_all(model_offload *o, const off_job *j, char *slot, size_t bytes) {
    off_t at = (off_t)o->pos[j->layer];
    size_t done = 0;
    while (done < bytes) {
        ssize_t r = j->op == OFF_STORE ? pwrite(o->fd, slot + done, bytes - done, at + (off_t)done)
                                       : pread(o->fd, slot + done, bytes - done, at + (off_t)done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            o->io_errno = r < 0 ? errno : EIO;
            o->io_layer = j->layer;
            o->io_op = j->op;
            return;
        }
        done += (size_t)r;
    }
}

static void *worker(void *arg) {
    umoe_model *m = arg;
    model_offload *o = m->off;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->q_len && !o->stop) pthread_cond_wait(&o->cv_job, &o->mu);
        if (!o->q_len) break;
        off_job j = o->q[o->q_head];
        pthread_mutex_unlock(&o->mu);
        double t0 = umoe_now();
        char *slot = model_arena_slot(m, j.slot);
        size_t bytes = m->slot_bytes[j.layer];
        if (o->kind == MODEL_OFFLOAD_HOST) {
            char *blk = o->pool + o->pos[j.layer];
            if (j.op == OFF_STORE) memcpy(blk, slot, bytes);
            else memcpy(slot, blk, bytes);
        } else {
            io_all(o, &j, slot, bytes);
        }
        double dt = umoe_now() - t0;
        pthread_mutex_lock(&o->mu);
        o->busy_s += dt;
        o->moved += (double)bytes;
        o->q_head = (o->q_head + 1) % OFF_QCAP;
        o->q_len--;
        o->done = j.ticket;
        pthread_cond_broadcast(&o->cv_done);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

static void wait_ticket(model_offload *o, uint64_t t) {
    pthread_mutex_lock(&o->mu);
    if (o->done < t) {
        double t0 = umoe_now();
        while (o->done < t) pthread_cond_wait(&o->cv_done, &o->mu);
        o->wait_s += umoe_now() - t0;
    }
    int err = o->io_errno;
    pthread_mutex_unlock(&o->mu);
    if (err) {
        LOG_ERROR("activation offload: %s of layer %d %s %s failed: %s", o->io_op == OFF_STORE ? "write" : "read",
                  o->io_layer, o->io_op == OFF_STORE ? "to" : "from", o->path, strerror(err));
        exit(UMOE_EXIT_FAIL);
    }
}

static uint64_t enqueue(model_offload *o, int op, int layer, int slot) {
    pthread_mutex_lock(&o->mu);
    while (o->q_len == OFF_QCAP) pthread_cond_wait(&o->cv_done, &o->mu);
    uint64_t t = ++o->issued;
    o->q[(o->q_head + o->q_len) % OFF_QCAP] = (off_job){op, layer, slot, t};
    o->q_len++;
    o->slot_ticket[slot] = t;
    o->owner[slot] = layer;
    pthread_cond_signal(&o->cv_job);
    pthread_mutex_unlock(&o->mu);
    return t;
}

void model_offload_before_forward(umoe_model *m, int l) {
    model_offload *o = m->off;
    if (!o || !m->slot_bytes[l]) return;
    wait_ticket(o, o->slot_ticket[l % 2]); /* the slot's previous layer has been moved out */
}

void model_offload_after_forward(umoe_model *m, int l) {
    model_offload *o = m->off;
    if (!o || !m->slot_bytes[l]) return;
    if (m->forward_only) { /* evaluation: no backward reads it, so nothing is stored */
        o->owner[l % 2] = l;
        return;
    }
    enqueue(o, OFF_STORE, l, l % 2);
}

void model_offload_before_backward(umoe_model *m, int l) {
    model_offload *o = m->off;
    if (!o || !m->slot_bytes[l]) return;
    int s = l % 2;
    if (o->owner[s] != l) enqueue(o, OFF_LOAD, l, s); /* not prefetched (only when the layer above had none) */
    uint64_t mine = o->slot_ticket[s];
    if (l > 0 && m->slot_bytes[l - 1] && o->owner[1 - s] != l - 1) enqueue(o, OFF_LOAD, l - 1, 1 - s); /* prefetch */
    wait_ticket(o, mine);
}

void model_offload_drain(umoe_model *m) {
    if (m->off) wait_ticket(m->off, m->off->issued);
}

void model_offload_free(umoe_model *m) {
    model_offload *o = m->off;
    if (!o) return;
    pthread_mutex_lock(&o->mu);
    o->stop = 1;
    pthread_cond_signal(&o->cv_job);
    pthread_mutex_unlock(&o->mu);
    pthread_join(o->th, NULL); /* the worker finishes the queue first */
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv_job);
    pthread_cond_destroy(&o->cv_done);
    if (o->pool) umoe_free(o->pool, o->pool_bytes);
    if (o->fd >= 0) close(o->fd);
    umoe_free(o->pos, (size_t)o->n_layers * sizeof *o->pos);
    umoe_free(o, sizeof *o);
    m->off = NULL;
}

umoe_status model_offload_parse(const char *text, const char *flag, model_offload_kind *kind, const char **dir) {
    *dir = NULL;
    if (!strcmp(text, "none")) *kind = MODEL_OFFLOAD_NONE;
    else if (!strcmp(text, "host")) *kind = MODEL_OFFLOAD_HOST;
    else if (!strncmp(text, "file:", 5) && text[5]) {
        *kind = MODEL_OFFLOAD_FILE;
        *dir = text + 5;
    } else {
        return umoe_fail("%s = \"%s\" is not allowed (none, host, or file:DIR)", flag, text);
    }
    return UMOE_OK;
}

/* the file: created in dir, unlinked at once, its full size reserved so that a full disk shows up now */
static umoe_status open_file(model_offload *o, const char *dir) {
    snprintf(o->path, sizeof o->path, "%s/umoe-offload-XXXXXX", dir);
    o->fd = mkstemp(o->path);
    if (o->fd < 0)
        return umoe_fail("offload directory %s: cannot create a file there (%s); give a writable directory "
                         "(file:DIR)", dir, strerror(errno));
    unlink(o->path);
    int e = o->pool_bytes ? posix_fallocate(o->fd, 0, (off_t)o->pool_bytes) : 0;
    if (e)
        return umoe_fail("offload directory %s: cannot reserve %.1f MiB for the activations (%s)", dir,
                         (double)o->pool_bytes / (1 << 20), strerror(e));
    return UMOE_OK;
}

umoe_status model_set_offload(umoe_model *m, model_offload_kind kind, const char *dir) {
    if (kind == MODEL_OFFLOAD_FILE && (!dir || !*dir))
        return umoe_fail("offload to a file needs a directory (file:DIR)");
    model_offload_free(m);
    model_arena_free(m);
    model_offload *o = NULL;
    if (kind != MODEL_OFFLOAD_NONE) {
        o = umoe_calloc(1, sizeof *o, "model offload");
        o->kind = kind;
        o->fd = -1;
        o->n_layers = m->n_layers;
        o->owner[0] = o->owner[1] = -1;
        m->off = o; /* the arena now carves the two slots */
    }
    model_arena_build(m);
    if (!o) return UMOE_OK;
    o->pos = umoe_calloc((size_t)m->n_layers, sizeof *o->pos, "model offload positions");
    for (int l = 0; l < m->n_layers; l++) {
        o->pos[l] = o->pool_bytes;
        o->pool_bytes += (m->slot_bytes[l] + 4095) & ~(size_t)4095;
    }
    umoe_status st = UMOE_OK;
    if (kind == MODEL_OFFLOAD_HOST) {
        if (!o->pool_bytes) o->pool_bytes = 64;
        o->pool = umoe_malloc(o->pool_bytes, "activation offload pool");
    } else {
        umoe_strlcpy(o->dir, dir, sizeof o->dir);
        st = open_file(o, dir);
    }
    if (st == UMOE_OK) {
        pthread_mutex_init(&o->mu, NULL);
        pthread_cond_init(&o->cv_job, NULL);
        pthread_cond_init(&o->cv_done, NULL);
        if (pthread_create(&o->th, NULL, worker, m)) st = umoe_fail("activation offload: cannot start its thread");
        else return UMOE_OK;
        pthread_mutex_destroy(&o->mu);
        pthread_cond_destroy(&o->cv_job);
        pthread_cond_destroy(&o->cv_done);
    }
    /* failed: back to no offload, the arena as before */
    if (o->fd >= 0) close(o->fd);
    if (o->pool) umoe_free(o->pool, o->pool_bytes);
    umoe_free(o->pos, (size_t)m->n_layers * sizeof *o->pos);
    umoe_free(o, sizeof *o);
    m->off = NULL;
    model_arena_free(m);
    model_arena_build(m);
    return st;
}

model_offload_kind model_offload_kind_of(const umoe_model *m, const char **dir) {
    *dir = m->off && m->off->kind == MODEL_OFFLOAD_FILE ? m->off->dir : NULL;
    return m->off ? m->off->kind : MODEL_OFFLOAD_NONE;
}

double model_offload_moved(const umoe_model *m) {
    if (!m->off) return 0;
    pthread_mutex_lock(&m->off->mu);
    double v = m->off->moved;
    pthread_mutex_unlock(&m->off->mu);
    return v;
}
double model_offload_wait_s(const umoe_model *m) { return m->off ? m->off->wait_s : 0; }
double model_offload_busy_s(const umoe_model *m) {
    if (!m->off) return 0;
    pthread_mutex_lock(&m->off->mu);
    double v = m->off->busy_s;
    pthread_mutex_unlock(&m->off->mu);
    return v;
}
size_t model_offload_pool_bytes(const umoe_model *m) { return m->off ? m->off->pool_bytes : 0; }
