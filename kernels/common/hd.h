/* kernels/common/hd.h — WN_HD marks element functions compiled for both CPU and GPU.
 *
 * Every custom kernel keeps its arithmetic in small `WN_HD static inline`
 * functions in its family header; the CPU backend loops over them and the CUDA
 * kernel calls them per thread, so CPU tests exercise the same formulas and index
 * math the GPU runs. */
#ifndef WN_HD_H
#define WN_HD_H

#ifdef __CUDACC__
#define WN_HD __host__ __device__
#else
#define WN_HD
#endif

#endif
