/*
 * future_combine.c - the combinators of futures, built on the core of
 * future.c through its public API and fl__future_on_complete_ex /
 * fl__future_forward (future.h): then, compose, all.
 */
#include "actor/future.h"
#include "common/internal.h"

/* ---- then and compose
 * --------------------------------------------------------- */

/* A derived future waiting on its source: exactly one of then/compose. */
typedef struct chain_ctx {
    fl_then_cb then;
    fl_compose_cb compose;
    void *arg;
    fl_future_t *dst;
} chain_ctx_t;

/* The source was freed pending: the derived future stays pending. */
static void drop_chain(void *p)
{
    chain_ctx_t *c = p;
    fl_future_release(c->dst);
    fl__free(c);
}

/* Derive a future from f; on(f, ctx) settles ctx->dst when f completes. */
static fl_future_t *chain(fl_future_t *f, fl_future_cb on, fl_then_cb then,
                          fl_compose_cb compose, void *arg)
{
    if (f == NULL || (then == NULL && compose == NULL))
        return NULL;
    fl_future_t *dst = fl_future_alloc();
    chain_ctx_t *c = fl__malloc(sizeof *c);
    if (dst == NULL || c == NULL)
        goto fail;
    c->then = then;
    c->compose = compose;
    c->arg = arg;
    c->dst = fl_future_retain(dst);
    if (fl__future_on_complete_ex(f, on, drop_chain, c) != FL_OK) {
        fl_future_release(dst);
        goto fail;
    }
    return dst;
fail:
    fl__free(c);
    fl_future_release(dst);
    return NULL;
}

static void on_then(fl_future_t *src, void *p)
{
    chain_ctx_t *c = p;
    if (fl_future_error(src) != FL_OK) {
        fl_future_fail(c->dst, fl_future_error(src), "%s",
                       fl_future_message(src));
    } else {
        void *out = NULL;
        fl_free_cb out_free = NULL;
        int rc = c->then(c->arg, fl_future_value(src), &out, &out_free);
        if (rc == FL_OK)
            fl_future_complete(c->dst, out, out_free);
        else
            fl_future_fail(c->dst, rc, NULL);
    }
    fl_future_release(c->dst);
    fl__free(c);
}

fl_future_t *fl_future_then(fl_future_t *f, fl_then_cb fn, void *arg)
{
    return fn != NULL ? chain(f, on_then, fn, NULL, arg) : NULL;
}

static void on_inner(fl_future_t *inner, void *p)
{
    fl_future_t *dst = p;
    fl__future_forward(inner, dst);
    fl_future_release(dst);
}

static void drop_inner(void *p)
{
    fl_future_release((fl_future_t *)p);
}

static void on_compose(fl_future_t *src, void *p)
{
    chain_ctx_t *c = p;
    fl_future_t *dst = c->dst;
    if (fl_future_error(src) != FL_OK) {
        fl_future_fail(dst, fl_future_error(src), "%s", fl_future_message(src));
        fl_future_release(dst);
    } else {
        fl_future_t *inner = c->compose(c->arg, fl_future_value(src));
        if (inner == NULL) {
            fl_future_fail(dst, FL_ENOMEM, "compose callback returned NULL");
            fl_future_release(dst);
        } else if (fl__future_on_complete_ex(inner, on_inner, drop_inner,
                                             dst) != FL_OK) {
            fl_future_fail(dst, FL_ENOMEM, NULL);
            fl_future_release(dst);
            fl_future_release(inner);
        } else {
            /* Whoever can complete inner holds it; if nobody does, it is
             * freed pending and drop_inner lets go of dst. */
            fl_future_release(inner);
        }
    }
    fl__free(c);
}

fl_future_t *fl_future_compose(fl_future_t *f, fl_compose_cb fn, void *arg)
{
    return fn != NULL ? chain(f, on_compose, NULL, fn, arg) : NULL;
}

/* ---- all ----------------------------------------------------------------- */

/* The counts are decremented with acq_rel by every input's callback: the
 * one that takes a count to zero sees what the others did before (the
 * last reference frees c; the last success completes dst). */
typedef struct all_ctx {
    _Atomic size_t remaining;
    _Atomic size_t refs; /* one per input callback still to run */
    fl_future_t *dst;
} all_ctx_t;

static void drop_all(void *p)
{
    all_ctx_t *c = p;
    /* acq_rel: see all_ctx_t. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        fl_future_release(c->dst);
        fl__free(c);
    }
}

static void on_all(fl_future_t *src, void *p)
{
    all_ctx_t *c = p;
    /* The decrements are acq_rel: see all_ctx_t. */
    if (fl_future_error(src) != FL_OK)
        fl_future_fail(c->dst, fl_future_error(src), "%s",
                       fl_future_message(src));
    else if (atomic_fetch_sub_explicit(&c->remaining, 1,
                                       memory_order_acq_rel) == 1)
        fl_future_complete(c->dst, NULL, NULL);
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        fl_future_release(c->dst);
        fl__free(c);
    }
}

fl_future_t *fl_future_all(fl_future_t *const *fs, size_t n)
{
    if (fs == NULL && n > 0)
        return NULL;
    fl_future_t *dst = fl_future_alloc();
    if (dst == NULL)
        return NULL;
    if (n == 0) {
        fl_future_complete(dst, NULL, NULL);
        return dst;
    }
    all_ctx_t *c = fl__malloc(sizeof *c);
    if (c == NULL) {
        fl_future_release(dst);
        return NULL;
    }
    /* Not atomic operations: c is not shared yet. */
    atomic_init(&c->remaining, n);
    /* +1 held by this function until every callback is registered. */
    atomic_init(&c->refs, n + 1);
    c->dst = fl_future_retain(dst);
    for (size_t i = 0; i < n; i++) {
        if (fs[i] == NULL ||
            fl__future_on_complete_ex(fs[i], on_all, drop_all, c) != FL_OK) {
            fl_future_fail(dst, fs[i] == NULL ? FL_EINVAL : FL_ENOMEM,
                           "fl_future_all: input %zu could not be watched", i);
            /* Inputs i..n-1 never registered: they drop no refs. */
            atomic_fetch_sub_explicit(&c->refs, n - i, memory_order_acq_rel);
            if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) ==
                1) {
                fl_future_release(c->dst);
                fl__free(c);
            }
            return dst;
        }
    }
    /* acq_rel: see all_ctx_t. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1) {
        fl_future_release(c->dst);
        fl__free(c);
    }
    return dst;
}
