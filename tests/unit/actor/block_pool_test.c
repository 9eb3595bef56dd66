/*
 * block_pool_test.c - the message pool serving other short-lived blocks
 * (fl__block_alloc/fl__block_free, common/pool.h; futures and outbound
 * frames use it): a freed block of a size class comes back to the next
 * allocation of that class on the same thread while a system lives; blocks
 * over 1 KiB, and every block once no system is left, go straight to the
 * allocator; a block or message freed on another thread is reused, not
 * lost.
 */
#include "fl_test.h"

#include "common/internal.h"
#include "common/pool.h"

#include <pthread.h>
#include <string.h>

/* Each size class's largest size, one past it, and the largest pooled. */
static const size_t sizes[] = {1, 64, 65, 128, 129, 256, 257, 512, 513, 1024};

/* fl__block_alloc(n) while every allocation is made to fail: a pooled
 * block, or NULL when the allocator would be needed. */
static void *alloc_failing(size_t n)
{
    fl__alloc_fail_after(1, true);
    void *p = fl__block_alloc(n);
    fl__alloc_fail_after(0, false);
    return p;
}

/* While a system lives, the block just freed is the next one handed out
 * for any size of its class, without the allocator (it succeeds while
 * every allocation is made to fail), and the whole size is usable. */
static void test_freed_block_comes_back(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *p = fl__block_alloc(sizes[i]);
        assert_non_null(p);
        memset(p, 0xa5, sizes[i]);
        fl__block_free(p, sizes[i]);
        uint8_t *q = alloc_failing(sizes[i]);
        assert_ptr_equal(q, p);
        fl__block_free(q, sizes[i]);
    }
    /* 1 and 64 share a class: the block of one serves the other. */
    void *p = fl__block_alloc(64);
    assert_non_null(p);
    fl__block_free(p, 64);
    void *q = alloc_failing(1);
    assert_ptr_equal(q, p);
    fl__block_free(q, 1);
    fl_system_free(sys);
}

/* A block over 1 KiB comes from the allocator: it fails while every
 * allocation is made to, and succeeds after. */
static void test_over_1k_is_direct(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    void *big = fl__block_alloc(1025);
    assert_non_null(big);
    fl__block_free(big, 1025);
    big = alloc_failing(1025);
    assert_null(big);
    big = fl__block_alloc(1025);
    assert_non_null(big);
    memset(big, 0x5a, 1025);
    fl__block_free(big, 1025);
    fl_system_free(sys);
}

/* With no system left the pool is not trimmed again, so a block goes back
 * to the allocator: the next allocation of its class needs the allocator
 * and fails while it is made to. */
static void test_no_system_frees_directly(void **state)
{
    (void)state;
    /* The last system's free trims what this thread cached. */
    fl_system_free(fl_test_system(1));
    void *p = fl__block_alloc(300);
    assert_non_null(p);
    fl__block_free(p, 300);
    void *q = alloc_failing(300);
    assert_null(q);
}

typedef struct handoff {
    void *blocks[300];
    size_t n;
} handoff_t;

static void *free_them(void *arg)
{
    handoff_t *h = arg;
    for (size_t i = 0; i < h->n; i++)
        fl__block_free(h->blocks[i], 100);
    /* Exiting hands this thread's cache to the shared pool. */
    return NULL;
}

/* Blocks made on one thread and freed on another reach the shared pool in
 * a batch when that thread exits, and serve this thread after its own
 * cache runs dry: all of them come back, none from the allocator. */
static void test_freed_elsewhere_reused(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    handoff_t h = {.n = sizeof h.blocks / sizeof h.blocks[0]};
    for (size_t i = 0; i < h.n; i++) {
        h.blocks[i] = fl__block_alloc(100);
        assert_non_null(h.blocks[i]);
    }
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_them, &h), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    /* This thread's own cache of the class is empty (all 300 are out), so
     * what follows comes from the batch the other thread left. */
    fl__alloc_fail_after(1, true);
    void *back[sizeof h.blocks / sizeof h.blocks[0]];
    size_t got = 0;
    for (; got < h.n; got++) {
        back[got] = fl__block_alloc(100);
        if (back[got] == NULL)
            break;
    }
    fl__alloc_fail_after(0, false);
    assert_int_equal(got, h.n);
    for (size_t i = 0; i < got; i++) {
        bool known = false;
        for (size_t j = 0; j < h.n && !known; j++)
            known = back[i] == h.blocks[j];
        assert_true(known);
        fl__block_free(back[i], 100);
    }
    fl_system_free(sys);
}

typedef struct msg_handoff {
    fl_msg_t *msgs[300];
    size_t n;
} msg_handoff_t;

static void *free_msgs(void *arg)
{
    msg_handoff_t *h = arg;
    for (size_t i = 0; i < h->n; i++)
        fl_msg_free(h->msgs[i]);
    /* Exiting hands this thread's cache to the shared pool. */
    return NULL;
}

/* The same for messages, whose free takes its own path into the pool
 * (actor/msg.c): a thread that only ever frees messages still hands them
 * to the shared pool when it exits. */
static void test_messages_freed_elsewhere_reused(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    msg_handoff_t h = {.n = sizeof h.msgs / sizeof h.msgs[0]};
    for (size_t i = 0; i < h.n; i++) {
        h.msgs[i] = fl_msg_alloc(1, 8);
        assert_non_null(h.msgs[i]);
    }
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, free_msgs, &h), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    fl__alloc_fail_after(1, true);
    fl_msg_t *back[sizeof h.msgs / sizeof h.msgs[0]];
    size_t got = 0;
    for (; got < h.n; got++) {
        back[got] = fl_msg_alloc(1, 8);
        if (back[got] == NULL)
            break;
    }
    fl__alloc_fail_after(0, false);
    assert_int_equal(got, h.n);
    for (size_t i = 0; i < got; i++) {
        bool known = false;
        for (size_t j = 0; j < h.n && !known; j++)
            known = back[i] == h.msgs[j];
        assert_true(known);
        fl_msg_free(back[i]);
    }
    fl_system_free(sys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_freed_block_comes_back),
        FL_TEST(test_over_1k_is_direct),
        FL_TEST(test_no_system_frees_directly),
        FL_TEST(test_freed_elsewhere_reused),
        FL_TEST(test_messages_freed_elsewhere_reused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
