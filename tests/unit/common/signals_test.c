/*
 * signals_test.c - fl_signals_block, fl_signals_wait and fl_signals_unblock
 * (fling/signals.h): the pattern that stops a program cleanly on SIGINT /
 * SIGTERM. Signals are sent to the whole process with kill() from another
 * thread, as a shell or a supervisor would; the waits are synchronised on
 * the waiting thread being asleep in the kernel, never on sleeps.
 *
 * The tests use SIGUSR1 and SIGUSR2, whose default action ends the
 * process: a signal that reached a thread where it is not blocked would end
 * the test program, so "it arrived where it should" is what the program
 * surviving shows.
 */
#include "fl_test.h"

#include <fling/signals.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* True when sig is blocked in the calling thread. */
static bool is_blocked(int sig)
{
    sigset_t cur;
    assert_int_equal(0, pthread_sigmask(SIG_BLOCK, NULL, &cur));
    return sigismember(&cur, sig) == 1;
}

/* True when sig is pending for the process or the calling thread. */
static bool is_pending(int sig)
{
    sigset_t p;
    assert_int_equal(0, sigpending(&p));
    return sigismember(&p, sig) == 1;
}

/* ---- a thread that sends a signal once the waiter sleeps ----------------- */

typedef struct sender {
    pthread_t thread;
    pid_t waiter;         /* the waiting thread's kernel id */
    pthread_t waiter_pt;  /* the same thread, for pthread_kill */
    bool to_thread;       /* send to the waiter only, not the process */
    int sig;              /* what to send */
    atomic_bool returned; /* the waiter is back from fl_signals_wait */
    bool sent;            /* written by the sender, read after join */
} sender_t;

/* The state letter of thread tid in /proc ('S': asleep, interruptible). */
static char thread_state(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* "tid (comm) S ...": the state follows the last ')'. */
    char *p = strrchr(buf, ')');
    return p != NULL && p[1] == ' ' ? p[2] : '?';
}

/* Sends the signal to the process once the waiter is asleep (in its
 * wait), or gives up when the waiter has returned without it. */
static void *send_when_asleep(void *arg)
{
    sender_t *s = arg;
    while (!atomic_load_explicit(&s->returned, memory_order_acquire)) {
        if (thread_state(s->waiter) == 'S') {
            s->sent = s->to_thread ? pthread_kill(s->waiter_pt, s->sig) == 0
                                   : kill(getpid(), s->sig) == 0;
            return NULL;
        }
        sched_yield();
    }
    return NULL;
}

/* Starts a sender for sig aimed at the calling thread's wait: to the
 * process, or to_thread to the calling thread only. The thread inherits
 * the caller's mask, so a signal for the process must be blocked already. */
static void sender_start(sender_t *s, int sig, bool to_thread)
{
    memset(s, 0, sizeof *s);
    s->waiter = (pid_t)syscall(SYS_gettid);
    s->waiter_pt = pthread_self();
    s->to_thread = to_thread;
    s->sig = sig;
    atomic_init(&s->returned, false);
    assert_int_equal(0, pthread_create(&s->thread, NULL, send_when_asleep, s));
}

static bool sender_join(sender_t *s)
{
    atomic_store_explicit(&s->returned, true, memory_order_release);
    assert_int_equal(0, pthread_join(s->thread, NULL));
    return s->sent;
}

/* ---- arguments ----------------------------------------------------------- */

static void test_block_refuses_what_is_not_a_blockable_signal(void **state)
{
    (void)state;
    const int usr1 = SIGUSR1;
    assert_fl(FL_EINVAL, fl_signals_block(NULL, 1));
    assert_fl(FL_EINVAL, fl_signals_block(&usr1, 0));
    static int many[65];
    for (size_t i = 0; i < 65; i++)
        many[i] = SIGUSR1;
    assert_fl(FL_EINVAL, fl_signals_block(many, 65));
    const int bad[] = {0, -1, 65, 1000, SIGKILL, SIGSTOP};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* A good signal before the bad one: the mask must stay as it was. */
        const int pair[] = {SIGUSR1, bad[i]};
        assert_fl(FL_EINVAL, fl_signals_block(pair, 2));
        assert_false(is_blocked(SIGUSR1));
        assert_fl(FL_EINVAL, fl_signals_unblock(pair, 2));
    }
    int signo = -1;
    assert_fl(FL_EINVAL, fl_signals_wait(&usr1, 1, 0, NULL));
    assert_fl(FL_EINVAL, fl_signals_wait(&usr1, 1, -2, &signo));
    assert_int_equal(0, signo);
    signo = -1;
    assert_fl(FL_EINVAL, fl_signals_wait(NULL, 1, 0, &signo));
    assert_int_equal(0, signo);
}

static void test_block_and_unblock_change_the_calling_threads_mask(void **state)
{
    (void)state;
    const int sigs[] = {SIGUSR1, SIGUSR2};
    assert_false(is_blocked(SIGUSR1));
    assert_fl_ok(fl_signals_block(sigs, 2));
    assert_true(is_blocked(SIGUSR1));
    assert_true(is_blocked(SIGUSR2));
    assert_fl_ok(fl_signals_block(sigs, 2)); /* again: no change */
    assert_fl_ok(fl_signals_unblock(sigs, 1));
    assert_false(is_blocked(SIGUSR1));
    assert_true(is_blocked(SIGUSR2));
    assert_fl_ok(fl_signals_unblock(sigs, 2));
    assert_false(is_blocked(SIGUSR2));
}

static void test_wait_refuses_signals_that_are_not_blocked(void **state)
{
    (void)state;
    const int sigs[] = {SIGUSR1, SIGUSR2};
    assert_fl_ok(fl_signals_block(sigs, 1)); /* SIGUSR1 only */
    int signo = -1;
    assert_fl(FL_ESTATE, fl_signals_wait(sigs, 2, 0, &signo));
    assert_int_equal(0, signo);
    assert_fl_ok(fl_signals_unblock(sigs, 1));
}

/* ---- waiting ------------------------------------------------------------- */

static void test_wait_times_out_when_no_signal_comes(void **state)
{
    (void)state;
    const int sigs[] = {SIGUSR1, SIGUSR2};
    assert_fl_ok(fl_signals_block(sigs, 2));
    int signo = -1;
    assert_fl(FL_ETIMEDOUT, fl_signals_wait(sigs, 2, 0, &signo)); /* a poll */
    assert_int_equal(0, signo);
    uint64_t t0 = fl_clock_now_ns();
    signo = -1;
    assert_fl(FL_ETIMEDOUT, fl_signals_wait(sigs, 2, 50, &signo));
    assert_int_equal(0, signo);
    fl_test_assert_elapsed("a wait of 50 ms", fl_test_ms_since(t0), 50, 5000);
    assert_fl_ok(fl_signals_unblock(sigs, 2));
}

static void test_wait_takes_a_signal_already_pending(void **state)
{
    (void)state;
    const int sigs[] = {SIGUSR1, SIGUSR2};
    assert_fl_ok(fl_signals_block(sigs, 2));
    assert_int_equal(0, kill(getpid(), SIGUSR2));
    assert_true(is_pending(SIGUSR2));
    int signo = 0;
    assert_fl_ok(fl_signals_wait(sigs, 2, 0, &signo));
    assert_int_equal(SIGUSR2, signo);
    /* Taken: not pending any more, and a second wait finds nothing. */
    assert_false(is_pending(SIGUSR2));
    assert_fl(FL_ETIMEDOUT, fl_signals_wait(sigs, 2, 0, &signo));
    assert_fl_ok(fl_signals_unblock(sigs, 2));
}

/* One wait per kind of timeout: the signal comes while the waiter sleeps. */
static void wait_for_a_signal_sent_while_asleep(int64_t timeout_ms)
{
    const int sigs[] = {SIGUSR1, SIGUSR2};
    assert_fl_ok(fl_signals_block(sigs, 2));
    sender_t s;
    sender_start(&s, SIGUSR1, false);
    int signo = 0;
    int rc = fl_signals_wait(sigs, 2, timeout_ms, &signo);
    bool sent = sender_join(&s);
    assert_fl_ok(rc);
    assert_true(sent);
    assert_int_equal(SIGUSR1, signo);
    assert_fl_ok(fl_signals_unblock(sigs, 2));
}

static void test_wait_forever_wakes_for_a_signal_sent_meanwhile(void **state)
{
    (void)state;
    wait_for_a_signal_sent_while_asleep(FL_INFINITE);
}

static void test_a_timed_wait_wakes_for_a_signal_before_its_end(void **state)
{
    (void)state;
    wait_for_a_signal_sent_while_asleep(FL_TEST_WAIT_MS);
}

/* A timeout too far away for a deadline waits for ever instead of
 * wrapping into the past (which would time out at once). */
static void test_a_far_timeout_waits_for_the_signal(void **state)
{
    (void)state;
    const int64_t far[] = FL_TEST_FAR_MS;
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++)
        wait_for_a_signal_sent_while_asleep(far[i]);
}

static volatile sig_atomic_t handled;

static void count_signal(int sig)
{
    (void)sig;
    handled++;
}

/* Installs count_signal for sig, keeping the old action in *old. */
static void handle(int sig, struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = count_signal;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(0, sigaction(sig, &sa, old));
    handled = 0;
}

/*
 * A handled signal of another kind interrupts the wait (EINTR): the wait
 * goes on for what is left of its timeout, neither failing nor starting
 * its timeout again.
 */
static void test_a_wait_interrupted_by_another_signal_goes_on(void **state)
{
    (void)state;
    struct sigaction old;
    handle(SIGUSR2, &old);
    const int sigs[] = {SIGUSR1};
    assert_fl_ok(fl_signals_block(sigs, 1));
    sender_t s;
    sender_start(&s, SIGUSR2, true);
    uint64_t t0 = fl_clock_now_ns();
    int signo = -1;
    int rc = fl_signals_wait(sigs, 1, 300, &signo);
    uint64_t ms = fl_test_ms_since(t0);
    bool sent = sender_join(&s);
    assert_true(sent);
    assert_fl(FL_ETIMEDOUT, rc);
    assert_int_equal(0, signo);
    assert_int_equal(1, handled);
    fl_test_assert_elapsed("a wait of 300 ms interrupted", ms, 300, 5000);
    assert_fl_ok(fl_signals_unblock(sigs, 1));
    assert_int_equal(0, sigaction(SIGUSR2, &old, NULL));
}

/* ---- fling's threads, and the second signal ------------------------------ */

static void send_from_timer_thread(fl_rpc_service_t *svc, void *arg)
{
    (void)svc;
    (void)arg;
    (void)kill(getpid(), SIGUSR2); /* a failure shows as a timed-out wait */
}

/*
 * Makes sure the service's I/O thread has run its loop: a TCP connection
 * to its port that says nothing and ends is read, and closed, by that
 * thread only. Blocks until the service closes it.
 */
static void round_trip_through_io_thread(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(0, connect(fd, (struct sockaddr *)&a, sizeof a));
    assert_int_equal(0, shutdown(fd, SHUT_WR));
    char buf[256];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        ;
    close(fd);
}

/*
 * The number of threads of this process, failing the test naming the
 * first one whose mask (/proc/self/task/<tid>/status, SigBlk) lacks sig.
 */
static unsigned threads_blocking(int sig)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue; /* it has just exited */
        unsigned long long blk = 0;
        bool seen = false;
        while (fgets(line, sizeof line, f) != NULL) {
            if (sscanf(line, "SigBlk: %llx", &blk) == 1) {
                seen = true;
                break;
            }
        }
        fclose(f);
        assert_true(seen);
        if ((blk & (1ull << (sig - 1))) == 0)
            fail_msg("thread %s does not block signal %d (SigBlk %016llx)",
                     e->d_name, sig, blk);
        n++;
    }
    closedir(d);
    return n;
}

/*
 * Every fling thread (workers, the timer thread, a listening service's I/O
 * thread) inherits the mask: each of them blocks the signals, and a signal
 * sent to the process, from this thread or from fling's own timer thread,
 * waits for fl_signals_wait. Were it unblocked in any of them, the kernel
 * would deliver it there, and its default action would end the test.
 */
static void
test_fling_threads_inherit_the_mask_and_leave_it_to_wait(void **state)
{
    (void)state;
    const int sigs[] = {SIGINT, SIGTERM, SIGUSR2};
    assert_fl_ok(fl_signals_block(sigs, 3));
    fl_rpc_service_opts_t so = {.bind_host = "127.0.0.1", .workers = 2};
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(&so, &svc));
    round_trip_through_io_thread(fl_rpc_service_port(svc));
    /* This one, 2 workers, the timer thread and the I/O thread at least. */
    assert_true(threads_blocking(SIGUSR2) >= 5);

    /* Sent while this thread is not waiting: it stays pending. */
    assert_int_equal(0, kill(getpid(), SIGUSR2));
    int signo = 0;
    assert_fl_ok(fl_signals_wait(sigs, 3, 0, &signo));
    assert_int_equal(SIGUSR2, signo);

    /* Sent from one of fling's threads. */
    assert_fl_ok(fl_rpc_schedule(svc, send_from_timer_thread, NULL, 0, NULL));
    signo = 0;
    assert_fl_ok(fl_signals_wait(sigs, 3, FL_TEST_WAIT_MS, &signo));
    assert_int_equal(SIGUSR2, signo);
    assert_fl_ok(fl_signals_unblock(sigs, 3));
    fl_test_service_end(svc);
}

/*
 * After the first signal, unblocking gives the next one its usual effect
 * (here a handler; by default the end of the process): a second signal
 * during shutdown is not lost. A signal already pending is delivered
 * before fl_signals_unblock returns.
 */
static void test_unblock_delivers_the_second_signal(void **state)
{
    (void)state;
    struct sigaction old;
    handle(SIGUSR1, &old);

    const int sigs[] = {SIGUSR1};
    assert_fl_ok(fl_signals_block(sigs, 1));
    assert_int_equal(0, kill(getpid(), SIGUSR1));
    int signo = 0;
    assert_fl_ok(fl_signals_wait(sigs, 1, 0, &signo));
    assert_int_equal(SIGUSR1, signo);
    assert_int_equal(0, handled); /* taken by the wait, not the handler */

    assert_int_equal(0, kill(getpid(), SIGUSR1)); /* the second one */
    assert_int_equal(0, handled);                 /* blocked: pending */
    assert_fl_ok(fl_signals_unblock(sigs, 1));
    assert_int_equal(1, handled);

    assert_int_equal(0, sigaction(SIGUSR1, &old, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_block_refuses_what_is_not_a_blockable_signal),
        FL_TEST(test_block_and_unblock_change_the_calling_threads_mask),
        FL_TEST(test_wait_refuses_signals_that_are_not_blocked),
        FL_TEST(test_wait_times_out_when_no_signal_comes),
        FL_TEST(test_wait_takes_a_signal_already_pending),
        FL_TEST(test_wait_forever_wakes_for_a_signal_sent_meanwhile),
        FL_TEST(test_a_timed_wait_wakes_for_a_signal_before_its_end),
        FL_TEST(test_a_far_timeout_waits_for_the_signal),
        FL_TEST(test_a_wait_interrupted_by_another_signal_goes_on),
        FL_TEST(test_fling_threads_inherit_the_mask_and_leave_it_to_wait),
        FL_TEST(test_unblock_delivers_the_second_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
