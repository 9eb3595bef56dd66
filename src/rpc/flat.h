/*
 * src/rpc/flat.h - the copy of a flat message (flat.c): one whose fields
 * are all singular scalars, so that its struct holds all of its data. A
 * local call copies such a request (and its reply) struct to struct
 * instead of packing and unpacking it, with the same result: the copy is
 * what protobuf_c_message_unpack would make of protobuf_c_message_pack's
 * bytes. docs/RATIONALE.md, "What a local tell costs", says why.
 */
#ifndef FL_RPC_FLAT_H
#define FL_RPC_FLAT_H

#include <stdbool.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

/*
 * How messages of a descriptor copy in a local call: FL__FLAT_NO, packed
 * (a field is a string, bytes, a message or repeated); FL__FLAT_PLAIN,
 * the struct as it is (every field is a number or an enum, required or
 * proto3 without presence: packing then unpacking gives each its own
 * value back); FL__FLAT_FIELDS, field by field (flat, but with a bool,
 * a float or double, an optional field or a oneof: the copy is made as
 * unpacking makes it, see fl__rpc_flat_copy).
 */
typedef enum fl__rpc_flat {
    FL__FLAT_NO,
    FL__FLAT_PLAIN,
    FL__FLAT_FIELDS
} fl__rpc_flat_t;

/* The kind of d's messages (a walk of its fields). Any thread. */
fl__rpc_flat_t fl__rpc_flat_kind(const ProtobufCMessageDescriptor *d);

/*
 * Copy src into dst the way protobuf_c_message_unpack would rebuild it
 * from protobuf_c_message_pack's bytes, with no bytes in between: dst,
 * src->descriptor->sizeof_message bytes of caller memory aligned for the
 * struct, is initialised as the descriptor's init makes it, then takes
 * every field that packing would write (a required field; an optional
 * one whose has_ is set; a proto3 field that is not zero, -0.0 being
 * zero; the chosen member of a oneof) with its presence and, for a bool,
 * the value 0 or 1. kind is fl__rpc_flat_kind(src->descriptor), not
 * FL__FLAT_NO, and src has no unknown fields (pack would write them).
 * dst owns nothing: it is freed or dropped as plain memory. Any thread.
 */
void fl__rpc_flat_fields(const ProtobufCMessage *src, ProtobufCMessage *dst);
static inline void fl__rpc_flat_copy(fl__rpc_flat_t kind,
                                     const ProtobufCMessage *src,
                                     ProtobufCMessage *dst)
{
    if (kind == FL__FLAT_PLAIN) {
        memcpy(dst, src, src->descriptor->sizeof_message);
        dst->unknown_fields = NULL; /* none (checked), the pointer unset */
    } else {
        fl__rpc_flat_fields(src, dst);
    }
}

/* The kind a message m copies as: FL__FLAT_NO when it carries unknown
 * fields, else its descriptor's. Any thread. */
static inline fl__rpc_flat_t fl__rpc_flat_of(const ProtobufCMessage *m)
{
    return m->n_unknown_fields != 0 ? FL__FLAT_NO
                                    : fl__rpc_flat_kind(m->descriptor);
}

#endif /* FL_RPC_FLAT_H */
