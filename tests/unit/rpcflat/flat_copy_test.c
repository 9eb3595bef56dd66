/*
 * flat_copy_test.c - local calls copy flat messages struct to struct
 * (src/rpc/flat.h) with the result of packing then unpacking them.
 *
 * The reference of every copy is protobuf-c itself: the copy must hold,
 * field by field (presence, oneof case, value bytes), what
 * protobuf_c_message_unpack makes of protobuf_c_message_pack's bytes. The
 * kinds of messages (plain, field by field, packed); chosen cases (unset
 * fields with garbage values, bools that are not 0 or 1, -0.0, NaN, every
 * oneof member, a case out of range); random structs; and the copies a
 * local service makes of requests (calls and tells) and replies (a
 * future's, a closure's).
 */
#include "fl_test.h"

#include "rpc/flat.h"

#include "flat2.pb-c.h"
#include "flat3.pb-c.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the reference and the comparison ------------------------------------ */

/* What unpacking the packed m gives; free it with
 * protobuf_c_message_free_unpacked(r, NULL). */
static ProtobufCMessage *roundtrip(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    assert_non_null(buf);
    assert_int_equal(n, protobuf_c_message_pack(m, buf));
    ProtobufCMessage *r =
        protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
    free(buf);
    assert_non_null(r);
    return r;
}

static size_t value_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    default:
        return 4;
    }
}

static uint64_t bytes_of(const void *p, size_t n)
{
    uint64_t v = 0;
    memcpy(&v, p, n);
    return v;
}

/* got holds what want holds: the descriptor, no unknown fields, and for
 * every field its presence (has_ or the oneof case) and its value bytes. */
static void assert_same(const ProtobufCMessage *want,
                        const ProtobufCMessage *got, const char *what)
{
    assert_ptr_equal(want->descriptor, got->descriptor);
    assert_int_equal(0, got->n_unknown_fields);
    assert_int_equal(want->n_unknown_fields, got->n_unknown_fields);
    const ProtobufCMessageDescriptor *d = want->descriptor;
    const char *w = (const char *)want, *g = (const char *)got;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL ||
            (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
            uint64_t a = bytes_of(w + f->quantifier_offset, 4);
            uint64_t b = bytes_of(g + f->quantifier_offset, 4);
            if (a != b)
                fail_msg("%s: %s.%s: presence %llu, want %llu", what, d->name,
                         f->name, (unsigned long long)b, (unsigned long long)a);
        }
        size_t n = value_size(f->type);
        uint64_t a = bytes_of(w + f->offset, n);
        uint64_t b = bytes_of(g + f->offset, n);
        if (a != b)
            fail_msg("%s: %s.%s: value 0x%llx, want 0x%llx", what, d->name,
                     f->name, (unsigned long long)b, (unsigned long long)a);
    }
}

/* Room for a copy of any message of these tests. */
typedef union copy_buf {
    max_align_t align;
    char bytes[512];
} copy_buf_t;

/* Copy m flat and compare the copy with the round trip. */
static void check_copy(const ProtobufCMessage *m, const char *what)
{
    fl__rpc_flat_t kind = fl__rpc_flat_of(m);
    assert_int_not_equal(FL__FLAT_NO, kind);
    copy_buf_t buf;
    assert_true(m->descriptor->sizeof_message <= sizeof buf.bytes);
    memset(buf.bytes, 0xa5, sizeof buf.bytes); /* no zeros by chance */
    ProtobufCMessage *got = (ProtobufCMessage *)buf.bytes;
    fl__rpc_flat_copy(kind, m, got);
    ProtobufCMessage *want = roundtrip(m);
    assert_same(want, got, what);
    protobuf_c_message_free_unpacked(want, NULL);
}

/* ---- kinds --------------------------------------------------------------- */

static void test_kinds(void **state)
{
    (void)state;
    assert_int_equal(FL__FLAT_PLAIN,
                     fl__rpc_flat_kind(&flflat3__plain__descriptor));
    assert_int_equal(FL__FLAT_PLAIN,
                     fl__rpc_flat_kind(&flflat3__nothing__descriptor));
    assert_int_equal(FL__FLAT_FIELDS,
                     fl__rpc_flat_kind(&flflat3__p3__descriptor));
    assert_int_equal(FL__FLAT_FIELDS,
                     fl__rpc_flat_kind(&flflat3__flags__descriptor));
    assert_int_equal(FL__FLAT_FIELDS,
                     fl__rpc_flat_kind(&flflat3__real__descriptor));
    assert_int_equal(FL__FLAT_FIELDS,
                     fl__rpc_flat_kind(&flflat__p2__descriptor));
    assert_int_equal(FL__FLAT_NO,
                     fl__rpc_flat_kind(&flflat__named__descriptor));
    assert_int_equal(FL__FLAT_NO,
                     fl__rpc_flat_kind(&flflat3__many__descriptor));
    assert_int_equal(FL__FLAT_NO,
                     fl__rpc_flat_kind(&flflat3__outer__descriptor));
    /* A message with unknown fields packs them: it is not copied flat. */
    Flflat3__Plain p = FLFLAT3__PLAIN__INIT;
    ProtobufCMessageUnknownField u = {0};
    assert_int_equal(FL__FLAT_PLAIN, fl__rpc_flat_of(&p.base));
    p.base.n_unknown_fields = 1;
    p.base.unknown_fields = &u;
    assert_int_equal(FL__FLAT_NO, fl__rpc_flat_of(&p.base));
}

/* ---- chosen cases -------------------------------------------------------- */

/* Every optional field unset but holding garbage: the copy has the
 * defaults (i64 7, f 1.5, color BLUE), as unpacking gives. */
static void test_p2_unset_takes_the_defaults(void **state)
{
    (void)state;
    Flflat__P2 m = FLFLAT__P2__INIT;
    m.req = -5;
    m.req64 = INT64_MIN;
    m.i64 = 99;
    m.flag = 3;
    m.f = 2.5f;
    m.s32 = -7;
    m.color = FLFLAT__COLOR__GREEN;
    m.d = 8.25;
    m.fx32 = 4;
    m.sfx64 = -4;
    m.u32 = 12;
    m.y = UINT64_MAX; /* the oneof unset: its union too */
    check_copy(&m.base, "unset");
    copy_buf_t buf;
    Flflat__P2 *c = (Flflat__P2 *)buf.bytes;
    fl__rpc_flat_copy(FL__FLAT_FIELDS, &m.base, &c->base);
    assert_int_equal(-5, c->req);
    assert_int_equal(0, c->has_i64);
    assert_int_equal(7, c->i64);
    assert_true(c->f == 1.5f);
    assert_int_equal(FLFLAT__COLOR__BLUE, c->color);
    assert_int_equal(FLFLAT__P2__PICK__NOT_SET, c->pick_case);
    assert_int_equal(0, c->y);
}

/* Every optional field set: has_ 1 whatever it was, bools 0 or 1. */
static void test_p2_set_copies_normalised(void **state)
{
    (void)state;
    Flflat__P2 m = FLFLAT__P2__INIT;
    m.req = 1;
    m.has_i64 = 1;
    m.i64 = -1;
    m.has_flag = 9; /* any non-zero has_ means set */
    m.flag = 0x100;
    m.has_f = 1;
    m.f = -0.0f; /* set: packed and kept, sign and all */
    m.has_s32 = 1;
    m.s32 = INT32_MIN;
    m.has_color = 1;
    m.color = 77; /* outside the enum: unpack keeps it */
    m.has_d = 1;
    m.d = NAN;
    m.has_fx32 = 1;
    m.fx32 = UINT32_MAX;
    m.has_sfx64 = 1;
    m.sfx64 = INT64_MIN;
    m.has_u32 = 1;
    m.u32 = 0;
    m.req64 = -1;
    m.pick_case = FLFLAT__P2__PICK_Z;
    m.z = -3;
    check_copy(&m.base, "set");
    copy_buf_t buf;
    Flflat__P2 *c = (Flflat__P2 *)buf.bytes;
    fl__rpc_flat_copy(FL__FLAT_FIELDS, &m.base, &c->base);
    assert_int_equal(1, c->has_flag);
    assert_int_equal(1, c->flag);
    assert_int_equal(1, c->z);
    assert_true(signbit(c->f));
    assert_true(isnan(c->d));
}

/* Each member of the oneof in turn, and a case that names none. */
static void test_p2_oneof_members(void **state)
{
    (void)state;
    Flflat__P2 m = FLFLAT__P2__INIT;
    m.pick_case = FLFLAT__P2__PICK_X;
    m.y = 0x1122334455667788ull; /* x is its low half */
    check_copy(&m.base, "oneof x");
    m.pick_case = FLFLAT__P2__PICK_Y;
    check_copy(&m.base, "oneof y");
    m.pick_case = FLFLAT__P2__PICK_W;
    m.w = -0.0;
    check_copy(&m.base, "oneof w");
    m.pick_case = FLFLAT__P2__PICK_Z;
    m.z = 0;
    check_copy(&m.base, "oneof z");
    m.pick_case = (Flflat__P2__PickCase)99;
    check_copy(&m.base, "oneof case 99");
}

/* proto3: zero values (-0.0 among them) are not packed and come back +0;
 * bools come back 0 or 1. */
static void test_p3_zeros_and_bools(void **state)
{
    (void)state;
    Flflat3__P3 m = FLFLAT3__P3__INIT;
    m.seq = 5;
    m.on = 2;
    m.f = -0.0f;
    m.d = -0.0;
    m.pick_case = FLFLAT3__P3__PICK_Z;
    m.z = 0x10;
    check_copy(&m.base, "p3");
    copy_buf_t buf;
    Flflat3__P3 *c = (Flflat3__P3 *)buf.bytes;
    fl__rpc_flat_copy(FL__FLAT_FIELDS, &m.base, &c->base);
    assert_int_equal(5, c->seq);
    assert_int_equal(1, c->on);
    assert_false(signbit(c->f));
    assert_false(signbit(c->d));
    assert_int_equal(1, c->z);
    m.d = NAN;
    m.on = 0;
    m.pick_case = FLFLAT3__P3__PICK_X;
    m.x = -1;
    check_copy(&m.base, "p3 nan");
}

/* ---- random structs ------------------------------------------------------ */

/* xorshift64*: the same cases every run. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* Fill every 32-bit word after the base with zero, a small number (the
 * oneof case ids, 0/1/2 bools), or random bits (NaNs, -0.0 now and then). */
static void fill(ProtobufCMessage *m, uint64_t *s)
{
    size_t n = m->descriptor->sizeof_message;
    for (size_t off = sizeof *m; off + 4 <= n; off += 4) {
        uint64_t r = rnd(s);
        uint32_t v = r % 3 == 0   ? 0
                     : r % 3 == 1 ? (uint32_t)(r >> 8) % 16
                                  : (uint32_t)(r >> 32);
        if ((r >> 4) % 64 == 0)
            v = 0x80000000u; /* -0.0f, or the sign word of a -0.0 */
        memcpy((char *)m + off, &v, sizeof v);
    }
}

static void test_random_structs(void **state)
{
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 20000; i++) {
        Flflat__P2 p2 = FLFLAT__P2__INIT;
        fill(&p2.base, &s);
        check_copy(&p2.base, "random P2");
        Flflat3__P3 p3 = FLFLAT3__P3__INIT;
        fill(&p3.base, &s);
        check_copy(&p3.base, "random P3");
        Flflat3__Plain pl = FLFLAT3__PLAIN__INIT;
        fill(&pl.base, &s);
        check_copy(&pl.base, "random Plain");
        Flflat3__Flags fg = FLFLAT3__FLAGS__INIT;
        fill(&fg.base, &s);
        check_copy(&fg.base, "random Flags");
        Flflat3__Real re = FLFLAT3__REAL__INIT;
        fill(&re.base, &s);
        check_copy(&re.base, "random Real");
    }
}

/* ---- through a local service --------------------------------------------- */

/* What the handlers saw, on the endpoint's main thread; read after the
 * call's answer (or the latch) published it. */
static copy_buf_t seen;
static fl_test_latch_t *told;

/* What Echo2 and Echo3 answer: the request with odd values of their own
 * (unset fields holding garbage, a bool of 5), so that the reply's copy
 * has its own rules to apply. */
static Flflat__P2 odd_reply2(const Flflat__P2 *in)
{
    Flflat__P2 out = *in;
    out.has_i64 = 0;
    out.i64 = 1234;
    out.has_flag = 1;
    out.flag = 5;
    return out;
}

static Flflat3__P3 odd_reply3(const Flflat3__P3 *in)
{
    Flflat3__P3 out = *in;
    out.on = 5;
    out.f = -0.0f;
    return out;
}

static void h2_echo2(Flflat__FlatGateway_Service *svc, const Flflat__P2 *in,
                     Flflat__P2_Closure closure, void *call)
{
    (void)svc;
    memcpy(seen.bytes, in, sizeof *in);
    Flflat__P2 out = odd_reply2(in);
    closure(&out, call);
}

/* The name lives on the handler's stack: a reply copied as a flat struct
 * would carry a pointer to it. */
static void h2_name(Flflat__FlatGateway_Service *svc, const Flflat__P2 *in,
                    Flflat__Named_Closure closure, void *call)
{
    (void)svc;
    char name[32];
    snprintf(name, sizeof name, "name-%d", (int)in->req);
    Flflat__Named out = FLFLAT__NAMED__INIT;
    out.has_n = 1;
    out.n = in->req;
    out.name = name;
    closure(&out, call);
}

static void h3_echo_plain(Flflat3__Flat3Gateway_Service *svc,
                          const Flflat3__Plain *in,
                          Flflat3__Plain_Closure closure, void *call)
{
    (void)svc;
    memcpy(seen.bytes, in, sizeof *in);
    closure(in, call);
}

static void h3_echo3(Flflat3__Flat3Gateway_Service *svc, const Flflat3__P3 *in,
                     Flflat3__P3_Closure closure, void *call)
{
    (void)svc;
    memcpy(seen.bytes, in, sizeof *in);
    Flflat3__P3 out = odd_reply3(in);
    closure(&out, call);
}

/* A tell: records the request, answers (the answer goes nowhere). */
static void h3_count(Flflat3__Flat3Gateway_Service *svc, const Flflat3__P3 *in,
                     Flflat3__Plain_Closure closure, void *call)
{
    (void)svc;
    memcpy(seen.bytes, in, sizeof *in);
    Flflat3__Plain out = FLFLAT3__PLAIN__INIT;
    out.a = in->seq;
    closure(&out, call);
    fl_test_latch_count_down(told);
}

static Flflat__FlatGateway_Service impl2 = FLFLAT__FLAT_GATEWAY__INIT(h2_);
static Flflat3__Flat3Gateway_Service impl3 = FLFLAT3__FLAT3_GATEWAY__INIT(h3_);

typedef struct flat_fx {
    fl_rpc_service_t *svc;
    fl_rpc_endpoint_t *ep;
} flat_fx_t;

static void fx_open_on(flat_fx_t *fx, int workers)
{
    fl_rpc_service_opts_t o = {0};
    o.workers = workers;
    assert_fl_ok(fl_rpc_service_alloc(&o, &fx->svc));
    ProtobufCService *const services[] = {&impl2.base, &impl3.base};
    fl_rpc_endpoint_opts_t eo = {
        .id = "flat", .services = services, .nservices = 2};
    assert_fl_ok(fl_rpc_endpoint_create(fx->svc, &eo, &fx->ep));
    assert_fl_ok(fl_rpc_endpoint_start(fx->ep));
}

static void fx_open(flat_fx_t *fx)
{
    fx_open_on(fx, 2);
}

static fl_rpc_gateway_t *fx_gw(flat_fx_t *fx,
                               const ProtobufCServiceDescriptor *desc)
{
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(fx->svc, fl_rpc_endpoint_address(fx->ep), desc,
                                NULL, &f));
    assert_fl_ok(fl_future_wait(f, 30000));
    fl_rpc_gateway_t *gw = fl_future_take_value(f);
    fl_future_release(f);
    assert_non_null(gw);
    return gw;
}

static void fx_close(flat_fx_t *fx)
{
    fl_test_service_end(fx->svc);
    fl_rpc_endpoint_free(fx->ep);
}

/* A P2 with unset fields holding garbage and odd bools. */
static Flflat__P2 odd_p2(void)
{
    Flflat__P2 m = FLFLAT__P2__INIT;
    m.req = 42;
    m.i64 = 99; /* unset */
    m.has_flag = 3;
    m.flag = 6;
    m.has_f = 1;
    m.f = -0.0f;
    m.color = FLFLAT__COLOR__RED; /* unset: BLUE on the other side */
    m.req64 = -9;
    m.pick_case = FLFLAT__P2__PICK_Z;
    m.z = 4;
    return m;
}

static void test_local_call_copies_request_and_reply(void **state)
{
    (void)state;
    flat_fx_t fx;
    fx_open(&fx);
    fl_rpc_gateway_t *gw = fx_gw(&fx, &flflat__flat_gateway__descriptor);
    Flflat__P2 req = odd_p2();
    ProtobufCMessage *want = roundtrip(&req.base);
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(fl_rpc_call_sync(gw, 0, &req.base, 30000, &reply));
    assert_same(want, (ProtobufCMessage *)seen.bytes, "request");
    Flflat__P2 out = odd_reply2((Flflat__P2 *)want);
    ProtobufCMessage *want_reply = roundtrip(&out.base);
    assert_same(want_reply, reply, "reply");
    assert_int_equal(0, ((Flflat__P2 *)reply)->has_i64);
    assert_int_equal(7, ((Flflat__P2 *)reply)->i64);
    assert_int_equal(1, ((Flflat__P2 *)reply)->flag);
    protobuf_c_message_free_unpacked(want_reply, NULL);
    protobuf_c_message_free_unpacked(reply, NULL);

    fl_rpc_gateway_t *gw3 = fx_gw(&fx, &flflat3__flat3_gateway__descriptor);
    Flflat3__Plain pl = FLFLAT3__PLAIN__INIT;
    pl.a = UINT64_MAX;
    pl.b = -2;
    pl.m = 5;
    assert_fl_ok(fl_rpc_call_sync(gw3, 0, &pl.base, 30000, &reply));
    ProtobufCMessage *want3 = roundtrip(&pl.base);
    assert_same(want3, (ProtobufCMessage *)seen.bytes, "plain request");
    assert_same(want3, reply, "plain reply");
    protobuf_c_message_free_unpacked(reply, NULL);
    protobuf_c_message_free_unpacked(want3, NULL);
    protobuf_c_message_free_unpacked(want, NULL);
    fl_rpc_gateway_free(gw3);
    fl_rpc_gateway_free(gw);
    fx_close(&fx);
}

/* A closure's reply (borrowed from the reply message itself) and a tell. */
typedef struct closure_seen {
    copy_buf_t reply;
    int calls;
    fl_test_latch_t *done;
} closure_seen_t;

static void on_p3(const Flflat3__P3 *r, void *data)
{
    closure_seen_t *cs = data;
    cs->calls++;
    if (r != NULL)
        memcpy(cs->reply.bytes, r, sizeof *r);
    fl_test_latch_count_down(cs->done);
}

static void test_local_closure_and_tell(void **state)
{
    (void)state;
    flat_fx_t fx;
    fx_open(&fx);
    fl_rpc_gateway_t *gw = fx_gw(&fx, &flflat3__flat3_gateway__descriptor);
    ProtobufCService *stub = fl_rpc_gateway_service(gw);
    Flflat3__P3 req = FLFLAT3__P3__INIT;
    req.seq = 77;
    req.on = 9;
    req.d = -0.0;
    req.pick_case = FLFLAT3__P3__PICK_X;
    req.x = INT64_MIN;
    ProtobufCMessage *want = roundtrip(&req.base);

    closure_seen_t cs = {.done = fl_test_latch_alloc(1)};
    flflat3__flat3_gateway__echo3(stub, &req, on_p3, &cs);
    assert_fl_ok(fl_rpc_last_error());
    assert_fl_ok(fl_test_latch_wait(cs.done, 30000));
    assert_int_equal(1, cs.calls);
    assert_same(want, (ProtobufCMessage *)seen.bytes, "closure request");
    Flflat3__P3 out = odd_reply3((Flflat3__P3 *)want);
    ProtobufCMessage *want_reply = roundtrip(&out.base);
    assert_same(want_reply, (ProtobufCMessage *)cs.reply.bytes,
                "closure reply");
    assert_int_equal(1, ((Flflat3__P3 *)cs.reply.bytes)->on);
    protobuf_c_message_free_unpacked(want_reply, NULL);
    fl_test_latch_free(cs.done);

    told = fl_test_latch_alloc(1);
    req.seq = 78;
    flflat3__flat3_gateway__count(stub, &req, NULL, NULL);
    assert_fl_ok(fl_rpc_last_error());
    /* The sender's message is its own again at once. */
    req.seq = 0;
    assert_fl_ok(fl_test_latch_wait(told, 30000));
    protobuf_c_message_free_unpacked(want, NULL);
    req.seq = 78;
    want = roundtrip(&req.base);
    assert_same(want, (ProtobufCMessage *)seen.bytes, "tell request");
    fl_test_latch_free(told);
    told = NULL;
    protobuf_c_message_free_unpacked(want, NULL);
    fl_rpc_gateway_free(gw);
    fx_close(&fx);
}

/* One endpoint thread answers a flat reply, then one that is not (a
 * string), over and over: each is copied as its own type says (the kind
 * of the last reply's type is cached per thread), so the string arrives
 * and the reply frees as an unpacked message. */
static void test_flat_and_packed_replies_alternate_on_one_thread(void **state)
{
    (void)state;
    flat_fx_t fx;
    fx_open_on(&fx, 1);
    fl_rpc_gateway_t *gw = fx_gw(&fx, &flflat__flat_gateway__descriptor);
    for (int i = 0; i < 4; i++) {
        Flflat__P2 req = odd_p2();
        req.req = 100 + i;
        ProtobufCMessage *reply = NULL;
        assert_fl_ok(fl_rpc_call_sync(gw, 0, &req.base, 30000, &reply));
        assert_int_equal(100 + i, ((Flflat__P2 *)reply)->req);
        assert_int_equal(1, ((Flflat__P2 *)reply)->flag);
        protobuf_c_message_free_unpacked(reply, NULL);
        assert_fl_ok(fl_rpc_call_sync(gw, 1, &req.base, 30000, &reply));
        Flflat__Named *named = (Flflat__Named *)reply;
        char want[32];
        snprintf(want, sizeof want, "name-%d", 100 + i);
        assert_int_equal(100 + i, named->n);
        assert_string_equal(want, named->name);
        protobuf_c_message_free_unpacked(reply, NULL);
    }
    fl_rpc_gateway_free(gw);
    fx_close(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_kinds),
        FL_TEST(test_p2_unset_takes_the_defaults),
        FL_TEST(test_p2_set_copies_normalised),
        FL_TEST(test_p2_oneof_members),
        FL_TEST(test_p3_zeros_and_bools),
        FL_TEST(test_random_structs),
        FL_TEST(test_local_call_copies_request_and_reply),
        FL_TEST(test_local_closure_and_tell),
        FL_TEST(test_flat_and_packed_replies_alternate_on_one_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
