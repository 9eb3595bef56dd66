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
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &a);
    pthread_condattr_destroy(&a);
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
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
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
