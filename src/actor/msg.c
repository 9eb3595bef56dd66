/*
 * msg.c - message allocation and the public message accessors.
 *
 * Messages up to 1 KiB are blocks of the block pool (common/pool.h): a
 * message is usually allocated on one worker and freed on another, which
 * the pool's per-thread caches and batch hand-over are made for. Larger
 * messages use the allocator directly.
 */
#include "actor/msg.h"
#include "common/pool.h"

#include <string.h>

#define FL__MAX_PAYLOAD ((size_t)1 << 30)

/* A message is a pool block: its mailbox link is the pool's link word. */
_Static_assert(offsetof(fl_msg_t, node) == 0 &&
                   sizeof(fl__qnode_t) == sizeof(fl__pool_node_t),
               "a message starts with the pool's link word");

static inline fl_msg_t *mem_alloc(size_t total, uint16_t *cls)
{
    unsigned c = fl__pool_class_of(total);
    if (c == FL__POOL_NCLASS) {
        *cls = FL__POOL_DIRECT;
        return fl__malloc(total);
    }
    *cls = (uint16_t)c;
    return fl__pool_class_alloc(c);
}

/* Payloads of up to SMALL0 and SMALL1 bytes make blocks of class 0 and 1
 * (never from the allocator), in which, rounded up to SMALL0 or SMALL1
 * bytes, they still fit: zero_payload and fl__msg_alloc_kind count on
 * both. SMALL1 holds a local RPC invocation of a small request (a 48-byte
 * header and a flat struct of up to 32 bytes). */
#define SMALL0 16u
#define SMALL1 80u
_Static_assert(sizeof(fl_msg_t) % 16 == 0 && sizeof(fl_msg_t) + SMALL0 == 64 &&
                   sizeof(fl_msg_t) + SMALL1 == 128,
               "the small classes of fl__msg_alloc_kind");

/* Zero m's payload of size bytes. Small payloads take stores of a size
 * known at compile time, which the compiler makes a store or three,
 * instead of a call to memset (5% of the instructions of a tell of 8
 * bytes); they may zero a few bytes past the payload, inside the block. */
static inline void zero_payload(fl_msg_t *m, size_t size)
{
    if (size == 0)
        return;
    if (size <= SMALL0)
        memset(m + 1, 0, SMALL0);
    else if (size <= SMALL1)
        memset(m + 1, 0, SMALL1);
    else
        memset(m + 1, 0, size);
}

void fl__msg_release_slow(fl_msg_t *m)
{
    if (m->cls == FL__POOL_DIRECT)
        fl__free(m);
    else
        fl__pool_free_slow(m, m->cls);
}

/* Fill in a new message's header and zero its payload. */
static inline fl_msg_t *init(fl_msg_t *m, uint16_t cls, uint16_t kind,
                             uint32_t type, size_t size)
{
    /* A copy of a zero template, not memset, which gcc's generic tuning
     * makes a `rep stos` for a header of this size: slower to start than
     * the stores it replaces. */
    static const fl_msg_t none;
    *m = none;
    zero_payload(m, size);
    m->cls = cls;
    m->kind = kind;
    m->type = type;
    m->size = (uint32_t)size;
    return m;
}

static __attribute__((noinline)) fl_msg_t *
alloc_slow(uint16_t kind, uint32_t type, size_t size)
{
    if (size > FL__MAX_PAYLOAD)
        return NULL;
    uint16_t cls;
    fl_msg_t *m = mem_alloc(sizeof(fl_msg_t) + size, &cls);
    return m != NULL ? init(m, cls, kind, type, size) : NULL;
}

fl_msg_t *fl__msg_alloc_kind(uint16_t kind, uint32_t type, size_t size)
{
    /* The common case, a small message from the thread's cache, without
     * a call: the slow path is a tail call, and a payload of up to SMALL1
     * bytes is zeroed by stores of a constant size, not memset, so this
     * saves no registers (19 instructions of a tell of 8 bytes did).
     * Larger messages take one call more than that. */
    fl_msg_t *m;
    if (fl__likely(size <= SMALL0)) {
        if (fl__likely((m = fl__pool_class_take(0)) != NULL))
            return init(m, 0, kind, type, size);
    } else if (size <= SMALL1) {
        if (fl__likely((m = fl__pool_class_take(1)) != NULL))
            return init(m, 1, kind, type, size);
    }
    return alloc_slow(kind, type, size);
}

void fl__msg_settle_run(fl_msg_t *m, int err, const char *why)
{
    fl__settle_fn fn;
    memcpy(&fn, fl__msg_payload(m), sizeof fn);
    fn(m, err, why);
}

fl_msg_t *fl__msg_clone(const fl_msg_t *src)
{
    fl_msg_t *m = fl__msg_alloc_kind(src->kind, src->type, src->size);
    if (m == NULL)
        return NULL;
    m->target = src->target;
    m->sender = src->sender;
    if (src->size != 0)
        memcpy(m + 1, src + 1, src->size);
    return m;
}

/* ---- public ----------------------------------------------------------------
 */

fl_msg_t *fl_msg_alloc(uint32_t type, size_t size)
{
    return fl__msg_alloc_kind(FL__MSG_USER, type, size);
}

void fl_msg_free(fl_msg_t *msg)
{
    if (msg == NULL)
        return;
    if (msg->kind == FL__MSG_EXEC) {
        /* An internal exec message that was never delivered. */
        fl__exec_t *e = fl__msg_payload(msg);
        if (e->arg_free != NULL)
            e->arg_free(e->arg);
        e->arg_free = NULL;
    }
    fl__msg_settle(msg, FL_ENOREPLY, NULL);
    if (msg->reply != NULL) {
        /* A message still carrying an ask (the caller built it but did not
         * send it, or kept a copy): nobody will answer. */
        fl_future_fail(msg->reply, FL_ENOREPLY, NULL);
        fl_future_release(msg->reply);
        msg->reply = NULL;
    }
    fl__msg_release_mem(msg);
}

void fl_msg_free_cb(void *msg)
{
    fl_msg_free(msg);
}

void *fl_msg_data(fl_msg_t *msg)
{
    return msg ? fl__msg_payload(msg) : NULL;
}

size_t fl_msg_size(const fl_msg_t *msg)
{
    return msg ? msg->size : 0;
}

uint32_t fl_msg_type(const fl_msg_t *msg)
{
    return msg ? msg->type : 0;
}

fl_actor_ref_t fl_msg_sender(const fl_msg_t *msg)
{
    fl_actor_ref_t r = {msg ? msg->sender : 0};
    return r;
}

bool fl_msg_is_ask(const fl_msg_t *msg)
{
    return msg != NULL && msg->reply != NULL;
}
