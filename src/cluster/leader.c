/*
 * src/cluster/leader.c - leader election and retrieval: the interface over
 * the ops table, what both implementations share, and the standalone
 * implementation (Flink's HA mode NONE).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "common/internal.h"
#include "leader_internal.h"

/* ---- shared helpers ------------------------------------------------------ */

void fl__leader_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

char *fl_fencing_token_hex(const fl_fencing_token_t *token, char *buf)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        buf[2 * i] = hex[token->bytes[i] >> 4];
        buf[2 * i + 1] = hex[token->bytes[i] & 15];
    }
    buf[32] = '\0';
    return buf;
}

int fl__leader_random_token(fl_fencing_token_t *out)
{
    size_t got = 0;
    while (got < sizeof out->bytes) {
        ssize_t n = getrandom(out->bytes + got, sizeof out->bytes - got, 0);
        if (n < 0)
            return FL_ESYSTEM;
        got += (size_t)n;
    }
    return FL_OK;
}

void fl__leader_ref(fl__leader_obj_t *o)
{
    atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
}

static void leader_obj_destroy(fl__leader_obj_t *o)
{
    if (o->ops != NULL && o->ops->destroy != NULL)
        o->ops->destroy(o);
    fl__free(o->component);
    fl__free(o->standalone_address);
    fl__free(o->zk_quorum);
    fl__free(o->zk_root);
    fl__free(o->cluster_id);
    fl__free(o->leader_address);
    fl__free(o);
}

void fl__leader_unref(fl__leader_obj_t *o)
{
    /* acq_rel: the last owner sees every write of the others. */
    if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
        leader_obj_destroy(o);
}

bool fl__leader_closed(const fl__leader_obj_t *o)
{
    /* Pairs with the release store in leader_obj_free. */
    return atomic_load_explicit(&o->closed, memory_order_acquire);
}

void fl__leader_grant(fl__leader_obj_t *o, const fl_fencing_token_t *token)
{
    if (fl__leader_closed(o))
        return;
    o->leader = true;
    o->token = *token;
    char hex[33];
    FL_LOG_KV(FL_LOG_INFO,
              FL_KV(FL_F("component", o->component),
                    FL_F("token", fl_fencing_token_hex(token, hex))),
              "Leadership of '%s' granted with token %s", o->component, hex);
    if (o->contender.grant != NULL)
        o->contender.grant((fl_leader_election_t *)o, token, o->arg);
}

void fl__leader_revoke(fl__leader_obj_t *o)
{
    if (!o->leader || fl__leader_closed(o))
        return;
    o->leader = false;
    char hex[33];
    FL_LOG_KV(FL_LOG_WARN,
              FL_KV(FL_F("component", o->component),
                    FL_F("token", fl_fencing_token_hex(&o->token, hex))),
              "Leadership of '%s' with token %s revoked", o->component, hex);
    if (o->contender.revoke != NULL)
        o->contender.revoke((fl_leader_election_t *)o, o->arg);
}

void fl__leader_notify(fl__leader_obj_t *o, const char *address,
                       const fl_fencing_token_t *token)
{
    if (fl__leader_closed(o))
        return;
    if (address == NULL) {
        if (!o->known)
            return;
        o->known = false;
        fl__free(o->leader_address);
        o->leader_address = NULL;
    } else {
        if (o->known && strcmp(o->leader_address, address) == 0 &&
            memcmp(&o->leader_token, token, sizeof *token) == 0)
            return;
        char *copy = fl__strdup(address);
        if (copy == NULL) {
            FL_LOG(FL_LOG_ERROR,
                   "Leader of '%s' not reported: out of memory copying its "
                   "address",
                   o->component);
            return;
        }
        fl__free(o->leader_address);
        o->leader_address = copy;
        o->leader_token = *token;
        o->known = true;
    }
    if (o->listener != NULL)
        o->listener((fl_leader_retrieval_t *)o, address,
                    address != NULL ? token : NULL, o->arg);
}

/* ---- the standalone implementation --------------------------------------- */

static void standalone_grant_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    fl__leader_obj_t *o = arg;
    static const fl_fencing_token_t zero;
    fl__leader_grant(o, &zero);
    fl__leader_unref(o); /* a task that ran owns its arg */
}

static void standalone_notify_task(fl_rpc_endpoint_t *ep, void *state,
                                   void *arg)
{
    fl__leader_obj_t *o = arg;
    static const fl_fencing_token_t zero;
    fl__leader_notify(o, o->standalone_address, &zero);
    fl__leader_unref(o); /* a task that ran owns its arg */
}

static void unref_cb(void *arg)
{
    fl__leader_unref(arg);
}

static int standalone_start(fl__leader_obj_t *o, char *err, size_t errlen)
{
    fl__leader_ref(o);
    int rc = fl_rpc_run_async(o->owner,
                              o->is_election ? standalone_grant_task
                                             : standalone_notify_task,
                              o, unref_cb);
    if (rc != FL_OK)
        fl__leader_err(err, errlen, "Could not start the %s of '%s': %s",
                       o->is_election ? "leader election" : "leader retrieval",
                       o->component, fl_rpc_last_message());
    return rc;
}

static int standalone_confirm(fl__leader_obj_t *o, const char *address,
                              char *err, size_t errlen)
{
    /* Nothing to publish: retrievers are configured with the address. */
    return FL_OK;
}

static const fl__leader_ops_t standalone_ops = {
    .start = standalone_start,
    .confirm = standalone_confirm,
};

/* ---- the interface ------------------------------------------------------- */

static bool component_ok(const char *c)
{
    if (c == NULL || *c == '\0' || strlen(c) > 255)
        return false;
    for (; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' ||
                  *c == '.';
        if (!ok)
            return false;
    }
    return strcmp(c, ".") != 0 && strcmp(c, "..") != 0;
}

static int dup_opt(const char *s, const char *dflt, char **out)
{
    *out = NULL;
    if (s == NULL)
        s = dflt;
    if (s == NULL)
        return FL_OK;
    *out = fl__strdup(s);
    return *out == NULL ? FL_ENOMEM : FL_OK;
}

static int leader_obj_alloc(fl_rpc_endpoint_t *owner, const fl_ha_opts_t *opts,
                            const char *component, bool election,
                            fl__leader_obj_t **out, char *err, size_t errlen)
{
    const char *what = election ? "leader election" : "leader retrieval";
    *out = NULL;
    if (owner == NULL || opts == NULL) {
        fl__leader_err(err, errlen, "Could not create the %s: %s is NULL", what,
                       owner == NULL ? "the owner endpoint" : "opts");
        return FL_EINVAL;
    }
    if (!component_ok(component)) {
        fl__leader_err(err, errlen,
                       "Could not create the %s: component '%s' is not a "
                       "name; use letters, digits, '_', '-' and '.'",
                       what, component != NULL ? component : "(null)");
        return FL_EINVAL;
    }
    if (opts->mode == FL_HA_NONE) {
        if (!election && (opts->standalone_address == NULL ||
                          *opts->standalone_address == '\0')) {
            fl__leader_err(err, errlen,
                           "Could not create the leader retrieval of '%s': "
                           "standalone mode needs the leader's address "
                           "(standalone_address)",
                           component);
            return FL_EINVAL;
        }
    } else if (opts->mode == FL_HA_ZOOKEEPER) {
        if (opts->zk_quorum == NULL || *opts->zk_quorum == '\0') {
            fl__leader_err(err, errlen,
                           "Could not create the %s of '%s': ZooKeeper mode "
                           "needs high-availability.zookeeper.quorum "
                           "(zk_quorum), e.g. 'host:2181'",
                           what, component);
            return FL_EINVAL;
        }
        const char *root = opts->zk_root != NULL ? opts->zk_root : "/flink";
        size_t n = strlen(root);
        if (root[0] != '/' || n < 2 || root[n - 1] == '/') {
            fl__leader_err(err, errlen,
                           "Could not create the %s of '%s': "
                           "high-availability.zookeeper.path.root '%s' must "
                           "start with '/' and not end with one, e.g. "
                           "'/flink'",
                           what, component, root);
            return FL_EINVAL;
        }
        if (opts->cluster_id != NULL && !component_ok(opts->cluster_id)) {
            fl__leader_err(err, errlen,
                           "Could not create the %s of '%s': "
                           "high-availability.cluster-id '%s' is not a name; "
                           "use letters, digits, '_', '-' and '.'",
                           what, component, opts->cluster_id);
            return FL_EINVAL;
        }
        if (opts->zk_session_timeout_ms < 0 ||
            opts->zk_session_timeout_ms > INT32_MAX) {
            fl__leader_err(err, errlen,
                           "Could not create the %s of '%s': session timeout "
                           "%lld ms is out of range; give 0 (60000 ms) or a "
                           "positive number of ms",
                           what, component,
                           (long long)opts->zk_session_timeout_ms);
            return FL_EINVAL;
        }
    } else {
        fl__leader_err(err, errlen,
                       "Could not create the %s of '%s': unknown mode %d; use "
                       "FL_HA_NONE or FL_HA_ZOOKEEPER",
                       what, component, (int)opts->mode);
        return FL_EINVAL;
    }

    /* Both public handles are this struct under another name. */
    fl__leader_obj_t *o = fl__calloc(1, sizeof *o);
    if (o == NULL)
        goto oom;
    atomic_init(&o->refs, 1);
    o->is_election = election;
    o->owner = owner;
    o->ops = opts->mode == FL_HA_NONE ? &standalone_ops : &fl__leader_zk_ops;
    o->zk_session_timeout_ms = opts->zk_session_timeout_ms != 0
                                   ? opts->zk_session_timeout_ms
                                   : FL_HA_ZK_DEFAULT_SESSION_TIMEOUT_MS;
    if (dup_opt(component, NULL, &o->component) != FL_OK ||
        dup_opt(opts->standalone_address, NULL, &o->standalone_address) !=
            FL_OK ||
        dup_opt(opts->zk_quorum, NULL, &o->zk_quorum) != FL_OK ||
        dup_opt(opts->zk_root, "/flink", &o->zk_root) != FL_OK ||
        dup_opt(opts->cluster_id, "default", &o->cluster_id) != FL_OK) {
        o->ops = NULL;
        leader_obj_destroy(o);
        goto oom;
    }
    *out = o;
    return FL_OK;
oom:
    fl__leader_err(err, errlen,
                   "Could not create the %s of '%s': out of memory", what,
                   component);
    return FL_ENOMEM;
}

static int leader_obj_start(fl__leader_obj_t *o, char *err, size_t errlen)
{
    bool was = false;
    if (!atomic_compare_exchange_strong(&o->started, &was, true)) {
        fl__leader_err(err, errlen, "The %s of '%s' is started already",
                       o->is_election ? "leader election" : "leader retrieval",
                       o->component);
        return FL_ESTATE;
    }
    return o->ops->start(o, err, errlen);
}

static void leader_obj_free(fl__leader_obj_t *o)
{
    if (o == NULL)
        return;
    /* Pairs with the acquire load of fl__leader_closed. */
    atomic_store_explicit(&o->closed, true, memory_order_release);
    if (o->ops->close != NULL)
        o->ops->close(o);
    fl__leader_unref(o);
}

int fl_leader_election_alloc(fl_rpc_endpoint_t *owner, const fl_ha_opts_t *opts,
                             const char *component,
                             const fl_leader_contender_t *contender, void *arg,
                             fl_leader_election_t **out, char *err,
                             size_t errlen)
{
    if (out == NULL || contender == NULL) {
        fl__leader_err(err, errlen,
                       "Could not create the leader election: %s is NULL",
                       out == NULL ? "out" : "the contender");
        return FL_EINVAL;
    }
    *out = NULL;
    fl__leader_obj_t *o;
    int rc = leader_obj_alloc(owner, opts, component, true, &o, err, errlen);
    if (rc != FL_OK)
        return rc;
    o->contender = *contender;
    o->arg = arg;
    *out = (fl_leader_election_t *)o;
    return FL_OK;
}

int fl_leader_election_start(fl_leader_election_t *le, char *err, size_t errlen)
{
    if (le == NULL) {
        fl__leader_err(err, errlen,
                       "Could not start the leader election: it is NULL");
        return FL_EINVAL;
    }
    return leader_obj_start((fl__leader_obj_t *)le, err, errlen);
}

int fl_leader_election_confirm(fl_leader_election_t *le,
                               const fl_fencing_token_t *token,
                               const char *address, char *err, size_t errlen)
{
    fl__leader_obj_t *o = (fl__leader_obj_t *)le;
    if (o == NULL || token == NULL || address == NULL || *address == '\0') {
        fl__leader_err(err, errlen,
                       "Could not confirm leadership: the election, the token "
                       "and the address must be given");
        return FL_EINVAL;
    }
    if (!fl_leader_election_has_leadership(le, token)) {
        char hex[33];
        fl__leader_err(err, errlen,
                       "Could not confirm leadership of '%s' with token %s: "
                       "that leadership is not held (revoked or never "
                       "granted); wait for the next grant",
                       o->component, fl_fencing_token_hex(token, hex));
        return FL_ESTATE;
    }
    return o->ops->confirm(o, address, err, errlen);
}

bool fl_leader_election_has_leadership(const fl_leader_election_t *le,
                                       const fl_fencing_token_t *token)
{
    const fl__leader_obj_t *o = (const fl__leader_obj_t *)le;
    return o != NULL && token != NULL && o->leader &&
           memcmp(&o->token, token, sizeof *token) == 0;
}

void fl_leader_election_free(fl_leader_election_t *le)
{
    leader_obj_free((fl__leader_obj_t *)le);
}

int fl_leader_retrieval_alloc(fl_rpc_endpoint_t *owner,
                              const fl_ha_opts_t *opts, const char *component,
                              fl_leader_listener_cb listener, void *arg,
                              fl_leader_retrieval_t **out, char *err,
                              size_t errlen)
{
    if (out == NULL || listener == NULL) {
        fl__leader_err(err, errlen,
                       "Could not create the leader retrieval: %s is NULL",
                       out == NULL ? "out" : "the listener");
        return FL_EINVAL;
    }
    *out = NULL;
    fl__leader_obj_t *o;
    int rc = leader_obj_alloc(owner, opts, component, false, &o, err, errlen);
    if (rc != FL_OK)
        return rc;
    o->listener = listener;
    o->arg = arg;
    *out = (fl_leader_retrieval_t *)o;
    return FL_OK;
}

int fl_leader_retrieval_start(fl_leader_retrieval_t *lr, char *err,
                              size_t errlen)
{
    if (lr == NULL) {
        fl__leader_err(err, errlen,
                       "Could not start the leader retrieval: it is NULL");
        return FL_EINVAL;
    }
    return leader_obj_start((fl__leader_obj_t *)lr, err, errlen);
}

void fl_leader_retrieval_free(fl_leader_retrieval_t *lr)
{
    leader_obj_free((fl__leader_obj_t *)lr);
}
