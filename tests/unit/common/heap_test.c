/*
 * heap_test.c - the intrusive deadline heap (src/common/heap.h) against a
 * plain array: random pushes, removals from anywhere and re-keys keep the
 * smallest (key, seq) on top, and draining gives every node in order.
 */
#include "fl_test.h"

#include "common/heap.h"

#include <stdlib.h>

#define NODES 2000u

static fl__hnode_t nodes[NODES];

/* The smallest queued node by brute force, or NULL. */
static fl__hnode_t *brute_min(void)
{
    fl__hnode_t *m = NULL;
    for (size_t i = 0; i < NODES; i++) {
        fl__hnode_t *n = &nodes[i];
        if (fl__hnode_queued(n) && (m == NULL || n->key < m->key ||
                                    (n->key == m->key && n->seq < m->seq)))
            m = n;
    }
    return m;
}

static void test_random_operations_keep_the_minimum_on_top(void **state)
{
    (void)state;
    fl__heap_t h = FL__HEAP_INIT;
    srand(1234);
    for (size_t i = 0; i < NODES; i++)
        nodes[i].idx = FL__HEAP_NONE;
    for (unsigned step = 0; step < 20000; step++) {
        fl__hnode_t *n = &nodes[(size_t)rand() % NODES];
        int op = rand() % 3;
        if (!fl__hnode_queued(n)) {
            n->key = (uint64_t)(rand() % 500); /* many equal keys */
            n->seq = step;
            assert_fl_ok(fl__heap_push(&h, n));
        } else if (op == 0) {
            fl__heap_rekey(&h, n, (uint64_t)(rand() % 500));
        } else {
            fl__heap_remove(&h, n);
            assert_false(fl__hnode_queued(n));
        }
        assert_ptr_equal(brute_min(), fl__heap_top(&h));
    }
    uint64_t key = 0, seq = 0;
    size_t left = h.len;
    for (fl__hnode_t *t; (t = fl__heap_top(&h)) != NULL; left--) {
        assert_true(t->key > key || (t->key == key && t->seq >= seq));
        key = t->key;
        seq = t->seq;
        fl__heap_remove(&h, t);
    }
    assert_int_equal(0, left);
    assert_null(brute_min());
    fl__heap_fini(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_random_operations_keep_the_minimum_on_top),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
