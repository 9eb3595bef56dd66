/*
 * ask_bench.c - actor.ask of fling_bench: the rate of sequential asks, each
 * with a timeout and its answer handled back on the asker. A row of the
 * runner's table (bench.h).
 */
#include "bench.h"

#include <inttypes.h>
#include <string.h>

/* ---- actor.ask ----------------------------------------------------------- */

/* One actor asks another, one ask at a time: fl_ask with a timeout, the
 * answer handled back on the asker (fl_future_on_complete_in), which then
 * asks again. */

typedef struct asker {
    _Alignas(64) /* own cache line: no false sharing between actors */
        fl_system_t *sys;
    fl_actor_ref_t self, responder;
    uint64_t n, count;
    done_t *done;
} asker_t;

static void ask_next(asker_t *s);

/* Runs on the asker's thread once the answer is in. */
static void on_answer(fl_future_t *f, void *arg)
{
    asker_t *s = arg;
    int rc = fl_future_error(f);
    if (rc != FL_OK) {
        fl_future_fail(s->done->f, rc, "ask %" PRIu64 ": %s", s->count,
                       fl_future_message(f));
        return;
    }
    fl_msg_t *answer = fl_future_value(f);
    if (fl_msg_type(answer) != MSG_ANSWER || msg_u64(answer) != s->count) {
        fl_future_fail(
            s->done->f, FL_EINTERNAL,
            "ask %" PRIu64 ": wrong answer (type %u, value %" PRIu64 ")",
            s->count, (unsigned)fl_msg_type(answer), msg_u64(answer));
        return;
    }
    if (++s->count == s->n) {
        done_finish(s->done);
        return;
    }
    ask_next(s);
}

static void ask_next(asker_t *s)
{
    fl_msg_t *m = fl_msg_alloc(MSG_ASK, sizeof s->count);
    if (m == NULL) {
        done_fail(s->done, "fl_msg_alloc", FL_ENOMEM);
        return;
    }
    memcpy(fl_msg_data(m), &s->count, sizeof s->count);
    fl_future_t *f;
    int rc = fl_ask(s->sys, s->responder, m, ASK_TIMEOUT_MS, &f);
    if (rc != FL_OK) {
        done_fail(s->done, "fl_ask", rc);
        return;
    }
    rc = fl_future_on_complete_in(f, s->sys, s->self, on_answer, s, NULL);
    fl_future_release(f);
    if (rc != FL_OK)
        done_fail(s->done, "fl_future_on_complete_in", rc);
}

static void asker_receive(fl_system_t *sys, fl_actor_ref_t self, void *state,
                          fl_msg_t *msg)
{
    ask_next(state);
}

static void responder_receive(fl_system_t *sys, fl_actor_ref_t self,
                              void *state, fl_msg_t *msg)
{
    fl_msg_t *r = fl_msg_alloc(MSG_ANSWER, sizeof(uint64_t));
    if (r == NULL) {
        fl_reply_error(msg, FL_ENOMEM, NULL);
        return;
    }
    uint64_t v = msg_u64(msg);
    memcpy(fl_msg_data(r), &v, sizeof v);
    /* A failure here (the ask timed out) shows up on the asker. */
    (void)fl_reply(msg, r);
}

int bench_ask(const bench_ctx_t *ctx)
{
    fl_system_t *sys = NULL;
    done_t done = {0};
    asker_t asker = {.n = ASK_ASKS, .done = &done};
    uint64_t t0;
    double secs;
    int rc;
    if ((rc = sys_open(ctx, 0, &sys)) != FL_OK ||
        (rc = done_init(ctx, &done)) != FL_OK)
        goto out;
    asker.sys = sys;
    if ((rc = fl_actor_spawn(sys, responder_receive, NULL, NULL,
                             &asker.responder)) != FL_OK ||
        (rc = fl_actor_spawn(sys, asker_receive, &asker, NULL, &asker.self)) !=
            FL_OK) {
        fail(ctx, "fl_actor_spawn", rc);
        goto out;
    }
    t0 = fl_clock_now_ns();
    if ((rc = send_u64(sys, asker.self, MSG_GO, 0)) != FL_OK) {
        fail(ctx, "fl_tell", rc);
        goto out;
    }
    if ((rc = done_wait(ctx, &done, t0, &secs)) != FL_OK)
        goto out;
    note("%s: %" PRIu64 " asks (timeout %d ms) in %.3f s", ctx->name,
         asker.count, ASK_TIMEOUT_MS, secs);
    emit(ctx, "rate", (double)asker.count / secs, 0, "asks/s");
out:
    return end_run(ctx, rc, sys, &done);
}
