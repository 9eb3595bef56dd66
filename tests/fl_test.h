/*
 * fl_test.h - shared helpers for fling's cmocka tests.
 *
 * FL_TEST(fn) registers a case with a watchdog: if the case runs longer than
 * fl_test_timeout_s() seconds (FLING_TEST_TIMEOUT env, default 60, tripled
 * under sanitizers) the process aborts with the case's name, so a hang is a
 * failure, never a stuck CI.
 */
#ifndef FL_TEST_H
#define FL_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fling/fling.h>

int fl_test_arm(void **state);
int fl_test_disarm(void **state);
unsigned fl_test_timeout_s(void);

#define FL_TEST(fn)                                                            \
    cmocka_unit_test_setup_teardown(fn, fl_test_arm, fl_test_disarm)

/* Assert an fl_err code, printing both names on failure. */
#define assert_fl(expected, actual)                                            \
    do {                                                                       \
        int fl__e = (expected), fl__a = (actual);                              \
        if (fl__e != fl__a)                                                    \
            fail_msg("expected %s (%d), got %s (%d)", fl_err_name(fl__e),      \
                     fl__e, fl_err_name(fl__a), fl__a);                        \
    } while (0)

#define assert_fl_ok(actual) assert_fl(FL_OK, (actual))

/* A one-shot latch / counter for synchronising on events in tests. */
typedef struct fl_test_latch fl_test_latch_t;
fl_test_latch_t *fl_test_latch_alloc(uint64_t count);
void fl_test_latch_free(fl_test_latch_t *l);
/* Decrements the count (any thread). */
void fl_test_latch_count_down(fl_test_latch_t *l);
/* Waits until the count reaches 0 or timeout_ms passes; returns 0 if
 * reached, -1 on timeout. */
int fl_test_latch_wait(fl_test_latch_t *l, int64_t timeout_ms);
uint64_t fl_test_latch_count(fl_test_latch_t *l);

/* A system with `workers` workers (0 = default), failing the test on error. */
fl_system_t *fl_test_system(unsigned workers);

#endif
