/*
 * src/remote/address.h - endpoint addresses and port ranges
 * (docs/wire-protocol.md, "Addresses"). Pure parsing: untrusted strings in
 * (configuration, peers), a structure or a specific error out.
 */
#ifndef FL_REMOTE_ADDRESS_H
#define FL_REMOTE_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "remote/frame.h"

#define FL__HOST_MAX 253u /* a DNS name; IPv6 literals are shorter */
#define FL__PORT_PARTS_MAX 16u

typedef enum fl__addr_kind {
    FL__ADDR_LOCAL = 1,
    FL__ADDR_TCP = 2,
    FL__ADDR_SSL = 3 /* TCP with TLS: as FL__ADDR_TCP, scheme fling.ssl:// */
} fl__addr_kind_t;

typedef struct fl__address {
    fl__addr_kind_t kind;
    char host[FL__HOST_MAX + 1]; /* TCP, SSL: without IPv6 brackets */
    uint16_t port;               /* TCP, SSL: 1..65535 */
    char endpoint[FL__ID_MAX + 1];
    bool pattern; /* endpoint holds a * (a pattern, fl__id_match) */
} fl__address_t;

/*
 * Parse "fling.tcp://<host>:<port>/<endpoint-id>", the same with
 * "fling.ssl://" (TLS; kind FL__ADDR_SSL) or
 * "fling://local/<endpoint-id>"; the id may be a pattern (a * somewhere,
 * and one character that is not a *: out->pattern). Returns FL_OK, or
 * FL_EINVAL with a reason in `why` (may be NULL) saying what is wrong and
 * what to write instead (no scheme, an unknown one, fling:// with another
 * host than local, a bad host, port or id). The reason does not repeat
 * the address: the caller names it ("Could not connect to rpc endpoint
 * under address <a>: <why>").
 */
int fl__address_parse(const char *s, fl__address_t *out, char *why,
                      size_t why_len);

/* fl__address_parse for a service that speaks TLS when ssl: the reasons
 * name fling.ssl:// where they hint at a remote address. */
int fl__address_parse_as(const char *s, bool ssl, fl__address_t *out, char *why,
                         size_t why_len);

/*
 * Format an address into buf. Returns FL_OK, FL_EINVAL (bad fields) or
 * FL_ELIMIT (buf too small).
 */
int fl__address_format(const fl__address_t *a, char *buf, size_t len);

/*
 * Whether endpoint id `id` matches `pattern`: every * matches any run of
 * characters (none too), every other character itself, as fnmatch(3)
 * with * alone. An id never holds a *, so a pattern without one matches
 * that id only. Both are NUL-terminated. Pure; any thread.
 */
bool fl__id_match(const char *pattern, const char *id);

/* A port range: "0" (any free port), "6123", "50100-50200", "6123,6124",
 * or a comma-separated mix; tried in the order written. */
typedef struct fl__port_range {
    uint16_t lo[FL__PORT_PARTS_MAX];
    uint16_t hi[FL__PORT_PARTS_MAX];
    size_t n;
} fl__port_range_t;

/*
 * Parse a port range. Returns FL_OK or FL_EINVAL with "Invalid port range
 * definition: <s>" and the reason in `why`. "0" is allowed only alone.
 */
int fl__port_range_parse(const char *s, fl__port_range_t *out, char *why,
                         size_t why_len);

/* The number of ports in r (a "0" range counts as 1). */
uint32_t fl__port_range_count(const fl__port_range_t *r);

/* The i-th port in trying order (i < fl__port_range_count). */
uint16_t fl__port_range_at(const fl__port_range_t *r, uint32_t i);

#endif /* FL_REMOTE_ADDRESS_H */
