/*
 * src/remote/frame.h - the frame codec of the wire protocol
 * (docs/wire-protocol.md, version 1). Bytes in, validated structures out,
 * and back. No I/O, no allocation: the decoder works on the caller's
 * buffer and checks every length before the caller allocates anything.
 */
#ifndef FL_REMOTE_FRAME_H
#define FL_REMOTE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include <fling/common.h>

#define FL__FRAME_MAGIC 0x464C4E47u /* "FLNG" */
#define FL__PROTO_VERSION 1u
#define FL__FRAME_HDR 24u
#define FL__META_MAX 65535u
#define FL__ID_MAX 200u
#define FL__NAME_MAX 1024u /* service and gateway names */
#define FL__ERRMSG_MAX 1024u
#define FL__FRAME_DEFAULT_MAX (10u * 1024u * 1024u)
/* The smallest maximum frame size a side may announce in HELLO (and a
 * service may be configured with). */
#define FL__FRAME_MIN_MAX 1024u

enum fl__frame_kind {
    FL__K_HELLO = 1,
    FL__K_CONNECT = 2,
    FL__K_CONNECTED = 3,
    FL__K_INVOKE = 4,
    FL__K_REPLY = 5,
    FL__K_ERROR = 6,
    FL__K_PING = 7,
    FL__K_PONG = 8,
    FL__K_BYE = 9,
    FL__K_FRAGMENT = 10 /* a piece of a larger frame (fragment.h) */
};

#define FL__F_TELL 0x0001u
#define FL__F_FENCED 0x0002u
/* CONNECTED and INVOKE: the metadata ends with the endpoint's 8-byte
 * instance id, so that a gateway reaches the endpoint it connected to and
 * never a successor under the same id (docs/wire-protocol.md). */
#define FL__F_INSTANCE 0x0004u
/* HELLO: the metadata ends with the sender's 8-byte incarnation, a random
 * id of the service's life, so that a peer restarted under the same
 * address is recognised (docs/wire-protocol.md). */
#define FL__F_INCARNATION 0x0010u
/* INVOKE: the metadata ends with a u32, the milliseconds the caller still
 * waits for the answer (its timeout), so that the server drops the call
 * once the caller has given up (docs/wire-protocol.md). */
#define FL__F_DEADLINE 0x0008u
/* FRAGMENT: the fragment that completes its frame. */
#define FL__F_LAST 0x0020u
/* CONNECTED: the metadata ends with the id (str16) of the endpoint the
 * CONNECT's pattern resolved to; set only when the CONNECT named a pattern
 * (docs/wire-protocol.md, Handshake). */
#define FL__F_RESOLVED 0x0040u

/* A frame above FL__FRAG_SIZE bytes goes out as FRAGMENT frames of at most
 * FL__FRAG_SIZE bytes each (docs/wire-protocol.md, Fragments). */
#define FL__FRAG_SIZE 65536u
/* The fragmented frames a receiver puts together at once, per connection;
 * one more is a protocol error. */
#define FL__FRAG_STREAMS 4u

typedef struct fl__frame_hdr {
    uint8_t version;
    uint8_t kind;
    uint16_t flags;
    uint64_t corr;
    uint32_t meta_len;
    uint32_t body_len;
} fl__frame_hdr_t;

/* A length-delimited string inside a frame (not NUL-terminated). */
typedef struct fl__str {
    const char *p;
    uint16_t len;
} fl__str_t;

/* The decoded metadata; which fields are set depends on the kind. */
typedef struct fl__frame_meta {
    uint32_t max_frame;     /* HELLO */
    fl__str_t service_name; /* HELLO */
    fl__str_t endpoint;     /* CONNECT, INVOKE, CONNECTED with RESOLVED */
    fl__str_t gateway;      /* CONNECT */
    uint32_t service_index; /* CONNECTED, INVOKE */
    uint32_t method_index;  /* INVOKE */
    uint8_t token[16];      /* INVOKE with FL__F_FENCED */
    uint64_t instance;      /* CONNECTED, INVOKE with FL__F_INSTANCE */
    uint64_t incarnation;   /* HELLO with FL__F_INCARNATION */
    uint32_t deadline_ms;   /* INVOKE with FL__F_DEADLINE */
    uint32_t code;          /* ERROR */
    fl__str_t message;      /* ERROR */
} fl__frame_meta_t;

/*
 * Decode and validate the 24-byte header at buf (len bytes available).
 * Returns FL_EPENDING if len < 24 and the bytes so far can begin a frame
 * (read more), FL_OK with *out filled, FL_EPROTO as soon as the bytes of
 * the magic differ, FL_EHANDSHAKE for another protocol version (as soon as
 * its byte is in), FL_EMSGSIZE if the frame is
 * larger than max_frame, FL_EPROTO for any other broken rule. On error,
 * `why` (may be NULL) receives a one-line reason naming the rule.
 */
int fl__frame_decode_hdr(const uint8_t *buf, size_t len, uint64_t max_frame,
                         fl__frame_hdr_t *out, char *why, size_t why_len);

/* Encode h (kind, flags, corr, lengths; version and magic are added). */
void fl__frame_encode_hdr(uint8_t out[FL__FRAME_HDR], const fl__frame_hdr_t *h);

/*
 * Decode the metadata of a frame whose header h was accepted: meta points
 * at exactly h->meta_len bytes. Strings in *out point into meta. Returns
 * FL_OK or FL_EPROTO (with `why`): every byte must be consumed, every
 * string must fit its field and limit, endpoint ids must be valid ids.
 */
int fl__frame_decode_meta(const fl__frame_hdr_t *h, const uint8_t *meta,
                          fl__frame_meta_t *out, char *why, size_t why_len);

/*
 * The metadata size of a frame of kind/flags carrying m, or 0 if m does
 * not fit the limits (a string too long). Always > 0 for valid input of
 * kinds with metadata; kinds without metadata return 0 and need none.
 */
size_t fl__frame_meta_size(uint8_t kind, uint16_t flags,
                           const fl__frame_meta_t *m);

/*
 * Encode the metadata into out (cap bytes). Returns the bytes written, or
 * 0 if it does not fit cap or the limits.
 */
size_t fl__frame_encode_meta(uint8_t kind, uint16_t flags,
                             const fl__frame_meta_t *m, uint8_t *out,
                             size_t cap);

/*
 * Encode the metadata into out, which holds fl__frame_meta_size(kind,
 * flags, m) bytes, a size already computed and found non-zero: the
 * encoder for callers that sized the frame. Returns the bytes written.
 */
size_t fl__frame_put_meta(uint8_t kind, uint16_t flags,
                          const fl__frame_meta_t *m, uint8_t *out);

/* True if s is a valid endpoint id (1..200 bytes of [A-Za-z0-9_.-]). */
int fl__valid_endpoint_id(const char *s, size_t len);

/* True if s is a valid endpoint id or pattern: 1..200 bytes of
 * [A-Za-z0-9_.-*]. (A pattern of * alone passes here; connecting refuses
 * it, with a reason.) */
int fl__valid_endpoint_pattern(const char *s, size_t len);

#endif /* FL_REMOTE_FRAME_H */
