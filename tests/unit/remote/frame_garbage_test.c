/*
 * frame_garbage_test.c - a deterministic garbage run: seeded random
 * headers and metadata get only the documented codes, judged against the
 * specification's own accept rule.
 */
#include "frame_fixture.h"

/* ---- garbage ------------------------------------------------------------- */

static uint64_t xs_state;

static uint64_t xorshift64(void)
{
    uint64_t x = xs_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return xs_state = x;
}

/* Whether the spec accepts this header (every MUST of the header table,
 * the kinds table and the flags table), independent of the codec. */
static bool spec_accepts(const uint8_t b[24], uint64_t max_frame)
{
    uint32_t magic = rd32(b);
    uint8_t version = b[4], kind = b[5];
    uint16_t flags = (uint16_t)((b[6] << 8) | b[7]);
    uint64_t corr = ((uint64_t)rd32(b + 8) << 32) | rd32(b + 12);
    uint32_t meta = rd32(b + 16), body = rd32(b + 20);
    if (magic != MAGIC || version != 1 || kind < 1 || kind > 10)
        return false;
    uint16_t known = 0;
    if (kind == FL__K_INVOKE)
        known = FL__F_TELL | FL__F_FENCED | FL__F_INSTANCE;
    else if (kind == FL__K_CONNECTED)
        known = FL__F_INSTANCE;
    else if (kind == FL__K_FRAGMENT)
        known = FL__F_LAST;
    if (flags & ~known)
        return false;
    unsigned inst = (flags & FL__F_INSTANCE) ? 8u : 0u;
    if (meta > 65535 || 24ull + meta + body > max_frame)
        return false;
    switch (kind) {
    case FL__K_HELLO:
        return meta >= 6 && body == 0;
    case FL__K_CONNECT:
        return meta >= 4 && body == 0 && corr != 0;
    case FL__K_CONNECTED:
        return meta == 4 + inst && body == 0 && corr != 0;
    case FL__K_INVOKE:
        return meta >= 10u + ((flags & FL__F_FENCED) ? 16u : 0u) + inst &&
               ((flags & FL__F_TELL) != 0) == (corr == 0);
    case FL__K_REPLY:
        return meta == 0 && corr != 0;
    case FL__K_ERROR:
        return meta >= 6 && body == 0;
    case FL__K_FRAGMENT:
        return (meta == 0 || meta == 24) && corr != 0;
    default: /* PING, PONG, BYE */
        return meta == 0 && body == 0;
    }
}

/* Random headers, most of them steered close to valid so that every rule
 * is reached; all from a fixed seed, so every run sees the same ones. */
static void garbage_header(uint8_t b[24], unsigned i)
{
    uint64_t r0 = xorshift64(), r1 = xorshift64(), r2 = xorshift64();
    for (int k = 0; k < 8; k++) {
        b[k] = (uint8_t)(r0 >> (8 * k));
        b[8 + k] = (uint8_t)(r1 >> (8 * k));
        b[16 + k] = (uint8_t)(r2 >> (8 * k));
    }
    if (i % 4 == 0)
        return; /* wholly random */
    uint64_t s = xorshift64();
    be32(b, MAGIC);
    if ((s & 15) != 0)
        b[4] = 1;
    b[5] = (uint8_t)((s >> 4) % 12); /* 0..11: the kinds and their neighbours */
    if (((s >> 8) & 7) != 0)
        be16(b + 6, (uint16_t)((s >> 11) & 3));
    if (((s >> 13) & 1) != 0)
        be64(b + 8, 0);
    if (((s >> 14) & 3) != 0)
        be32(b + 16, (uint32_t)((s >> 16) % 64));
    else if (((s >> 16) & 1) != 0)
        be32(b + 16, (uint32_t)((s >> 17) & 0x1FFFF));
    if (((s >> 34) & 3) != 0)
        be32(b + 20, 0);
    else if (((s >> 36) & 1) != 0)
        be32(b + 20, (uint32_t)((s >> 37) & 0xFFFFF));
}

/* Half of the random metadata gets its str16 lengths set so that the
 * fields fill meta_len exactly, and endpoint bytes mostly from the id
 * alphabet: random bytes alone almost never parse. */
static void steer_meta(const fl__frame_hdr_t *h, uint8_t *meta)
{
    static const char alpha[] = "abcXYZ019_.-";
    uint32_t n = h->meta_len;
    uint64_t s = xorshift64();
    uint32_t ep_at = 0, ep_len = 0;
    switch (h->kind) {
    case FL__K_HELLO:
        be16(meta + 4, (uint16_t)(n - 6));
        break;
    case FL__K_CONNECT:
        ep_at = 2;
        ep_len = (uint32_t)(s % (n - 3)); /* 0..n-4 */
        be16(meta, (uint16_t)ep_len);
        be16(meta + 2 + ep_len, (uint16_t)(n - 4 - ep_len));
        break;
    case FL__K_INVOKE:
        ep_at = 2;
        ep_len = n - 10 - ((h->flags & FL__F_FENCED) ? 16 : 0);
        be16(meta, (uint16_t)ep_len);
        break;
    case FL__K_ERROR:
        be16(meta + 4, (uint16_t)(n - 6));
        break;
    default:
        return;
    }
    for (uint32_t k = 0; k < ep_len; k++)
        if (((s >> 20) & 15) != 0)
            meta[ep_at + k] = (uint8_t)alpha[xorshift64() % (sizeof alpha - 1)];
}

static void
test_garbage_headers_and_metadata_get_only_documented_codes(void **state)
{
    (void)state;
    const uint64_t maxes[] = {DEFAULT_MAX, 1024, 64 * 1024, UINT64_MAX};
    unsigned seen[4] = {0}; /* OK, EPROTO, EHANDSHAKE, EMSGSIZE */
    unsigned meta_ok = 0, meta_proto = 0;
    xs_state = 0x2545F4914F6CDD1Dull;
    for (unsigned i = 0; i < 100000; i++) {
        uint64_t max_frame = maxes[i % 4];
        /* Exactly 24 bytes on the heap. */
        uint8_t *b = malloc(FL__FRAME_HDR);
        assert_non_null(b);
        garbage_header(b, i / 4);
        fl__frame_hdr_t h;
        memset(&h, 0, sizeof h);
        char why[WHY_LEN] = "";
        int rc = fl__frame_decode_hdr(b, FL__FRAME_HDR, max_frame, &h, why,
                                      sizeof why);
        bool spec_ok = spec_accepts(b, max_frame);
        if (rc != FL_OK && rc != FL_EPROTO && rc != FL_EHANDSHAKE &&
            rc != FL_EMSGSIZE)
            fail_msg("header %u: undocumented code %s", i, fl_err_name(rc));
        check_why(rc, why);
        if ((rc == FL_OK) != spec_ok)
            fail_msg("header %u (kind %u flags 0x%04x meta %u body %u max "
                     "%llu): codec says %s, the spec %s (%s)",
                     i, b[5], (unsigned)((b[6] << 8) | b[7]), rd32(b + 16),
                     rd32(b + 20), (unsigned long long)max_frame,
                     fl_err_name(rc), spec_ok ? "accepts" : "refuses", why);
        seen[rc == FL_OK           ? 0
             : rc == FL_EPROTO     ? 1
             : rc == FL_EHANDSHAKE ? 2
                                   : 3]++;
        if (rc != FL_OK) {
            free(b);
            continue;
        }
        /* The accepted header reads back as its bytes. */
        assert_int_equal(1, h.version);
        assert_int_equal(b[5], h.kind);
        assert_int_equal((b[6] << 8) | b[7], h.flags);
        assert_int_equal(rd32(b + 16), h.meta_len);
        assert_int_equal(rd32(b + 20), h.body_len);
        free(b);

        /* Random metadata of exactly meta_len bytes; sometimes the leading
         * str16 length is steered small so that strings can fit. */
        uint8_t *meta = malloc(h.meta_len ? h.meta_len : 1);
        assert_non_null(meta);
        for (uint32_t k = 0; k < h.meta_len; k++)
            meta[k] = (uint8_t)xorshift64();
        if ((xorshift64() & 1) != 0)
            steer_meta(&h, meta);
        fl__frame_meta_t m;
        why[0] = '\0';
        rc = fl__frame_decode_meta(&h, meta, &m, why, sizeof why);
        if (rc != FL_OK && rc != FL_EPROTO)
            fail_msg("metadata %u: undocumented code %s", i, fl_err_name(rc));
        check_why(rc, why);
        if (rc == FL_OK) {
            meta_ok++;
            /* Decoded strings lie inside the metadata. */
            const fl__str_t *strs[] = {&m.service_name, &m.endpoint, &m.gateway,
                                       &m.message};
            for (size_t k = 0; k < 4; k++)
                if (strs[k]->len != 0)
                    assert_true((const uint8_t *)strs[k]->p >= meta &&
                                (const uint8_t *)strs[k]->p + strs[k]->len <=
                                    meta + h.meta_len);
            /* What was accepted re-encodes to the same bytes (a
             * FRAGMENT's metadata is another frame's header: fragment.c
             * checks it). */
            size_t n = fl__frame_meta_size(h.kind, h.flags, &m);
            if (h.kind != FL__K_FRAGMENT)
                assert_int_equal(h.meta_len, n);
            if (n != 0) {
                uint8_t *again = malloc(n);
                assert_non_null(again);
                assert_int_equal(
                    n, fl__frame_encode_meta(h.kind, h.flags, &m, again, n));
                assert_memory_equal(meta, again, n);
                free(again);
            }
        } else {
            meta_proto++;
        }
        free(meta);
    }
    /* The generator reached every outcome (deterministic: fixed seed). */
    for (int k = 0; k < 4; k++)
        assert_true(seen[k] > 0);
    assert_true(meta_ok > 0);
    assert_true(meta_proto > 0);
    print_message("garbage: %u accepted, %u EPROTO, %u EHANDSHAKE, "
                  "%u EMSGSIZE; metadata %u OK, %u EPROTO\n",
                  seen[0], seen[1], seen[2], seen[3], meta_ok, meta_proto);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* garbage */
        FL_TEST(test_garbage_headers_and_metadata_get_only_documented_codes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
