/*
 * pbdepth.c - nesting-depth check of packed protobuf messages. Iterative
 * over fields, recursive only over message nesting, which is itself bounded
 * by max_depth: the check cannot exhaust the stack it protects.
 */
#include "remote/pbdepth.h"

#include "common/internal.h"

#include <stdbool.h>

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (*p == end)
            return false;
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = r;
            return true;
        }
    }
    return false; /* more than 10 bytes */
}

static const ProtobufCFieldDescriptor *
find_field(const ProtobufCMessageDescriptor *d, uint32_t number)
{
    /* Fields are sorted by number in protobuf-c descriptors. */
    unsigned lo = 0, hi = d->n_fields;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (d->fields[mid].id == number)
            return &d->fields[mid];
        if (d->fields[mid].id < number)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int walk(const ProtobufCMessageDescriptor *d, const uint8_t *p,
                const uint8_t *end, unsigned depth, unsigned max_depth,
                char *why, size_t why_len)
{
    if (depth > max_depth) {
        fl__say(why, why_len, "message nested deeper than %u levels (%s)",
                max_depth, d->name);
        return FL_EDECODE;
    }
    while (p < end) {
        uint64_t key, v;
        if (!read_varint(&p, end, &key)) {
            fl__say(why, why_len, "truncated field key in %s", d->name);
            return FL_EDECODE;
        }
        uint32_t wire = (uint32_t)(key & 7);
        uint64_t number = key >> 3;
        switch (wire) {
        case 0: /* varint */
            if (!read_varint(&p, end, &v)) {
                fl__say(why, why_len, "truncated varint in %s", d->name);
                return FL_EDECODE;
            }
            break;
        case 1: /* 64-bit */
        case 5: /* 32-bit */ {
            size_t n = wire == 1 ? 8 : 4;
            if ((size_t)(end - p) < n) {
                fl__say(why, why_len, "truncated fixed field in %s", d->name);
                return FL_EDECODE;
            }
            p += n;
            break;
        }
        case 2: { /* length-delimited */
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p)) {
                fl__say(why, why_len, "length past the end in %s", d->name);
                return FL_EDECODE;
            }
            const ProtobufCFieldDescriptor *f =
                number <= UINT32_MAX ? find_field(d, (uint32_t)number) : NULL;
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int rc = walk((const ProtobufCMessageDescriptor *)f->descriptor,
                              p, p + v, depth + 1, max_depth, why, why_len);
                if (rc != FL_OK)
                    return rc;
            }
            p += v;
            break;
        }
        default: /* groups (3, 4) and 6, 7 */
            fl__say(why, why_len, "unsupported wire type %u in %s",
                    (unsigned)wire, d->name);
            return FL_EDECODE;
        }
    }
    return FL_OK;
}

int fl__pb_check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                       size_t len, unsigned max_depth, char *why,
                       size_t why_len)
{
    if (d == NULL || (buf == NULL && len != 0))
        return FL_EINVAL;
    if (len == 0) /* an empty message: no fields (and no NULL + 0) */
        return max_depth >= 1 ? FL_OK : FL_EDECODE;
    return walk(d, buf, buf + len, 1, max_depth, why, why_len);
}
