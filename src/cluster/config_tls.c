/*
 * config_tls.c - the security.ssl.* keys: their rules across keys (part
 * of fl_config_validate) and the RPC service's TLS options they make
 * (fl_cluster_tls_init, fling/cluster.h).
 */
#include <fling/cluster.h>

#include <stdio.h>
#include <string.h>

#include "cluster/config_int.h"
#include "common/internal.h"

#define ALGORITHMS_EXAMPLE "TLS_AES_256_GCM_SHA384,ECDHE-RSA-AES256-GCM-SHA384"

/* Where key's value came from, as messages say it. */
static const char *origin_of(const fl_config_t *cfg, const char *key)
{
    const char *origin = "";
    (void)fl_config_get_source(cfg, key, NULL, &origin);
    return origin[0] != '\0' ? origin : "default";
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* Calls fn on each name of the comma-separated list (blanks around a name
 * do not count; a list of blanks only is empty). Returns FL_OK, or
 * FL_EINVAL with why for an empty name or one of other characters. */
static int each_name(const fl_config_t *cfg, const char *list,
                     void (*fn)(void *arg, const char *name, size_t len),
                     void *arg, char *why, size_t why_len)
{
    const char *key = FL_CONFIG_SSL_ALGORITHMS;
    const char *p = list;
    while (blank(*p))
        p++;
    if (*p == '\0')
        return FL_OK;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma != NULL ? comma : p + strlen(p);
        const char *b = p, *e = end;
        while (b < e && blank(*b))
            b++;
        while (e > b && blank(e[-1]))
            e--;
        if (b == e) {
            fl__say(why, why_len,
                    "Bad value '%s' for '%s' (%s): a name is missing between "
                    "two commas; write the names separated by commas, e.g. "
                    "%s.",
                    list, key, origin_of(cfg, key), ALGORITHMS_EXAMPLE);
            return FL_EINVAL;
        }
        for (const char *c = b; c < e; c++)
            if (!name_char(*c)) {
                fl__say(why, why_len,
                        "Bad value '%s' for '%s' (%s): '%.*s' is not a cipher "
                        "suite name (letters, digits, '_' and '-'); write the "
                        "names separated by commas, e.g. %s.",
                        list, key, origin_of(cfg, key), (int)(e - b), b,
                        ALGORITHMS_EXAMPLE);
                return FL_EINVAL;
            }
        if (fn != NULL)
            fn(arg, b, (size_t)(e - b));
        if (comma == NULL)
            return FL_OK;
        p = comma + 1;
    }
}

static bool tls13_name(const char *name, size_t len)
{
    return len >= 4 && strncmp(name, "TLS_", 4) == 0;
}

static void count_tls13(void *arg, const char *name, size_t len)
{
    if (tls13_name(name, len))
        ++*(size_t *)arg;
}

/* Says that key is not set though TLS is on; what it should name. */
static int missing(const fl_config_t *cfg, const char *key, const char *what,
                   char *why, size_t why_len)
{
    fl__say(why, why_len,
            "%s is true (%s) but %s is not set; set it to the PEM file of %s, "
            "or turn TLS off.",
            FL_CONFIG_SSL_INTERNAL_ENABLED,
            origin_of(cfg, FL_CONFIG_SSL_INTERNAL_ENABLED), key, what);
    return FL_EINVAL;
}

int fl__config_validate_tls(const fl_config_t *cfg, char *why, size_t why_len)
{
    bool on = false;
    const char *cert = "", *key = "", *ca = "", *proto = "", *algs = "";
    (void)fl_config_get_bool(cfg, FL_CONFIG_SSL_INTERNAL_ENABLED, &on);
    (void)fl_config_get_string(cfg, FL_CONFIG_SSL_INTERNAL_CERTIFICATE, &cert);
    (void)fl_config_get_string(cfg, FL_CONFIG_SSL_INTERNAL_KEY, &key);
    (void)fl_config_get_string(cfg, FL_CONFIG_SSL_INTERNAL_TRUSTSTORE, &ca);
    (void)fl_config_get_string(cfg, FL_CONFIG_SSL_PROTOCOL, &proto);
    (void)fl_config_get_string(cfg, FL_CONFIG_SSL_ALGORITHMS, &algs);
    if (on && cert[0] == '\0')
        return missing(cfg, FL_CONFIG_SSL_INTERNAL_CERTIFICATE,
                       "this process's certificate and its chain", why,
                       why_len);
    if (on && key[0] == '\0')
        return missing(cfg, FL_CONFIG_SSL_INTERNAL_KEY,
                       "the certificate's private key", why, why_len);
    if (on && ca[0] == '\0')
        return missing(cfg, FL_CONFIG_SSL_INTERNAL_TRUSTSTORE,
                       "the CA certificates to trust", why, why_len);
    size_t n13 = 0;
    int rc = each_name(cfg, algs, count_tls13, &n13, why, why_len);
    if (rc != FL_OK)
        return rc;
    const char *p = algs;
    while (blank(*p))
        p++;
    /* The stored protocol is the table's spelling of the choice. */
    if (*p != '\0' && n13 == 0 && strcmp(proto, "TLSv1.3") == 0) {
        fl__say(why, why_len,
                "%s (%s) names no TLS 1.3 suite but %s is TLSv1.3 (%s), "
                "which uses TLS 1.3 suites only; add one such as "
                "TLS_AES_256_GCM_SHA384, or set %s to TLSv1.2.",
                FL_CONFIG_SSL_ALGORITHMS,
                origin_of(cfg, FL_CONFIG_SSL_ALGORITHMS),
                FL_CONFIG_SSL_PROTOCOL, origin_of(cfg, FL_CONFIG_SSL_PROTOCOL),
                FL_CONFIG_SSL_PROTOCOL);
        return FL_EINVAL;
    }
    return FL_OK;
}

/* ---- the service's options ---------------------------------------------- */

/* Two ':'-joined lists being written: TLS 1.3 suites and TLS 1.2 ciphers. */
typedef struct split {
    char *suites, *ciphers;
    size_t nsuites, nciphers;
} split_t;

static void add_name(void *arg, const char *name, size_t len)
{
    split_t *s = arg;
    bool t13 = tls13_name(name, len);
    char *out = t13 ? s->suites : s->ciphers;
    size_t *n = t13 ? &s->nsuites : &s->nciphers;
    if (*n > 0)
        out[(*n)++] = ':';
    memcpy(out + *n, name, len);
    *n += len;
    out[*n] = '\0';
}

const char *fl_cluster_rpc_scheme(const fl_config_t *cfg)
{
    bool on = false;
    (void)fl_config_get_bool(cfg, FL_CONFIG_SSL_INTERNAL_ENABLED, &on);
    return on ? "fling.ssl://" : "fling.tcp://";
}

int fl_cluster_tls_init(fl_cluster_tls_t *t, const fl_config_t *cfg, char *why,
                        size_t why_len)
{
    if (t == NULL || cfg == NULL) {
        fl__say(why, why_len, "fl_cluster_tls_init: t and cfg are needed");
        return FL_EINVAL;
    }
    memset(t, 0, sizeof *t);
    /* The TLS rules only: a heartbeat or ZooKeeper rule is not this
     * function's to refuse (the caller validates the whole config). */
    int rc = fl__config_validate_tls(cfg, why, why_len);
    if (rc != FL_OK)
        return rc;
    const char *proto = "", *algs = "";
    bool verify = true;
    (void)fl_config_get_bool(cfg, FL_CONFIG_SSL_INTERNAL_ENABLED, &t->enabled);
    (void)fl_config_get_duration_ms(cfg,
                                    FL_CONFIG_SSL_INTERNAL_HANDSHAKE_TIMEOUT,
                                    &t->handshake_timeout_ms);
    (void)fl_config_get_string(cfg, FL_CONFIG_SSL_INTERNAL_CERTIFICATE,
                               &t->opts.cert_file);
    (void)fl_config_get_string(cfg, FL_CONFIG_SSL_INTERNAL_KEY,
                               &t->opts.key_file);
    (void)fl_config_get_string(cfg, FL_CONFIG_SSL_INTERNAL_TRUSTSTORE,
                               &t->opts.ca_file);
    (void)fl_config_get_string(cfg, FL_CONFIG_SSL_PROTOCOL, &proto);
    (void)fl_config_get_string(cfg, FL_CONFIG_SSL_ALGORITHMS, &algs);
    (void)fl_config_get_bool(cfg, FL_CONFIG_SSL_VERIFY_HOSTNAME, &verify);
    t->opts.min_version =
        strcmp(proto, "TLSv1.2") == 0 ? FL_TLS_1_2 : FL_TLS_1_3;
    t->opts.skip_hostname_check = !verify;
    /* Each list is at most the whole value long: one block holds both. */
    size_t len = strlen(algs);
    t->lists_ = fl__malloc(2 * (len + 1));
    if (t->lists_ == NULL) {
        fl__say(why, why_len, "Out of memory while reading the TLS settings.");
        return FL_ENOMEM;
    }
    split_t s = {.suites = t->lists_, .ciphers = t->lists_ + len + 1};
    s.suites[0] = s.ciphers[0] = '\0';
    /* Validated above: each_name does not fail here. */
    (void)each_name(cfg, algs, add_name, &s, NULL, 0);
    t->opts.ciphersuites = s.nsuites > 0 ? s.suites : NULL;
    t->opts.ciphers = s.nciphers > 0 ? s.ciphers : NULL;
    return FL_OK;
}

void fl_cluster_tls_apply(const fl_cluster_tls_t *t, fl_rpc_service_opts_t *o)
{
    if (t == NULL || o == NULL || !t->enabled)
        return;
    o->tls = &t->opts;
    o->handshake_timeout_ms = t->handshake_timeout_ms;
}

void fl_cluster_tls_fini(fl_cluster_tls_t *t)
{
    if (t == NULL)
        return;
    fl__free(t->lists_);
    memset(t, 0, sizeof *t);
}

/* The service's option names and the keys that set them, in its
 * messages' words. */
static const char *const renames[][2] = {
    {"tls.cert_file", FL_CONFIG_SSL_INTERNAL_CERTIFICATE},
    {"tls.key_file", FL_CONFIG_SSL_INTERNAL_KEY},
    {"tls.ca_file", FL_CONFIG_SSL_INTERNAL_TRUSTSTORE},
    {"tls.ciphersuites", FL_CONFIG_SSL_ALGORITHMS},
    {"tls.ciphers", FL_CONFIG_SSL_ALGORITHMS},
    {"tls.min_version", FL_CONFIG_SSL_PROTOCOL},
};

const char *fl_cluster_tls_message(const char *msg, char *buf, size_t cap)
{
    if (buf == NULL || cap == 0)
        return "";
    size_t n = 0;
    const char *p = msg != NULL ? msg : "";
    while (*p != '\0' && n + 1 < cap) {
        size_t i = 0, nr = sizeof renames / sizeof renames[0];
        for (; i < nr; i++)
            if (strncmp(p, renames[i][0], strlen(renames[i][0])) == 0)
                break;
        if (i == nr) {
            buf[n++] = *p++;
            continue;
        }
        int w = snprintf(buf + n, cap - n, "%s", renames[i][1]);
        n = (size_t)w < cap - n ? n + (size_t)w : cap - 1;
        p += strlen(renames[i][0]);
    }
    buf[n] = '\0';
    return buf;
}
