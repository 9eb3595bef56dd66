/*
 * hostile_fixture.h - the hostile session of hostile_test.c: the server's
 * log sink (the last warning and its fields), the raw client's openings,
 * deep messages, the expectations of refused requests, and STEP(name,
 * start), which runs one hostile step with the checks around it. The
 * fixture (server, endpoint, good client) is wire_client.h's.
 *
 * Header-only (static inline): one test program includes it.
 */
#ifndef HOSTILE_FIXTURE_H
#define HOSTILE_FIXTURE_H

#include "wire_raw.h"

/* Calls the good client must complete after each hostile step begins. */
#define GOOD_PER_STEP 20

/* The server's and the raw client's maximum frame sizes. */
#define SERVER_MAX (1024u * 1024u)
#define CLIENT_MAX (1024u * 1024u)
#define SERVER_NAME "hostile-server"
#define CLIENT_NAME "hostile-client"

#define EP_ID "calc"

/* The nesting depth the server accepts from the wire
 * (docs/wire-protocol.md, "Protocol errors"; src/remote/pbdepth.h). */
#define MAX_DEPTH 64u

/* ---- what the server logs ----------------------------------------------- */

/* The last warning the library logged (log_sink), and how many. The
 * server logs before it answers, so once the raw client read the answer
 * the line is here. */
static struct {
    pthread_mutex_t mu;
    char last[2048];
    char fields[512]; /* the last warning's, "k=v k=v" */
    unsigned n;
} warned = {.mu = PTHREAD_MUTEX_INITIALIZER};

static inline void log_sink(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    fprintf(stderr, "fling: %s\n", rec->message);
    if (rec->level != FL_LOG_WARN)
        return;
    pthread_mutex_lock(&warned.mu);
    snprintf(warned.last, sizeof warned.last, "%s", rec->message);
    size_t k = 0;
    warned.fields[0] = '\0';
    for (size_t i = 0; i < rec->nfields && k < sizeof warned.fields; i++)
        k += (size_t)snprintf(warned.fields + k, sizeof warned.fields - k,
                              "%s%s=%s", i ? " " : "", rec->fields[i].key,
                              rec->fields[i].value);
    warned.n++;
    pthread_mutex_unlock(&warned.mu);
}

/* The count of warnings so far (to compare after a step). */
static inline unsigned warned_count(void)
{
    pthread_mutex_lock(&warned.mu);
    unsigned n = warned.n;
    pthread_mutex_unlock(&warned.mu);
    return n;
}

/* Since the count was `since`, the server warned exactly once more, with
 * want and those fields ("k=v k=v"). */
static inline void expect_warned_kv(unsigned since, const char *want,
                                    const char *fields)
{
    pthread_mutex_lock(&warned.mu);
    unsigned n = warned.n;
    char last[sizeof warned.last], kv[sizeof warned.fields];
    snprintf(last, sizeof last, "%s", warned.last);
    snprintf(kv, sizeof kv, "%s", warned.fields);
    pthread_mutex_unlock(&warned.mu);
    assert_int_equal(since + 1, n);
    assert_string_equal(want, last);
    assert_string_equal(fields, kv);
}

/* The peer name the server sees for r: "127.0.0.1:<r's port>". */
static inline const char *peer_of(const raw_t *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.0.0.1:%d", raw_local_port(r->fd));
    return buf;
}

/* ---- the fixture: server, endpoint, good client -------------------------- */

/* Group setup: the server, its started endpoint, the good client and its
 * thread. Returns 0, or -1 (printing why) if any of it fails. */
static inline int fixture_setup(void **state)
{
    return raw_fixture_setup(state, SERVER_NAME, SERVER_MAX, EP_ID);
}

/* ---- the raw client ------------------------------------------------------ */

/* Opens a raw connection to the server with send and receive timeouts. */
static inline raw_t raw_open(const fixture_t *fx)
{
    return raw_of(raw_connect(fx->port, 0), CLIENT_MAX, CLIENT_NAME, SERVER_MAX,
                  SERVER_NAME, EP_ID);
}

/* A raw connection through HELLO and CONNECT (calc, CalcGateway). */
static inline raw_t raw_session(const fixture_t *fx)
{
    raw_t r = raw_open(fx);
    raw_hello(&r);
    raw_attach(&r, 1, CALC_NAME, CALC_INDEX);
    return r;
}

/* A packed Chain of `depth` nested messages (depth 1: just the request);
 * caller frees. */
static inline uint8_t *pack_chain(unsigned depth, size_t *len)
{
    Flhostile__Chain *c = calloc(depth, sizeof *c);
    assert_non_null(c);
    for (unsigned i = 0; i < depth; i++) {
        flhostile__chain__init(&c[i]);
        c[i].v = i;
        if (i + 1 < depth)
            c[i].next = &c[i + 1];
    }
    *len = flhostile__chain__get_packed_size(&c[0]);
    uint8_t *b = malloc(*len ? *len : 1);
    assert_non_null(b);
    flhostile__chain__pack(&c[0], b);
    free(c);
    return b;
}

/*
 * A packed Chain nested `depth` levels deep, built from the inside out
 * without recursion (protobuf-c's packer recurses, and this is deeper than
 * any stack should take): v = 1 innermost, then field 1 (next) wrapped
 * around it depth - 1 times. Caller frees.
 */
static inline uint8_t *deep_chain(unsigned depth, size_t *len)
{
    size_t cap = (size_t)depth * 6 + 16;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    size_t at = cap;
    buf[--at] = 0x01; /* v = 1 */
    buf[--at] = 0x10; /* field 2, varint */
    for (unsigned i = 1; i < depth; i++) {
        size_t inner = cap - at;
        uint8_t v[10];
        size_t n = 0;
        do {
            v[n] = (uint8_t)(inner & 0x7f);
            inner >>= 7;
            if (inner != 0)
                v[n] |= 0x80;
            n++;
        } while (inner != 0);
        at -= n;
        memcpy(buf + at, v, n);
        buf[--at] = 0x0a; /* field 1, length-delimited */
    }
    *len = cap - at;
    memmove(buf, buf + at, *len);
    return buf;
}

/* Sends Depth(body) with corr, then frees body. */
static inline void send_depth(raw_t *r, uint64_t corr, uint8_t *body,
                              size_t len)
{
    send_invoke(r, 0, corr, EP_ID, CALC_INDEX, M_DEPTH, body, len);
    free(body);
}

/* INVOKE of service/method with Num(POISON, text) and corr: the server
 * must answer ERROR FL_ENOMETHOD with that corr (and never run it). */
static inline void expect_enomethod(raw_t *r, uint64_t corr, uint32_t service,
                                    uint32_t method, const char *text)
{
    send_num(r, corr, service, method, POISON, text);
    expect_error(r, FL_ENOMETHOD, corr, NULL, 0);
}

/* The message of a request to method (of CalcGateway) on fx's endpoint
 * that could not be decoded as a `type`, for `why`. */
static inline const char *undecoded(const fixture_t *fx, const char *method,
                                    const char *type, const char *why,
                                    char *buf, size_t cap)
{
    snprintf(buf, cap,
             "Could not decode the request of flhostile.CalcGateway.%s to "
             "fling.tcp://127.0.0.1:%d/" EP_ID ": %s%s",
             method, fx->port, type, why);
    return buf;
}

/* The server's answer to r's request corr (sent) that cannot be decoded
 * (want: the message): ERROR FL_EDECODE with it, and the same logged once
 * as a warning naming r. */
static inline void expect_undecoded(raw_t *r, uint64_t corr, unsigned since,
                                    const char *method, const char *want)
{
    char msg[FL__ERRMSG_MAX + 1], line[2048], peer[64], kv[256];
    expect_error(r, FL_EDECODE, corr, msg, sizeof msg);
    assert_string_equal(want, msg);
    peer_of(r, peer, sizeof peer);
    snprintf(line, sizeof line, "%s (an ask from %s)", want, peer);
    snprintf(kv, sizeof kv,
             "endpoint=" EP_ID " method=flhostile.CalcGateway.%s peer=%s",
             method, peer);
    expect_warned_kv(since, line, kv);
}

/* INVOKE of Add with a body that is not a Num (why: the broken rule the
 * message gives): ERROR FL_EDECODE with corr; then the connection is still
 * usable (corr + 1, Add(v)). */
static inline void expect_edecode_then_usable(const fixture_t *fx, raw_t *r,
                                              uint64_t corr,
                                              const uint8_t *body, size_t len,
                                              const char *why, int64_t v)
{
    char want[FL__ERRMSG_MAX + 1];
    unsigned since = warned_count();
    send_invoke(r, 0, corr, EP_ID, CALC_INDEX, M_ADD, body, len);
    expect_undecoded(
        r, corr, since, "Add",
        undecoded(fx, "Add", "flhostile.Num", why, want, sizeof want));
    expect_usable(r, corr + 1, v);
}

/* ---- steps -----------------------------------------------------------------
 */

/*
 * Every case ends with this: the good client completed GOOD_PER_STEP more
 * calls since `mark` (its count when the case began), all correct; then
 * one more call, made after everything the hostile step sent was answered
 * or refused, so that any poisoned request the server wrongly dispatched
 * has run by now (the endpoint's mailbox is FIFO); no poisoned request
 * ran; and a fresh raw connection still gets through the handshake and a
 * call.
 */
static inline void step_end(fixture_t *fx, uint64_t mark)
{
    good_wait(&fx->good, mark + GOOD_PER_STEP, WAIT_MS);
    good_wait(&fx->good, good_done(&fx->good) + 2, WAIT_MS);
    assert_int_equal(0, atomic_load(&fx->calc.poison_hits));
    raw_t r = raw_session(fx);
    expect_usable(&r, 900, 41);
    raw_close(&r);
}

/* How a step's raw connection starts: none, connected, or through HELLO
 * and CONNECT (raw_session). */
enum { RAW_NONE, RAW_OPEN, RAW_SESSION };

typedef void (*step_fn)(fixture_t *fx, raw_t *r);

/* Runs one hostile step: notes the good client's count, opens the raw
 * connection `start` says, runs the step, closes the connection (if the
 * step did not) and checks what step_end checks. */
static inline void run_step(void **state, int start, step_fn step)
{
    fixture_t *fx = *state;
    uint64_t mark = good_done(&fx->good);
    raw_t r = {.fd = -1};
    if (start == RAW_OPEN)
        r = raw_open(fx);
    else if (start == RAW_SESSION)
        r = raw_session(fx);
    step(fx, &r);
    raw_close(&r);
    step_end(fx, mark);
}

/* Defines the cmocka case test_<name> running the step whose body follows
 * on a raw connection r started as `start` says. */
#define STEP(name, start)                                                      \
    static void name##_step(fixture_t *fx, raw_t *r);                          \
    static void test_##name(void **state)                                      \
    {                                                                          \
        run_step(state, (start), name##_step);                                 \
    }                                                                          \
    static void name##_step(fixture_t *fx, raw_t *r)

#endif /* HOSTILE_FIXTURE_H */
