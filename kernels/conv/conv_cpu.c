/* kernels/conv/conv_cpu.c — Conv2D forward, backward-data and backward-filter on the CPU
 * through oneDNN's C API (2.x or 3.x: kernels/common/dnnl_compat.h).
 *
 * Activations stay in the engine's NHWC layout (oneDNN's nhwc tag, no reorder);
 * weights arrive as Keras's HWIO (hwio, or hwigo with groups for depthwise) and are
 * reordered to whatever blocked layout the chosen implementation prefers. TF's
 * asymmetric 'same' padding maps directly onto oneDNN's separate left/right padding.
 *
 * Every (kind, shape) gets one cache entry created on first use and kept for the
 * backend's life: the primitive, its memory objects (data handles are set per
 * call, which allocates nothing), the reordered-weights buffer and the reorder.
 * Scratchpads are in "user" mode and share one buffer owned by the cache, so a
 * training step after the first allocates nothing.
 *
 * A forward may carry an epilogue (op_types.h: wn_conv_epilogue) as oneDNN post-ops on
 * the float32 accumulator: binary mul by the [K] scale, binary add of the [K] shift,
 * then eltwise ReLU or clip to [0, 6], one rounding at the store. In float32 that is
 * the same multiply, add and comparison the separate affine pass does, so the results
 * equal conv-then-affine's (compared with ==, so a zero's sign is not held to it:
 * tests/ops/test_conv_epilogue.c; whole models: tests/graph/test_plan_epilogue.c).
 */
#include <dnnl_debug.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/common/cpu_ctx.h"
#include "kernels/common/cpu_simd.h"
#include "kernels/common/dnnl_compat.h"
#include "kernels/conv/conv.h"
#include "kernels/conv/conv_gemm_cpu.h"
#include "host/base/error.h"

typedef enum { CONV_FWD = 0, CONV_BWD_DATA = 1, CONV_BWD_FILTER = 2 } conv_kind;

/* Everything that selects a primitive. */
typedef struct conv_key {
    int kind, bias;
    int post_scale, post_shift, post_act; /* the forward's epilogue: 0/1, 0/1, wn_activation */
    int dt; /* wn_dtype of activations and weights (weight gradients stay float32) */
    int n, h, w, c, k, groups;
    int kh, kw, sh, sw;
    int pt, pb, pl, pr;
    int oh, ow;
} conv_key;

typedef struct conv_entry {
    conv_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t act_a;    /* fwd: src x; bwd-data: diff_dst dy; bwd-filter: src x */
    dnnl_memory_t act_b;    /* fwd: dst y; bwd-data: diff_src dx; bwd-filter: diff_dst dy */
    dnnl_memory_t wei;      /* weights (or diff weights) in the primitive's layout */
    dnnl_memory_t wei_user; /* the same in Keras's HWIO, NULL when layouts agree */
    dnnl_primitive_t reorder; /* user -> primitive (fwd, bwd-data) or back (bwd-filter) */
    dnnl_memory_t reorder_scratch;
    dnnl_memory_t bias;     /* bias (fwd) or diff bias (bwd-filter), or NULL */
    dnnl_memory_t post_scale, post_shift; /* the epilogue's [K] operands, or NULL */
    dnnl_memory_t scratch;  /* scratchpad, handle = the cache's shared buffer */
} conv_entry;

struct wn_cpu_conv_cache {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    conv_entry *items; /* [n_items] */
    int n_items, cap_items;
    wn_cpu_buffer scratch; /* shared by every primitive's scratchpad */
    int bf16_native;       /* -1 not asked yet; 1 oneDNN has bf16 convolutions here */
};

#define DNNL_TRY(call)                                                                  \
    do {                                                                                \
        dnnl_status_t st_ = (call);                                                     \
        if (st_ != dnnl_success)                                                        \
            return wn_fail("%s: oneDNN call %s failed: %s", who, #call,                 \
                           dnnl_status2str(st_));                                       \
    } while (0)

int wn_cpu_conv_cache_create(wn_cpu_conv_cache **out) {
    const char *who = "CPU backend";
    wn_cpu_conv_cache *c = calloc(1, sizeof *c);
    if (!c) return wn_fail("%s: out of memory creating the convolution cache", who);
    *out = c;
    c->bf16_native = -1;
    DNNL_TRY(dnnl_engine_create(&c->engine, dnnl_cpu, 0));
    DNNL_TRY(dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags));
    return WN_OK;
}

static void conv_entry_destroy(conv_entry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->reorder) dnnl_primitive_destroy(e->reorder);
    dnnl_memory_t mems[] = {e->act_a,           e->act_b, e->wei,        e->wei_user,
                            e->reorder_scratch, e->bias,  e->post_scale, e->post_shift,
                            e->scratch};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    memset(e, 0, sizeof *e);
}

void wn_cpu_conv_cache_destroy(wn_cpu_conv_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n_items; i++) conv_entry_destroy(&c->items[i]);
    free(c->items);
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
    wn_cpu_buffer_release(&c->scratch);
    free(c);
}

static conv_key conv_key_make(conv_kind kind, int bias, const wn_conv_desc *d, wn_dtype dt,
                              const wn_conv_epilogue *post) {
    conv_key k;
    memset(&k, 0, sizeof k);
    const wn_window *w = &d->win;
    k.kind = kind, k.bias = bias, k.dt = (int)dt;
    if (post) {
        k.post_scale = post->scale != NULL, k.post_shift = post->shift != NULL;
        k.post_act = (int)post->act;
    }
    k.n = w->n, k.h = w->h, k.w = w->w, k.c = w->c, k.k = d->k;
    k.groups = d->groups < 1 ? 1 : d->groups;
    k.kh = w->kh, k.kw = w->kw, k.sh = w->sh, k.sw = w->sw;
    k.pt = w->pad_top, k.pb = w->pad_bottom, k.pl = w->pad_left, k.pr = w->pad_right;
    k.oh = w->oh, k.ow = w->ow;
    return k;
}

/* Memory descriptors: NHWC activations, HWIO user weights (or HWIGO grouped),
 * weights of any layout for the primitive to choose, a K-vector bias; `wei_hint` is
 * the forward hint's weights (a bf16 backward-filter writes float32 weight gradients
 * from a bf16 forward). Activations and weights are k->dt; the bias stays float32. */
static int conv_mds(const conv_key *k, wn_dnnl_md *src, wn_dnnl_md *dst, wn_dnnl_md *wei_user,
                    wn_dnnl_md *wei_any, wn_dnnl_md *wei_hint, wn_dnnl_md *bias,
                    const char *who) {
    dnnl_dims_t src_dims = {k->n, k->c, k->h, k->w};
    dnnl_dims_t dst_dims = {k->n, k->k, k->oh, k->ow};
    dnnl_data_type_t adt = k->dt == WN_DTYPE_BF16 ? dnnl_bf16 : dnnl_f32;
    dnnl_data_type_t wdt = k->kind == CONV_BWD_FILTER ? dnnl_f32 : adt;
    DNNL_TRY(wn_dnnl_md_init(src, 4, src_dims, adt, dnnl_nhwc));
    DNNL_TRY(wn_dnnl_md_init(dst, 4, dst_dims, adt, dnnl_nhwc));
    if (k->groups == 1) {
        dnnl_dims_t wd = {k->k, k->c, k->kh, k->kw};
        DNNL_TRY(wn_dnnl_md_init(wei_user, 4, wd, wdt, dnnl_hwio));
        DNNL_TRY(wn_dnnl_md_init(wei_any, 4, wd, wdt, dnnl_format_tag_any));
        DNNL_TRY(wn_dnnl_md_init(wei_hint, 4, wd, adt, dnnl_format_tag_any));
    } else {
        /* Keras HWIO (kh, kw, C/G, K) with K = G*(K/G), output channel g*(K/G)+o:
         * memory order h, w, i, g, o = oneDNN's hwigo. */
        dnnl_dims_t wd = {k->groups, k->k / k->groups, k->c / k->groups, k->kh, k->kw};
        DNNL_TRY(wn_dnnl_md_init(wei_user, 5, wd, wdt, dnnl_hwigo));
        DNNL_TRY(wn_dnnl_md_init(wei_any, 5, wd, wdt, dnnl_format_tag_any));
        DNNL_TRY(wn_dnnl_md_init(wei_hint, 5, wd, adt, dnnl_format_tag_any));
    }
    dnnl_dims_t bd = {k->k};
    DNNL_TRY(wn_dnnl_md_init(bias, 1, bd, dnnl_f32, dnnl_x));
    return WN_OK;
}

/* The primitive descriptor of `kind` (a backward one built against `hint`). */
static dnnl_status_t conv_pd_create(const conv_key *k, conv_kind kind, dnnl_primitive_desc_t *pd,
                                    dnnl_engine_t engine, const_dnnl_primitive_attr_t attr,
                                    const_dnnl_primitive_desc_t hint, wn_dnnl_md_ref src,
                                    wn_dnnl_md_ref wei, wn_dnnl_md_ref bias, wn_dnnl_md_ref dst) {
    dnnl_dims_t strides = {k->sh, k->sw}, dil = {0, 0};
    dnnl_dims_t pad_l = {k->pt, k->pl}, pad_r = {k->pb, k->pr};
    if (kind == CONV_FWD)
        return wn_dnnl_conv_forward_pd(pd, engine, dnnl_forward_training, src, wei, bias, dst,
                                       strides, dil, pad_l, pad_r, attr);
    if (kind == CONV_BWD_DATA)
        return wn_dnnl_conv_backward_data_pd(pd, engine, src, wei, dst, strides, dil, pad_l, pad_r,
                                             hint, attr);
    return wn_dnnl_conv_backward_weights_pd(pd, engine, src, wei, bias, dst, strides, dil, pad_l,
                                            pad_r, hint, attr);
}

/* Grows the shared scratchpad to cover `md` and creates a memory object for it. */
static int conv_scratch_make(wn_cpu_conv_cache *c, const_dnnl_primitive_desc_t pd,
                             dnnl_memory_t *mem, const char *who) {
    wn_dnnl_md_ref md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    if (bytes == 0) return WN_OK;
    if (wn_cpu_buffer_reserve(&c->scratch, bytes, "oneDNN scratchpad") != WN_OK)
        return wn_fail_context("%s: ", who);
    DNNL_TRY(dnnl_memory_create(mem, md, c->engine, DNNL_MEMORY_NONE));
    return WN_OK;
}

/* The forward's attribute: `base` (the scratchpad mode) plus the epilogue's post-ops,
 * with the memory objects of its [K] operands. Separate from `base` because the weight
 * reorder shares that one and a reorder takes no binary post-ops. */
static int conv_post_attr(wn_cpu_conv_cache *c, conv_entry *e, const_dnnl_primitive_attr_t base,
                          dnnl_primitive_attr_t *out, const char *who) {
    const conv_key *k = &e->key;
    wn_dnnl_md vec = WN_DNNL_MD_INIT;
    dnnl_post_ops_t po = NULL;
    dnnl_dims_t vd = {1, k->k, 1, 1};
    int rc = WN_ERR;
    if (dnnl_primitive_attr_clone(out, base) != dnnl_success ||
        wn_dnnl_md_init(&vec, 4, vd, dnnl_f32, dnnl_nchw) != dnnl_success ||
        dnnl_post_ops_create(&po) != dnnl_success) {
        wn_fail("%s: oneDNN post-op attribute", who);
        goto done;
    }
    dnnl_status_t st = dnnl_success;
    if (k->post_scale && st == dnnl_success)
        st = dnnl_post_ops_append_binary(po, dnnl_binary_mul, wn_dnnl_ref(&vec));
    if (k->post_shift && st == dnnl_success)
        st = dnnl_post_ops_append_binary(po, dnnl_binary_add, wn_dnnl_ref(&vec));
    if (k->post_act == WN_ACT_RELU && st == dnnl_success)
        st = wn_dnnl_post_ops_append_eltwise(po, dnnl_eltwise_relu, 0.0f, 0.0f);
    if (k->post_act == WN_ACT_RELU6 && st == dnnl_success)
        st = wn_dnnl_post_ops_append_eltwise(po, dnnl_eltwise_clip_v2, 0.0f, 6.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(*out, po);
    if (st == dnnl_success && k->post_scale)
        st = dnnl_memory_create(&e->post_scale, wn_dnnl_ref(&vec), c->engine, DNNL_MEMORY_NONE);
    if (st == dnnl_success && k->post_shift)
        st = dnnl_memory_create(&e->post_shift, wn_dnnl_ref(&vec), c->engine, DNNL_MEMORY_NONE);
    if (st != dnnl_success) {
        wn_fail("%s: oneDNN convolution post-ops (scale, shift, activation): %s", who,
                dnnl_status2str(st));
        goto done;
    }
    rc = WN_OK;
done:
    if (po) dnnl_post_ops_destroy(po);
    wn_dnnl_md_free(&vec);
    return rc;
}

static int conv_entry_build(wn_cpu_conv_cache *c, conv_entry *e, const char *who) {
    const conv_key *k = &e->key;
    wn_dnnl_md src = WN_DNNL_MD_INIT, dst = WN_DNNL_MD_INIT, wei_user = WN_DNNL_MD_INIT,
               wei_any = WN_DNNL_MD_INIT, wei_hint = WN_DNNL_MD_INIT, bias = WN_DNNL_MD_INIT;
    dnnl_primitive_attr_t attr = NULL, fwd_attr = NULL;
    dnnl_primitive_desc_t fwd_pd = NULL, pd = NULL;
    int rc = WN_ERR;
    if (conv_mds(k, &src, &dst, &wei_user, &wei_any, &wei_hint, &bias, who) != WN_OK) goto done;

    dnnl_status_t st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success)
        st = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (st != dnnl_success) {
        wn_fail("%s: oneDNN scratchpad mode: %s", who, dnnl_status2str(st));
        goto done;
    }

    if ((k->post_scale || k->post_shift || k->post_act) &&
        conv_post_attr(c, e, attr, &fwd_attr, who) != WN_OK)
        goto done;

    /* The forward descriptor is the primitive (fwd) or the hint (backward). */
    wn_dnnl_md_ref fwd_bias = (k->kind == CONV_FWD && k->bias) ? wn_dnnl_ref(&bias) : NULL;
    st = conv_pd_create(k, CONV_FWD, &fwd_pd, c->engine, fwd_attr ? fwd_attr : attr, NULL,
                        wn_dnnl_ref(&src),
                        wn_dnnl_ref(k->kind == CONV_FWD ? &wei_any : &wei_hint), fwd_bias,
                        wn_dnnl_ref(&dst));
    if (st != dnnl_success) {
        wn_fail("%s: oneDNN has no %s convolution for input %dx%dx%dx%d, kernel %dx%d, stride "
                "%dx%d, %d groups: %s", who, k->dt == WN_DTYPE_BF16 ? "bf16" : "float32", k->n,
                k->h, k->w, k->c, k->kh, k->kw, k->sh, k->sw, k->groups, dnnl_status2str(st));
        goto done;
    }
    if (k->kind == CONV_FWD) {
        pd = fwd_pd, fwd_pd = NULL;
    } else {
        wn_dnnl_md_ref bwd_bias =
            (k->kind == CONV_BWD_FILTER && k->bias) ? wn_dnnl_ref(&bias) : NULL;
        st = conv_pd_create(k, (conv_kind)k->kind, &pd, c->engine, attr, fwd_pd,
                            wn_dnnl_ref(&src), wn_dnnl_ref(&wei_any), bwd_bias, wn_dnnl_ref(&dst));
        if (st != dnnl_success) {
            wn_fail("%s: oneDNN has no convolution backward for this shape: %s", who,
                    dnnl_status2str(st));
            goto done;
        }
    }
    if (dnnl_primitive_create(&e->prim, pd) != dnnl_success) {
        wn_fail("%s: oneDNN could not create the convolution primitive", who);
        goto done;
    }

    /* Activations: plain NHWC in every direction (the tag is fixed, not "any"). */
    if (dnnl_memory_create(&e->act_a, wn_dnnl_ref(k->kind == CONV_BWD_DATA ? &dst : &src),
                           c->engine, DNNL_MEMORY_NONE) != dnnl_success ||
        dnnl_memory_create(&e->act_b, wn_dnnl_ref(k->kind == CONV_BWD_DATA ? &src : &dst),
                           c->engine, DNNL_MEMORY_NONE) != dnnl_success) {
        wn_fail("%s: oneDNN memory objects for activations", who);
        goto done;
    }

    /* Weights: the primitive's layout; a reorder from/to HWIO when it differs. */
    dnnl_query_t wq = k->kind == CONV_BWD_FILTER ? dnnl_query_diff_weights_md : dnnl_query_weights_md;
    wn_dnnl_md_ref wmd = dnnl_primitive_desc_query_md(pd, wq, 0);
    if (dnnl_memory_desc_equal(wmd, wn_dnnl_ref(&wei_user))) {
        if (dnnl_memory_create(&e->wei, wmd, c->engine, DNNL_MEMORY_NONE) != dnnl_success) {
            wn_fail("%s: oneDNN weight memory", who);
            goto done;
        }
    } else {
        dnnl_primitive_desc_t rpd = NULL;
        wn_dnnl_md_ref user = wn_dnnl_ref(&wei_user);
        wn_dnnl_md_ref from = k->kind == CONV_BWD_FILTER ? wmd : user;
        wn_dnnl_md_ref to = k->kind == CONV_BWD_FILTER ? user : wmd;
        if (dnnl_memory_create(&e->wei, wmd, c->engine, DNNL_MEMORY_ALLOCATE) != dnnl_success ||
            dnnl_memory_create(&e->wei_user, user, c->engine, DNNL_MEMORY_NONE) != dnnl_success ||
            dnnl_reorder_primitive_desc_create(&rpd, from, c->engine, to, c->engine, attr) !=
                dnnl_success) {
            wn_fail("%s: oneDNN weight reorder between HWIO and the convolution's layout", who);
            goto done;
        }
        st = dnnl_primitive_create(&e->reorder, rpd);
        if (st == dnnl_success && conv_scratch_make(c, rpd, &e->reorder_scratch, who) != WN_OK)
            st = dnnl_runtime_error;
        dnnl_primitive_desc_destroy(rpd);
        if (st != dnnl_success) {
            if (!wn_last_error()[0]) wn_fail("%s: oneDNN weight reorder primitive", who);
            goto done;
        }
    }
    if (k->bias && k->kind != CONV_BWD_DATA &&
        dnnl_memory_create(&e->bias, wn_dnnl_ref(&bias), c->engine, DNNL_MEMORY_NONE) != dnnl_success) {
        wn_fail("%s: oneDNN bias memory", who);
        goto done;
    }
    if (conv_scratch_make(c, pd, &e->scratch, who) != WN_OK) goto done;
    rc = WN_OK;
done:
    if (fwd_pd) dnnl_primitive_desc_destroy(fwd_pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (fwd_attr) dnnl_primitive_attr_destroy(fwd_attr);
    wn_dnnl_md *mds[] = {&src, &dst, &wei_user, &wei_any, &wei_hint, &bias};
    for (size_t i = 0; i < sizeof mds / sizeof mds[0]; i++) wn_dnnl_md_free(mds[i]);
    return rc;
}

/* The cached entry for (kind, shape), built on first use. */
static int conv_entry_get(wn_cpu_conv_cache *c, const conv_key *key, conv_entry **out,
                          const char *who) {
    for (int i = 0; i < c->n_items; i++)
        if (memcmp(&c->items[i].key, key, sizeof *key) == 0) {
            *out = &c->items[i];
            return WN_OK;
        }
    if (c->n_items == c->cap_items) {
        int cap = c->cap_items ? 2 * c->cap_items : 64;
        conv_entry *items = realloc(c->items, (size_t)cap * sizeof *items);
        if (!items) return wn_fail("%s: out of memory growing the convolution cache", who);
        c->items = items, c->cap_items = cap;
    }
    conv_entry *e = &c->items[c->n_items];
    memset(e, 0, sizeof *e);
    e->key = *key;
    if (conv_entry_build(c, e, who) != WN_OK) {
        conv_entry_destroy(e);
        return WN_ERR;
    }
    c->n_items++;
    *out = e;
    return WN_OK;
}

static int conv_run(wn_cpu_conv_cache *c, conv_entry *e, int nargs, dnnl_exec_arg_t *args,
                    const char *who) {
    if (e->scratch) {
        DNNL_TRY(dnnl_memory_set_data_handle(e->scratch, c->scratch.p));
        args[nargs].arg = DNNL_ARG_SCRATCHPAD, args[nargs].memory = e->scratch, nargs++;
    }
    DNNL_TRY(dnnl_primitive_execute(e->prim, c->stream, nargs, args));
    DNNL_TRY(dnnl_stream_wait(c->stream));
    return WN_OK;
}

static int conv_reorder_weights(wn_cpu_conv_cache *c, conv_entry *e, const float *user,
                                const char *who) {
    DNNL_TRY(dnnl_memory_set_data_handle(e->wei_user, (void *)user));
    dnnl_exec_arg_t args[3];
    int n = 0;
    int to_user = e->key.kind == CONV_BWD_FILTER;
    args[n].arg = DNNL_ARG_FROM, args[n].memory = to_user ? e->wei : e->wei_user, n++;
    args[n].arg = DNNL_ARG_TO, args[n].memory = to_user ? e->wei_user : e->wei, n++;
    if (e->reorder_scratch) {
        DNNL_TRY(dnnl_memory_set_data_handle(e->reorder_scratch, c->scratch.p));
        args[n].arg = DNNL_ARG_SCRATCHPAD, args[n].memory = e->reorder_scratch, n++;
    }
    DNNL_TRY(dnnl_primitive_execute(e->reorder, c->stream, n, args));
    DNNL_TRY(dnnl_stream_wait(c->stream));
    return WN_OK;
}

static wn_cpu_conv_cache *conv_cache(wn_backend *be) {
    return ((wn_cpu_ctx *)be->ctx)->conv;
}

/* The three calls for activations (and weights, but not weight gradients) of type
 * dt: float32 (the float entries below) or bf16 (kernels/conv/conv_bf16_cpu.c, on
 * CPUs where oneDNN has bf16 convolutions). A bf16 backward-data never accumulates
 * here: its caller adds the result in float and rounds once. */
int wn_cpu_conv2d_forward_dt(wn_backend *be, const wn_conv_desc *d, wn_dtype dt, const void *x,
                             const void *w, const float *bias, const wn_conv_epilogue *post,
                             void *y, const char *layer) {
    const char *who = layer ? layer : "conv2d_forward";
    wn_cpu_conv_cache *c = conv_cache(be);
    conv_key key = conv_key_make(CONV_FWD, bias != NULL, d, dt, post);
    conv_entry *e;
    if (conv_entry_get(c, &key, &e, who) != WN_OK) return WN_ERR;
    if (e->reorder) {
        if (conv_reorder_weights(c, e, w, who) != WN_OK) return WN_ERR;
    } else {
        DNNL_TRY(dnnl_memory_set_data_handle(e->wei, (void *)w));
    }
    DNNL_TRY(dnnl_memory_set_data_handle(e->act_a, (void *)x));
    DNNL_TRY(dnnl_memory_set_data_handle(e->act_b, y));
    dnnl_exec_arg_t args[7] = {{DNNL_ARG_SRC, e->act_a}, {DNNL_ARG_WEIGHTS, e->wei},
                               {DNNL_ARG_DST, e->act_b}};
    int n = 3;
    if (bias) {
        DNNL_TRY(dnnl_memory_set_data_handle(e->bias, (void *)bias));
        args[n].arg = DNNL_ARG_BIAS, args[n].memory = e->bias, n++;
    }
    /* post-op operands are numbered by their place in the post-op list */
    int po = 0;
    if (e->post_scale) {
        DNNL_TRY(dnnl_memory_set_data_handle(e->post_scale, (void *)post->scale));
        args[n].arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(po) | DNNL_ARG_SRC_1;
        args[n].memory = e->post_scale, n++, po++;
    }
    if (e->post_shift) {
        DNNL_TRY(dnnl_memory_set_data_handle(e->post_shift, (void *)post->shift));
        args[n].arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(po) | DNNL_ARG_SRC_1;
        args[n].memory = e->post_shift, n++, po++;
    }
    return conv_run(c, e, n, args, who);
}

/* acc += a, the accumulating backward-data's last pass */
WN_CPU_CLONES
static void add_into(size_t count, const float *a, float *acc) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) acc[i] += a[i];
}

int wn_cpu_conv2d_backward_data_dt(wn_backend *be, const wn_conv_desc *d, wn_dtype dt,
                                   const void *dy, const void *w, void *dx, int accumulate,
                                   const char *layer) {
    const char *who = layer ? layer : "conv2d_backward_data";
    wn_cpu_ctx *ctx = be->ctx;
    wn_cpu_conv_cache *c = ctx->conv;
    if (accumulate && dt != WN_DTYPE_F32)
        return wn_fail("%s: accumulating backward data is float32 only here", who);
    conv_key key = conv_key_make(CONV_BWD_DATA, 0, d, dt, NULL);
    conv_entry *e;
    if (conv_entry_get(c, &key, &e, who) != WN_OK) return WN_ERR;
    if (e->reorder) {
        if (conv_reorder_weights(c, e, w, who) != WN_OK) return WN_ERR;
    } else {
        DNNL_TRY(dnnl_memory_set_data_handle(e->wei, (void *)w));
    }
    /* oneDNN overwrites diff_src; to accumulate, compute into a side buffer and add. */
    size_t count = (size_t)d->win.n * d->win.h * d->win.w * d->win.c;
    void *out = dx;
    if (accumulate) {
        if (wn_cpu_buffer_reserve(&ctx->accum, count * sizeof(float), "gradient accumulation") != WN_OK)
            return wn_fail_context("%s: ", who);
        out = ctx->accum.p;
    }
    DNNL_TRY(dnnl_memory_set_data_handle(e->act_a, (void *)dy));
    DNNL_TRY(dnnl_memory_set_data_handle(e->act_b, out));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, e->act_a}, {DNNL_ARG_WEIGHTS, e->wei},
                               {DNNL_ARG_DIFF_SRC, e->act_b}};
    if (conv_run(c, e, 3, args, who) != WN_OK) return WN_ERR;
    if (accumulate) add_into(count, out, dx);
    return WN_OK;
}

/* Whether float32 ungrouped backward-filters run as im2col + sgemm
 * (kernels/conv/conv_gemm_cpu.c) instead of oneDNN's primitive. By measurement
 * (docs/PERF.md, "Backward-filter as GEMM" and the Zen 5 section): oneDNN 3.2's
 * backward-weights (jit[_1x1], no brgemm) took 20-40% longer than the GEMM form both
 * with AVX2 only (Zen 3) and with AVX-512 (Zen 5), so GEMM is the default on every CPU.
 * WN_CONV_BWD_FILTER=gemm or onednn chooses (comparisons, tests). */
static int filter_by_gemm(int *by_gemm, const char *who) {
    /* The variable does not change during a run: decided on the first call
     * (the executor's thread), not on each of a step's backward-filters. */
    enum { UNDECIDED = -1, ONEDNN, GEMM, INVALID };
    static int choice = UNDECIDED;
    const char *how = getenv("WN_CONV_BWD_FILTER");
    if (choice == UNDECIDED) {
        if (how && *how)
            choice = !strcmp(how, "gemm") ? GEMM : !strcmp(how, "onednn") ? ONEDNN : INVALID;
        else
            choice = GEMM;
    }
    if (choice == INVALID)
        return wn_fail("%s: WN_CONV_BWD_FILTER=%s: use gemm or onednn (unset: gemm)",
                       who, how ? how : "");
    *by_gemm = choice == GEMM;
    return WN_OK;
}

int wn_cpu_conv2d_backward_filter_dt(wn_backend *be, const wn_conv_desc *d, wn_dtype dt,
                                     const void *x, const void *dy, float *dw, float *db,
                                     const char *layer) {
    const char *who = layer ? layer : "conv2d_backward_filter";
    int by_gemm = 0;
    if (filter_by_gemm(&by_gemm, who) != WN_OK) return WN_ERR;
    if ((by_gemm || wn_cpu_conv_onednn_filter_broken(d)) && dt == WN_DTYPE_F32 &&
        d->groups <= 1)
        return wn_cpu_conv_gemm_backward_filter(be, d, x, dy, dw, db, who);
    wn_cpu_conv_cache *c = conv_cache(be);
    conv_key key = conv_key_make(CONV_BWD_FILTER, db != NULL, d, dt, NULL);
    conv_entry *e;
    if (conv_entry_get(c, &key, &e, who) != WN_OK) return WN_ERR;
    if (!e->reorder) DNNL_TRY(dnnl_memory_set_data_handle(e->wei, dw));
    DNNL_TRY(dnnl_memory_set_data_handle(e->act_a, (void *)x));
    DNNL_TRY(dnnl_memory_set_data_handle(e->act_b, (void *)dy));
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, e->act_a}, {DNNL_ARG_DIFF_DST, e->act_b},
                               {DNNL_ARG_DIFF_WEIGHTS, e->wei}};
    int n = 3;
    if (db) {
        DNNL_TRY(dnnl_memory_set_data_handle(e->bias, db));
        args[n].arg = DNNL_ARG_DIFF_BIAS, args[n].memory = e->bias, n++;
    }
    if (conv_run(c, e, n, args, who) != WN_OK) return WN_ERR;
    if (e->reorder) return conv_reorder_weights(c, e, dw, who);
    return WN_OK;
}

int wn_cpu_conv2d_forward(wn_backend *be, const wn_conv_desc *d, const float *x,
                          const float *w, const float *bias, float *y, const char *layer) {
    return wn_cpu_conv2d_forward_dt(be, d, WN_DTYPE_F32, x, w, bias, NULL, y, layer);
}

int wn_cpu_conv2d_forward_epilogue(wn_backend *be, const wn_conv_desc *d, const float *x,
                                   const float *w, const float *bias,
                                   const wn_conv_epilogue *e, float *y, const char *layer) {
    return wn_cpu_conv2d_forward_dt(be, d, WN_DTYPE_F32, x, w, bias, e, y, layer);
}

int wn_cpu_conv2d_backward_data(wn_backend *be, const wn_conv_desc *d, const float *dy,
                                const float *w, float *dx, int accumulate, const char *layer) {
    return wn_cpu_conv2d_backward_data_dt(be, d, WN_DTYPE_F32, dy, w, dx, accumulate, layer);
}

int wn_cpu_conv2d_backward_filter(wn_backend *be, const wn_conv_desc *d, const float *x,
                                  const float *dy, float *dw, float *db, const char *layer) {
    return wn_cpu_conv2d_backward_filter_dt(be, d, WN_DTYPE_F32, x, dy, dw, db, layer);
}

/* 1 when oneDNN runs bf16 convolutions on this CPU (AVX-512 with BF16 or AMX in
 * oneDNN 2.6; its reference code needs AVX-512 too): a small bf16 forward primitive
 * is created once and its answer kept. */
int wn_cpu_conv_bf16_native(wn_backend *be) {
    wn_cpu_conv_cache *c = conv_cache(be);
    if (c->bf16_native < 0) {
        wn_conv_desc d;
        memset(&d, 0, sizeof d);
        d.k = 16, d.groups = 1;
        c->bf16_native = 0;
        if (wn_window_init(&d.win, 1, 8, 8, 16, 3, 3, 1, 1, WN_PAD_SAME, "probe") == WN_OK) {
            conv_key key = conv_key_make(CONV_FWD, 0, &d, WN_DTYPE_BF16, NULL);
            conv_entry *e;
            char reason[1024];
            snprintf(reason, sizeof reason, "%s", wn_last_error());
            c->bf16_native = conv_entry_get(c, &key, &e, "bf16 probe") == WN_OK;
            wn_fail("%s", reason); /* the probe's failure is an answer, not an error */
        }
    }
    return c->bf16_native;
}
