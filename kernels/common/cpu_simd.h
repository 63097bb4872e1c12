/* kernels/common/cpu_simd.h — WN_CPU_CLONES marks a CPU element loop to be compiled
 * three times: for baseline x86-64 (SSE2), x86-64-v3 (AVX2) and x86-64-v4 (AVX-512),
 * the copy for the running CPU being chosen once when the program loads (GCC's
 * function multiversioning: an ifunc; GCC also clones the OpenMP bodies inside).
 *
 * Why: the build targets baseline x86-64 so that one binary runs on every machine
 * (the lent GPU hosts included), which left the element loops 4 floats wide on CPUs
 * that do 16 (docs/PERF.md, "Element ops"). oneDNN dispatches its own kernels.
 *
 * The copies give the same bits: CMake compiles C with -ffp-contract=off (no fused
 * multiply-add the source does not write), and GCC, without -ffast-math, never
 * reorders a floating-point sum to vectorise it: only loops whose lanes are
 * independent (one channel each) go wide.
 */
#ifndef WN_CPU_SIMD_H
#define WN_CPU_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && \
    !defined(WN_NO_CLONES)
#define WN_CPU_CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define WN_CPU_CLONES
#endif

#endif
