/*
 * stream_fuzz - libFuzzer target for a connection's receiving side
 * (src/remote/rx.c): the input is the byte stream a peer sends, cut into
 * reads of fuzzer-chosen sizes, fed exactly as the transport feeds it:
 * bytes accumulate, fl__rx_next cuts frames and enforces the handshake
 * (HELLO first and once, version, sizes against the maximum). Checks: no
 * crash or sanitizer report; every outcome a documented code; a requested
 * size never above the maximum (nothing allocates for a lie); frames
 * returned lie inside the bytes held; a returned HELLO sets the peer's
 * maximum. FRAGMENT frames go to the reassembly (src/remote/fragment.c),
 * as the transport does: the frames in progress never announce more than
 * the maximum together nor exceed the stream limit, and a frame they
 * complete is cut again by fl__rx_next, whole and within the maximum.
 *
 *   make fuzz        (clang; FUZZ_SECONDS each, default 60)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "remote/fragment.h"
#include "remote/rx.h"

#include "fuzz_rx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FRAME 4096u

/* A FRAGMENT frame fr, as the transport takes it: FL_OK (more to come, or
 * a frame completed and cut again), or the documented error that ends
 * the connection. */
static int take_fragment(fl__rx_t *rx, fl__frag_t *fs, const fl__rx_frame_t *fr,
                         char *why, size_t why_len)
{
    uint8_t *whole = NULL;
    size_t len = 0, need = 0;
    int rc = fl__frag_put(fs, fr, MAX_FRAME, &whole, &len, why, why_len);
    if (fs->held > MAX_FRAME || fs->n > FL__FRAG_STREAMS)
        abort();
    if (rc == FL_EPENDING)
        return FL_OK;
    if (rc != FL_OK)
        return rc;
    if (len > MAX_FRAME)
        abort();
    /* An exact-size copy, as for the stream. */
    uint8_t *view = malloc(len);
    if (view == NULL)
        abort();
    memcpy(view, whole, len);
    fl__free(whole);
    fl__rx_frame_t wf;
    rc = fl__rx_next(rx, view, len, &wf, &need, why, why_len);
    if (rc == FL_EPENDING ||
        (rc == FL_OK && (wf.size != len || (wf.h.kind != FL__K_INVOKE &&
                                            wf.h.kind != FL__K_REPLY))))
        abort();
    free(view);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte picks the read size, as the network would. */
    size_t chunk = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    fl__rx_t rx;
    fl__rx_init(&rx, MAX_FRAME);
    fl__frag_t fs;
    memset(&fs, 0, sizeof fs);
    uint8_t *buf = NULL;
    size_t len = 0, off = 0, fed = 0;
    char why[256];
    for (;;) {
        /* Feed the next read. */
        size_t n = size - fed < chunk ? size - fed : chunk;
        if (n == 0)
            break;
        uint8_t *nb = realloc(buf, len + n);
        if (nb == NULL)
            break;
        buf = nb;
        memcpy(buf + len, data + fed, n);
        len += n;
        fed += n;
        for (;;) {
            fl__rx_frame_t fr;
            size_t need = 0;
            /* An exact-size copy: ASan catches any read past the bytes. */
            size_t avail = len - off;
            uint8_t *view = malloc(avail ? avail : 1);
            if (view == NULL)
                goto out;
            memcpy(view, buf + off, avail);
            bool had_hello = rx.got_hello;
            int rc = fl__rx_next(&rx, view, avail, &fr, &need, why, sizeof why);
            if (rc == FL_EPENDING) {
                free(view);
                if (need <= avail || need > MAX_FRAME)
                    abort();
                break;
            }
            if (rc != FL_OK) {
                free(view);
                fuzz_check_rx_error(rc, why);
                goto out; /* the connection closes */
            }
            if (fr.size > avail || fr.size > MAX_FRAME ||
                fr.body + fr.h.body_len != view + fr.size)
                abort();
            if (!had_hello && (fr.h.kind != FL__K_HELLO || !rx.got_hello ||
                               rx.peer_max != fr.m.max_frame))
                abort();
            if (fr.h.kind == FL__K_FRAGMENT &&
                (rc = take_fragment(&rx, &fs, &fr, why, sizeof why)) != FL_OK) {
                free(view);
                fuzz_check_rx_error(rc, why);
                goto out;
            }
            free(view);
            off += fr.size;
        }
    }
out:
    fl__frag_reset(&fs);
    free(buf);
    return 0;
}
