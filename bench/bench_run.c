/*
 * bench_run.c - the system and the completion of a run, shared by every
 * benchmark of fling_bench and by the benchmarks' smoke tests
 * (tests/bench/), which bring their own output (note, emit, fail).
 * Contracts in bench.h.
 */
#include "bench.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- a benchmark in a process of its own --------------------------------- */

int run_alone(const bench_ctx_t *ctx, const char *opt)
{
    char workers[16];
    char *argv[] = {"fling_bench", (char *)opt, (char *)ctx->name,
                    NULL,          NULL,        NULL};
    if (ctx->workers != 0) {
        snprintf(workers, sizeof workers, "%u", ctx->workers);
        argv[3] = "--workers";
        argv[4] = workers;
    }
    fflush(stdout);
    pid_t pid;
    int err = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ);
    if (err != 0) {
        note("%s: starting its process: %s", ctx->name, strerror(err));
        return FL_ESYSTEM;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            note("%s: waitpid: %s", ctx->name, strerror(errno));
            return FL_ESYSTEM;
        }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        note("%s: its process ended with status 0x%x", ctx->name, status);
        return FL_EINTERNAL;
    }
    return FL_OK;
}

/* ---- the system ---------------------------------------------------------- */

int sys_open(const bench_ctx_t *ctx, uint32_t max_actors, fl_system_t **out)
{
    fl_system_opts_t opts = {0};
    opts.workers = ctx->workers;
    opts.max_actors = max_actors;
    int rc = fl_system_alloc(&opts, out);
    if (rc != FL_OK)
        return fail(ctx, "fl_system_alloc", rc);
    return FL_OK;
}

int sys_close(const bench_ctx_t *ctx, fl_system_t *sys)
{
    if (sys == NULL)
        return FL_OK;
    int rc = fl_system_shutdown(sys);
    fl_system_free(sys);
    if (rc != FL_OK)
        return fail(ctx, "fl_system_shutdown", rc);
    return FL_OK;
}

/* ---- completion ---------------------------------------------------------- */

void chunk_sender_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                          fl_msg_t *msg)
{
    chunk_sender_t *s = state;
    uint64_t k = s->left < SEND_CHUNK ? s->left : SEND_CHUNK;
    for (uint64_t i = 0; i < k; i++) {
        int rc = send_u64(sys, s->to, MSG_DATA, i);
        if (rc != FL_OK) {
            done_fail(s->done, "send", rc);
            return;
        }
    }
    s->left -= k;
    if (s->left > 0) {
        int rc = send_u64(sys, self, MSG_CONT, 0);
        if (rc != FL_OK)
            done_fail(s->done, "continue", rc);
    }
}

int go_wait(const bench_ctx_t *ctx, fl_system_t *sys,
            const fl_actor_ref_t *refs, unsigned n, done_t *d, double *secs)
{
    uint64_t t0 = fl_clock_now_ns();
    for (unsigned i = 0; i < n; i++) {
        int rc = send_u64(sys, refs[i], MSG_GO, 0);
        if (rc != FL_OK)
            return fail(ctx, "fl_tell", rc);
    }
    return done_wait(ctx, d, t0, secs);
}

int done_init(const bench_ctx_t *ctx, done_t *d)
{
    atomic_init(&d->t_end, 0);
    d->f = fl_future_alloc();
    if (d->f == NULL)
        return fail(ctx, "fl_future_alloc", FL_ENOMEM);
    return FL_OK;
}

void done_fini(done_t *d)
{
    fl_future_release(d->f);
    d->f = NULL;
}

int done_wait(const bench_ctx_t *ctx, done_t *d, uint64_t t0, double *secs)
{
    int rc = fl_future_wait(d->f, HANG_TIMEOUT_MS);
    if (rc == FL_ETIMEDOUT && !fl_future_done(d->f)) {
        note("%s: HUNG: not finished after %d s; giving up", ctx->name,
             HANG_TIMEOUT_MS / 1000);
        fflush(stdout);
        _exit(1);
    }
    if (rc != FL_OK) {
        note("%s: failed: %s", ctx->name, fl_future_message(d->f));
        return rc;
    }
    uint64_t t1 = atomic_load_explicit(&d->t_end, memory_order_acquire);
    *secs = (double)(t1 - t0) / 1e9;
    if (*secs <= 0)
        *secs = 1e-9;
    return FL_OK;
}

int end_run(const bench_ctx_t *ctx, int rc, fl_system_t *sys, done_t *d)
{
    int rc2 = sys_close(ctx, sys);
    done_fini(d);
    return rc != FL_OK ? rc : rc2;
}
