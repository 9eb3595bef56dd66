/*
 * src/remote/fragment.h - FRAGMENT frames (docs/wire-protocol.md,
 * Fragments), without I/O: cutting a frame above FL__FRAG_SIZE bytes into
 * fragments (the sender: the write path of conn_write.c) and putting
 * fragments back together into the frame they carry (the receiver:
 * conn_read.c, and the stream fuzzer).
 */
#ifndef FL_REMOTE_FRAGMENT_H
#define FL_REMOTE_FRAGMENT_H

#include "remote/rx.h"

/* One frame being put together. */
typedef struct fl__frag_stream {
    uint64_t id;  /* the fragments' corr; 0: the slot is free */
    uint8_t *buf; /* the frame's len bytes, got of them received */
    uint32_t len, got;
} fl__frag_stream_t;

/* The frames a connection's peer is sending in fragments. Zeroed memory
 * is an empty one. Belongs to whoever holds the connection's read side. */
typedef struct fl__frag {
    fl__frag_stream_t s[FL__FRAG_STREAMS];
    unsigned n;    /* streams in progress */
    uint64_t held; /* what their frames announce together, in bytes */
} fl__frag_t;

/*
 * The fragment of a frame of len bytes (len > FL__FRAG_SIZE) that starts
 * at byte off (< len): writes its FRAGMENT header, with corr `stream` (not
 * 0), into hdr and returns how many bytes of the frame, from off on, it
 * carries. The fragment on the wire is hdr followed by those bytes. No
 * allocation; any thread.
 */
size_t fl__frag_cut(size_t len, size_t off, uint64_t stream,
                    uint8_t hdr[FL__FRAME_HDR]);

/*
 * Take the FRAGMENT frame fr (from fl__rx_next; its bytes are copied).
 * Returns:
 *   FL_EPENDING  its frame is not complete yet;
 *   FL_OK        it completed its frame: *whole holds the frame's
 *                *whole_len bytes, to be cut with fl__rx_next (which
 *                checks its metadata); the caller owns *whole and frees it
 *                with fl__free;
 *   FL_EPROTO, FL_EMSGSIZE, FL_EHANDSHAKE  a broken rule of the
 *                fragments, or of the header of the frame they carry;
 *   FL_ENOMEM    no memory for the frame.
 * On an error `why` (may be NULL) gets one line naming the rule and the
 * stream; the connection ends, and fl__frag_reset frees what fs holds.
 * max_frame is ours: a frame's buffer is allocated only once its header
 * (the first fragment's metadata) passed every check against it, and the
 * frames in progress together never announce more than max_frame bytes.
 * The thread holding the connection's read side.
 */
int fl__frag_put(fl__frag_t *fs, const fl__rx_frame_t *fr, uint32_t max_frame,
                 uint8_t **whole, size_t *whole_len, char *why, size_t why_len);

/* Free the frames fs holds; fs is empty afterwards. */
void fl__frag_reset(fl__frag_t *fs);

#endif /* FL_REMOTE_FRAGMENT_H */
