/*
 * signals.c - block, wait for and unblock the signals that stop a program
 * (fling/signals.h): sigset_t kept out of the public header, the signal
 * numbers checked, the waits resumed after EINTR.
 */
#include <fling/signals.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>

/* More signals than any program waits for; bounds the loops below. */
#define FL__SIGNALS_MAX 64

/*
 * make_set fills *set with sigs[0..n). FL_EINVAL for a NULL or empty list,
 * a number that is not a signal (sigaddset refuses it, and glibc refuses
 * the signals it keeps for itself), SIGKILL and SIGSTOP (blocking them is
 * silently ignored by the kernel, so waiting for them would never end).
 */
static int make_set(const int *sigs, size_t n, sigset_t *set)
{
    if (sigs == NULL || n == 0 || n > FL__SIGNALS_MAX)
        return FL_EINVAL;
    sigemptyset(set);
    for (size_t i = 0; i < n; i++) {
        if (sigs[i] == SIGKILL || sigs[i] == SIGSTOP ||
            sigaddset(set, sigs[i]) != 0)
            return FL_EINVAL;
    }
    return FL_OK;
}

static int change_mask(int how, const int *sigs, size_t n)
{
    sigset_t set;
    int rc = make_set(sigs, n, &set);
    if (rc != FL_OK)
        return rc;
    /* pthread_sigmask, not sigprocmask: the latter is unspecified in a
     * process with threads. */
    return pthread_sigmask(how, &set, NULL) == 0 ? FL_OK : FL_ESYSTEM;
}

int fl_signals_block(const int *sigs, size_t n)
{
    return change_mask(SIG_BLOCK, sigs, n);
}

int fl_signals_unblock(const int *sigs, size_t n)
{
    return change_mask(SIG_UNBLOCK, sigs, n);
}

/* Waits for a signal of set until deadline_ns (fl_clock_now_ns); returns
 * the signal, or -1 with errno EAGAIN once the deadline has passed. */
static int wait_until(const sigset_t *set, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = fl_clock_now_ns();
        uint64_t left = deadline_ns > now ? deadline_ns - now : 0;
        struct timespec ts = {.tv_sec = (time_t)(left / 1000000000u),
                              .tv_nsec = (long)(left % 1000000000u)};
        int sig = sigtimedwait(set, NULL, &ts);
        /* EINTR: a handler of another signal ran; wait for what is left. */
        if (sig >= 0 || errno != EINTR)
            return sig;
    }
}

int fl_signals_wait(const int *sigs, size_t n, int64_t timeout_ms, int *signo)
{
    if (signo == NULL)
        return FL_EINVAL;
    *signo = 0;
    if (timeout_ms < 0 && timeout_ms != FL_INFINITE)
        return FL_EINVAL;
    sigset_t set, blocked;
    int rc = make_set(sigs, n, &set);
    if (rc != FL_OK)
        return rc;

    /* A signal not blocked here could be delivered (its default action:
     * the end of the process) instead of waiting to be taken. */
    if (pthread_sigmask(SIG_BLOCK, NULL, &blocked) != 0)
        return FL_ESYSTEM;
    for (size_t i = 0; i < n; i++) {
        if (!sigismember(&blocked, sigs[i]))
            return FL_ESTATE;
    }

    /* A timeout whose deadline does not fit 64 bits of nanoseconds never
     * expires (docs/guide.md, "Far times never fire"). */
    uint64_t now = fl_clock_now_ns();
    bool forever = timeout_ms == FL_INFINITE ||
                   (uint64_t)timeout_ms > (UINT64_MAX - now) / 1000000u;
    int sig;
    if (forever) {
        do
            sig = sigwaitinfo(&set, NULL);
        while (sig < 0 && errno == EINTR);
    } else {
        sig = wait_until(&set, now + (uint64_t)timeout_ms * 1000000u);
    }
    if (sig < 0)
        return errno == EAGAIN ? FL_ETIMEDOUT : FL_ESYSTEM;
    *signo = sig;
    return FL_OK;
}
