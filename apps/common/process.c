/*
 * process.c - the cluster programs' shared skeleton (process.h).
 */
#include "process.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <fling/cluster.h>
#include <fling/signals.h>

/* SIGUSR1 is how fa_process_fatal wakes main. */
static const int stop_sigs[] = {SIGINT, SIGTERM, SIGUSR1};
#define NSIGS (sizeof stop_sigs / sizeof stop_sigs[0])

/* The log sink: one file for the process, lines whole under a lock. */
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;

static void log_sink(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    char line[4096];
    size_t n = fl_log_format(rec, line, sizeof line);
    if (n >= sizeof line)
        n = sizeof line - 1;
    pthread_mutex_lock(&log_mu);
    FILE *out = log_file != NULL ? log_file : stderr;
    fwrite(line, 1, n, out);
    fputc('\n', out);
    fflush(out);
    pthread_mutex_unlock(&log_mu);
}

static void usage(const char *name, FILE *out)
{
    fprintf(out,
            "usage: %s [-c CONFIG] [-D key=value]... [--log FILE]\n"
            "  -c CONFIG     the cluster's configuration file (YAML)\n"
            "  -D key=value  a configuration value over the file's\n"
            "  --log FILE    append the log to FILE (default: stderr)\n",
            name);
}

int fa_process_init(fa_process_t *p, const char *name, int argc, char **argv)
{
    memset(p, 0, sizeof *p);
    p->name = name;
    atomic_init(&p->fatal, false);
    char err[1024];
    p->cfg = fl_config_alloc();
    if (p->cfg == NULL) {
        fprintf(stderr, "%s: out of memory\n", name);
        return FL_ENOMEM;
    }
    int rc = fl_config_apply_args(p->cfg, &argc, argv, err, sizeof err);
    if (rc != FL_OK)
        goto fail_said;
    const char *conf = NULL, *logpath = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "-c") == 0 || strcmp(a, "--log") == 0) && i + 1 < argc) {
            if (a[1] == 'c')
                conf = argv[++i];
            else
                logpath = argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(name, stdout);
            fl_config_free(p->cfg);
            p->cfg = NULL;
            return FL_ECANCELED;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--log") == 0) {
            fprintf(stderr, "%s: %s needs a file name after it\n", name, a);
            usage(name, stderr);
            rc = FL_EINVAL;
            goto fail;
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", name, a);
            usage(name, stderr);
            rc = FL_EINVAL;
            goto fail;
        }
    }
    if (conf != NULL) {
        /* The file first, then the overrides again over it: -D wins. */
        fl_config_t *c = fl_config_alloc();
        if (c == NULL) {
            rc = FL_ENOMEM;
            snprintf(err, sizeof err, "out of memory");
            goto fail_said;
        }
        rc = fl_config_load_file(c, conf, err, sizeof err);
        for (size_t i = 0; rc == FL_OK && i < fl_config_key_count(); i++) {
            const char *key = fl_config_key_at(i)->name;
            fl_config_source_t src;
            fl_config_get_source(p->cfg, key, &src, NULL);
            if (src != FL_CONFIG_OVERRIDE)
                continue;
            char v[1024];
            fl_config_get_text(p->cfg, key, v, sizeof v);
            rc = fl_config_set(c, key, v, err, sizeof err);
        }
        fl_config_free(p->cfg);
        p->cfg = c;
        if (rc != FL_OK)
            goto fail_said;
    }
    rc = fl_config_validate(p->cfg, err, sizeof err);
    if (rc != FL_OK)
        goto fail_said;
    if (logpath != NULL) {
        log_file = fopen(logpath, "a");
        if (log_file == NULL) {
            snprintf(err, sizeof err, "Cannot open log file '%s': %s.", logpath,
                     strerror(errno));
            rc = FL_ESYSTEM;
            goto fail_said;
        }
    }
    fl_log_set_handler(log_sink, NULL);
    if (getenv("FLING_LOG") == NULL)
        fl_log_set_level(FL_LOG_INFO);
    rc = fl_signals_block(stop_sigs, NSIGS);
    if (rc != FL_OK) {
        snprintf(err, sizeof err, "could not block the stop signals: %s",
                 fl_strerror(rc));
        goto fail_said;
    }
    return FL_OK;
fail_said:
    fprintf(stderr, "%s: %s\n", name, err);
fail:
    fl_config_free(p->cfg);
    p->cfg = NULL;
    return rc;
}

int fa_process_service(fa_process_t *p, const char *host, const char *port,
                       fl_rpc_service_t **out)
{
    uint64_t frame = 0;
    int64_t ask = 0;
    fl_config_get_size(p->cfg, FL_CONFIG_RPC_FRAMESIZE, &frame);
    fl_config_get_duration_ms(p->cfg, FL_CONFIG_RPC_ASK_TIMEOUT, &ask);
    fl_rpc_service_opts_t o = {
        .bind_host = host,
        .port = port,
        .default_timeout_ms = ask,
        .max_frame_size = frame > UINT32_MAX ? UINT32_MAX : (uint32_t)frame,
        .name = p->name,
    };
    char why[1024];
    fl_cluster_tls_t tls;
    int rc = fl_cluster_tls_init(&tls, p->cfg, why, sizeof why);
    if (rc == FL_OK) {
        fl_cluster_tls_apply(&tls, &o);
        rc = fl_rpc_service_alloc(&o, out);
        /* The service's messages name its options; say the keys. */
        if (rc != FL_OK)
            fl_cluster_tls_message(fl_rpc_last_message(), why, sizeof why);
    }
    fl_cluster_tls_fini(&tls);
    if (rc != FL_OK) {
        fl_log(FL_LOG_ERROR, "%s could not start its RPC service: %s", p->name,
               why);
        fprintf(stderr, "%s: could not start its RPC service: %s\n", p->name,
                why);
        return rc;
    }
    const char *scheme = fl_cluster_rpc_scheme(p->cfg);
    printf("%s%s:%d\n", scheme, fl_rpc_service_address(*out),
           fl_rpc_service_port(*out));
    fflush(stdout);
    fl_log(FL_LOG_INFO, "%s listening on %s%s:%d (pid %ld)", p->name, scheme,
           fl_rpc_service_address(*out), fl_rpc_service_port(*out),
           (long)getpid());
    return FL_OK;
}

int fa_process_wait(fa_process_t *p)
{
    int sig = 0;
    int status = 0;
    for (;;) {
        if (fl_signals_wait(stop_sigs, NSIGS, FL_INFINITE, &sig) != FL_OK)
            break;
        if (sig != SIGUSR1) {
            fl_log(FL_LOG_INFO, "%s stopping on %s", p->name,
                   sig == SIGINT ? "SIGINT" : "SIGTERM");
            break;
        }
        /* acquire: pairs with the release in fa_process_fatal. */
        if (atomic_load_explicit(&p->fatal, memory_order_acquire)) {
            status = 1;
            break;
        }
    }
    fl_signals_unblock(stop_sigs, 2);
    return status;
}

void fa_process_fatal(fa_process_t *p, const char *fmt, ...)
{
    static atomic_flag once = ATOMIC_FLAG_INIT;
    if (atomic_flag_test_and_set(&once))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->reason, sizeof p->reason, fmt, ap);
    va_end(ap);
    fl_log(FL_LOG_ERROR, "%s", p->reason);
    /* release: the reason is written before main may read it. */
    atomic_store_explicit(&p->fatal, true, memory_order_release);
    kill(getpid(), SIGUSR1);
}

void fa_process_fini(fa_process_t *p)
{
    fl_config_free(p->cfg);
    p->cfg = NULL;
    pthread_mutex_lock(&log_mu);
    if (log_file != NULL)
        fclose(log_file);
    log_file = NULL;
    pthread_mutex_unlock(&log_mu);
}

/* ---- the keys that must agree ------------------------------------------- */

static const char *const cluster_keys[] = {
    FL_CONFIG_RPC_FRAMESIZE,
    FL_CONFIG_HEARTBEAT_INTERVAL,
    FL_CONFIG_HEARTBEAT_TIMEOUT,
    FL_CONFIG_HA_CLUSTER_ID,
};
#define NKEYS (sizeof cluster_keys / sizeof cluster_keys[0])

size_t fa_cluster_key_count(void)
{
    return NKEYS;
}

const char *fa_cluster_key_at(size_t i)
{
    return i < NKEYS ? cluster_keys[i] : NULL;
}

bool fa_cluster_conflict(const fl_config_t *cfg, const char *tm_id,
                         const char *const *keys, const char *const *values,
                         size_t n, char *why, size_t len)
{
    for (size_t k = 0; k < NKEYS; k++) {
        char ours[512];
        fl_config_get_text(cfg, cluster_keys[k], ours, sizeof ours);
        const char *theirs = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(keys[i], cluster_keys[k]) == 0)
                theirs = values[i];
        if (theirs == NULL) {
            snprintf(why, len,
                     "Registration of TaskManager %s refused: it did not say "
                     "its %s (the ResourceManager's is %s); run the same "
                     "version of fling on every process of the cluster.",
                     tm_id, cluster_keys[k], ours);
            return true;
        }
        if (strcmp(theirs, ours) != 0) {
            snprintf(why, len,
                     "Registration of TaskManager %s refused: its %s is %s "
                     "but the ResourceManager's is %s; give every process "
                     "of the cluster the same %s.",
                     tm_id, cluster_keys[k], theirs, ours, cluster_keys[k]);
            return true;
        }
    }
    return false;
}

void fa_random_hex(char *buf, size_t nbytes)
{
    unsigned char b[64];
    if (nbytes > sizeof b)
        nbytes = sizeof b;
    FILE *f = fopen("/dev/urandom", "rb");
    size_t got = f != NULL ? fread(b, 1, nbytes, f) : 0;
    if (f != NULL)
        fclose(f);
    uint64_t x = fl_clock_now_ns() ^ ((uint64_t)getpid() << 32);
    for (size_t i = got; i < nbytes; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        b[i] = (unsigned char)(x >> 56);
    }
    for (size_t i = 0; i < nbytes; i++)
        snprintf(buf + 2 * i, 3, "%02x", b[i]);
    buf[2 * nbytes] = '\0';
}
