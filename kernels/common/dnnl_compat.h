/* kernels/common/dnnl_compat.h — one spelling of the oneDNN C API calls the CPU kernels
 * make, over oneDNN 2.x (Debian 12's libdnnl 2.6.3) and 3.x (PyPI's onednn-cpu-gomp,
 * oneDNN 3.2; CMake's WN_DNNL_ROOT picks which, see README.md).
 *
 * What changed between the two, and how it is covered here:
 *   - memory descriptors are values in 2.x and handles in 3.x: both are `wn_dnnl_md`,
 *     made by wn_dnnl_md_init and released by wn_dnnl_md_free (nothing to do in 2.x);
 *     the API takes and queries return `wn_dnnl_md_ref` (a pointer to the value in
 *     2.x, the handle in 3.x), which wn_dnnl_ref gives for an owned descriptor;
 *   - an operation descriptor (dnnl_*_desc_init) plus dnnl_primitive_desc_create in
 *     2.x is one dnnl_*_primitive_desc_create call in 3.x: wn_dnnl_conv_*_pd;
 *   - the eltwise post-op lost its scale argument in 3.x: wn_dnnl_post_ops_append_eltwise.
 * Every other call the kernels make (memory objects, reorders, attributes, execution,
 * streams) has the same name and arguments in both and is called directly.
 *
 * Header-only (static inline), so that it belongs to whichever CPU kernel includes it.
 */
#ifndef WN_KERNELS_DNNL_COMPAT_H
#define WN_KERNELS_DNNL_COMPAT_H

#include <dnnl.h>
#include <stddef.h>

#if DNNL_VERSION_MAJOR >= 3
#define WN_DNNL_V3 1
#endif

/* An owned memory descriptor. Start it zeroed (WN_DNNL_MD_INIT) so that
 * wn_dnnl_md_free is safe on one that was never made. */
typedef dnnl_memory_desc_t wn_dnnl_md;
#ifdef WN_DNNL_V3
typedef const_dnnl_memory_desc_t wn_dnnl_md_ref;
#define WN_DNNL_MD_INIT NULL
static inline wn_dnnl_md_ref wn_dnnl_ref(const wn_dnnl_md *md) { return md ? *md : NULL; }
#else
typedef const dnnl_memory_desc_t *wn_dnnl_md_ref;
#define WN_DNNL_MD_INIT {0}
static inline wn_dnnl_md_ref wn_dnnl_ref(const wn_dnnl_md *md) { return md; }
#endif

static inline dnnl_status_t wn_dnnl_md_init(wn_dnnl_md *md, int ndims, const dnnl_dims_t dims,
                                            dnnl_data_type_t type, dnnl_format_tag_t tag) {
#ifdef WN_DNNL_V3
    return dnnl_memory_desc_create_with_tag(md, ndims, dims, type, tag);
#else
    return dnnl_memory_desc_init_by_tag(md, ndims, dims, type, tag);
#endif
}

static inline void wn_dnnl_md_free(wn_dnnl_md *md) {
#ifdef WN_DNNL_V3
    if (*md) dnnl_memory_desc_destroy(*md);
    *md = NULL;
#else
    (void)md;
#endif
}

/* Convolution primitive descriptors (direct algorithm). `bias` may be NULL; `hint`
 * is the forward primitive descriptor a backward one is built against. Dilations
 * follow oneDNN's convention (0 = none). */
static inline dnnl_status_t wn_dnnl_conv_forward_pd(
    dnnl_primitive_desc_t *pd, dnnl_engine_t engine, dnnl_prop_kind_t prop, wn_dnnl_md_ref src,
    wn_dnnl_md_ref wei, wn_dnnl_md_ref bias, wn_dnnl_md_ref dst, const dnnl_dims_t strides,
    const dnnl_dims_t dilates, const dnnl_dims_t pad_l, const dnnl_dims_t pad_r,
    const_dnnl_primitive_attr_t attr) {
#ifdef WN_DNNL_V3
    return dnnl_convolution_forward_primitive_desc_create(pd, engine, prop, dnnl_convolution_direct,
                                                          src, wei, bias, dst, strides, dilates,
                                                          pad_l, pad_r, attr);
#else
    dnnl_convolution_desc_t cd;
    dnnl_status_t st = dnnl_dilated_convolution_forward_desc_init(
        &cd, prop, dnnl_convolution_direct, src, wei, bias, dst, strides, dilates, pad_l, pad_r);
    return st != dnnl_success ? st : dnnl_primitive_desc_create(pd, &cd, attr, engine, NULL);
#endif
}

static inline dnnl_status_t wn_dnnl_conv_backward_data_pd(
    dnnl_primitive_desc_t *pd, dnnl_engine_t engine, wn_dnnl_md_ref diff_src, wn_dnnl_md_ref wei,
    wn_dnnl_md_ref diff_dst, const dnnl_dims_t strides, const dnnl_dims_t dilates,
    const dnnl_dims_t pad_l, const dnnl_dims_t pad_r, const_dnnl_primitive_desc_t hint,
    const_dnnl_primitive_attr_t attr) {
#ifdef WN_DNNL_V3
    return dnnl_convolution_backward_data_primitive_desc_create(
        pd, engine, dnnl_convolution_direct, diff_src, wei, diff_dst, strides, dilates, pad_l,
        pad_r, hint, attr);
#else
    dnnl_convolution_desc_t cd;
    dnnl_status_t st = dnnl_dilated_convolution_backward_data_desc_init(
        &cd, dnnl_convolution_direct, diff_src, wei, diff_dst, strides, dilates, pad_l, pad_r);
    return st != dnnl_success ? st : dnnl_primitive_desc_create(pd, &cd, attr, engine, hint);
#endif
}

static inline dnnl_status_t wn_dnnl_conv_backward_weights_pd(
    dnnl_primitive_desc_t *pd, dnnl_engine_t engine, wn_dnnl_md_ref src, wn_dnnl_md_ref diff_wei,
    wn_dnnl_md_ref diff_bias, wn_dnnl_md_ref diff_dst, const dnnl_dims_t strides,
    const dnnl_dims_t dilates, const dnnl_dims_t pad_l, const dnnl_dims_t pad_r,
    const_dnnl_primitive_desc_t hint, const_dnnl_primitive_attr_t attr) {
#ifdef WN_DNNL_V3
    return dnnl_convolution_backward_weights_primitive_desc_create(
        pd, engine, dnnl_convolution_direct, src, diff_wei, diff_bias, diff_dst, strides, dilates,
        pad_l, pad_r, hint, attr);
#else
    dnnl_convolution_desc_t cd;
    dnnl_status_t st = dnnl_dilated_convolution_backward_weights_desc_init(
        &cd, dnnl_convolution_direct, src, diff_wei, diff_bias, diff_dst, strides, dilates, pad_l,
        pad_r);
    return st != dnnl_success ? st : dnnl_primitive_desc_create(pd, &cd, attr, engine, hint);
#endif
}

/* An eltwise post-op (2.x's scale argument is always 1 here). */
static inline dnnl_status_t wn_dnnl_post_ops_append_eltwise(dnnl_post_ops_t po, dnnl_alg_kind_t alg,
                                                            float alpha, float beta) {
#ifdef WN_DNNL_V3
    return dnnl_post_ops_append_eltwise(po, alg, alpha, beta);
#else
    return dnnl_post_ops_append_eltwise(po, 1.0f, alg, alpha, beta);
#endif
}

#endif
