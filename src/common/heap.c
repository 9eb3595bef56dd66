/*
 * heap.c - the intrusive binary min-heap of deadlines (heap.h): sifting,
 * and growing and shrinking its array.
 */
#include "common/heap.h"

/* The array's smallest capacity, and it shrinks by half once it is a
 * quarter full. */
#define HEAP_MIN_CAP 16u

static inline bool before(const fl__hnode_t *x, const fl__hnode_t *y)
{
    return x->key < y->key || (x->key == y->key && x->seq < y->seq);
}

static inline void place(fl__heap_t *h, size_t i, fl__hnode_t *n)
{
    h->a[i] = n;
    n->idx = i;
}

/* Move n up from hole i to its place. */
static void sift_up(fl__heap_t *h, size_t i, fl__hnode_t *n)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(n, h->a[p]))
            break;
        place(h, i, h->a[p]);
        i = p;
    }
    place(h, i, n);
}

/* Move n down from hole i to its place. */
static void sift_down(fl__heap_t *h, size_t i, fl__hnode_t *n)
{
    for (;;) {
        size_t l = 2 * i + 1, m = l;
        if (l >= h->len)
            break;
        if (l + 1 < h->len && before(h->a[l + 1], h->a[l]))
            m = l + 1;
        if (!before(h->a[m], n))
            break;
        place(h, i, h->a[m]);
        i = m;
    }
    place(h, i, n);
}

/* Put n at hole i, up or down as its key says. */
static void settle(fl__heap_t *h, size_t i, fl__hnode_t *n)
{
    if (i > 0 && before(n, h->a[(i - 1) / 2]))
        sift_up(h, i, n);
    else
        sift_down(h, i, n);
}

int fl__heap_push(fl__heap_t *h, fl__hnode_t *n)
{
    if (h->len == h->cap) {
        size_t cap = h->cap != 0 ? h->cap * 2 : HEAP_MIN_CAP;
        fl__hnode_t **a = fl__realloc(h->a, cap * sizeof *a);
        if (a == NULL)
            return FL_ENOMEM;
        h->a = a;
        h->cap = cap;
    }
    sift_up(h, h->len++, n);
    return FL_OK;
}

void fl__heap_remove(fl__heap_t *h, fl__hnode_t *n)
{
    size_t i = n->idx;
    n->idx = FL__HEAP_NONE;
    fl__hnode_t *last = h->a[--h->len];
    if (last != n)
        settle(h, i, last);
    if (h->cap > HEAP_MIN_CAP && h->len < h->cap / 4) {
        /* Smaller, or as it was if realloc cannot: both are fine. */
        fl__hnode_t **a = fl__realloc(h->a, h->cap / 2 * sizeof *a);
        if (a != NULL) {
            h->a = a;
            h->cap /= 2;
        }
    }
}

void fl__heap_rekey(fl__heap_t *h, fl__hnode_t *n, uint64_t key)
{
    n->key = key;
    settle(h, n->idx, n);
}

void fl__heap_fini(fl__heap_t *h)
{
    fl__free(h->a);
    h->a = NULL;
    h->len = h->cap = 0;
}
