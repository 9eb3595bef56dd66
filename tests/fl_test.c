/* fl_test.c - shared helpers for fling's cmocka tests (see fl_test.h). */
#include "fl_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

unsigned fl_test_timeout_s(void)
{
    const char *env = getenv("FLING_TEST_TIMEOUT");
    unsigned s = env ? (unsigned)strtoul(env, NULL, 10) : 60;
    if (s == 0)
        s = 60;
#ifdef FL_SANITIZE
    s *= 3;
#endif
    return s;
}

static void on_alarm(int sig)
{
    static const char msg[] = "fl_test: case exceeded its time limit\n";
    (void)sig;
    (void)!write(2, msg, sizeof msg - 1);
    abort();
}

int fl_test_arm(void **state)
{
    (void)state;
    signal(SIGALRM, on_alarm);
    alarm(fl_test_timeout_s());
    return 0;
}

int fl_test_disarm(void **state)
{
    (void)state;
    alarm(0);
    return 0;
}

struct fl_test_latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t count;
};

fl_test_latch_t *fl_test_latch_alloc(uint64_t count)
{
    fl_test_latch_t *l = calloc(1, sizeof *l);
    assert_non_null(l);
    pthread_mutex_init(&l->mu, NULL);
    fl_test_cond_init(&l->cv);
    l->count = count;
    return l;
}

void fl_test_latch_free(fl_test_latch_t *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l);
}

void fl_test_latch_count_down(fl_test_latch_t *l)
{
    pthread_mutex_lock(&l->mu);
    if (l->count > 0 && --l->count == 0)
        pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

uint64_t fl_test_latch_count(fl_test_latch_t *l)
{
    pthread_mutex_lock(&l->mu);
    uint64_t c = l->count;
    pthread_mutex_unlock(&l->mu);
    return c;
}

int fl_test_latch_wait(fl_test_latch_t *l, int64_t timeout_ms)
{
    struct timespec ts = fl_test_deadline(timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    while (l->count > 0 && rc == 0)
        rc = pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    int ok = l->count == 0 ? 0 : -1;
    pthread_mutex_unlock(&l->mu);
    return ok;
}

fl_system_t *fl_test_system(unsigned workers)
{
    fl_system_opts_t o = {0};
    o.workers = workers;
    fl_system_t *sys = NULL;
    int rc = fl_system_alloc(&o, &sys);
    if (rc != FL_OK)
        fail_msg("fl_system_alloc: %s", fl_err_name(rc));
    return sys;
}

void fl_test_latch_await(fl_test_latch_t *l)
{
    if (fl_test_latch_wait(l, FL_TEST_WAIT_MS) != 0)
        fail_msg("latch not reached in %d ms (count left %llu)",
                 FL_TEST_WAIT_MS, (unsigned long long)fl_test_latch_count(l));
}

fl_msg_t *fl_test_msg_int(uint32_t type, int v)
{
    fl_msg_t *m = fl_msg_alloc(type, sizeof(int));
    assert_non_null(m);
    *(int *)fl_msg_data(m) = v;
    return m;
}

uint64_t fl_test_ms_since(uint64_t t0_ns)
{
    return (fl_clock_now_ns() - t0_ns) / 1000000u;
}

void fl_test_assert_elapsed(const char *what, uint64_t elapsed_ms, uint64_t lo,
                            uint64_t hi)
{
    if (elapsed_ms < lo || elapsed_ms >= hi)
        fail_msg("%s took %llu ms, want [%llu, %llu)", what,
                 (unsigned long long)elapsed_ms, (unsigned long long)lo,
                 (unsigned long long)hi);
}

fl_fencing_token_t fl_test_token(uint8_t b)
{
    fl_fencing_token_t t;
    memset(t.bytes, b, sizeof t.bytes);
    return t;
}

int fl_test_future_code(fl_future_t *f)
{
    assert_non_null(f);
    (void)fl_future_wait(f, FL_TEST_WAIT_MS);
    if (!fl_future_done(f))
        fail_msg("future not completed in %d ms", FL_TEST_WAIT_MS);
    return fl_future_error(f);
}

void fl_test_future_ok(fl_future_t *f, const char *what, ...)
{
    int rc = fl_test_future_code(f);
    if (rc == FL_OK)
        return;
    char buf[512];
    va_list ap;
    va_start(ap, what);
    vsnprintf(buf, sizeof buf, what, ap);
    va_end(ap);
    fail_msg("%s: %s (%s)", buf, fl_err_name(rc), fl_future_message(f));
}

fl_rpc_gateway_t *fl_test_connect(fl_rpc_service_t *svc, const char *address,
                                  const ProtobufCServiceDescriptor *d,
                                  const fl_fencing_token_t *tok)
{
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(svc, address, d, tok, &f));
    fl_test_future_ok(f, "connect %s", address);
    fl_rpc_gateway_t *gw = fl_future_take_value(f);
    assert_non_null(gw);
    fl_future_release(f);
    return gw;
}

int fl_test_connect_error(fl_rpc_service_t *svc, const char *address,
                          const ProtobufCServiceDescriptor *d, char *msg,
                          size_t msg_size)
{
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(svc, address, d, NULL, &f));
    int rc = fl_test_future_code(f);
    if (msg)
        snprintf(msg, msg_size, "%s", fl_future_message(f));
    if (rc == FL_OK)
        fl_rpc_gateway_free(fl_future_take_value(f));
    fl_future_release(f);
    return rc;
}

fl_future_t *fl_test_call(fl_rpc_gateway_t *gw, unsigned method,
                          const ProtobufCMessage *req, int64_t timeout_ms)
{
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call(gw, method, req, timeout_ms, &f));
    assert_non_null(f);
    return f;
}

int fl_test_call_code(fl_rpc_gateway_t *gw, unsigned method,
                      const ProtobufCMessage *req, int64_t timeout_ms,
                      char *msg, size_t msg_size)
{
    fl_future_t *f = fl_test_call(gw, method, req, timeout_ms);
    int rc = fl_test_future_code(f);
    if (msg)
        snprintf(msg, msg_size, "%s", fl_future_message(f));
    fl_future_release(f);
    return rc;
}

int fl_test_call_sync_code(fl_rpc_gateway_t *gw, unsigned method,
                           const ProtobufCMessage *req, int64_t timeout_ms)
{
    /* Not NULL before the call, so that a failure must clear it. */
    ProtobufCMessage not_set;
    memset(&not_set, 0, sizeof not_set);
    ProtobufCMessage *reply = &not_set;
    int rc = fl_rpc_call_sync(gw, method, req, timeout_ms, &reply);
    assert_int_equal(rc, fl_rpc_last_error());
    if (rc != FL_OK) {
        assert_null(reply);
        assert_true(fl_rpc_last_message()[0] != '\0');
        return rc;
    }
    assert_string_equal("", fl_rpc_last_message());
    assert_non_null(reply);
    assert_ptr_not_equal(&not_set, reply);
    protobuf_c_message_free_unpacked(reply, NULL);
    return rc;
}

void fl_test_endpoint_end(fl_rpc_endpoint_t *ep)
{
    fl_future_t *t = fl_rpc_endpoint_close(ep);
    assert_non_null(t);
    (void)fl_future_wait(t, FL_TEST_WAIT_MS);
    if (!fl_future_done(t))
        fail_msg("endpoint %s did not terminate in %d ms",
                 fl_rpc_endpoint_id(ep), FL_TEST_WAIT_MS);
    assert_fl_ok(fl_future_error(t));
    fl_future_release(t);
    fl_rpc_endpoint_free(ep);
}

void fl_test_service_end(fl_rpc_service_t *svc)
{
    assert_fl_ok(fl_rpc_service_shutdown(svc));
    fl_rpc_service_free(svc);
}
