/*
 * rx.c - cutting a connection's byte stream into validated frames
 * (docs/wire-protocol.md): header first, lengths checked before anyone
 * allocates, then the handshake rules.
 */
#include "remote/rx.h"
#include "common/internal.h"

#include <string.h>

void fl__rx_init(fl__rx_t *rx, uint32_t max_frame)
{
    memset(rx, 0, sizeof *rx);
    rx->max_frame = max_frame;
}

int fl__rx_next(fl__rx_t *rx, const uint8_t *buf, size_t len,
                fl__rx_frame_t *out, size_t *need, char *why, size_t why_len)
{
    int rc =
        fl__frame_decode_hdr(buf, len, rx->max_frame, &out->h, why, why_len);
    if (rc == FL_EPENDING) {
        *need = FL__FRAME_HDR;
        return rc;
    }
    if (rc != FL_OK) {
        /* A frame of another version is a handshake failure wherever it
         * comes; the header decoder has already said so. */
        return rc;
    }
    /* decode_hdr bounded the total by max_frame (<= 4 GiB): no overflow. */
    size_t total = FL__FRAME_HDR + (size_t)out->h.meta_len + out->h.body_len;
    if (!rx->got_hello && out->h.kind != FL__K_HELLO) {
        fl__say(why, why_len,
                "the first frame must be HELLO, not a frame of kind %u",
                out->h.kind);
        return FL_EHANDSHAKE;
    }
    if (rx->got_hello && out->h.kind == FL__K_HELLO) {
        fl__say(why, why_len, "HELLO sent twice");
        return FL_EPROTO;
    }
    if (len < total) {
        *need = total;
        return FL_EPENDING;
    }
    rc = fl__frame_decode_meta(&out->h, buf + FL__FRAME_HDR, &out->m, why,
                               why_len);
    if (rc != FL_OK)
        return rc;
    if (out->h.kind == FL__K_HELLO) {
        /* (decode_meta refused a maximum below FL__FRAME_MIN_MAX) */
        rx->got_hello = true;
        rx->peer_max = out->m.max_frame;
    }
    out->body = buf + FL__FRAME_HDR + out->h.meta_len;
    out->size = total;
    return FL_OK;
}
