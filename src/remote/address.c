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
static const char SECURE[] = "fling.ssl://"; /* the same, over TLS */
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

/* How a user writes the two kinds of address: the end of every message
 * about a scheme; a TLS service's remote addresses are fling.ssl://. */
static const char *forms(bool ssl)
{
    return ssl ? "fling://local/<id> for an endpoint in this process, "
                 "fling.ssl://<host>:<port>/<id> for one in another process"
               : "fling://local/<id> for an endpoint in this process, "
                 "fling.tcp://<host>:<port>/<id> for one in another process";
}

/* c as a message shows it: 'c' if printable, else its byte value. */
static const char *show_char(char c, char buf[8])
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x20 && u < 0x7f)
        snprintf(buf, 8, "'%c'", c);
    else
        snprintf(buf, 8, "0x%02x", u);
    return buf;
}

/* The endpoint id (or pattern) at p, the rest of the address; `after` says
 * what it follows, for the message about an empty one. */
static int parse_endpoint(const char *p, const char *after, fl__address_t *out,
                          char *why, size_t why_len)
{
    size_t n = strlen(p);
    if (n == 0) {
        fl__say(why, why_len,
                "no endpoint id after %s (ids are 1..%u bytes of "
                "[A-Za-z0-9_.-])",
                after, FL__ID_MAX);
        return FL_EINVAL;
    }
    if (n > FL__ID_MAX) {
        fl__say(why, why_len,
                "the endpoint id is %zu bytes long, more than the %u allowed",
                n, FL__ID_MAX);
        return FL_EINVAL;
    }
    bool star = false, other = false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '*') {
            star = true;
        } else if (fl__valid_endpoint_id(p + i, 1)) {
            other = true;
        } else {
            char b[8];
            fl__say(why, why_len,
                    "the endpoint id '%s' has a bad character %s (ids are "
                    "1..%u bytes of [A-Za-z0-9_.-]; a pattern may add *)",
                    p, show_char(p[i], b), FL__ID_MAX);
            return FL_EINVAL;
        }
    }
    if (!other) {
        fl__say(why, why_len,
                "the pattern '%s' would match any endpoint; name a part of "
                "the id, as in resourcemanager_*",
                p);
        return FL_EINVAL;
    }
    memcpy(out->endpoint, p, n + 1);
    out->pattern = star;
    return FL_OK;
}

/* An address that starts with fling:// but not fling://local/. */
static int local_with_host(const char *s, bool ssl, char *why, size_t why_len)
{
    const char *h = s + sizeof "fling://" - 1, *slash = strchr(h, '/');
    if (slash == NULL) {
        fl__say(why, why_len,
                "fling:// addresses are fling://local/<id>; did you mean "
                "fling://local/%.200s?",
                h);
        return FL_EINVAL;
    }
    int hn = (int)(slash - h < 200 ? slash - h : 200);
    if (hn == 0) {
        fl__say(why, why_len,
                "fling:// addresses are fling://local/<id>; did you mean "
                "fling://local/%.200s?",
                slash + 1);
        return FL_EINVAL;
    }
    fl__say(why, why_len,
            "fling:// addresses name an endpoint in this process and their "
            "host is always 'local' (got '%.*s'); write fling://local/%.200s, "
            "or %s%.*s:<port>/%.200s for an endpoint in another process",
            hn, h, slash + 1, ssl ? SECURE : TCP, hn, h, slash + 1);
    return FL_EINVAL;
}

/* An address of no scheme of ours. */
static int no_scheme(const char *s, bool ssl, char *why, size_t why_len)
{
    const char *sep = strstr(s, "://");
    if (sep != NULL) {
        int n = (int)(sep - s < 40 ? sep - s : 40);
        fl__say(why, why_len, "unknown scheme '%.*s://'; addresses are %s", n,
                s, forms(ssl));
        return FL_EINVAL;
    }
    /* "fling:/local/x", "fling.tcp:h:1/x": a scheme misspelt, not left
     * out (but "fling_worker" is an id). */
    if (strncmp(s, "fling", 5) == 0 &&
        s[strspn(s, "abcdefghijklmnopqrstuvwxyz.")] == ':') {
        fl__say(why, why_len, "its scheme is misspelt; addresses are %s",
                forms(ssl));
        return FL_EINVAL;
    }
    /* host:port/id is a remote address without its scheme; anything else
     * is taken for a local id. */
    const char *colon = strchr(s, ':');
    bool remote = colon != NULL && strchr(colon, '/') != NULL;
    fl__say(why, why_len,
            "it has no scheme; did you mean %s%.200s? Addresses are %s",
            remote ? (ssl ? SECURE : TCP) : LOCAL, s, forms(ssl));
    return FL_EINVAL;
}

int fl__address_parse(const char *s, fl__address_t *out, char *why,
                      size_t why_len)
{
    return fl__address_parse_as(s, false, out, why, why_len);
}

int fl__address_parse_as(const char *s, bool ssl, fl__address_t *out, char *why,
                         size_t why_len)
{
    if (s == NULL || out == NULL) {
        fl__say(why, why_len, "no address");
        return FL_EINVAL;
    }
    memset(out, 0, sizeof *out);
    size_t len = strnlen(s, 1024);
    if (len == 1024) {
        fl__say(why, why_len, "the address is longer than 1023 bytes");
        return FL_EINVAL;
    }
    if (strncmp(s, LOCAL, sizeof LOCAL - 1) == 0) {
        out->kind = FL__ADDR_LOCAL;
        return parse_endpoint(s + sizeof LOCAL - 1, LOCAL, out, why, why_len);
    }
    if (strncmp(s, "fling://", sizeof "fling://" - 1) == 0)
        return local_with_host(s, ssl, why, why_len);
    const char *scheme;
    if (strncmp(s, TCP, sizeof TCP - 1) == 0) {
        out->kind = FL__ADDR_TCP;
        scheme = TCP;
    } else if (strncmp(s, SECURE, sizeof SECURE - 1) == 0) {
        out->kind = FL__ADDR_SSL;
        scheme = SECURE;
    } else {
        return no_scheme(s, ssl, why, why_len);
    }
    /* Both schemes are 12 bytes long. */
    const char *h = s + sizeof TCP - 1, *hend, *colon;
    if (*h == '[') {
        hend = strchr(h, ']');
        if (hend == NULL) {
            fl__say(why, why_len,
                    "the IPv6 host has no closing ] "
                    "(%s[<IPv6>]:<port>/<id>)",
                    scheme);
            return FL_EINVAL;
        }
        for (const char *q = h + 1; q < hend; q++) {
            if (!ipv6_char(*q)) {
                fl__say(why, why_len,
                        "bad IPv6 host '%.*s': only hex digits, : and . go "
                        "between [ and ]",
                        (int)(hend - h - 1), h + 1);
                return FL_EINVAL;
            }
        }
        colon = hend + 1;
        h++;
    } else {
        hend = h + strcspn(h, ":/");
        colon = hend;
        for (const char *q = h; q < hend; q++) {
            if (!host_char(*q)) {
                char b[8];
                fl__say(why, why_len,
                        "the host '%.*s' has a bad character %s (a host is a "
                        "DNS name or IPv4 address of [A-Za-z0-9._-], or an "
                        "IPv6 address in [])",
                        (int)(hend - h < 260 ? hend - h : 260), h,
                        show_char(*q, b));
                return FL_EINVAL;
            }
        }
    }
    size_t hn = (size_t)(hend - h);
    if (hn == 0) {
        fl__say(why, why_len, "the host is empty (%s<host>:<port>/<id>)",
                scheme);
        return FL_EINVAL;
    }
    if (hn > FL__HOST_MAX) {
        fl__say(why, why_len,
                "the host is %zu bytes long, more than the %u allowed", hn,
                FL__HOST_MAX);
        return FL_EINVAL;
    }
    if (*colon != ':') {
        fl__say(why, why_len,
                "no :<port> after the host '%.*s' "
                "(%s<host>:<port>/<id>)",
                (int)(colon - (s + sizeof TCP - 1)), s + sizeof TCP - 1,
                scheme);
        return FL_EINVAL;
    }
    const char *pstart = colon + 1, *slash = strchr(pstart, '/');
    if (slash == NULL) {
        fl__say(why, why_len, "no /<id> after the port (%s<host>:<port>/<id>)",
                scheme);
        return FL_EINVAL;
    }
    long port = parse_port(pstart, slash);
    if (port < 1) {
        fl__say(why, why_len, "the port must be 1..65535 (got '%.*s')",
                (int)(slash - pstart < 20 ? slash - pstart : 20), pstart);
        return FL_EINVAL;
    }
    memcpy(out->host, h, hn);
    out->host[hn] = '\0';
    out->port = (uint16_t)port;
    return parse_endpoint(slash + 1, "the port", out, why, why_len);
}

int fl__address_format(const fl__address_t *a, char *buf, size_t len)
{
    if (a == NULL || buf == NULL)
        return FL_EINVAL;
    /* A pattern too: a server names the address a CONNECT asked for. */
    if (!fl__valid_endpoint_pattern(a->endpoint,
                                    strnlen(a->endpoint, FL__ID_MAX + 1)))
        return FL_EINVAL;
    int n;
    if (a->kind == FL__ADDR_LOCAL) {
        n = snprintf(buf, len, "%s%s", LOCAL, a->endpoint);
    } else if ((a->kind == FL__ADDR_TCP || a->kind == FL__ADDR_SSL) &&
               a->port != 0 && a->host[0] != '\0') {
        bool v6 = strchr(a->host, ':') != NULL;
        n = snprintf(buf, len, "%s%s%s%s:%u/%s",
                     a->kind == FL__ADDR_SSL ? SECURE : TCP, v6 ? "[" : "",
                     a->host, v6 ? "]" : "", (unsigned)a->port, a->endpoint);
    } else {
        return FL_EINVAL;
    }
    return n < 0 || (size_t)n >= len ? FL_ELIMIT : FL_OK;
}

bool fl__id_match(const char *pattern, const char *id)
{
    /* Glob matching with * only, backtracking to the last *: linear in
     * practice, at most |pattern| x |id| steps (both <= 200 bytes). */
    const char *star = NULL, *resume = NULL;
    while (*id != '\0') {
        if (*pattern == '*') {
            star = pattern++;
            resume = id;
        } else if (*pattern == *id) {
            pattern++;
            id++;
        } else if (star != NULL) {
            pattern = star + 1;
            id = ++resume;
        } else {
            return false;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
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
