/*
 * src/remote/rx.h - the receiving side of one connection, without I/O: it
 * cuts a byte stream into frames and enforces the stream-level rules of
 * docs/wire-protocol.md (HELLO first and only once, sizes against the
 * announced maximum, metadata that parses exactly). The transport feeds it
 * what it reads; the fuzzer feeds it anything.
 */
#ifndef FL_REMOTE_RX_H
#define FL_REMOTE_RX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "remote/frame.h"

typedef struct fl__rx {
    uint32_t max_frame; /* ours: frames above it are refused */
    bool got_hello;
    uint32_t peer_max; /* from the peer's HELLO */
} fl__rx_t;

/* One frame, pointing into the caller's buffer. */
typedef struct fl__rx_frame {
    fl__frame_hdr_t h;
    fl__frame_meta_t m;
    const uint8_t *body; /* h.body_len bytes */
    size_t size;         /* the whole frame: header + meta + body */
} fl__rx_frame_t;

/* Start reading a new connection whose frames may be up to max_frame. */
void fl__rx_init(fl__rx_t *rx, uint32_t max_frame);

/*
 * fl__rx_next looks at the len bytes at buf (the unread part of the
 * stream) and returns:
 *   FL_OK        a whole, valid frame is at buf: *out describes it (its
 *                pointers borrow buf) and out->size bytes are consumed;
 *   FL_EPENDING  more bytes are needed: *need is the total the caller must
 *                hold before calling again (24 for a header; the frame's
 *                size once the header was accepted, never above max_frame);
 *   FL_EHANDSHAKE the first frame is not HELLO, or a frame speaks another
 *                protocol version;
 *   FL_EMSGSIZE  the header announces a frame above max_frame;
 *   FL_EPROTO    any other broken rule (a second HELLO, an announced
 *                maximum below FL__FRAME_MIN_MAX, bad metadata, ...).
 * Errors end the connection; `why` (may be NULL) gets one line naming the
 * rule. No allocation, no I/O. HELLO frames are returned too (after the
 * peer's maximum was recorded in rx->peer_max).
 */
int fl__rx_next(fl__rx_t *rx, const uint8_t *buf, size_t len,
                fl__rx_frame_t *out, size_t *need, char *why, size_t why_len);

#endif /* FL_REMOTE_RX_H */
