/*
 * cluster_ha.c - leader election's options from a configuration
 * (fling/cluster.h): the high-availability.* keys as an fl_ha_opts_t, and
 * the JobManager's address that a standalone retriever reports. The checks
 * here are those a single value cannot make when it is set (config.c's):
 * they name the key, its value and where it was set.
 */
#include <fling/cluster.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ZooKeeper's session timeout is an int of ms. */
#define SESSION_TIMEOUT_MAX_MS 2147483647LL

/* The longest endpoint id an address takes (contract of fl_rpc_connect). */
#define ENDPOINT_ID_MAX 200

static void say(char *why, size_t why_len, const char *fmt, ...)
    FL_PRINTF(3, 4);
static int bad_value(const fl_config_t *cfg, const char *key, const char *value,
                     char *why, size_t why_len, const char *fmt, ...)
    FL_PRINTF(6, 7);

static void say(char *why, size_t why_len, const char *fmt, ...)
{
    if (why == NULL || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}

/* Writes "Bad value '<value>' for '<key>' (<origin>): <detail>" into why,
 * in the voice of the config's own errors; returns FL_EINVAL. */
static int bad_value(const fl_config_t *cfg, const char *key, const char *value,
                     char *why, size_t why_len, const char *fmt, ...)
{
    if (why == NULL || why_len == 0)
        return FL_EINVAL;
    const char *origin = "";
    (void)fl_config_get_source(cfg, key, NULL, &origin);
    int n = snprintf(why, why_len, "Bad value '%s' for '%s' (%s): ", value, key,
                     origin[0] != '\0' ? origin : "default");
    if (n >= 0 && (size_t)n < why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why + n, why_len - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return FL_EINVAL;
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
}

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Checks one server "host:port" of a quorum (len bytes at s). */
static int check_server(const fl_config_t *cfg, const char *quorum,
                        const char *s, size_t len, char *why, size_t why_len)
{
    const char *key = FL_CONFIG_HA_ZK_QUORUM;
    if (len == 0)
        return bad_value(cfg, key, quorum, why, why_len,
                         "a server is missing between two commas; write "
                         "host:port,host:port.");
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ' || s[i] == '\t')
            return bad_value(cfg, key, quorum, why, why_len,
                             "server '%.*s' has a blank; write the servers "
                             "without blanks, as host:port,host:port.",
                             (int)len, s);
        if (s[i] == '/')
            return bad_value(cfg, key, quorum, why, why_len,
                             "server '%.*s' has a path; set the folder with "
                             "high-availability.zookeeper.path.root instead.",
                             (int)len, s);
    }
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (s[i] == ':')
            colon = s + i;
    if (colon == NULL || colon == s)
        return bad_value(cfg, key, quorum, why, why_len,
                         "server '%.*s' is not host:port; write each server "
                         "as host:port, e.g. zk1:2181.",
                         (int)len, s);
    const char *p = colon + 1, *end = s + len;
    long port = 0;
    for (; p < end && digit(*p) && port <= 65535; p++)
        port = port * 10 + (*p - '0');
    if (p == colon + 1 || p != end || port < 1 || port > 65535)
        return bad_value(cfg, key, quorum, why, why_len,
                         "server '%.*s' has port '%.*s'; a port is 1..65535, "
                         "e.g. zk1:2181.",
                         (int)len, s, (int)(end - (colon + 1)), colon + 1);
    return FL_OK;
}

static int check_quorum(const fl_config_t *cfg, const char *quorum, char *why,
                        size_t why_len)
{
    const char *s = quorum;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma != NULL ? (size_t)(comma - s) : strlen(s);
        int rc = check_server(cfg, quorum, s, len, why, why_len);
        if (rc != FL_OK || comma == NULL)
            return rc;
        s = comma + 1;
    }
}

static int check_root(const fl_config_t *cfg, const char *root, char *why,
                      size_t why_len)
{
    size_t n = strlen(root);
    if (n < 2 || root[0] != '/' || root[n - 1] == '/')
        return bad_value(cfg, FL_CONFIG_HA_ZK_ROOT, root, why, why_len,
                         "a root is a ZooKeeper path that starts with '/' "
                         "and does not end with one; write e.g. /flink.");
    for (size_t i = 1; i < n; i++)
        if (root[i] == '/' && root[i - 1] == '/')
            return bad_value(cfg, FL_CONFIG_HA_ZK_ROOT, root, why, why_len,
                             "a ZooKeeper path has no empty part between "
                             "two '/'; write e.g. /flink.");
    return FL_OK;
}

/* The cluster id without its one leading '/' (Flink writes "/default"),
 * or NULL if that is not a name. */
static const char *cluster_name(const char *id)
{
    const char *s = id[0] == '/' ? id + 1 : id;
    size_t n = strlen(s);
    if (n == 0 || n > 255 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!name_char(s[i]))
            return NULL;
    return s;
}

int fl_cluster_ha_opts(const fl_config_t *cfg, fl_ha_opts_t *o, char *why,
                       size_t why_len)
{
    if (cfg == NULL || o == NULL) {
        say(why, why_len, "fl_cluster_ha_opts: cfg and o are needed");
        return FL_EINVAL;
    }
    const char *type, *quorum, *root, *id;
    int64_t session;
    /* Every key is in the config's table: these only fail on a bug. */
    if (fl_config_get_string(cfg, FL_CONFIG_HA_TYPE, &type) != FL_OK ||
        fl_config_get_string(cfg, FL_CONFIG_HA_ZK_QUORUM, &quorum) != FL_OK ||
        fl_config_get_string(cfg, FL_CONFIG_HA_ZK_ROOT, &root) != FL_OK ||
        fl_config_get_string(cfg, FL_CONFIG_HA_CLUSTER_ID, &id) != FL_OK ||
        fl_config_get_duration_ms(cfg, FL_CONFIG_HA_ZK_SESSION_TIMEOUT,
                                  &session) != FL_OK) {
        say(why, why_len, "the configuration lacks a high-availability key");
        return FL_EINVAL;
    }
    /* zookeeper without a quorum: fl_config_validate says it. */
    int rc = fl_config_validate(cfg, why, why_len);
    if (rc != FL_OK)
        return rc;
    /* The stored type is the table's spelling of the choice. */
    bool zk = strcmp(type, "zookeeper") == 0;
    const char *name = cluster_name(id);
    if (zk) {
        if ((rc = check_quorum(cfg, quorum, why, why_len)) != FL_OK ||
            (rc = check_root(cfg, root, why, why_len)) != FL_OK)
            return rc;
        if (name == NULL)
            return bad_value(cfg, FL_CONFIG_HA_CLUSTER_ID, id, why, why_len,
                             "a cluster id is a name of letters, digits, "
                             "'_', '-' and '.' (one leading '/' is "
                             "allowed); write e.g. /prod.");
        if (session > SESSION_TIMEOUT_MAX_MS) {
            char value[32];
            snprintf(value, sizeof value, "%lld ms", (long long)session);
            return bad_value(cfg, FL_CONFIG_HA_ZK_SESSION_TIMEOUT, value, why,
                             why_len,
                             "ZooKeeper takes at most %lld ms; give a "
                             "shorter timeout, e.g. 1 min.",
                             SESSION_TIMEOUT_MAX_MS);
        }
    }
    fl_ha_opts_t r = {
        .mode = zk ? FL_HA_ZOOKEEPER : FL_HA_NONE,
        .standalone_address = NULL,
        .zk_quorum = quorum,
        .zk_root = root,
        .cluster_id = name != NULL ? name : id,
        .zk_session_timeout_ms = session,
    };
    *o = r;
    return FL_OK;
}

/* True if host (n bytes) is an IPv6 address: hex digits, ':' and '.'. */
static bool ipv6_host(const char *host, size_t n)
{
    bool colon = false;
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        if (c == ':')
            colon = true;
        else if (!digit(c) && !(c >= 'a' && c <= 'f') &&
                 !(c >= 'A' && c <= 'F') && c != '.')
            return false;
    }
    return colon;
}

int fl_cluster_jobmanager_address(const fl_config_t *cfg,
                                  const char *endpoint_id, char *buf,
                                  size_t cap, char *why, size_t why_len)
{
    if (cfg == NULL || endpoint_id == NULL || buf == NULL) {
        say(why, why_len,
            "fl_cluster_jobmanager_address: cfg, endpoint_id and buf are "
            "needed");
        return FL_EINVAL;
    }
    const char *host;
    int64_t port;
    if (fl_config_get_string(cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS, &host) !=
            FL_OK ||
        fl_config_get_int(cfg, FL_CONFIG_JOBMANAGER_RPC_PORT, &port) != FL_OK) {
        say(why, why_len, "the configuration lacks a jobmanager.rpc key");
        return FL_EINVAL;
    }
    size_t idn = strlen(endpoint_id);
    bool id_ok = idn >= 1 && idn <= ENDPOINT_ID_MAX;
    for (size_t i = 0; id_ok && i < idn; i++)
        id_ok = name_char(endpoint_id[i]) || endpoint_id[i] == '*';
    if (!id_ok) {
        say(why, why_len,
            "fl_cluster_jobmanager_address: endpoint id '%.*s' is not an id; "
            "ids are 1..200 bytes of [A-Za-z0-9_.-] ('*' for a pattern)",
            ENDPOINT_ID_MAX + 1, endpoint_id);
        return FL_EINVAL;
    }
    size_t hn = strlen(host);
    bool bracketed = hn >= 2 && host[0] == '[' && host[hn - 1] == ']';
    bool v6 = bracketed ? ipv6_host(host + 1, hn - 2) : ipv6_host(host, hn);
    bool host_ok = hn > 0 && hn <= 255;
    for (size_t i = 0; host_ok && !v6 && i < hn; i++)
        host_ok = name_char(host[i]);
    if (!host_ok)
        return bad_value(cfg, FL_CONFIG_JOBMANAGER_RPC_ADDRESS, host, why,
                         why_len,
                         "expected the JobManager's host name or IP address "
                         "([A-Za-z0-9._-], or an IPv6 address); write e.g. "
                         "jm.example.com or 10.0.0.1.");
    if (port == 0) {
        return bad_value(cfg, FL_CONFIG_JOBMANAGER_RPC_PORT, "0", why, why_len,
                         "port 0 lets the JobManager listen on any port, so "
                         "no address of it can be known beforehand; set the "
                         "port it listens on, e.g. 6123.");
    }
    const char *open = v6 && !bracketed ? "[" : "";
    const char *close = v6 && !bracketed ? "]" : "";
    const char *scheme = fl_cluster_rpc_scheme(cfg);
    int n = snprintf(NULL, 0, "%s%s%s%s:%lld/%s", scheme, open, host, close,
                     (long long)port, endpoint_id);
    if (n < 0 || (size_t)n >= cap) {
        say(why, why_len,
            "fl_cluster_jobmanager_address: the address of '%s' needs %d "
            "bytes and buf has %zu; give a larger buf",
            endpoint_id, n + 1, cap);
        return FL_EINVAL;
    }
    snprintf(buf, cap, "%s%s%s%s:%lld/%s", scheme, open, host, close,
             (long long)port, endpoint_id);
    return FL_OK;
}
