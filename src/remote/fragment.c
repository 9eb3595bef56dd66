/*
 * fragment.c - FRAGMENT frames: cutting a large frame into fragments and
 * putting them back together (docs/wire-protocol.md, Fragments). The
 * receiver decides from the header of the frame, carried whole in its
 * first fragment, before it allocates for it, as for any frame (frame.c).
 */
#include "remote/fragment.h"
#include "common/internal.h"

#include <assert.h>
#include <string.h>

size_t fl__frag_cut(size_t len, size_t off, uint64_t stream,
                    uint8_t hdr[FL__FRAME_HDR])
{
    assert(len > FL__FRAG_SIZE && off < len && stream != 0);
    size_t room = FL__FRAG_SIZE - FL__FRAME_HDR;
    size_t n = len - off < room ? len - off : room;
    /* The first fragment starts with the frame's header: its metadata. */
    uint32_t meta = off == 0 ? FL__FRAME_HDR : 0;
    fl__frame_hdr_t h = {.kind = FL__K_FRAGMENT,
                         .flags = off + n == len ? FL__F_LAST : 0,
                         .corr = stream,
                         .meta_len = meta,
                         .body_len = (uint32_t)(n - meta)};
    fl__frame_encode_hdr(hdr, &h);
    return n;
}

static fl__frag_stream_t *stream_find(fl__frag_t *fs, uint64_t id)
{
    for (unsigned i = 0; i < FL__FRAG_STREAMS; i++)
        if (fs->s[i].id == id)
            return &fs->s[i];
    return NULL;
}

/* A new stream for the first fragment fr, whose metadata is the header of
 * the frame it starts: checked before anything is allocated. */
static int stream_start(fl__frag_t *fs, const fl__rx_frame_t *fr,
                        uint32_t max_frame, fl__frag_stream_t **out, char *why,
                        size_t why_len)
{
    unsigned long long id = fr->h.corr;
    if (stream_find(fs, fr->h.corr) != NULL) {
        fl__say(why, why_len, "FRAGMENT starts stream %llu twice", id);
        return FL_EPROTO;
    }
    if (fs->n == FL__FRAG_STREAMS) {
        fl__say(why, why_len,
                "FRAGMENT starts stream %llu while %u fragmented frames are "
                "in progress (limit %u)",
                id, fs->n, FL__FRAG_STREAMS);
        return FL_EPROTO;
    }
    fl__frame_hdr_t h;
    char sub[200];
    const uint8_t *meta = fr->body - fr->h.meta_len;
    int rc = fl__frame_decode_hdr(meta, FL__FRAME_HDR, max_frame, &h, sub,
                                  sizeof sub);
    if (rc != FL_OK) {
        fl__say(why, why_len, "FRAGMENT stream %llu: %s", id, sub);
        return rc;
    }
    if (h.kind != FL__K_INVOKE && h.kind != FL__K_REPLY) {
        fl__say(why, why_len,
                "FRAGMENT stream %llu carries a frame of kind %u (only "
                "INVOKE and REPLY are cut)",
                id, (unsigned)h.kind);
        return FL_EPROTO;
    }
    /* decode_hdr bounded it by max_frame. */
    uint32_t len = FL__FRAME_HDR + h.meta_len + h.body_len;
    if (fs->held + len > max_frame) {
        fl__say(why, why_len,
                "FRAGMENT stream %llu: the fragmented frames in progress "
                "would announce %llu bytes together, over the maximum frame "
                "size of %u bytes",
                id, (unsigned long long)(fs->held + len), (unsigned)max_frame);
        return FL_EMSGSIZE;
    }
    if (fr->h.meta_len + (size_t)fr->h.body_len > len) {
        fl__say(why, why_len,
                "FRAGMENT stream %llu: a first fragment of %u bytes for a "
                "frame of %u bytes",
                id, (unsigned)(fr->h.meta_len + fr->h.body_len), (unsigned)len);
        return FL_EPROTO;
    }
    uint8_t *buf = fl__malloc(len);
    if (buf == NULL) {
        fl__say(why, why_len,
                "FRAGMENT stream %llu: out of memory for a frame of %u bytes",
                id, (unsigned)len);
        return FL_ENOMEM;
    }
    fl__frag_stream_t *s = stream_find(fs, 0);
    s->id = fr->h.corr;
    s->buf = buf;
    s->len = len;
    s->got = 0;
    fs->n++;
    fs->held += len;
    *out = s;
    return FL_OK;
}

/* The stream s leaves fs; its buffer is the caller's. */
static void stream_end(fl__frag_t *fs, fl__frag_stream_t *s)
{
    fs->n--;
    fs->held -= s->len;
    s->id = 0;
    s->buf = NULL;
}

int fl__frag_put(fl__frag_t *fs, const fl__rx_frame_t *fr, uint32_t max_frame,
                 uint8_t **whole, size_t *whole_len, char *why, size_t why_len)
{
    unsigned long long id = fr->h.corr;
    fl__frag_stream_t *s;
    if (fr->h.meta_len == FL__FRAME_HDR) {
        int rc = stream_start(fs, fr, max_frame, &s, why, why_len);
        if (rc != FL_OK)
            return rc;
    } else if ((s = stream_find(fs, fr->h.corr)) == NULL) {
        fl__say(why, why_len, "FRAGMENT of unknown stream %llu", id);
        return FL_EPROTO;
    }
    /* What the fragment carries of its frame: its metadata and body. */
    size_t n = fr->h.meta_len + (size_t)fr->h.body_len;
    if (n > s->len - s->got) {
        fl__say(why, why_len,
                "FRAGMENT stream %llu runs %zu bytes past its frame of %u "
                "bytes",
                id, n - (s->len - s->got), (unsigned)s->len);
        return FL_EPROTO;
    }
    memcpy(s->buf + s->got, fr->body - fr->h.meta_len, n);
    s->got += (uint32_t)n;
    bool last = (fr->h.flags & FL__F_LAST) != 0;
    if (last && s->got != s->len) {
        fl__say(why, why_len,
                "FRAGMENT stream %llu ends (LAST) at %u of its %u bytes", id,
                (unsigned)s->got, (unsigned)s->len);
        return FL_EPROTO;
    }
    if (!last && s->got == s->len) {
        fl__say(why, why_len,
                "FRAGMENT stream %llu fills its frame without the LAST flag",
                id);
        return FL_EPROTO;
    }
    if (!last)
        return FL_EPENDING;
    *whole = s->buf;
    *whole_len = s->len;
    stream_end(fs, s);
    return FL_OK;
}

void fl__frag_reset(fl__frag_t *fs)
{
    for (unsigned i = 0; i < FL__FRAG_STREAMS; i++) {
        fl__free(fs->s[i].buf);
        fs->s[i].buf = NULL;
        fs->s[i].id = 0;
    }
    fs->n = 0;
    fs->held = 0;
}
