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

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include <fling/fling.h>

#include "fl_cond.h"

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

/*
 * ---- waits, times and RPC calls that fail the test ----------------------
 *
 * Proto-independent (requests and descriptors are the caller's), so every
 * RPC test can use them whatever its .proto. Each runs on the calling test
 * thread and blocks at most FL_TEST_WAIT_MS per wait.
 */

/* How long a test waits for anything that should happen, in ms. */
#define FL_TEST_WAIT_MS 20000

/* Far delays and timeouts (docs/guide.md, "Timers"): the smallest one in ms
 * whose nanoseconds do not fit 64 bits (added to the clock unsaturated, the
 * deadline would wrap to about 0.45 ms from now), and the largest. */
#define FL_TEST_FAR_MS                                                         \
    {                                                                          \
        (int64_t)18446744073710, INT64_MAX                                     \
    }

/* Waits up to FL_TEST_WAIT_MS for l to reach 0; fails the test if not. */
void fl_test_latch_await(fl_test_latch_t *l);

/* A message of type `type` carrying the int v; fails the test when out of
 * memory. */
fl_msg_t *fl_test_msg_int(uint32_t type, int v);

/* Milliseconds since t0_ns (an fl_clock_now_ns() reading). */
uint64_t fl_test_ms_since(uint64_t t0_ns);

/* Fails the test unless lo <= elapsed_ms < hi, naming what was measured. */
void fl_test_assert_elapsed(const char *what, uint64_t elapsed_ms, uint64_t lo,
                            uint64_t hi);

/* A fencing token whose 16 bytes are all b. */
fl_fencing_token_t fl_test_token(uint8_t b);

/* Waits up to FL_TEST_WAIT_MS for f and returns its code; fails the test if
 * f does not complete. Does not release f. */
int fl_test_future_code(fl_future_t *f);

/* Waits for f as fl_test_future_code() and fails the test unless f
 * succeeded, with "<what>: <code name> (<message>)"; what is a printf
 * format. Does not release f. */
void fl_test_future_ok(fl_future_t *f, const char *what, ...)
    __attribute__((format(printf, 2, 3)));

/* Connects with fl_rpc_connect (tok may be NULL); fails the test unless the
 * connect succeeds. The caller owns the gateway (fl_rpc_gateway_free). */
fl_rpc_gateway_t *fl_test_connect(fl_rpc_service_t *svc, const char *address,
                                  const ProtobufCServiceDescriptor *d,
                                  const fl_fencing_token_t *tok);

/* Connects (unfenced) expecting a failure: returns the connect future's code
 * and copies its message into msg (if not NULL). A gateway, if the connect
 * succeeded after all, is freed. */
int fl_test_connect_error(fl_rpc_service_t *svc, const char *address,
                          const ProtobufCServiceDescriptor *d, char *msg,
                          size_t msg_size);

/* fl_rpc_call (timeout_ms 0: the gateway's) that must be accepted; returns
 * the future, which the caller releases. */
fl_future_t *fl_test_call(fl_rpc_gateway_t *gw, unsigned method,
                          const ProtobufCMessage *req, int64_t timeout_ms);

/* Makes a call and returns its code, copying its message into msg (if not
 * NULL); the reply, if any, is dropped. */
int fl_test_call_code(fl_rpc_gateway_t *gw, unsigned method,
                      const ProtobufCMessage *req, int64_t timeout_ms,
                      char *msg, size_t msg_size);

/* fl_rpc_call_sync's code. A success must give a reply (freed here) and
 * leave fl_rpc_last_message() empty; a failure must set *reply to NULL and
 * say why there. fl_rpc_last_error() must be the code either way. */
int fl_test_call_sync_code(fl_rpc_gateway_t *gw, unsigned method,
                           const ProtobufCMessage *req, int64_t timeout_ms);

/* Closes ep, waits for its termination future (which must succeed), frees
 * the handle. */
void fl_test_endpoint_end(fl_rpc_endpoint_t *ep);

/* Shuts svc down (which must succeed) and frees it. */
void fl_test_service_end(fl_rpc_service_t *svc);

#endif
