/*
 * kv_server - a key-value store served by a fenced fling endpoint.
 *
 *   kv_server [PORT [TOKEN]]
 *
 * Listens on 127.0.0.1:PORT (default 0: any free port) and serves the
 * KvStore gateway of kv.proto as the endpoint "kv", fenced with TOKEN (32
 * hex digits; default: a random one). It prints its address and token:
 *
 *   kv_server: serving fling.tcp://127.0.0.1:40123/kv
 *   kv_server: fencing token 8d1f...
 *
 * and, once a second while calls come in, a stats line. On SIGINT or
 * SIGTERM it closes the endpoint, shuts the service down and exits 0; a
 * second signal during that ends it at once.
 *
 * What to copy from it: the endpoint (handlers on its main thread, no
 * locks), a periodic task on that thread, and main(): block the stop
 * signals before fling starts a thread, wait for one, shut down.
 */
#include <fling/fling.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.pb-c.h" /* generated from kv.proto by protoc-c */

#define STATS_PERIOD_MS 1000

/* ---- the store ----------------------------------------------------------- */

/* One key and its value, both owned by the store. */
typedef struct entry {
    char *key;
    char *value;
} entry_t;

/*
 * The endpoint's state: entries sorted by key, and counters. Only ever
 * touched on the endpoint's main thread (handlers, hooks, tasks), so it
 * needs no lock.
 */
typedef struct store {
    entry_t *entries;
    size_t n, cap;
    unsigned long long calls;    /* calls served */
    unsigned long long reported; /* calls at the last stats line */
    fl_rpc_scheduled_t *stats;   /* the periodic stats task */
} store_t;

static char *copy_string(const char *s)
{
    size_t len = strlen(s) + 1;
    char *c = malloc(len);
    if (c != NULL)
        memcpy(c, s, len);
    return c;
}

/* The index of key, or where it would go; *found says which. */
static size_t store_find(const store_t *s, const char *key, bool *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(s->entries[mid].key, key);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Sets key to value (copied). FL_OK, or FL_ENOMEM with the store as it
 * was. */
static int store_put(store_t *s, const char *key, const char *value,
                     bool *replaced)
{
    bool found;
    size_t i = store_find(s, key, &found);
    char *v = copy_string(value);
    if (v == NULL)
        return FL_ENOMEM;
    *replaced = found;
    if (found) {
        free(s->entries[i].value);
        s->entries[i].value = v;
        return FL_OK;
    }
    char *k = copy_string(key);
    if (k == NULL) {
        free(v);
        return FL_ENOMEM;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        entry_t *e = realloc(s->entries, cap * sizeof *e);
        if (e == NULL) {
            free(k);
            free(v);
            return FL_ENOMEM;
        }
        s->entries = e;
        s->cap = cap;
    }
    memmove(&s->entries[i + 1], &s->entries[i],
            (s->n - i) * sizeof s->entries[0]);
    s->entries[i] = (entry_t){k, v};
    s->n++;
    return FL_OK;
}

static bool store_delete(store_t *s, const char *key)
{
    bool found;
    size_t i = store_find(s, key, &found);
    if (!found)
        return false;
    free(s->entries[i].key);
    free(s->entries[i].value);
    memmove(&s->entries[i], &s->entries[i + 1],
            (s->n - i - 1) * sizeof s->entries[0]);
    s->n--;
    return true;
}

static void store_free(store_t *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->entries[i].key);
        free(s->entries[i].value);
    }
    free(s->entries);
}

/* ---- the endpoint: KvStore's handlers ------------------------------------ */

/*
 * Each handler runs on the endpoint's main thread with the unpacked
 * request (borrowed until it returns) and answers the call exactly once:
 * closure(&reply, call), which packs the reply at once (so it may live on
 * the stack), or fl_rpc_fail(call, code, message), which the caller gets
 * as it is. protoc-c names them after the methods: KV__KV_STORE__INIT(kv_)
 * below expects kv_put, kv_get, kv_delete and kv_list.
 */
static void kv_put(Kv__KvStore_Service *service, const Kv__PutRequest *req,
                   Kv__PutReply_Closure closure, void *call)
{
    (void)service; /* the implementation struct, kv_impl */
    store_t *s = fl_rpc_call_state(call);
    s->calls++;
    if (req->key[0] == '\0') {
        fl_rpc_fail(call, FL_EINVAL, "Put needs a key");
        return;
    }
    Kv__PutReply reply = KV__PUT_REPLY__INIT;
    bool replaced = false;
    int rc = store_put(s, req->key, req->value, &replaced);
    if (rc != FL_OK) {
        fl_rpc_fail(call, rc, "no memory to store key '%s'", req->key);
        return;
    }
    reply.replaced = replaced;
    closure(&reply, call);
}

static void kv_get(Kv__KvStore_Service *service, const Kv__GetRequest *req,
                   Kv__GetReply_Closure closure, void *call)
{
    (void)service;
    store_t *s = fl_rpc_call_state(call);
    s->calls++;
    bool found;
    size_t i = store_find(s, req->key, &found);
    if (!found) {
        fl_rpc_fail(call, FL_ENOENT, "no key '%s'", req->key);
        return;
    }
    Kv__GetReply reply = KV__GET_REPLY__INIT;
    reply.value = s->entries[i].value; /* borrowed: packed by closure() */
    closure(&reply, call);
}

static void kv_delete(Kv__KvStore_Service *service,
                      const Kv__DeleteRequest *req,
                      Kv__DeleteReply_Closure closure, void *call)
{
    (void)service;
    store_t *s = fl_rpc_call_state(call);
    s->calls++;
    Kv__DeleteReply reply = KV__DELETE_REPLY__INIT;
    reply.deleted = store_delete(s, req->key);
    closure(&reply, call);
}

static void kv_list(Kv__KvStore_Service *service, const Kv__ListRequest *req,
                    Kv__ListReply_Closure closure, void *call)
{
    (void)service;
    store_t *s = fl_rpc_call_state(call);
    s->calls++;
    /* The keys with the prefix are one run of the sorted entries. */
    bool found;
    size_t first = store_find(s, req->prefix, &found), n = 0;
    size_t plen = strlen(req->prefix);
    while (first + n < s->n &&
           strncmp(s->entries[first + n].key, req->prefix, plen) == 0)
        n++;
    char **keys = malloc((n ? n : 1) * sizeof *keys);
    if (keys == NULL) {
        fl_rpc_fail(call, FL_ENOMEM, "no memory to list %zu keys", n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        keys[i] = s->entries[first + i].key; /* borrowed */
    Kv__ListReply reply = KV__LIST_REPLY__INIT;
    reply.n_keys = n;
    reply.keys = keys;
    closure(&reply, call);
    free(keys);
}

/* The implementation: must outlive the endpoint, hence static. */
static Kv__KvStore_Service kv_impl = KV__KV_STORE__INIT(kv_);

/* ---- a periodic task on the main thread ---------------------------------- */

/*
 * Prints a stats line when calls came in since the last one. It runs every
 * STATS_PERIOD_MS on the endpoint's main thread, in turn with the
 * handlers, so it reads the store without a lock.
 */
static void report_stats(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)arg;
    store_t *s = state;
    if (s->calls != s->reported) {
        printf("kv_server: stats: %zu keys, %llu calls\n", s->n, s->calls);
        fflush(stdout);
        s->reported = s->calls;
    }
}

/* Starts the stats task (not FL_OK: the endpoint fails to start). */
static int kv_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    store_t *s = state;
    return fl_rpc_schedule_run_at_fixed_rate(ep, report_stats, NULL, NULL,
                                             STATS_PERIOD_MS, STATS_PERIOD_MS,
                                             &s->stats);
}

/* Stops the stats task. Termination would end it too; cancelling says
 * so where it is decided, and frees the handle. */
static fl_future_t *kv_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    store_t *s = state;
    fl_rpc_scheduled_cancel(s->stats);
    fl_rpc_scheduled_free(s->stats);
    s->stats = NULL;
    return NULL; /* stopped at once */
}

/* ---- main ---------------------------------------------------------------- */

/* Prints "kv_server: <what>: FL_X (<meaning>): <message>" to stderr. */
static void print_error(const char *what, int rc, const char *message)
{
    fprintf(stderr, "kv_server: %s: %s (%s)%s%s\n", what, fl_err_name(rc),
            fl_strerror(rc), message != NULL && message[0] ? ": " : "",
            message != NULL ? message : "");
}

/* Reads 32 hex digits into *t; false if text is anything else. */
static bool parse_token(const char *text, fl_fencing_token_t *t)
{
    if (strlen(text) != 32)
        return false;
    for (int i = 0; i < 16; i++) {
        unsigned byte;
        char two[3] = {text[2 * i], text[2 * i + 1], '\0'};
        char *end;
        byte = (unsigned)strtoul(two, &end, 16);
        if (end != two + 2)
            return false;
        t->bytes[i] = (unsigned char)byte;
    }
    return true;
}

/* A random token, as a leader election would give a new leader. */
static bool random_token(fl_fencing_token_t *t)
{
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL)
        return false;
    size_t got = fread(t->bytes, 1, sizeof t->bytes, f);
    fclose(f);
    return got == sizeof t->bytes;
}

/* Closes the endpoint and waits until it has terminated. */
static int close_endpoint(fl_rpc_endpoint_t *ep)
{
    fl_future_t *term = fl_rpc_endpoint_close(ep);
    if (term == NULL)
        return FL_ENOMEM;
    int rc = fl_future_wait(term, FL_INFINITE);
    if (rc != FL_OK)
        print_error("closing the endpoint", rc, fl_future_message(term));
    fl_future_release(term);
    return rc;
}

int main(int argc, char **argv)
{
    /* FIRST, before fling starts any thread: block the stop signals.
     * Every thread inherits the mask, so no fling thread is ever stopped
     * by them; they wait for fl_signals_wait below. */
    static const int stop_signals[] = {SIGINT, SIGTERM};
    int rc = fl_signals_block(stop_signals, 2);
    if (rc != FL_OK) {
        print_error("fl_signals_block", rc, NULL);
        return 1;
    }

    const char *port = argc > 1 ? argv[1] : "0";
    fl_fencing_token_t token;
    if (argc > 3 || (argc == 3 && !parse_token(argv[2], &token))) {
        fprintf(stderr, "usage: kv_server [PORT [TOKEN (32 hex digits)]]\n");
        return 2;
    }
    if (argc < 3 && !random_token(&token)) {
        fprintf(stderr, "kv_server: cannot read /dev/urandom for a token\n");
        return 1;
    }

    /* A service that listens: its endpoints are reachable from other
     * processes as fling.tcp://127.0.0.1:<port>/<id>. */
    fl_rpc_service_opts_t so = {.bind_host = "127.0.0.1", .port = port};
    fl_rpc_service_t *svc = NULL;
    rc = fl_rpc_service_alloc(&so, &svc);
    if (rc != FL_OK) {
        print_error("fl_rpc_service_alloc", rc, fl_rpc_last_message());
        return 1;
    }

    /* The endpoint: KvStore with our handlers, fenced with the token. */
    store_t store = {0};
    ProtobufCService *const services[] = {&kv_impl.base};
    fl_rpc_endpoint_opts_t eo = {
        .id = "kv",
        .services = services,
        .nservices = 1,
        .state = &store,
        .on_start = kv_on_start,
        .on_stop = kv_on_stop,
        .fencing_token = &token,
    };
    fl_rpc_endpoint_t *ep = NULL;
    rc = fl_rpc_endpoint_create(svc, &eo, &ep);
    if (rc == FL_OK)
        rc = fl_rpc_endpoint_start(ep);
    if (rc != FL_OK) {
        print_error("starting the endpoint", rc, fl_rpc_last_message());
    } else {
        printf("kv_server: serving %s\n", fl_rpc_endpoint_address(ep));
        printf("kv_server: fencing token ");
        for (int i = 0; i < 16; i++)
            printf("%02x", token.bytes[i]);
        printf("\n");
        fflush(stdout);

        /* Serve until SIGINT or SIGTERM. */
        int sig = 0;
        rc = fl_signals_wait(stop_signals, 2, FL_INFINITE, &sig);
        /* From now on a second signal ends the process at once (its
         * default action), should the shutdown below hang. */
        if (fl_signals_unblock(stop_signals, 2) != FL_OK)
            fprintf(stderr, "kv_server: a second signal will be ignored\n");
        if (rc != FL_OK) {
            print_error("fl_signals_wait", rc, NULL);
        } else {
            printf("kv_server: %s received, stopping\n",
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
            fflush(stdout);
            rc = close_endpoint(ep);
        }
    }

    /* Closes whatever is left, says BYE to the clients, joins the threads;
     * then the endpoint's state is ours again. */
    int down = fl_rpc_service_shutdown(svc);
    if (down != FL_OK)
        print_error("fl_rpc_service_shutdown", down, NULL);
    fl_rpc_endpoint_free(ep);
    fl_rpc_service_free(svc);
    if (rc == FL_OK && down == FL_OK)
        printf("kv_server: stopped cleanly with %zu keys after %llu calls\n",
               store.n, store.calls);
    store_free(&store);
    return rc == FL_OK && down == FL_OK ? 0 : 1;
}
