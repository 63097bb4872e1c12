/* tests/fuzz/fuzz_h5_keras.c — libFuzzer target for the HDF5 weight reader
 * (host/h5_keras.h). wn_h5_open() reads a file by name (HDF5 opens files itself), so
 * each input is written to a temporary file first, then opened, indexed, and every
 * float32 weight of a sane size read, as wastenet does when it loads weights.
 *
 * What must hold for every input (a violation aborts, which the fuzzer reports):
 *  - no crash, no out-of-bounds access, no leak, no undefined behaviour in our code;
 *  - success means a consistent index: n_layers >= 0, each weight's count equals the
 *    product of its dims and its rank is within WN_H5_MAX_RANK;
 *  - failure means a reason that names the file;
 *  - either way, no HDF5 object (file, group, attribute, dataset, type, space) is left
 *    open afterwards: an identifier leaked on an error path keeps the file open.
 * wn_h5_open's child-process check is switched off (WN_NO_ISOLATE=1) so that the
 * reader runs here. The temporary file lives in $TMPDIR (default /tmp; /dev/shm is used when present:
 * it is memory, so executions stay fast) and is removed at exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "host/base/error.h"
#include "host/h5_keras.h"

/* Weights larger than this are indexed but not read (a 16-byte dataset header can
 * claim terabytes; wastenet's own loader checks shapes against the model first). */
#define FUZZ_MAX_READ ((size_t)1 << 20)

static char g_path[256];

static void fuzz_cleanup(void) {
    if (g_path[0]) unlink(g_path);
}

static void fuzz_check(int cond, const char *what) {
    if (!cond) {
        fprintf(stderr, "fuzz_h5_keras: contract violated: %s (last error: %s)\n", what,
                wn_last_error());
        abort();
    }
}

static void fuzz_path_init(void) {
    /* Read in this process, not in wn_h5_open's isolated child (host/isolate.h): the
     * sanitizers and the coverage counters must see the reader itself. */
    setenv("WN_NO_ISOLATE", "1", 1);
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    snprintf(g_path, sizeof g_path, "%s/wn_fuzz_h5_%ld.h5", dir, (long)getpid());
    atexit(fuzz_cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_path[0]) fuzz_path_init();
    FILE *fp = fopen(g_path, "wb");
    fuzz_check(fp != NULL, "temporary file");
    fuzz_check(fwrite(data, 1, size, fp) == size || size == 0, "writing the temporary file");
    fclose(fp);

    wn_h5_file *f = NULL;
    if (wn_h5_open(g_path, &f) != WN_OK) {
        fuzz_check(strstr(wn_last_error(), g_path) != NULL, "the error names the file");
        fuzz_check(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0, "no HDF5 object left open");
        return 0;
    }
    fuzz_check(f->n_layers >= 0 && (f->n_layers == 0 || f->layers), "a layer index");
    for (int l = 0; l < f->n_layers; l++) {
        const wn_h5_layer *L = &f->layers[l];
        fuzz_check(L->name != NULL && L->n_weights >= 0, "layer entries");
        fuzz_check(wn_h5_find_layer(f, L->name) >= 0, "every listed layer can be found");
        for (int w = 0; w < L->n_weights; w++) {
            const wn_h5_weight *W = &L->weights[w];
            fuzz_check(W->name && W->rank >= 0 && W->rank <= WN_H5_MAX_RANK, "weight rank");
            size_t count = 1;
            int overflow = 0;
            for (int k = 0; k < W->rank; k++) {
                fuzz_check(W->dims[k] >= 0, "non-negative dims");
                if (W->dims[k] && count > SIZE_MAX / (size_t)W->dims[k]) overflow = 1;
                else count *= (size_t)W->dims[k];
            }
            if (!overflow) fuzz_check(count == W->count, "count = product of dims");
            if (W->dtype != WN_H5_DTYPE_F32 || overflow || W->count > FUZZ_MAX_READ) continue;
            float *buf = malloc((W->count ? W->count : 1) * sizeof *buf);
            fuzz_check(buf != NULL, "allocation");
            if (wn_h5_weight_read(f, l, w, buf, W->count) != WN_OK)
                fuzz_check(strstr(wn_last_error(), g_path) != NULL, "a read error names the file");
            free(buf);
        }
    }
    wn_h5_close(f);
    fuzz_check(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0, "no HDF5 object left open");
    return 0;
}
