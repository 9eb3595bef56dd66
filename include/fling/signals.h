/*
 * fling/signals.h - stopping a program cleanly on SIGINT and SIGTERM.
 *
 * The pattern (docs/guide.md, "Stopping on signals"): block the signals in
 * main() before fling starts any thread, so that every thread inherits the
 * mask and no fling thread is ever interrupted by them; then wait for one
 * in main(), and shut down from there, where blocking is allowed. Never
 * call fling from a signal handler: almost nothing in it is
 * async-signal-safe.
 *
 *   static const int sigs[] = {SIGINT, SIGTERM};
 *   fl_signals_block(sigs, 2);          // first thing in main()
 *   ... fl_rpc_service_alloc, endpoints ...
 *   int sig;
 *   fl_signals_wait(sigs, 2, FL_INFINITE, &sig);
 *   fl_signals_unblock(sigs, 2);        // a second signal: default action
 *   ... fl_rpc_service_shutdown, free ...
 *
 * Signals are plain ints (SIGINT, SIGTERM from <signal.h>), so this header
 * needs no POSIX types and compiles in strict C11.
 */
#ifndef FLING_SIGNALS_H
#define FLING_SIGNALS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * fl_signals_block blocks sigs[0..n) in the calling thread. Threads inherit
 * the mask of the thread that creates them, so call it in main() BEFORE
 * the first fling call that starts threads (fl_system_alloc,
 * fl_rpc_service_alloc): then these signals never interrupt a fling thread
 * nor run their default action (for SIGINT and SIGTERM, ending the
 * process); they stay pending until fl_signals_wait takes one. Signals
 * blocked already stay blocked. Returns FL_OK, or FL_EINVAL (sigs NULL, n
 * 0 or over 64, a number that is not a signal, SIGKILL or SIGSTOP, which
 * cannot be blocked) with the mask unchanged; FL_ESYSTEM if the system
 * refuses. Any thread; never blocks.
 */
FL_EXTERN int fl_signals_block(const int *sigs, size_t n);

/*
 * fl_signals_unblock unblocks sigs[0..n) in the calling thread: a pending
 * one, and any that comes later, is then delivered there with its usual
 * effect. Call it once fl_signals_wait has returned, before shutting down,
 * so that a second Ctrl-C or SIGTERM during a shutdown that hangs ends the
 * process at once (the default action; the exit status says "killed by
 * signal") instead of being ignored. Returns FL_OK or FL_EINVAL (as
 * fl_signals_block). Any thread; never blocks.
 */
FL_EXTERN int fl_signals_unblock(const int *sigs, size_t n);

/*
 * fl_signals_wait BLOCKS until one of sigs[0..n) is pending, for the
 * process or for the calling thread, takes it (it is then handled: it
 * will not be delivered again) and stores its number in *signo. The
 * signals must be blocked in the calling thread (fl_signals_block), and in
 * every other thread of the process: otherwise the kernel may deliver a
 * process-directed one to another thread instead. timeout_ms: FL_INFINITE
 * to wait as long as it takes, 0 to take one only if already pending.
 * Returns FL_OK; FL_ETIMEDOUT when none came within timeout_ms (*signo 0);
 * FL_ESTATE when one of sigs is not blocked in the calling thread (*signo
 * 0; call fl_signals_block first); FL_EINVAL as fl_signals_block, or
 * signo NULL, or a negative timeout other than FL_INFINITE; FL_ESYSTEM if
 * the system refuses. A timeout too far away to fit a deadline waits
 * for ever (docs/guide.md, "Timers"). Call it from a
 * thread of yours (main), never from a fling thread, which it would block.
 */
FL_EXTERN int fl_signals_wait(const int *sigs, size_t n, int64_t timeout_ms,
                              int *signo);

#ifdef __cplusplus
}
#endif

#endif /* FLING_SIGNALS_H */
