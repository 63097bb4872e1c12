/* engine/train/model_keras.c — the notebook's model as a .keras archive (see model_keras.h). */
#include "engine/train/model_keras.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/base/error.h"
#include "host/base/atomic_file.h"
#include "host/keras_archive.h"
#include "engine/train/keras_config.h"
#include "engine/train/model_weights.h"

int wn_model_save_keras_archive(const wn_model *m, const char *path) {
    char *config = NULL, *meta = NULL;
    void *weights = NULL;
    size_t weights_size = 0;
    char tmp[4200];
    /* the weights member is written as a file first (HDF5 builds it), beside the
     * target, and removed once it is in the archive */
    if (wn_atomic_temp_name(path, tmp, sizeof tmp) != WN_OK) return WN_ERR;
    if (strlen(tmp) + 12 >= sizeof tmp) return wn_fail("%s: path too long", path);
    strcat(tmp, ".weights.h5");
    int rc = wn_keras_config_json(m, &config);
    if (rc == WN_OK) rc = wn_keras_metadata_json(&meta);
    if (rc == WN_OK) rc = wn_model_weights_save_keras3(m, tmp, WN_WEIGHTS_WHOLE_MODEL);
    if (rc == WN_OK) rc = wn_read_file_bytes(tmp, &weights, &weights_size);
    unlink(tmp);
    if (rc == WN_OK) {
        /* the order Keras writes them in */
        wn_keras_member members[3] = {{"metadata.json", meta, strlen(meta)},
                                      {"config.json", config, strlen(config)},
                                      {"model.weights.h5", weights, weights_size}};
        rc = wn_keras_archive_write(path, members, 3);
    }
    free(config), free(meta), free(weights);
    return rc;
}

int wn_model_save_h5_model(const wn_model *m, const char *path) {
    char *config = NULL;
    if (wn_keras2_model_config_json(m, &config) != WN_OK) return WN_ERR;
    int rc = wn_model_weights_save_full_model(m, path, config);
    free(config);
    return rc;
}
