/*
 * config.c - the key table, the stored values and what reads them: getters,
 * overrides, validation and the printout. The parsers of values and of
 * YAML are config_value.c and config_yaml.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cluster/config_int.h"
#include "common/internal.h"

#define NOMIN INT64_MIN
#define NOMAX INT64_MAX
#define DAY_MS (24 * 3600 * INT64_C(1000))

/* Every key fling knows, in the order of the printout and the guide.
 * Defaults are Flink's (contract section 1.10), written as
 * fl__config_format_value writes them. */
const fl__config_row_t fl__config_rows[] = {
    {{FL_CONFIG_JOBMANAGER_RPC_ADDRESS, FL_CONFIG_STRING, "localhost",
      "host name or IP address",
      "Address of the JobManager, where TaskManagers and clients connect."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_JOBMANAGER_RPC_PORT, FL_CONFIG_INT, "6123", "int 0..65535",
      "Port of the JobManager's RPC endpoint."},
     0,
     65535,
     false,
     NULL},
    {{FL_CONFIG_TASKMANAGER_SLOTS, FL_CONFIG_INT, "1", "int >= 1",
      "Number of task slots a TaskManager offers."},
     1,
     INT32_MAX,
     false,
     NULL},
    {{FL_CONFIG_TASKMANAGER_REGISTRATION_TIMEOUT, FL_CONFIG_DURATION, "5 min",
      "duration > 0",
      "A TaskManager that is not registered within this time gives up."},
     1,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_TASKMANAGER_HOST, FL_CONFIG_STRING, "localhost",
      "host name or IP address",
      "Address a TaskManager listens on and gives the ResourceManager."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_TASKMANAGER_RPC_PORT, FL_CONFIG_STRING, "0",
      "port, range or list",
      "Ports a TaskManager tries for its RPC service (0: any free one)."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_TASKMANAGER_RESOURCE_ID, FL_CONFIG_STRING, "", "string",
      "Id of a TaskManager in the cluster; empty: its host:port."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    /* Capped at a day: Flink takes any long (its watchdog's deadline in
     * ns wraps past about 292 years), but a longer watch has no use (0
     * disables the timeout) and ours then stays far from overflowing. */
    {{FL_CONFIG_TASK_CANCELLATION_INTERVAL, FL_CONFIG_DURATION, "30 s",
      "duration 1 ms..24 h",
      "How often a TaskManager logs a cancelled task that has not ended."},
     1,
     DAY_MS,
     false,
     NULL},
    {{FL_CONFIG_TASK_CANCELLATION_TIMEOUT, FL_CONFIG_DURATION, "3 min",
      "duration 0 ms..24 h",
      "A cancelled task not ended within this time ends its TaskManager "
      "with a fatal error; 0 disables."},
     0,
     DAY_MS,
     false,
     NULL},
    {{FL_CONFIG_HEARTBEAT_INTERVAL, FL_CONFIG_DURATION, "10 s", "duration > 0",
      "Time between two heartbeat requests of a sender."},
     1,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_HEARTBEAT_TIMEOUT, FL_CONFIG_DURATION, "50 s",
      "duration >= heartbeat.interval",
      "Time without a heartbeat after which a target is declared dead."},
     1,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_HEARTBEAT_RPC_FAILURE_THRESHOLD, FL_CONFIG_INT, "2",
      "-1 or int >= 1",
      "Consecutive unreachable heartbeat RPCs that declare a target dead; "
      "-1 disables."},
     -1,
     INT32_MAX,
     true,
     NULL},
    {{FL_CONFIG_REGISTRATION_JITTER, FL_CONFIG_BOOL, "true", "true or false",
      "Add a bounded random jitter to each registration delay."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_REGISTRATION_INITIAL_TIMEOUT, FL_CONFIG_DURATION, "100 ms",
      "duration > 0",
      "Timeout of the first registration attempt; doubles on each timeout."},
     1,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_REGISTRATION_MAX_TIMEOUT, FL_CONFIG_DURATION, "30 s",
      "duration > 0", "Cap of the doubling registration attempt timeout."},
     1,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_REGISTRATION_ERROR_DELAY, FL_CONFIG_DURATION, "10 s",
      "duration >= 0",
      "Pause before the next registration attempt after an error."},
     0,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_REGISTRATION_REFUSED_DELAY, FL_CONFIG_DURATION, "30 s",
      "duration >= 0",
      "Pause before the next registration attempt after a refusal."},
     0,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_HA_TYPE, FL_CONFIG_STRING, "NONE", "NONE or zookeeper",
      "High-availability mode: NONE (standalone) or zookeeper."},
     NOMIN,
     NOMAX,
     false,
     "NONE|zookeeper"},
    {{FL_CONFIG_HA_CLUSTER_ID, FL_CONFIG_STRING, "/default", "string",
      "Id of the cluster, the ZooKeeper folder of its leader election."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_HA_ZK_QUORUM, FL_CONFIG_STRING, "", "host:port,host:port",
      "ZooKeeper servers; required when high-availability.type is "
      "zookeeper."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_HA_ZK_ROOT, FL_CONFIG_STRING, "/flink", "string",
      "Root ZooKeeper folder under which clusters keep their state."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_HA_ZK_SESSION_TIMEOUT, FL_CONFIG_DURATION, "1 min",
      "duration > 0", "ZooKeeper session timeout."},
     1,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_HA_ZK_CONNECTION_TIMEOUT, FL_CONFIG_DURATION, "15 s",
      "duration > 0",
      "ZooKeeper connection timeout; read by nothing yet (the C client "
      "takes a session timeout only)."},
     1,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_RPC_FRAMESIZE, FL_CONFIG_SIZE, "10 mb", "size > 0",
      "Largest RPC message (request or reply) on the wire."},
     1,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_RPC_ASK_TIMEOUT, FL_CONFIG_DURATION, "10 s", "duration > 0",
      "Default timeout of RPC calls and connects."},
     1,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_SSL_INTERNAL_ENABLED, FL_CONFIG_BOOL, "false", "true or false",
      "Mutual TLS on every RPC connection of the process (fling.ssl://)."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_SSL_INTERNAL_CERTIFICATE, FL_CONFIG_STRING, "", "a PEM file",
      "This process's certificate, then its intermediates (Flink's "
      "keystore); required when TLS is on."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_SSL_INTERNAL_KEY, FL_CONFIG_STRING, "", "a PEM file",
      "The unencrypted private key of the certificate; required when TLS "
      "is on."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_SSL_INTERNAL_TRUSTSTORE, FL_CONFIG_STRING, "", "a PEM file",
      "The CA certificates a peer's certificate must chain to (Flink's "
      "truststore); required when TLS is on."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    /* Capped at a day, as the cancellation's: longer has no use, and the
     * transport's deadlines stay far from overflowing. */
    {{FL_CONFIG_SSL_INTERNAL_HANDSHAKE_TIMEOUT, FL_CONFIG_DURATION, "10 s",
      "duration 1 ms..24 h",
      "With TLS on: a connection whose TLS handshake and HELLO take longer "
      "fails."},
     1,
     DAY_MS,
     false,
     NULL},
    {{FL_CONFIG_SSL_PROTOCOL, FL_CONFIG_STRING, "TLSv1.3", "TLSv1.3 or TLSv1.2",
      "Lowest TLS version spoken: TLSv1.3 (1.3 only) or TLSv1.2 (1.2 and "
      "1.3)."},
     NOMIN,
     NOMAX,
     false,
     "TLSv1.3|TLSv1.2"},
    {{FL_CONFIG_SSL_ALGORITHMS, FL_CONFIG_STRING, "", "name,name",
      "Cipher suites by OpenSSL's names: TLS_... are TLS 1.3 suites, the "
      "rest TLS 1.2 ciphers; empty: OpenSSL's defaults."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_SSL_VERIFY_HOSTNAME, FL_CONFIG_BOOL, "true", "true or false",
      "A dialling process checks that the peer's certificate names the host "
      "it dials."},
     NOMIN,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_SLOT_REQUEST_TIMEOUT, FL_CONFIG_DURATION, "5 min",
      "duration > 0",
      "A job that does not get all the slots it needs within this time "
      "fails."},
     1,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_RESTART_ATTEMPTS, FL_CONFIG_INT, "1", "int >= 0",
      "Times a failed job is restarted before it fails for good."},
     0,
     INT32_MAX,
     false,
     NULL},
    {{FL_CONFIG_RESTART_DELAY, FL_CONFIG_DURATION, "1 s", "duration >= 0",
      "Pause between a job's failure and its restart."},
     0,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_JOBSTORE_MAX_CAPACITY, FL_CONFIG_INT, "1000", "int >= 0",
      "Ended jobs the Dispatcher keeps for list and status (the oldest go "
      "first)."},
     0,
     INT32_MAX,
     false,
     NULL},
    {{FL_CONFIG_JOBSTORE_EXPIRATION_TIME, FL_CONFIG_DURATION, "1 h",
      "duration > 0",
      "How long the Dispatcher keeps an ended job for list and status."},
     1,
     NOMAX,
     false,
     NULL},
    {{FL_CONFIG_HA_STORAGE_DIR, FL_CONFIG_STRING, "", "a folder",
      "With ZooKeeper: where the JobManager keeps its jobs (under jobs/), "
      "so that a JobManager started again recovers them."},
     NOMIN,
     NOMAX,
     false,
     NULL},
};

const size_t fl__config_nrows =
    sizeof fl__config_rows / sizeof fl__config_rows[0];

#define NROWS (sizeof fl__config_rows / sizeof fl__config_rows[0])

struct fl_config {
    fl__config_slot_t slots[NROWS];
};

size_t fl_config_key_count(void)
{
    return NROWS;
}

const fl_config_key_t *fl_config_key_at(size_t i)
{
    return i < NROWS ? &fl__config_rows[i].pub : NULL;
}

const char *fl_config_type_name(fl_config_type_t type)
{
    switch (type) {
    case FL_CONFIG_STRING:
        return "string";
    case FL_CONFIG_INT:
        return "int";
    case FL_CONFIG_BOOL:
        return "bool";
    case FL_CONFIG_DURATION:
        return "duration";
    case FL_CONFIG_SIZE:
        return "size";
    }
    return "unknown";
}

int fl__config_find(const char *key)
{
    for (size_t i = 0; i < NROWS; i++)
        if (strcmp(fl__config_rows[i].pub.name, key) == 0)
            return (int)i;
    return -1;
}

static void slot_clear(fl__config_slot_t *s)
{
    fl__free(s->val.s);
    fl__free(s->origin);
    memset(s, 0, sizeof *s);
}

/* ---- batches ------------------------------------------------------------ */

int fl__config_batch_init(fl__config_batch_t *b)
{
    b->slots = fl__calloc(NROWS, sizeof *b->slots);
    return b->slots ? FL_OK : FL_ENOMEM;
}

void fl__config_batch_fini(fl__config_batch_t *b)
{
    if (!b->slots)
        return;
    for (size_t i = 0; i < NROWS; i++)
        slot_clear(&b->slots[i]);
    fl__free(b->slots);
    b->slots = NULL;
}

int fl__config_stage(fl__config_batch_t *b, const char *key, const char *value,
                     fl_config_source_t src, const char *origin, uint32_t line,
                     bool dup_is_error, char *err, size_t errcap)
{
    int i = fl__config_find(key);
    if (i < 0) {
        fl__say(err, errcap,
                "Unknown configuration key '%s' (%s); did you mean '%s'?", key,
                origin, fl__config_nearest(key));
        return FL_EINVAL;
    }
    fl__config_slot_t *s = &b->slots[i];
    if (s->set && dup_is_error) {
        fl__say(err, errcap,
                "Configuration key '%s' is set twice, at %s and at %s; keep "
                "one of them.",
                key, s->origin, origin);
        return FL_EINVAL;
    }
    fl__config_val_t v = {0};
    int rc = fl__config_parse_value(&fl__config_rows[i], value, origin, &v, err,
                                    errcap);
    if (rc != FL_OK)
        return rc;
    char *o = fl__strdup(origin);
    if (!o) {
        fl__free(v.s);
        fl__say(err, errcap, "Out of memory while loading the configuration.");
        return FL_ENOMEM;
    }
    slot_clear(s);
    s->set = true;
    s->val = v;
    s->src = src;
    s->origin = o;
    s->line = line;
    return FL_OK;
}

size_t fl__config_commit(fl_config_t *cfg, fl__config_batch_t *b)
{
    size_t n = 0;
    for (size_t i = 0; i < NROWS; i++) {
        if (!b->slots[i].set)
            continue;
        slot_clear(&cfg->slots[i]);
        cfg->slots[i] = b->slots[i];
        memset(&b->slots[i], 0, sizeof b->slots[i]);
        n++;
    }
    return n;
}

/* ---- life ---------------------------------------------------------------- */

fl_config_t *fl_config_alloc(void)
{
    fl_config_t *cfg = fl__calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    for (size_t i = 0; i < NROWS; i++) {
        fl__config_slot_t *s = &cfg->slots[i];
        s->set = true;
        s->src = FL_CONFIG_DEFAULT;
        s->origin = fl__strdup("");
        /* The defaults go through the parser users' values go through, so
         * a bad default is found by the first test, not by a user. */
        if (!s->origin || fl__config_parse_value(&fl__config_rows[i],
                                                 fl__config_rows[i].pub.def, "",
                                                 &s->val, NULL, 0) != FL_OK)
            goto fail;
    }
    return cfg;
fail:
    fl_config_free(cfg);
    return NULL;
}

void fl_config_free(fl_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < NROWS; i++)
        slot_clear(&cfg->slots[i]);
    fl__free(cfg);
}

/* ---- overrides ------------------------------------------------------------
 */

/* Stages one "key=value" override. */
static int stage_override(fl__config_batch_t *b, const char *kv, char *err,
                          size_t errcap)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) {
        fl__say(err, errcap,
                "Override '%s' is not of the form key=value; write it as "
                "-D heartbeat.interval=10s.",
                kv);
        return FL_EINVAL;
    }
    size_t klen = (size_t)(eq - kv);
    char *key = fl__malloc(klen + 1);
    if (!key) {
        fl__say(err, errcap, "Out of memory while loading the configuration.");
        return FL_ENOMEM;
    }
    memcpy(key, kv, klen);
    key[klen] = '\0';
    int rc = fl__config_stage(b, key, eq + 1, FL_CONFIG_OVERRIDE, "-D", 0,
                              false, err, errcap);
    fl__free(key);
    return rc;
}

int fl_config_set(fl_config_t *cfg, const char *key, const char *value,
                  char *err, size_t errcap)
{
    if (!cfg || !key || !value) {
        fl__say(err, errcap,
                "fl_config_set needs a config, a key and a value.");
        return FL_EINVAL;
    }
    fl__config_batch_t b;
    if (fl__config_batch_init(&b) != FL_OK) {
        fl__say(err, errcap, "Out of memory while loading the configuration.");
        return FL_ENOMEM;
    }
    int rc = fl__config_stage(&b, key, value, FL_CONFIG_OVERRIDE, "-D", 0,
                              false, err, errcap);
    if (rc == FL_OK)
        fl__config_commit(cfg, &b);
    fl__config_batch_fini(&b);
    return rc;
}

int fl_config_apply_overrides(fl_config_t *cfg, const char *const *kv, size_t n,
                              char *err, size_t errcap)
{
    if (!cfg || (n > 0 && !kv)) {
        fl__say(err, errcap,
                "fl_config_apply_overrides needs a config and "
                "its overrides.");
        return FL_EINVAL;
    }
    fl__config_batch_t b;
    if (fl__config_batch_init(&b) != FL_OK) {
        fl__say(err, errcap, "Out of memory while loading the configuration.");
        return FL_ENOMEM;
    }
    int rc = FL_OK;
    for (size_t i = 0; i < n && rc == FL_OK; i++)
        rc = stage_override(&b, kv[i], err, errcap);
    if (rc == FL_OK)
        fl__config_commit(cfg, &b);
    fl__config_batch_fini(&b);
    return rc;
}

int fl_config_apply_args(fl_config_t *cfg, int *argc, char **argv, char *err,
                         size_t errcap)
{
    if (!cfg || !argc || *argc < 0 || (*argc > 0 && !argv)) {
        fl__say(err, errcap,
                "fl_config_apply_args needs a config and a command line.");
        return FL_EINVAL;
    }
    int n = *argc;
    fl__config_batch_t b;
    if (fl__config_batch_init(&b) != FL_OK) {
        fl__say(err, errcap, "Out of memory while loading the configuration.");
        return FL_ENOMEM;
    }
    int rc = FL_OK;
    int i = 1;
    for (; i < n && rc == FL_OK; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strncmp(argv[i], "-D", 2) != 0)
            continue;
        if (argv[i][2] != '\0') {
            rc = stage_override(&b, argv[i] + 2, err, errcap);
        } else if (i + 1 < n) {
            rc = stage_override(&b, argv[++i], err, errcap);
        } else {
            fl__say(err, errcap,
                    "Option -D at the end of the command line has no "
                    "key=value; write -D heartbeat.interval=10s.");
            rc = FL_EINVAL;
        }
    }
    if (rc == FL_OK) {
        /* Every -D parsed: now drop them from argv, keeping the rest. */
        int w = n > 0 ? 1 : 0;
        bool ended = false;
        for (int r = 1; r < n; r++) {
            if (!ended && strcmp(argv[r], "--") == 0)
                ended = true;
            if (!ended && strncmp(argv[r], "-D", 2) == 0) {
                if (argv[r][2] == '\0')
                    r++;
                continue;
            }
            argv[w++] = argv[r];
        }
        if (n > 0)
            argv[w] = NULL;
        *argc = w;
        fl__config_commit(cfg, &b);
    }
    fl__config_batch_fini(&b);
    return rc;
}

/* ---- reading ----------------------------------------------------------------
 */

static int get_slot(const fl_config_t *cfg, const char *key,
                    fl_config_type_t type, const fl__config_slot_t **out)
{
    int i = cfg && key ? fl__config_find(key) : -1;
    if (i < 0)
        return FL_ENOENT;
    if (fl__config_rows[i].pub.type != type)
        return FL_EINVAL;
    *out = &cfg->slots[i];
    return FL_OK;
}

int fl_config_get_string(const fl_config_t *cfg, const char *key,
                         const char **out)
{
    const fl__config_slot_t *s;
    int rc = get_slot(cfg, key, FL_CONFIG_STRING, &s);
    if (rc == FL_OK)
        *out = s->val.s;
    return rc;
}

int fl_config_get_int(const fl_config_t *cfg, const char *key, int64_t *out)
{
    const fl__config_slot_t *s;
    int rc = get_slot(cfg, key, FL_CONFIG_INT, &s);
    if (rc == FL_OK)
        *out = s->val.i;
    return rc;
}

int fl_config_get_bool(const fl_config_t *cfg, const char *key, bool *out)
{
    const fl__config_slot_t *s;
    int rc = get_slot(cfg, key, FL_CONFIG_BOOL, &s);
    if (rc == FL_OK)
        *out = s->val.i != 0;
    return rc;
}

int fl_config_get_duration_ms(const fl_config_t *cfg, const char *key,
                              int64_t *out)
{
    const fl__config_slot_t *s;
    int rc = get_slot(cfg, key, FL_CONFIG_DURATION, &s);
    if (rc == FL_OK)
        *out = s->val.i;
    return rc;
}

int fl_config_get_size(const fl_config_t *cfg, const char *key, uint64_t *out)
{
    const fl__config_slot_t *s;
    int rc = get_slot(cfg, key, FL_CONFIG_SIZE, &s);
    if (rc == FL_OK)
        *out = (uint64_t)s->val.i;
    return rc;
}

int fl_config_get_source(const fl_config_t *cfg, const char *key,
                         fl_config_source_t *src, const char **origin)
{
    int i = cfg && key ? fl__config_find(key) : -1;
    if (i < 0)
        return FL_ENOENT;
    if (src)
        *src = cfg->slots[i].src;
    if (origin)
        *origin = cfg->slots[i].origin;
    return FL_OK;
}

int fl_config_get_text(const fl_config_t *cfg, const char *key, char *buf,
                       size_t cap)
{
    if (!cfg || !key || !buf || cap == 0)
        return FL_EINVAL;
    int i = fl__config_find(key);
    if (i < 0)
        return FL_ENOENT;
    const char *text = fl__config_format_value(&fl__config_rows[i],
                                               &cfg->slots[i].val, buf, cap);
    if (text != buf)
        snprintf(buf, cap, "%s", text);
    return FL_OK;
}

int fl_config_validate(const fl_config_t *cfg, char *err, size_t errcap)
{
    if (!cfg) {
        fl__say(err, errcap, "fl_config_validate needs a config.");
        return FL_EINVAL;
    }
    int64_t interval = 0, timeout = 0;
    (void)fl_config_get_duration_ms(cfg, FL_CONFIG_HEARTBEAT_INTERVAL,
                                    &interval);
    (void)fl_config_get_duration_ms(cfg, FL_CONFIG_HEARTBEAT_TIMEOUT, &timeout);
    if (interval > timeout) {
        fl__say(err, errcap,
                "heartbeat.interval (%lld ms) is longer than heartbeat.timeout "
                "(%lld ms): every target would time out between two "
                "heartbeats; make the interval at most the timeout.",
                (long long)interval, (long long)timeout);
        return FL_EINVAL;
    }
    const char *ha = "", *quorum = "";
    (void)fl_config_get_string(cfg, FL_CONFIG_HA_TYPE, &ha);
    (void)fl_config_get_string(cfg, FL_CONFIG_HA_ZK_QUORUM, &quorum);
    if (strcmp(ha, "zookeeper") == 0 && quorum[0] == '\0') {
        fl__say(err, errcap,
                "high-availability.type is zookeeper but "
                "high-availability.zookeeper.quorum is empty; name the "
                "ZooKeeper servers as host:port,host:port.");
        return FL_EINVAL;
    }
    return fl__config_validate_tls(cfg, err, errcap);
}

/* ---- printing ---------------------------------------------------------------
 */

/* True if YAML writes cp raw in a double-quoted scalar and reads it back
 * as itself: printable (YAML 1.1, 5.1) and no line break (NEL, U+2028,
 * U+2029 would fold). */
static bool yaml_raw(uint32_t cp)
{
    return (cp >= 0x20 && cp <= 0x7e) ||
           (cp >= 0xa0 && cp <= 0xd7ff && cp != 0x2028 && cp != 0x2029) ||
           (cp >= 0xe000 && cp <= 0xfffd && cp != 0xfeff) || cp >= 0x10000;
}

/* s (valid UTF-8, as every stored string is) as a YAML double-quoted
 * scalar that reads back to s. */
static int print_quoted(FILE *out, const char *s)
{
    if (fputc('"', out) == EOF)
        return -1;
    for (size_t n; *s; s += n) {
        uint32_t cp = 0;
        n = fl__config_utf8_next(s, &cp);
        if (n == 0) /* not stored; written as a byte all the same */
            n = 1, cp = (unsigned char)*s;
        int rc;
        if (cp == '"' || cp == '\\')
            rc = fprintf(out, "\\%c", (char)cp);
        else if (yaml_raw(cp))
            rc = fwrite(s, 1, n, out) == n ? 0 : -1;
        else
            rc = fprintf(out, "\\u%04x", (unsigned)cp);
        if (rc < 0)
            return -1;
    }
    return fputc('"', out) == EOF ? -1 : 0;
}

int fl_config_print(const fl_config_t *cfg, FILE *out)
{
    if (!cfg || !out)
        return FL_EINVAL;
    for (size_t i = 0; i < NROWS; i++) {
        const fl__config_row_t *r = &fl__config_rows[i];
        const fl__config_slot_t *s = &cfg->slots[i];
        char buf[64];
        int rc = fprintf(out, "%s: ", r->pub.name);
        if (rc >= 0) {
            if (r->pub.type == FL_CONFIG_STRING)
                rc = print_quoted(out, s->val.s);
            else
                rc = fputs(fl__config_format_value(r, &s->val, buf, sizeof buf),
                           out);
        }
        if (rc >= 0) {
            if (s->src == FL_CONFIG_DEFAULT)
                rc = fputs("  # default\n", out);
            else if (s->src == FL_CONFIG_FILE)
                rc = fprintf(out, "  # file %s\n", s->origin);
            else
                rc = fputs("  # override\n", out);
        }
        if (rc < 0)
            return FL_ESYSTEM;
    }
    return fflush(out) == 0 ? FL_OK : FL_ESYSTEM;
}
