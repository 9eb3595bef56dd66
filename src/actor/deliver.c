/*
 * deliver.c - delivery: putting a message into its actor's mailbox, the
 * sends a worker's turn coalesces per target, and dead letters (what a
 * message that reaches no actor owes: its ask, its exec argument).
 */
#include "actor/deliver.h"
#include "actor/future.h"
#include "actor/system.h"
#include "common/prof.h"

#include <stdio.h>

/* ---- dead letters
 * -------------------------------------------------------------- */

/* Handle what a dead letter owes (its ask, its exec argument); memory stays. */
void fl__dead_letter_contents(fl_system_t *sys, fl_msg_t *m, const char *why)
{
    if (m->kind == FL__MSG_START || m->kind == FL__MSG_STOP)
        return; /* control messages of a gone actor: nothing owed */
    /* Relaxed: a statistic. */
    atomic_fetch_add_explicit(&sys->dead_letters, 1, memory_order_relaxed);
    FL_LOG(FL_LOG_DEBUG, "dead letter (type %u) to actor %016llx: %s",
           (unsigned)m->type, (unsigned long long)m->target, why);
    if (m->reply != NULL || (m->flags & FL__MF_SETTLE)) {
        char text[160];
        snprintf(text, sizeof text, "recipient unreachable: actor %016llx %s",
                 (unsigned long long)m->target, why);
        fl__msg_settle(m, FL_EUNREACHABLE, text);
        if (m->reply != NULL) {
            fl_future_t *f = m->reply;
            m->reply = NULL;
            /* An RPC call's namer names the endpoint and the method. */
            fl__future_fail_runtime(f, FL_EUNREACHABLE, 0, "%s", text);
            fl_future_release(f);
        }
    }
    if (m->kind == FL__MSG_EXEC) {
        fl__exec_t *e = fl__msg_payload(m);
        if (e->arg_free != NULL)
            e->arg_free(e->arg);
        e->arg_free = NULL;
    }
}

void fl__dead_letter(fl_system_t *sys, fl_msg_t *m, const char *why)
{
    fl__dead_letter_contents(sys, m, why);
    fl__msg_release_mem(m);
}

/* ---- delivery
 * ------------------------------------------------------------------ */

__attribute__((noinline)) int fl__turn_push_out(fl__turn_t *t)
{
    FL_PROF(chains);
    fl__turn_push_now(t);
    return FL_OK;
}

int fl__send_switch(fl__turn_t *t, fl__actor_t *a, fl_msg_t *m)
{
    fl__turn_push_out(t);
    t->out_to = a;
    t->out_first = t->out_last = m;
    t->out_w = fl__flow_weigh(a, m);
    t->out_n = 1;
    return FL_OK;
}
