/*
 * frame.c - the wire protocol's frame codec (docs/wire-protocol.md).
 *
 * Never trust the wire: the header alone decides whether a frame is
 * acceptable, in 64-bit arithmetic, before anyone allocates for it; the
 * metadata decoder consumes exactly meta_len bytes and bounds every string.
 */
#include "remote/frame.h"
#include "common/internal.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static inline uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline uint64_t get64(const uint8_t *p)
{
    return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

static inline void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

int fl__valid_endpoint_id(const char *s, size_t len)
{
    if (len == 0 || len > FL__ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int fl__valid_endpoint_pattern(const char *s, size_t len)
{
    if (len == 0 || len > FL__ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] != '*' && !fl__valid_endpoint_id(s + i, 1))
            return 0;
    return 1;
}

static const char *kind_name(unsigned k)
{
    static const char *const names[] = {
        "?",     "HELLO", "CONNECT", "CONNECTED", "INVOKE",  "REPLY",
        "ERROR", "PING",  "PONG",    "BYE",       "FRAGMENT"};
    return k <= FL__K_FRAGMENT ? names[k] : "?";
}

/* Smallest metadata of each kind (fixed parts and empty strings). */
static uint32_t meta_min(unsigned kind, uint16_t flags)
{
    switch (kind) {
    case FL__K_HELLO:
        return 4 + 2 + ((flags & FL__F_INCARNATION) ? 8 : 0);
    case FL__K_CONNECT:
        return 2 + 2;
    case FL__K_CONNECTED:
        return 4 + ((flags & FL__F_INSTANCE) ? 8 : 0) +
               ((flags & FL__F_RESOLVED) ? 2 : 0);
    case FL__K_INVOKE:
        return 2 + 4 + 4 + ((flags & FL__F_FENCED) ? 16 : 0) +
               ((flags & FL__F_INSTANCE) ? 8 : 0) +
               ((flags & FL__F_DEADLINE) ? 4 : 0);
    case FL__K_ERROR:
        return 4 + 2;
    default:
        return 0;
    }
}

/* The first min(len, 4) bytes at buf against the magic: FL_OK if they
 * match, else FL_EPROTO naming what came ("bad magic 0x4745 ..."). */
static int check_magic(const uint8_t *buf, size_t len, char *why,
                       size_t why_len)
{
    if (len >= 4 && get32(buf) == FL__FRAME_MAGIC)
        return FL_OK; /* every frame of a good peer */
    size_t k = len < 4 ? len : 4;
    uint32_t got = 0, want = 0;
    for (size_t i = 0; i < k; i++) {
        got = got << 8 | buf[i];
        want = want << 8 | ((FL__FRAME_MAGIC >> (24 - 8 * i)) & 0xffu);
    }
    if (got == want)
        return FL_OK;
    fl__say(why, why_len, "bad magic 0x%0*x (want 0x%08x)", (int)(2 * k), got,
            FL__FRAME_MAGIC);
    return FL_EPROTO;
}

/* FL_EHANDSHAKE for a frame of version v. */
static int version_mismatch(unsigned v, char *why, size_t why_len)
{
    fl__say(why, why_len,
            "Version mismatch between source (%u) and target (%u) rpc "
            "component. Please verify that all components have the same "
            "version.",
            v, FL__PROTO_VERSION);
    return FL_EHANDSHAKE;
}

int fl__frame_decode_hdr(const uint8_t *buf, size_t len, uint64_t max_frame,
                         fl__frame_hdr_t *out, char *why, size_t why_len)
{
    /* The magic and the version are checked as their bytes arrive, so
     * that a peer speaking another protocol is refused at its first wrong
     * byte, not held until the handshake deadline. */
    if (check_magic(buf, len, why, why_len) != FL_OK)
        return FL_EPROTO;
    if (len > 4 && buf[4] != FL__PROTO_VERSION)
        return version_mismatch(buf[4], why, why_len);
    if (len < FL__FRAME_HDR)
        return FL_EPENDING;
    fl__frame_hdr_t h;
    h.version = buf[4];
    h.kind = buf[5];
    h.flags = get16(buf + 6);
    h.corr = get64(buf + 8);
    h.meta_len = get32(buf + 16);
    h.body_len = get32(buf + 20);
    if (h.kind < FL__K_HELLO || h.kind > FL__K_FRAGMENT) {
        fl__say(why, why_len, "unknown frame kind %u", (unsigned)h.kind);
        return FL_EPROTO;
    }
    uint16_t allowed = 0;
    if (h.kind == FL__K_INVOKE)
        allowed = FL__F_TELL | FL__F_FENCED | FL__F_INSTANCE | FL__F_DEADLINE;
    else if (h.kind == FL__K_CONNECTED)
        allowed = FL__F_INSTANCE | FL__F_RESOLVED;
    else if (h.kind == FL__K_HELLO)
        allowed = FL__F_INCARNATION;
    else if (h.kind == FL__K_FRAGMENT)
        allowed = FL__F_LAST;
    if ((h.flags & ~allowed) != 0) {
        fl__say(why, why_len, "%s frame with unknown flags 0x%04x",
                kind_name(h.kind), (unsigned)h.flags);
        return FL_EPROTO;
    }
    uint64_t total = (uint64_t)FL__FRAME_HDR + h.meta_len + h.body_len;
    if (total > max_frame) {
        fl__say(why, why_len,
                "%s frame of %llu bytes exceeds the maximum frame size of %llu "
                "bytes",
                kind_name(h.kind), (unsigned long long)total,
                (unsigned long long)max_frame);
        return FL_EMSGSIZE;
    }
    if (h.meta_len > FL__META_MAX) {
        fl__say(why, why_len, "%s frame with %u bytes of metadata (limit %u)",
                kind_name(h.kind), (unsigned)h.meta_len, FL__META_MAX);
        return FL_EPROTO;
    }
    uint32_t min = meta_min(h.kind, h.flags);
    /* A resolved id makes a CONNECTED's metadata longer than its fixed
     * part. */
    bool meta_fixed =
        (h.kind == FL__K_CONNECTED && !(h.flags & FL__F_RESOLVED)) ||
        h.kind == FL__K_REPLY || h.kind == FL__K_PING || h.kind == FL__K_PONG ||
        h.kind == FL__K_BYE;
    if (h.meta_len < min || (meta_fixed && h.meta_len != min)) {
        fl__say(why, why_len, "%s frame with %u bytes of metadata (%s %u)",
                kind_name(h.kind), (unsigned)h.meta_len,
                meta_fixed ? "want exactly" : "want at least", (unsigned)min);
        return FL_EPROTO;
    }
    if (h.kind == FL__K_FRAGMENT && h.meta_len != 0 &&
        h.meta_len != FL__FRAME_HDR) {
        fl__say(why, why_len,
                "FRAGMENT frame with %u bytes of metadata (want 0 or %u)",
                (unsigned)h.meta_len, FL__FRAME_HDR);
        return FL_EPROTO;
    }
    if (h.body_len != 0 && h.kind != FL__K_INVOKE && h.kind != FL__K_REPLY &&
        h.kind != FL__K_FRAGMENT) {
        fl__say(why, why_len, "%s frame with a body of %u bytes (want none)",
                kind_name(h.kind), (unsigned)h.body_len);
        return FL_EPROTO;
    }
    if (h.kind == FL__K_INVOKE) {
        bool tell = (h.flags & FL__F_TELL) != 0;
        if (tell != (h.corr == 0)) {
            fl__say(why, why_len, "INVOKE %s with correlation id %llu",
                    tell ? "tell" : "ask", (unsigned long long)h.corr);
            return FL_EPROTO;
        }
    }
    if ((h.kind == FL__K_CONNECT || h.kind == FL__K_CONNECTED ||
         h.kind == FL__K_REPLY || h.kind == FL__K_FRAGMENT) &&
        h.corr == 0) {
        fl__say(why, why_len, "%s frame without a correlation id",
                kind_name(h.kind));
        return FL_EPROTO;
    }
    *out = h;
    return FL_OK;
}

void fl__frame_encode_hdr(uint8_t out[FL__FRAME_HDR], const fl__frame_hdr_t *h)
{
    put32(out, FL__FRAME_MAGIC);
    out[4] = FL__PROTO_VERSION;
    out[5] = h->kind;
    put16(out + 6, h->flags);
    put64(out + 8, h->corr);
    put32(out + 16, h->meta_len);
    put32(out + 20, h->body_len);
}

/* A cursor over exactly n bytes of metadata. */
typedef struct cursor {
    const uint8_t *p;
    size_t left;
} cursor_t;

static bool take(cursor_t *c, size_t n, const uint8_t **out)
{
    if (c->left < n)
        return false;
    *out = c->p;
    c->p += n;
    c->left -= n;
    return true;
}

static bool take32(cursor_t *c, uint32_t *v)
{
    const uint8_t *p;
    if (!take(c, 4, &p))
        return false;
    *v = get32(p);
    return true;
}

/* The 8-byte id (instance, incarnation) that ends the metadata when
 * `present` (its flag); 0 without it. */
static bool take_id(cursor_t *c, bool present, uint64_t *v)
{
    const uint8_t *p;
    *v = 0;
    if (!present)
        return true;
    if (!take(c, 8, &p))
        return false;
    *v = get64(p);
    return true;
}

static bool take_str(cursor_t *c, fl__str_t *s)
{
    const uint8_t *p;
    if (!take(c, 2, &p))
        return false;
    uint16_t n = get16(p);
    if (!take(c, n, &p))
        return false;
    s->p = (const char *)p;
    s->len = n;
    return true;
}

int fl__frame_decode_meta(const fl__frame_hdr_t *h, const uint8_t *meta,
                          fl__frame_meta_t *out, char *why, size_t why_len)
{
    /* A copy of a zero template, not memset: gcc's generic tuning makes
     * memset of this size a `rep stos`, which costs more than the rest of
     * the decoding of a REPLY. */
    static const fl__frame_meta_t none;
    *out = none;
    cursor_t c = {meta, h->meta_len};
    const char *field = "metadata";
    bool ok = true;
    switch (h->kind) {
    case FL__K_HELLO:
        field = "HELLO";
        ok =
            take32(&c, &out->max_frame) && take_str(&c, &out->service_name) &&
            take_id(&c, (h->flags & FL__F_INCARNATION) != 0, &out->incarnation);
        if (ok && out->max_frame < FL__FRAME_MIN_MAX) {
            fl__say(why, why_len, "HELLO announces a maximum frame of %u bytes",
                    (unsigned)out->max_frame);
            return FL_EPROTO;
        }
        if (ok && out->service_name.len > FL__NAME_MAX) {
            fl__say(why, why_len, "HELLO service name of %u bytes (limit %u)",
                    (unsigned)out->service_name.len, FL__NAME_MAX);
            return FL_EPROTO;
        }
        break;
    case FL__K_CONNECT:
        field = "CONNECT";
        ok = take_str(&c, &out->endpoint) && take_str(&c, &out->gateway);
        if (ok && (out->gateway.len == 0 || out->gateway.len > FL__NAME_MAX)) {
            fl__say(why, why_len, "CONNECT gateway name of %u bytes",
                    (unsigned)out->gateway.len);
            return FL_EPROTO;
        }
        break;
    case FL__K_CONNECTED:
        field = "CONNECTED";
        ok = take32(&c, &out->service_index) &&
             take_id(&c, (h->flags & FL__F_INSTANCE) != 0, &out->instance);
        if (ok && (h->flags & FL__F_RESOLVED)) {
            ok = take_str(&c, &out->endpoint);
            if (ok &&
                !fl__valid_endpoint_id(out->endpoint.p, out->endpoint.len)) {
                fl__say(why, why_len,
                        "CONNECTED names an invalid resolved endpoint id (%u "
                        "bytes)",
                        (unsigned)out->endpoint.len);
                return FL_EPROTO;
            }
        }
        break;
    case FL__K_INVOKE: {
        field = "INVOKE";
        ok = take_str(&c, &out->endpoint) && take32(&c, &out->service_index) &&
             take32(&c, &out->method_index);
        const uint8_t *t;
        if (ok && (h->flags & FL__F_FENCED)) {
            ok = take(&c, 16, &t);
            if (ok)
                memcpy(out->token, t, 16);
        }
        ok =
            ok && take_id(&c, (h->flags & FL__F_INSTANCE) != 0, &out->instance);
        if (ok && (h->flags & FL__F_DEADLINE))
            ok = take32(&c, &out->deadline_ms);
        break;
    }
    case FL__K_ERROR:
        field = "ERROR";
        ok = take32(&c, &out->code) && take_str(&c, &out->message);
        if (ok && out->code == FL_OK) {
            fl__say(why, why_len, "ERROR frame with code 0");
            return FL_EPROTO;
        }
        if (ok && out->message.len > FL__ERRMSG_MAX) {
            fl__say(why, why_len, "ERROR message of %u bytes (limit %u)",
                    (unsigned)out->message.len, FL__ERRMSG_MAX);
            return FL_EPROTO;
        }
        break;
    case FL__K_FRAGMENT:
        /* The first fragment's metadata is its frame's header, which the
         * reassembly checks (fragment.c). */
        c.left = 0;
        break;
    default:
        break;
    }
    if (!ok) {
        fl__say(why, why_len, "%s metadata truncated (%u bytes)", field,
                (unsigned)h->meta_len);
        return FL_EPROTO;
    }
    if (c.left != 0) {
        fl__say(why, why_len, "%s metadata has %zu trailing bytes", field,
                c.left);
        return FL_EPROTO;
    }
    /* A CONNECT may name a pattern (the server resolves it); an INVOKE
     * names the id itself. */
    if ((h->kind == FL__K_CONNECT &&
         !fl__valid_endpoint_pattern(out->endpoint.p, out->endpoint.len)) ||
        (h->kind == FL__K_INVOKE &&
         !fl__valid_endpoint_id(out->endpoint.p, out->endpoint.len))) {
        fl__say(why, why_len, "%s names an invalid endpoint id (%u bytes)",
                field, (unsigned)out->endpoint.len);
        return FL_EPROTO;
    }
    return FL_OK;
}

size_t fl__frame_meta_size(uint8_t kind, uint16_t flags,
                           const fl__frame_meta_t *m)
{
    switch (kind) {
    case FL__K_HELLO:
        return m->service_name.len > FL__NAME_MAX
                   ? 0
                   : 4 + 2 + (size_t)m->service_name.len +
                         ((flags & FL__F_INCARNATION) ? 8 : 0);
    case FL__K_CONNECT:
        if (m->endpoint.len > FL__ID_MAX || m->gateway.len > FL__NAME_MAX)
            return 0;
        return 2 + (size_t)m->endpoint.len + 2 + m->gateway.len;
    case FL__K_CONNECTED:
        if ((flags & FL__F_RESOLVED) && m->endpoint.len > FL__ID_MAX)
            return 0;
        return 4 + ((flags & FL__F_INSTANCE) ? 8 : 0) +
               ((flags & FL__F_RESOLVED) ? 2 + (size_t)m->endpoint.len : 0);
    case FL__K_INVOKE:
        if (m->endpoint.len > FL__ID_MAX)
            return 0;
        return 2 + (size_t)m->endpoint.len + 4 + 4 +
               ((flags & FL__F_FENCED) ? 16 : 0) +
               ((flags & FL__F_INSTANCE) ? 8 : 0) +
               ((flags & FL__F_DEADLINE) ? 4 : 0);
    case FL__K_ERROR: {
        size_t n =
            m->message.len > FL__ERRMSG_MAX ? FL__ERRMSG_MAX : m->message.len;
        return 4 + 2 + n;
    }
    default:
        return 0;
    }
}

/* The 8-byte id that ends the metadata when `present` (its flag). */
static uint8_t *put_id(uint8_t *p, bool present, uint64_t id)
{
    if (!present)
        return p;
    put64(p, id);
    return p + 8;
}

static uint8_t *put_str(uint8_t *p, fl__str_t s, size_t limit)
{
    size_t n = s.len > limit ? limit : s.len;
    put16(p, (uint16_t)n);
    if (n != 0)
        memcpy(p + 2, s.p, n);
    return p + 2 + n;
}

size_t fl__frame_put_meta(uint8_t kind, uint16_t flags,
                          const fl__frame_meta_t *m, uint8_t *out)
{
    uint8_t *p = out;
    switch (kind) {
    case FL__K_HELLO:
        put32(p, m->max_frame);
        p = put_str(p + 4, m->service_name, FL__NAME_MAX);
        p = put_id(p, (flags & FL__F_INCARNATION) != 0, m->incarnation);
        break;
    case FL__K_CONNECT:
        p = put_str(p, m->endpoint, FL__ID_MAX);
        p = put_str(p, m->gateway, FL__NAME_MAX);
        break;
    case FL__K_CONNECTED:
        put32(p, m->service_index);
        p += 4;
        p = put_id(p, (flags & FL__F_INSTANCE) != 0, m->instance);
        if (flags & FL__F_RESOLVED)
            p = put_str(p, m->endpoint, FL__ID_MAX);
        break;
    case FL__K_INVOKE:
        p = put_str(p, m->endpoint, FL__ID_MAX);
        put32(p, m->service_index);
        put32(p + 4, m->method_index);
        p += 8;
        if (flags & FL__F_FENCED) {
            memcpy(p, m->token, 16);
            p += 16;
        }
        p = put_id(p, (flags & FL__F_INSTANCE) != 0, m->instance);
        if (flags & FL__F_DEADLINE) {
            put32(p, m->deadline_ms);
            p += 4;
        }
        break;
    case FL__K_ERROR:
        put32(p, m->code);
        p = put_str(p + 4, m->message, FL__ERRMSG_MAX);
        break;
    default:
        return 0;
    }
    return (size_t)(p - out);
}

size_t fl__frame_encode_meta(uint8_t kind, uint16_t flags,
                             const fl__frame_meta_t *m, uint8_t *out,
                             size_t cap)
{
    size_t n = fl__frame_meta_size(kind, flags, m);
    if (n == 0 || n > cap)
        return 0;
    return fl__frame_put_meta(kind, flags, m, out);
}
