/*
 * flat.c - copying flat messages (flat.h): the rules of protobuf-c 1.4's
 * pack (which fields it writes) and unpack (what it sets for them), for
 * singular scalar fields only.
 */
#include "rpc/flat.h"

#include <string.h>

fl__rpc_flat_t fl__rpc_flat_kind(const ProtobufCMessageDescriptor *d)
{
    fl__rpc_flat_t kind = FL__FLAT_PLAIN;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->label == PROTOBUF_C_LABEL_REPEATED ||
            f->type > PROTOBUF_C_TYPE_ENUM)
            return FL__FLAT_NO;
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL ||
            (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
            f->type == PROTOBUF_C_TYPE_BOOL ||
            f->type == PROTOBUF_C_TYPE_FLOAT ||
            f->type == PROTOBUF_C_TYPE_DOUBLE)
            kind = FL__FLAT_FIELDS;
    }
    return kind;
}

/* The bytes of a scalar of type t in its struct. */
static size_t scalar_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    default:
        return 4; /* 32-bit numbers, float, enum, protobuf_c_boolean */
    }
}

/* True when pack leaves a proto3 field of type t at p out: zero, as
 * protobuf-c's field_is_zeroish compares it (-0.0 is zero). */
static bool zeroish(ProtobufCType t, const void *p)
{
    if (t == PROTOBUF_C_TYPE_FLOAT) {
        float v;
        memcpy(&v, p, sizeof v);
        return v == 0;
    }
    if (t == PROTOBUF_C_TYPE_DOUBLE) {
        double v;
        memcpy(&v, p, sizeof v);
        return v == 0;
    }
    if (scalar_size(t) == 8) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        return v == 0;
    }
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v == 0;
}

void fl__rpc_flat_fields(const ProtobufCMessage *src, ProtobufCMessage *dst)
{
    const ProtobufCMessageDescriptor *d = src->descriptor;
    const char *s = (const char *)src;
    char *o = (char *)dst;
    d->message_init(dst);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *v = s + f->offset;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t which;
            memcpy(&which, s + f->quantifier_offset, sizeof which);
            if (which != f->id)
                continue;
            memcpy(o + f->quantifier_offset, &which, sizeof which);
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
            protobuf_c_boolean has;
            memcpy(&has, s + f->quantifier_offset, sizeof has);
            if (!has)
                continue;
            has = 1;
            memcpy(o + f->quantifier_offset, &has, sizeof has);
        } else if (f->label == PROTOBUF_C_LABEL_NONE && zeroish(f->type, v)) {
            continue;
        }
        if (f->type == PROTOBUF_C_TYPE_BOOL) {
            protobuf_c_boolean b;
            memcpy(&b, v, sizeof b);
            b = b != 0;
            memcpy(o + f->offset, &b, sizeof b);
        } else {
            memcpy(o + f->offset, v, scalar_size(f->type));
        }
    }
}
