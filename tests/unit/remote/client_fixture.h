/*
 * client_fixture.h - what the client_*_test.c programs share: the calc
 * gateway and time bounds, and a raw server played by the test's own
 * thread (fl_rpc_connect and fl_rpc_call never block) that answers the
 * handshake and then sends whatever REPLY bodies a case wants, including
 * ones a fling server never sends (the recursive NestGateway, chains
 * nested deeper than the limit).
 *
 * Header-only (static inline) because each program is built from one file.
 */
#ifndef CLIENT_FIXTURE_H
#define CLIENT_FIXTURE_H

#include "wire_raw.h"

#include "remote/net.h"
#include "remote/pbdepth.h"
#include "rpc/service.h"

#define CALC (&flhostile__calc_gateway__descriptor)

/* A call's own timeout that runs out, and how late it may fire. */
#define SHORT_MS 200
#define PROMPT_MS 5000

/* A service with the default options; fails the test on error. */
static inline fl_rpc_service_t *client_service(void)
{
    fl_rpc_service_t *svc = NULL;
    assert_fl_ok(fl_rpc_service_alloc(NULL, &svc));
    return svc;
}

/* ---- a raw server played by the test's thread ---------------------------- */

/*
 * NestGateway.Nest(Num) returns (Chain): a method whose reply is recursive.
 * hostile_gateways.proto has Chain only as a request (CalcGateway.Depth),
 * so the service is declared here from the generated message descriptors;
 * only the raw server below serves it.
 */
static const ProtobufCMethodDescriptor nest_methods[1] = {
    {"Nest", &flhostile__num__descriptor, &flhostile__chain__descriptor}};
static const unsigned nest_methods_by_name[1] = {0};
static const ProtobufCServiceDescriptor nest_descriptor = {
    PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC,
    "flhostile.NestGateway",
    "NestGateway",
    "Flhostile__NestGateway",
    "flhostile",
    1,
    nest_methods,
    nest_methods_by_name};
#define NEST (&nest_descriptor)
#define M_NEST 0u

/* A client service (name "fling", default maximum frame) and its gateway to
 * endpoint "calc" of a raw listening socket whose side the test plays. */
typedef struct rawsrv {
    int lfd;
    int port;
    raw_t r;
    fl_rpc_service_t *svc;
    bool own_svc; /* rawsrv_stop frees svc */
    fl_rpc_gateway_t *gw;
    uint64_t next_corr; /* of the client's next request */
} rawsrv_t;

/* Connects a desc gateway of client service svc to a raw server: HELLO both
 * ways, CONNECT (corr 1, endpoint "calc", desc's name) answered with
 * CONNECTED index 0. */
static inline void rawsrv_start_on(rawsrv_t *s,
                                   const ProtobufCServiceDescriptor *desc,
                                   fl_rpc_service_t *svc)
{
    memset(s, 0, sizeof *s);
    s->lfd = raw_listen(0, &s->port);
    s->svc = svc;
    char addr[96];
    snprintf(addr, sizeof addr, "fling.tcp://127.0.0.1:%d/calc", s->port);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(s->svc, addr, desc, NULL, &f));
    int fd = accept(s->lfd, NULL, NULL); /* bounded by SO_RCVTIMEO */
    if (fd < 0)
        fail_msg("accept: %s", strerror(errno));
    raw_fd_adopt(fd);
    s->r = raw_of(fd, FL__FRAME_DEFAULT_MAX, "raw-server",
                  FL__FRAME_DEFAULT_MAX, "fling", "calc");
    raw_hello(&s->r);
    frame_t c;
    char d[1200], ep[FL__ID_MAX + 1], gw[FL__NAME_MAX + 1];
    next_frame_or_fail(&s->r, &c, "CONNECT", 1);
    if (c.h.kind != FL__K_CONNECT || c.h.corr != 1)
        fail_msg("want CONNECT corr 1, got %s", describe(&c, d, sizeof d));
    assert_string_equal("calc", str_copy(c.m.endpoint, ep, sizeof ep));
    assert_string_equal(desc->name, str_copy(c.m.gateway, gw, sizeof gw));
    fl__frame_meta_t m;
    memset(&m, 0, sizeof m);
    m.service_index = 0;
    send_frame(&s->r, FL__K_CONNECTED, 0, c.h.corr, &m, NULL, 0);
    frame_clear(&c);
    fl_test_future_ok(f, "connect %s", addr);
    s->gw = fl_future_take_value(f);
    assert_non_null(s->gw);
    fl_future_release(f);
    s->next_corr = 2;
}

/* rawsrv_start_on a client service of its own. */
static inline void rawsrv_start(rawsrv_t *s,
                                const ProtobufCServiceDescriptor *desc)
{
    rawsrv_start_on(s, desc, client_service());
    s->own_svc = true;
}

/* Reads the INVOKE of the client's next call: an ask of method on "calc"
 * (service index 0) carrying Num(v, text). Returns its corr. */
static inline uint64_t rawsrv_invoke(rawsrv_t *s, uint32_t method, int64_t v,
                                     const char *text)
{
    frame_t f;
    char d[1200], ep[FL__ID_MAX + 1];
    next_frame_or_fail(&s->r, &f, "INVOKE", s->next_corr);
    if (f.h.kind != FL__K_INVOKE || f.h.corr != s->next_corr ||
        (f.h.flags & ~FL__F_DEADLINE) != 0 || f.m.service_index != 0 ||
        f.m.method_index != method)
        fail_msg("want INVOKE corr %llu of method %u, got %s (flags %u, "
                 "service %u, method %u)",
                 (unsigned long long)s->next_corr, (unsigned)method,
                 describe(&f, d, sizeof d), (unsigned)f.h.flags,
                 (unsigned)f.m.service_index, (unsigned)f.m.method_index);
    assert_string_equal("calc", str_copy(f.m.endpoint, ep, sizeof ep));
    Flhostile__Num *n = flhostile__num__unpack(NULL, f.h.body_len, f.body);
    assert_non_null(n);
    assert_int_equal(v, n->v);
    assert_string_equal(text, n->text);
    flhostile__num__free_unpacked(n, NULL);
    frame_clear(&f);
    return s->next_corr++;
}

static inline void rawsrv_reply(rawsrv_t *s, uint64_t corr, const void *body,
                                size_t len)
{
    send_frame(&s->r, FL__K_REPLY, 0, corr, NULL, body, len);
}

static inline void rawsrv_reply_num(rawsrv_t *s, uint64_t corr, int64_t v,
                                    const char *text)
{
    size_t len;
    uint8_t *body = pack_num(v, text, &len);
    rawsrv_reply(s, corr, body, len);
    free(body);
}

/* The client's Add(v, text) over the gateway, answered by the raw server
 * with Num(v + 1, text): the call succeeds with that value. */
static inline void rawsrv_expect_add(rawsrv_t *s, int64_t v, const char *text)
{
    Flhostile__Num req = FLHOSTILE__NUM__INIT;
    req.v = v;
    req.text = (char *)text;
    fl_future_t *f = fl_test_call(s->gw, M_ADD, &req.base, WAIT_MS);
    uint64_t corr = rawsrv_invoke(s, M_ADD, v, text);
    rawsrv_reply_num(s, corr, v + 1, text);
    fl_test_future_ok(f, "Add(%lld)", (long long)v);
    const Flhostile__Num *r = fl_future_value(f);
    assert_non_null(r);
    assert_ptr_equal(&flhostile__num__descriptor, r->base.descriptor);
    assert_int_equal(v + 1, r->v);
    assert_string_equal(text, r->text);
    fl_future_release(f);
}

/* Reads what the client sends until its connection closes: nothing but BYE
 * (no ERROR: the client found no protocol error); closes the raw sockets. */
static inline void rawsrv_drain(rawsrv_t *s)
{
    frame_t f;
    char d[1200];
    while (next_frame(&s->r, &f) == RD_FRAME) {
        if (f.h.kind != FL__K_BYE)
            fail_msg("want BYE or the connection closed, got %s",
                     describe(&f, d, sizeof d));
        frame_clear(&f);
    }
    raw_close(&s->r);
    raw_fd_close(s->lfd);
}

/* Frees the gateway and the client service (if s has its own), then
 * rawsrv_drain. */
static inline void rawsrv_stop(rawsrv_t *s)
{
    fl_rpc_gateway_free(s->gw);
    if (s->own_svc)
        fl_rpc_service_free(s->svc);
    rawsrv_drain(s);
}

/* The message of a call to s that timed out: "Invocation of <method> on
 * <s's address> timed out after <ms> ms (<how>)", into buf. */
static inline const char *rawsrv_timeout_msg(const rawsrv_t *s,
                                             const char *method, long long ms,
                                             const char *how, char *buf,
                                             size_t cap)
{
    snprintf(buf, cap,
             "Invocation of %s on fling.tcp://127.0.0.1:%d/calc timed out "
             "after %lld ms (%s)",
             method, s->port, ms, how);
    return buf;
}

/* A call's future must fail with FL_EDECODE and a message naming the
 * method, s's address and the reply type; msg gets the message. */
static inline void expect_decode_failure(const rawsrv_t *s, fl_future_t *f,
                                         const char *method, const char *type,
                                         char *msg, size_t cap)
{
    assert_fl(FL_EDECODE, fl_test_future_code(f));
    snprintf(msg, cap, "%s", fl_future_message(f));
    char want[256];
    snprintf(want, sizeof want,
             "Could not decode the reply of %s from "
             "fling.tcp://127.0.0.1:%d/calc: %s",
             method, s->port, type);
    if (strncmp(msg, want, strlen(want)) != 0)
        fail_msg("want a message starting \"%s\", got \"%s\"", want, msg);
    assert_null(fl_future_value(f));
}

/* A packed Chain nested n levels deep (the outermost counts as 1; the
 * innermost has no fields), built from the inside out without recursion.
 * Caller frees. */
static inline uint8_t *deep_chain(size_t n, size_t *len)
{
    size_t cap = n * 6 + 1, pos = cap;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    for (size_t i = 1; i < n; i++) {
        /* next = 1, length-delimited: key 0x0a, then the varint length. */
        uint8_t v[10];
        size_t vn = 0;
        for (uint64_t l = cap - pos; vn == 0 || l != 0; l >>= 7)
            v[vn++] = (uint8_t)((l & 0x7f) | (l >> 7 ? 0x80 : 0));
        pos -= vn;
        memcpy(buf + pos, v, vn);
        buf[--pos] = 0x0a;
    }
    *len = cap - pos;
    memmove(buf, buf + pos, *len);
    return buf;
}

#endif /* CLIENT_FIXTURE_H */
