/*
 * threadring - the runtime at work: 503 actors in a ring pass a token
 * around; every actor forwards it to the next one and the token counts its
 * hops. Progress is printed by whichever actor holds the token at each
 * milestone; the main thread waits on a future the last hop completes.
 *
 *   fling_demo [hops]     (default 10,000,000)
 */
#include <fling/fling.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define RING 503

enum { MSG_TOKEN = 1 };

typedef struct token {
    uint64_t hops_left;
    uint64_t hops_done;
} token_t;

typedef struct node {
    int id;
    fl_actor_ref_t next;
    fl_future_t *done;  /* completed with the id of the last holder */
    uint64_t milestone; /* print every this many hops */
    uint64_t started_ns;
} node_t;

static void on_token(fl_system_t *sys, fl_actor_ref_t self, void *state,
                     fl_msg_t *msg)
{
    node_t *n = state;
    const token_t *in = fl_msg_data(msg);
    if (in->hops_left == 0) {
        fl_future_complete(n->done, (void *)(intptr_t)n->id, NULL);
        return;
    }
    if (in->hops_done != 0 && in->hops_done % n->milestone == 0) {
        double s = (double)(fl_clock_now_ns() - n->started_ns) / 1e9;
        printf("  %10" PRIu64 " hops  (actor %3d holds the token, %.1f M "
               "hops/s so far)\n",
               in->hops_done, n->id, (double)in->hops_done / s / 1e6);
        fflush(stdout);
    }
    /* Forward the token: a new message, the received one is borrowed. */
    fl_msg_t *out = fl_msg_alloc(MSG_TOKEN, sizeof(token_t));
    if (out == NULL) {
        fl_future_fail(n->done, FL_ENOMEM, "actor %d: out of memory", n->id);
        return;
    }
    token_t *t = fl_msg_data(out);
    t->hops_left = in->hops_left - 1;
    t->hops_done = in->hops_done + 1;
    int rc = fl_tell(sys, n->next, out);
    if (rc != FL_OK)
        fl_future_fail(n->done, rc, "actor %d: tell failed", n->id);
}

int main(int argc, char **argv)
{
    uint64_t hops = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000ull;
    if (hops == 0) {
        fprintf(stderr, "usage: %s [hops > 0]\n", argv[0]);
        return 2;
    }
    fl_system_t *sys = NULL;
    int rc = fl_system_alloc(NULL, &sys);
    if (rc != FL_OK) {
        fprintf(stderr, "fl_system_alloc: %s\n", fl_strerror(rc));
        return 1;
    }
    printf("fling thread ring: %d actors, %" PRIu64 " hops, %u worker "
           "threads\n",
           RING, hops, fl_system_workers(sys));

    static node_t nodes[RING];
    fl_actor_ref_t refs[RING];
    fl_future_t *done = fl_future_alloc();
    if (done == NULL) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (int i = 0; i < RING; i++) {
        nodes[i].id = i + 1;
        nodes[i].done = done;
        nodes[i].milestone = hops >= 10 ? hops / 10 : 1;
        rc = fl_actor_spawn(sys, on_token, &nodes[i], NULL, &refs[i]);
        if (rc != FL_OK) {
            fprintf(stderr, "fl_actor_spawn: %s\n", fl_strerror(rc));
            return 1;
        }
    }
    for (int i = 0; i < RING; i++)
        nodes[i].next = refs[(i + 1) % RING];

    uint64_t t0 = fl_clock_now_ns();
    for (int i = 0; i < RING; i++)
        nodes[i].started_ns = t0;
    fl_msg_t *m = fl_msg_alloc(MSG_TOKEN, sizeof(token_t));
    ((token_t *)fl_msg_data(m))->hops_left = hops;
    rc = fl_tell(sys, refs[0], m);
    if (rc == FL_OK)
        rc = fl_future_wait(done, FL_INFINITE);
    double secs = (double)(fl_clock_now_ns() - t0) / 1e9;
    if (rc != FL_OK) {
        fprintf(stderr, "ring failed: %s (%s)\n", fl_strerror(rc),
                fl_future_message(done));
    } else {
        printf("done: actor %d holds the token after %" PRIu64
               " hops in %.2f s = %.1f M hops/s\n",
               (int)(intptr_t)fl_future_value(done), hops, secs,
               (double)hops / secs / 1e6);
    }
    fl_future_release(done);

    fl_system_stats_t st;
    fl_system_stats(sys, &st);
    printf("actors live: %" PRIu64 ", dead letters: %" PRIu64 "\n",
           st.actors_live, st.dead_letters);
    fl_system_shutdown(sys);
    fl_system_free(sys);
    printf("shut down cleanly\n");
    return rc == FL_OK ? 0 : 1;
}
