/*
 * accept_oom_test.c - the listener survives running out of memory in
 * accept (src/remote/listen.c): every allocation of the server's I/O
 * thread fails while peers connect; each is accepted and closed at once
 * (libuv's EMFILE trick, for memory), and once memory is back the
 * listener serves new connections and the good client as before.
 *
 * The allocator is the test's (fl_replace_allocator, before anything else
 * allocates): it fails on the server's I/O thread while armed.
 */
#include "wire_raw.h"

#include "remote/conn.h"
#include "rpc/service.h"

#define SERVER_NAME "oom-server"
#define EP_ID "calc"
#define GOOD_CALLS 10

/* The net whose I/O thread's allocations fail; NULL: none fails. */
static _Atomic(fl__net_t *) failing_net;
static _Atomic uint64_t failed;

static bool fail_here(void)
{
    fl__net_t *n = atomic_load(&failing_net);
    if (n == NULL || fl__tls_net != n)
        return false;
    atomic_fetch_add(&failed, 1);
    return true;
}

static void *t_malloc(size_t n)
{
    return fail_here() ? NULL : malloc(n);
}

static void *t_calloc(size_t n, size_t size)
{
    return fail_here() ? NULL : calloc(n, size);
}

static void *t_realloc(void *p, size_t n)
{
    return fail_here() ? NULL : realloc(p, n);
}

static int setup(void **state)
{
    return raw_fixture_setup(state, SERVER_NAME, 0, EP_ID);
}

static int teardown(void **state)
{
    atomic_store(&failing_net, NULL);
    return raw_fixture_teardown(state);
}

static raw_t raw_open(const fixture_t *fx)
{
    return raw_of(raw_connect(fx->port, 0), FL__FRAME_DEFAULT_MAX, "oom",
                  FL__FRAME_DEFAULT_MAX, SERVER_NAME, EP_ID);
}

#define NPEERS 3

static void
test_the_listener_serves_on_after_accepts_ran_out_of_memory(void **state)
{
    fixture_t *fx = *state;
    good_wait(&fx->good, GOOD_CALLS, WAIT_MS);
    /* The good client pauses while the server has no memory (its calls
     * would fail with FL_ENOMEM there), and comes back after. */
    good_stop(&fx->good);
    atomic_store(&fx->good.stop, false);

    atomic_store(&failing_net, fx->server->net);
    raw_t r[NPEERS];
    for (int i = 0; i < NPEERS; i++)
        r[i] = raw_open(fx);
    /* Each is accepted and closed: end of stream, not even HELLO. */
    for (int i = 0; i < NPEERS; i++) {
        expect_closed(&r[i]);
        raw_close(&r[i]);
    }
    atomic_store(&failing_net, NULL);
    assert_true(atomic_load(&failed) >= NPEERS);

    /* Memory is back: new connections and the good client are served. */
    raw_t s = raw_open(fx);
    raw_hello(&s);
    raw_attach(&s, 1, CALC_NAME, CALC_INDEX);
    expect_usable(&s, 2, 41);
    raw_close(&s);
    uint64_t mark = good_done(&fx->good);
    assert_int_equal(0, good_start(&fx->good));
    good_wait(&fx->good, mark + GOOD_CALLS, WAIT_MS);
}

int main(void)
{
    /* Before anything allocates. */
    assert_fl_ok(fl_replace_allocator(t_malloc, t_calloc, t_realloc, free));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_the_listener_serves_on_after_accepts_ran_out_of_memory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
