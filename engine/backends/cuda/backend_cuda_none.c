/* engine/backends/cuda/backend_cuda_none.c — the CUDA backend's entry points in a build
 * without CUDA (CMake compiles this file only then): every call fails with a reason, or
 * answers "no", so callers need no #ifdef. */
#include "engine/backends/cuda/backend_cuda.h"
#include "host/base/error.h"

static int no_cuda(void) {
    return wn_fail("this wastenet was built without CUDA (no CUDA toolkit with cuDNN and "
                   "cuBLAS was found at build time); use --backend cpu or rebuild with CUDA");
}

int wn_cuda_available(void) { return 0; }

wn_backend *wn_backend_cuda(int device, wn_precision precision) {
    (void)device, (void)precision;
    no_cuda();
    return NULL;
}

int wn_cuda_device_query(int device, wn_cuda_device_info *info) {
    (void)device, (void)info;
    return no_cuda();
}
