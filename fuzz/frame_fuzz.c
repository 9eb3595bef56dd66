/*
 * frame_fuzz - libFuzzer target for the wire protocol's frame decoder and
 * its handshake metadata (docs/wire-protocol.md): the input is a stream of
 * bytes as a peer would send them. Frames are decoded one after another,
 * exactly as a connection reads them: header first (no allocation before it
 * is accepted), then metadata, then the body is skipped. Any crash, read
 * past the buffer or sanitizer report is a bug; every outcome must be one of
 * the documented codes.
 *
 *   make fuzz                      (clang; runs for FUZZ_SECONDS, default 60)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remote/frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A small maximum so that whole frames fit in fuzz inputs. */
    const uint64_t max_frame = 1u << 16;
    size_t off = 0;
    char why[256];
    while (off < size) {
        fl__frame_hdr_t h;
        /* Copy to an exact-size buffer: ASan catches reads past it. */
        size_t avail = size - off;
        uint8_t *hdr = malloc(avail < FL__FRAME_HDR ? avail : FL__FRAME_HDR);
        if (hdr == NULL)
            return 0;
        memcpy(hdr, data + off, avail < FL__FRAME_HDR ? avail : FL__FRAME_HDR);
        int rc = fl__frame_decode_hdr(
            hdr, avail < FL__FRAME_HDR ? avail : FL__FRAME_HDR, max_frame, &h,
            why, sizeof why);
        free(hdr);
        if (rc == FL_EPENDING)
            return 0;
        if (rc != FL_OK) {
            if (rc != FL_EPROTO && rc != FL_EHANDSHAKE && rc != FL_EMSGSIZE)
                abort();
            return 0; /* the connection would be closed here */
        }
        off += FL__FRAME_HDR;
        if (size - off < (uint64_t)h.meta_len + h.body_len)
            return 0; /* truncated: would wait for more bytes */
        uint8_t *meta = malloc(h.meta_len ? h.meta_len : 1);
        if (meta == NULL)
            return 0;
        memcpy(meta, data + off, h.meta_len);
        fl__frame_meta_t m;
        rc = fl__frame_decode_meta(&h, meta, &m, why, sizeof why);
        if (rc == FL_OK) {
            /* Re-encode and compare: the codec must round-trip what it
             * accepts. A FRAGMENT's metadata is the header of the frame it
             * carries, checked by the reassembly (stream_fuzz), not here. */
            size_t n = fl__frame_meta_size(h.kind, h.flags, &m);
            if (h.kind != FL__K_FRAGMENT && n != h.meta_len)
                abort();
            uint8_t *again = malloc(n ? n : 1);
            if (again == NULL) {
                free(meta);
                return 0;
            }
            if (n != 0 &&
                (fl__frame_encode_meta(h.kind, h.flags, &m, again, n) != n ||
                 memcmp(again, meta, n) != 0))
                abort();
            free(again);
        } else if (rc != FL_EPROTO) {
            abort();
        }
        free(meta);
        if (rc != FL_OK)
            return 0;
        off += (size_t)h.meta_len + h.body_len;
    }
    return 0;
}
