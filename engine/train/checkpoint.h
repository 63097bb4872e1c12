/* engine/train/checkpoint.h — everything a training phase needs to continue exactly where
 * it stopped: weights, Adam state and step, epoch and step within the epoch, the
 * augmentation RNG state, early stopping's state with its best-weights snapshot,
 * and the running totals of a partly done epoch.
 *
 * One binary file per phase (<run>/<phase>.ckpt), rewritten atomically after every
 * epoch and on Ctrl-C (host/base/atomic_file.h: temporary file, fsync, rename), so
 * after a crash or `kill -9` at any moment the file is the last complete
 * checkpoint. Layout, native byte order (an endianness marker refuses foreign files):
 *
 *   "WNCKPT" 0x00 0x01   magic
 *   u32 version (2; version 1 files are still read), u32 0x01020304
 *   header fields (fixed order, see checkpoint.c: write_header)
 *   version 2: the run identity: char command[32] ("train"/"run"), i32 batch,
 *              i32 n, then n class names (u32 length + bytes), in label order
 *   f32 params[n_params], f32 stats[n_stats]            the whole model
 *   f32 adam_m[n_train], f32 adam_v[n_train]            n_train = n_params - trainable_first
 *   f32 best[n_train]                                   only when has_best
 *   u64 checksum                                        64-bit FNV-1a of all bytes before
 *
 * A truncated, corrupted or mismatching file is refused with a message naming the
 * file and what differs, never half-loaded.
 */
#ifndef WN_CHECKPOINT_H
#define WN_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/train/augment_draws.h"
#include "engine/train/early_stopping.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WN_CKPT_NAME_MAX 32

typedef enum {
    WN_PHASE_RUNNING = 0,   /* more epochs to go */
    WN_PHASE_DONE = 1,      /* epochs ran out */
    WN_PHASE_STOPPED = 2,   /* early stopping fired */
    WN_PHASE_DIVERGED = 3   /* a NaN/Inf loss stopped it */
} wn_phase_status;

typedef struct wn_checkpoint {
    char phase[WN_CKPT_NAME_MAX]; /* "transfer", "finetune", ... */
    char arch[WN_CKPT_NAME_MAX];  /* backbone name: "irv2" */
    int image_h, image_w, num_classes;
    int fine_tune_at;             /* WN_FINE_TUNE_NONE or 0..backbone layers */
    int epoch;                    /* epochs completed in this phase */
    int step;                     /* steps completed in epoch `epoch` (0 at an epoch end) */
    int epochs_max;               /* the phase's --epochs */
    int status;                   /* wn_phase_status */
    double lr;
    uint64_t seed;                /* the run's --seed */
    wn_rng rng;                   /* augmentation RNG at the start of epoch `epoch` */
    wn_early_stopping es;         /* its configuration and state */
    double part_loss_sum;         /* totals of the steps done in epoch `epoch` */
    long part_correct, part_seen;
    long adam_t;                  /* Adam steps taken (Keras's iterations) */
    size_t n_params, n_stats, trainable_first;
    float *params;                /* [n_params] */
    float *stats;                 /* [n_stats] */
    float *adam_m, *adam_v;       /* [n_params - trainable_first] */
    int has_best;
    float *best;                  /* [n_params - trainable_first] or NULL */
    /* The run identity (version 2; empty/0 in a version 1 file). */
    int version;                  /* of the file read (save writes the current one) */
    char command[WN_CKPT_NAME_MAX]; /* "train" or "run" */
    int batch;                    /* --batch */
    int n_class_names;
    char **class_names;           /* [n_class_names] label order; read, not owned, by save */
    int owns_class_names;         /* set by load / read_info */
} wn_checkpoint;

/* Writes ck to path atomically. The arrays are read, not owned. */
int wn_checkpoint_save(const wn_checkpoint *ck, const char *path);

/* Reads path into ck (arrays allocated; free with wn_checkpoint_free). A missing
 * file fails with errno-style reason; use wn_checkpoint_exists to test first. */
int wn_checkpoint_load(wn_checkpoint *ck, const char *path);

/* Frees arrays allocated by wn_checkpoint_load. */
void wn_checkpoint_free(wn_checkpoint *ck);

int wn_checkpoint_exists(const char *path);

/* Reads only the header and the run identity (no weights, no checksum check): what
 * --resume compares before any data is read. Free with wn_checkpoint_free. */
int wn_checkpoint_read_info(wn_checkpoint *ck, const char *path);

/* 1 when path starts with the checkpoint magic ("WNCKPT"), else 0. */
int wn_checkpoint_is_file(const char *path);

struct wn_model;
/* Builds the model a checkpoint names (architecture, image size, classes) into *m and
 * fills its weights from it; on failure *m is left freed. */
int wn_checkpoint_load_model(struct wn_model *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif
