/*
 * resolve.c - connecting's registry lookup: an id or a pattern resolved
 * to a live endpoint of the service, and the reason when nothing is found
 * (what the service has instead, as much as the caller may know).
 */
#include "rpc/resolve.h"

#include "remote/address.h"
#include "rpc/endpoint.h"
#include "rpc/service.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A message written piece by piece into a bounded buffer (cut, always
 * terminated). */
typedef struct say {
    char *buf;
    size_t cap, len;
} say_t;

static void add(say_t *s, const char *fmt, ...) FL_PRINTF(2, 3);

static void add(say_t *s, const char *fmt, ...)
{
    if (s->len >= s->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        s->len += (size_t)n;
}

/* Whether a pattern has something besides *: one of * alone would match
 * every endpoint, which nobody means. */
static bool names_something(const char *pattern)
{
    return pattern[strspn(pattern, "*")] != '\0';
}

/* "its 3 endpoints are a, b, c" (the smallest FL__RPC_RESOLVE_LIST ids,
 * sorted, then "and N more"). svc->mu held. */
static void list_ids(fl_rpc_service_t *svc, size_t n, say_t *s)
{
    const char *first[FL__RPC_RESOLVE_LIST];
    size_t k = 0;
    for (fl_rpc_endpoint_t *e = svc->endpoints; e != NULL; e = e->next) {
        /* Insertion into the sorted first ids; a larger one than all
         * of a full list is left out. */
        size_t i = k;
        while (i > 0 && strcmp(e->id, first[i - 1]) < 0)
            i--;
        if (i == FL__RPC_RESOLVE_LIST)
            continue;
        size_t last = k < FL__RPC_RESOLVE_LIST ? k : FL__RPC_RESOLVE_LIST - 1;
        memmove(first + i + 1, first + i, (last - i) * sizeof *first);
        first[i] = e->id;
        if (k < FL__RPC_RESOLVE_LIST)
            k++;
    }
    add(s, n == 1 ? "its endpoint is " : "its %zu endpoints are ", n);
    for (size_t i = 0; i < k; i++)
        add(s, "%s%s", i == 0 ? "" : ", ", first[i]);
    if (n > k)
        add(s, " and %zu more", n - k);
}

fl_rpc_endpoint_t *fl__rpc_resolve(fl_rpc_service_t *svc, const char *id,
                                   const char *gateway, bool disclose,
                                   char *why, size_t cap)
{
    bool pattern = strchr(id, '*') != NULL;
    say_t s = {why, cap, 0};
    why[0] = '\0';
    if (pattern && !names_something(id)) {
        add(&s,
            "the pattern '%s' would match any endpoint; name a part of the "
            "id, as in resourcemanager_*",
            id);
        return NULL;
    }
    /* Newest first: the first match is the one created last. A pattern
     * passes over matches that lack the gateway; if all lack it, the
     * newest is returned, for the caller to refuse (FL_EHANDSHAKE). */
    size_t n = 0;
    fl_rpc_endpoint_t *newest = NULL;
    for (fl_rpc_endpoint_t *e = svc->endpoints; e != NULL; e = e->next) {
        n++;
        if (!pattern) {
            if (strcmp(e->id, id) == 0)
                return e;
            continue;
        }
        if (!fl__id_match(id, e->id))
            continue;
        if (gateway == NULL || fl__rpc_service_index(e, gateway) >= 0)
            return e;
        if (newest == NULL)
            newest = e;
    }
    if (newest != NULL)
        return newest;
    if (pattern)
        add(&s, "no endpoint of the service matches '%s'; ", id);
    else
        add(&s, "the service has no endpoint '%s'; ", id);
    if (n == 0) {
        add(&s, "it has no endpoints at all");
    } else if (disclose) {
        list_ids(svc, n, &s);
    } else {
        add(&s, "it has %zu endpoint%s", n, n == 1 ? "" : "s");
        if (!pattern) {
            /* The caller may have left out a suffix (an index, a leader's
             * session): say whether the pattern would find one. */
            char prefix[FL__ID_MAX + 2];
            snprintf(prefix, sizeof prefix, "%s*", id);
            size_t m = 0;
            for (fl_rpc_endpoint_t *e = svc->endpoints; e != NULL; e = e->next)
                m += fl__id_match(prefix, e->id);
            if (m == 0)
                add(&s, ", none matching '%s'", prefix);
            else
                add(&s, ", %zu matching '%s'", m, prefix);
        }
        add(&s, " (ids are not disclosed to remote callers)");
    }
    return NULL;
}
