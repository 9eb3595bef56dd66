/* alloc.c - the allocator seam and the OOM-injection hook. */
#include "common/internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void *(*fn_malloc)(size_t) = malloc;
static void *(*fn_calloc)(size_t, size_t) = calloc;
static void *(*fn_realloc)(void *, size_t) = realloc;
static void (*fn_free)(void *) = free;
static _Atomic bool used;

/* Countdown to an injected failure: 0 = disarmed. */
static _Atomic uint64_t fail_countdown;
static _Atomic bool fail_sticky;

int fl_replace_allocator(void *(*malloc_fn)(size_t),
                         void *(*calloc_fn)(size_t, size_t),
                         void *(*realloc_fn)(void *, size_t),
                         void (*free_fn)(void *))
{
    if (!malloc_fn || !calloc_fn || !realloc_fn || !free_fn)
        return FL_EINVAL;
    /* Relaxed: a misuse check, not synchronisation (see mark_used). */
    if (atomic_load_explicit(&used, memory_order_relaxed))
        return FL_ESTATE;
    fn_malloc = malloc_fn;
    fn_calloc = calloc_fn;
    fn_realloc = realloc_fn;
    fn_free = free_fn;
    return FL_OK;
}

void fl__alloc_fail_after(uint64_t n, bool sticky)
{
    /* seq_cst (the default it always had) pairs with the loads in
     * inject_failure: sticky is set before the countdown arms. */
    atomic_store_explicit(&fail_sticky, sticky, memory_order_seq_cst);
    atomic_store_explicit(&fail_countdown, n, memory_order_seq_cst);
}

static bool inject_failure(void)
{
    /* Relaxed: a first look; the CAS below decides. */
    uint64_t c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    while (c != 0) {
        /* Pairs with the seq_cst stores in fl__alloc_fail_after. */
        if (c == 1 && atomic_load_explicit(&fail_sticky, memory_order_seq_cst))
            return true;
        if (atomic_compare_exchange_weak_explicit(&fail_countdown, &c, c - 1,
                                                  memory_order_seq_cst,
                                                  memory_order_seq_cst))
            return c == 1;
    }
    return false;
}

static inline void mark_used(void)
{
    /* Relaxed: a flag for the misuse check in fl_replace_allocator, read
     * first so the hot path does not write a shared line. */
    if (!atomic_load_explicit(&used, memory_order_relaxed))
        atomic_store_explicit(&used, true, memory_order_relaxed);
}

void *fl__malloc(size_t n)
{
    mark_used();
    if (fl__unlikely(inject_failure()))
        return NULL;
    return fn_malloc(n);
}

void *fl__calloc(size_t n, size_t size)
{
    mark_used();
    if (fl__unlikely(inject_failure()))
        return NULL;
    return fn_calloc(n, size);
}

void *fl__realloc(void *p, size_t n)
{
    mark_used();
    if (fl__unlikely(inject_failure()))
        return NULL;
    return fn_realloc(p, n);
}

void fl__free(void *p)
{
    if (p != NULL)
        fn_free(p);
}

char *fl__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = fl__malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

void *fl__aligned_alloc(size_t align, size_t n)
{
    /* Over-allocate through the seam and keep the original pointer just
     * before the aligned block. align is a power of two >= sizeof(void *). */
    void *raw = fl__malloc(n + align + sizeof(void *));
    if (raw == NULL)
        return NULL;
    uintptr_t p =
        ((uintptr_t)raw + sizeof(void *) + align - 1) & ~(uintptr_t)(align - 1);
    ((void **)p)[-1] = raw;
    return (void *)p;
}

void fl__aligned_free(void *p)
{
    if (p != NULL)
        fl__free(((void **)p)[-1]);
}

/* Chunks of this many bytes or more come from mmap with the default
 * allocator: page-aligned, so that no padding page is ever touched. */
void *fl__pages_alloc(size_t n, void **raw)
{
    mark_used();
    *raw = NULL;
    if (fl__unlikely(inject_failure()))
        return NULL;
    if (fn_calloc == calloc) {
        void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return NULL;
        *raw = p;
        return p;
    }
    /* A replaced allocator: over-allocate and align by hand. */
    void *r = fn_calloc(1, n + FL_CACHE_LINE);
    if (r == NULL)
        return NULL;
    *raw = r;
    return (void *)(((uintptr_t)r + FL_CACHE_LINE - 1) &
                    ~(uintptr_t)(FL_CACHE_LINE - 1));
}

void fl__pages_free(void *raw, size_t n)
{
    if (raw == NULL)
        return;
    if (fn_calloc == calloc)
        munmap(raw, n);
    else
        fn_free(raw);
}
