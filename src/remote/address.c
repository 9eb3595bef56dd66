/*
 * address.c - parsing endpoint addresses and port ranges. Strings come from
 * configuration and from peers: every length is bounded, every character
 * checked, and each failure says what was wrong.
 */
#include "remote/address.h"
#include "common/internal.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const char TCP[] = "fling.tcp://";
static const char LOCAL[] = "fling://local/";

/* Parse a decimal port of 1..5 digits at p..end; -1 if invalid. */
static long parse_port(const char *p, const char *end)
{
    size_t n = (size_t)(end - p);
    if (n == 0 || n > 5)
        return -1;
    long v = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    return v > 65535 ? -1 : v;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

static bool ipv6_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

static int parse_endpoint(const char *p, fl__address_t *out, const char *s,
                          char *why, size_t why_len)
{
    size_t n = strlen(p);
    if (!fl__valid_endpoint_id(p, n)) {
        fl__say(
            why, why_len,
            "endpoint id must be 1..%u characters of [A-Za-z0-9_.-] (address "
            "%.200s)",
            FL__ID_MAX, s);
        return FL_EINVAL;
    }
    memcpy(out->endpoint, p, n + 1);
    return FL_OK;
}

int fl__address_parse(const char *s, fl__address_t *out, char *why,
                      size_t why_len)
{
    if (s == NULL || out == NULL) {
        fl__say(why, why_len, "no address");
        return FL_EINVAL;
    }
    memset(out, 0, sizeof *out);
    size_t len = strnlen(s, 1024);
    if (len == 1024) {
        fl__say(why, why_len, "address longer than 1023 bytes");
        return FL_EINVAL;
    }
    if (strncmp(s, LOCAL, sizeof LOCAL - 1) == 0) {
        out->kind = FL__ADDR_LOCAL;
        return parse_endpoint(s + sizeof LOCAL - 1, out, s, why, why_len);
    }
    if (strncmp(s, TCP, sizeof TCP - 1) != 0) {
        fl__say(why, why_len, "must start with %s or %s (address %.200s)", TCP,
                LOCAL, s);
        return FL_EINVAL;
    }
    out->kind = FL__ADDR_TCP;
    const char *h = s + sizeof TCP - 1, *hend, *colon;
    if (*h == '[') {
        hend = strchr(h, ']');
        if (hend == NULL) {
            fl__say(why, why_len, "unterminated [ in the host (address %.200s)",
                    s);
            return FL_EINVAL;
        }
        for (const char *q = h + 1; q < hend; q++) {
            if (!ipv6_char(*q)) {
                fl__say(why, why_len, "bad IPv6 host (address %.200s)", s);
                return FL_EINVAL;
            }
        }
        colon = hend + 1;
        h++;
    } else {
        colon = strchr(h, ':');
        if (colon == NULL) {
            fl__say(why, why_len, "no :port after the host (address %.200s)",
                    s);
            return FL_EINVAL;
        }
        hend = colon;
        for (const char *q = h; q < hend; q++) {
            if (!host_char(*q)) {
                fl__say(why, why_len,
                        "bad character in the host (address %.200s)", s);
                return FL_EINVAL;
            }
        }
    }
    size_t hn = (size_t)(hend - h);
    if (hn == 0 || hn > FL__HOST_MAX) {
        fl__say(why, why_len, "host must be 1..%u characters (address %.200s)",
                FL__HOST_MAX, s);
        return FL_EINVAL;
    }
    if (*colon != ':') {
        fl__say(why, why_len, "no :port after the host (address %.200s)", s);
        return FL_EINVAL;
    }
    const char *pstart = colon + 1, *slash = strchr(pstart, '/');
    if (slash == NULL) {
        fl__say(why, why_len, "no /endpoint-id after the port (address %.200s)",
                s);
        return FL_EINVAL;
    }
    long port = parse_port(pstart, slash);
    if (port < 1) {
        fl__say(why, why_len, "port must be 1..65535 (address %.200s)", s);
        return FL_EINVAL;
    }
    memcpy(out->host, h, hn);
    out->host[hn] = '\0';
    out->port = (uint16_t)port;
    return parse_endpoint(slash + 1, out, s, why, why_len);
}

int fl__address_format(const fl__address_t *a, char *buf, size_t len)
{
    if (a == NULL || buf == NULL ||
        !fl__valid_endpoint_id(a->endpoint,
                               strnlen(a->endpoint, FL__ID_MAX + 1)))
        return FL_EINVAL;
    int n;
    if (a->kind == FL__ADDR_LOCAL) {
        n = snprintf(buf, len, "%s%s", LOCAL, a->endpoint);
    } else if (a->kind == FL__ADDR_TCP && a->port != 0 && a->host[0] != '\0') {
        bool v6 = strchr(a->host, ':') != NULL;
        n = snprintf(buf, len, "%s%s%s%s:%u/%s", TCP, v6 ? "[" : "", a->host,
                     v6 ? "]" : "", (unsigned)a->port, a->endpoint);
    } else {
        return FL_EINVAL;
    }
    return n < 0 || (size_t)n >= len ? FL_ELIMIT : FL_OK;
}

int fl__port_range_parse(const char *s, fl__port_range_t *out, char *why,
                         size_t why_len)
{
    memset(out, 0, sizeof *out);
    if (s == NULL) {
        fl__say(why, why_len, "Invalid port range definition: (null)");
        return FL_EINVAL;
    }
    const char *p = s;
    for (;;) {
        const char *end = p;
        while (*end != '\0' && *end != ',')
            end++;
        const char *dash = memchr(p, '-', (size_t)(end - p));
        long lo, hi;
        if (dash != NULL) {
            lo = parse_port(p, dash);
            hi = parse_port(dash + 1, end);
        } else {
            lo = hi = parse_port(p, end);
        }
        const char *err = NULL;
        if (lo < 0 || hi < 0)
            err = "each part is a port 0..65535 or a range a-b";
        else if (lo > hi)
            err = "a range must not run backwards";
        else if ((lo == 0 || hi == 0) &&
                 (dash != NULL || out->n > 0 || *end != '\0'))
            err = "0 (any free port) must stand alone";
        else if (out->n == FL__PORT_PARTS_MAX)
            err = "too many parts";
        if (err != NULL) {
            fl__say(why, why_len, "Invalid port range definition: %.200s (%s)",
                    s, err);
            memset(out, 0, sizeof *out);
            return FL_EINVAL;
        }
        out->lo[out->n] = (uint16_t)lo;
        out->hi[out->n] = (uint16_t)hi;
        out->n++;
        if (*end == '\0')
            return FL_OK;
        p = end + 1;
    }
}

uint32_t fl__port_range_count(const fl__port_range_t *r)
{
    uint32_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += (uint32_t)(r->hi[i] - r->lo[i]) + 1;
    return n;
}

uint16_t fl__port_range_at(const fl__port_range_t *r, uint32_t i)
{
    for (size_t k = 0; k < r->n; k++) {
        uint32_t span = (uint32_t)(r->hi[k] - r->lo[k]) + 1;
        if (i < span)
            return (uint16_t)(r->lo[k] + i);
        i -= span;
    }
    return 0;
}
