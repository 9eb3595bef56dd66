/*
 * src/remote/pbdepth.h - bound the nesting depth of a packed protobuf
 * message before protobuf-c unpacks it (its decoder recurses without a
 * limit, so a hostile peer could exhaust the stack with deeply nested
 * bytes).
 */
#ifndef FL_REMOTE_PBDEPTH_H
#define FL_REMOTE_PBDEPTH_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Depth fling accepts from the wire (the message itself is depth 1). */
#define FL__PB_MAX_DEPTH 64u

/*
 * Walk the packed message buf[0..len) of type d without allocating: every
 * length-delimited field that d declares as a message is walked in turn.
 * Returns FL_OK, or FL_EDECODE with a reason in `why` (may be NULL) when
 * the nesting exceeds max_depth or the wire format is broken (a varint
 * over 10 bytes, a length past the end, a group or an unknown wire type).
 * Unknown field numbers are skipped, as protobuf-c does.
 */
int fl__pb_check_depth(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
                       size_t len, unsigned max_depth, char *why,
                       size_t why_len);

#endif /* FL_REMOTE_PBDEPTH_H */
