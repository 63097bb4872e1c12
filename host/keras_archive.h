/* host/keras_archive.h — Keras 3's `.keras` model archive, read and written.
 *
 * A `.keras` file (`model.save("x.keras")`, keras/src/saving/saving_lib.py) is a zip
 * holding three members:
 *   metadata.json     {"keras_version": "3.15.1", "date_saved": "..."}
 *   config.json       the architecture: serialize_keras_object(model), a Functional
 *                     whose config.layers lists every layer (class_name, config.name,
 *                     inbound_nodes), nested models as Functional entries of their own
 *   model.weights.h5  the weights in Keras 3's layout (host/h5_keras.h)
 * The zip is read and written with libzip; JSON with jansson.
 *
 * Reading extracts model.weights.h5 to a private temporary file (the HDF5 reader
 * works on paths and checks a file in a child process first) and summarises
 * config.json, so that a caller can check the architecture against its own model.
 * Errors follow host/base/error.h and name the archive and the member.
 */
#ifndef WN_KERAS_ARCHIVE_H
#define WN_KERAS_ARCHIVE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when `path` starts with a zip signature (what a .keras file is). */
int wn_keras_archive_is(const char *path);

/* What config.json says about the model, for checking it against ours. */
typedef struct wn_keras_config {
    char model_class[64];     /* outer class_name: "Functional", "Sequential", ... */
    char model_name[128];     /* outer config.name */
    int n_layers;             /* outer config.layers entries (Keras 3 ops included) */
    char nested_name[128];    /* the one nested Functional's name ("inception_resnet_v2"),
                                 "" when none */
    int nested_layers;        /* its config.layers entries */
    char **nested_classes;    /* their class_name values, nested_layers of them */
    char **nested_names;      /* their config.name values */
    int dense_units;          /* units of the last outer Dense layer, 0 when none */
    int input_h, input_w;     /* the outer input's batch_shape (0 when unknown) */
    char keras_version[64];   /* metadata.json's keras_version, "" when absent */
} wn_keras_config;

/* Extracts `path`'s model.weights.h5 into a new temporary file, whose path is
 * written to tmp (size bytes); the caller removes it (unlink) when done. Fails with
 * a reason for a truncated or damaged zip, or one without model.weights.h5. */
int wn_keras_archive_extract_weights(const char *path, char *tmp, size_t size);

/* Reads and summarises config.json and metadata.json. Release with
 * wn_keras_config_free. */
int wn_keras_archive_config(const char *path, wn_keras_config *cfg);
void wn_keras_config_free(wn_keras_config *cfg);

/* One member to write: name and bytes. */
typedef struct wn_keras_member {
    const char *name;
    const void *data;
    size_t size;
} wn_keras_member;

/* Writes a zip of `members` (stored uncompressed, as Keras writes them) to `path`,
 * atomically (host/base/atomic_file.h): a temporary file in the same folder, renamed. */
int wn_keras_archive_write(const char *path, const wn_keras_member *members, int n);

/* Reads the whole file `path` into a malloc'd buffer (for a member to write). */
int wn_read_file_bytes(const char *path, void **data, size_t *size);

#ifdef __cplusplus
}
#endif
#endif
