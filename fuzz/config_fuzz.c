/*
 * config_fuzz - libFuzzer target for the configuration file (untrusted
 * text from an operator): the YAML walk, the keys and the typed values.
 * A load either succeeds, and then the printout reads back to the same
 * printout, or fails with FL_EINVAL, a reason, and the config as it was.
 * A loaded config gives the cluster layer's HA options, JobManager
 * address and TLS options, or FL_EINVAL with a reason (fling/cluster.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fling/cluster.h>
#include <fling/config.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The printout of cfg without its comments (they name the origin), or
 * NULL. The caller frees it. */
static char *values_of(const fl_config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        abort();
    if (fl_config_print(cfg, f) != FL_OK)
        abort();
    fclose(f);
    /* Cut each line at its "  # " comment. */
    char *w = buf;
    for (char *line = buf; *line;) {
        char *nl = strchr(line, '\n');
        char *end = nl ? nl : line + strlen(line);
        char *c = strstr(line, "  # ");
        if (c && c < end)
            end = c;
        memmove(w, line, (size_t)(end - line));
        w += end - line;
        *w++ = '\n';
        line = nl ? nl + 1 : line + strlen(line);
    }
    *w = '\0';
    return buf;
}

/* What fling/cluster.h makes of a loaded config: the HA options and the
 * JobManager's address, or FL_EINVAL with a reason. */
static void check_cluster_opts(const fl_config_t *cfg)
{
    char why[512] = "";
    fl_ha_opts_t ha;
    int rc = fl_cluster_ha_opts(cfg, &ha, why, sizeof why);
    if (rc == FL_OK) {
        /* A zookeeper cluster id is a name, its root a path. */
        if (ha.mode == FL_HA_ZOOKEEPER &&
            (strchr(ha.cluster_id, '/') != NULL || ha.zk_root[0] != '/' ||
             ha.zk_quorum[0] == '\0'))
            abort();
    } else if (rc != FL_EINVAL || why[0] == '\0') {
        abort();
    }
    char buf[64];
    why[0] = '\0';
    rc = fl_cluster_jobmanager_address(cfg, "rm_*", buf, sizeof buf, why,
                                       sizeof why);
    if (rc == FL_OK) {
        if (strncmp(buf, fl_cluster_rpc_scheme(cfg), 12) != 0 ||
            strcmp(buf + strlen(buf) - 5, "/rm_*") != 0)
            abort();
    } else if (rc != FL_EINVAL || why[0] == '\0') {
        abort();
    }
    /* The TLS options: every list name of a valid config lands in one of
     * the two lists, ':'-joined. */
    why[0] = '\0';
    fl_cluster_tls_t tls;
    rc = fl_cluster_tls_init(&tls, cfg, why, sizeof why);
    if (rc == FL_OK) {
        if ((tls.enabled &&
             (tls.opts.cert_file[0] == '\0' || tls.opts.key_file[0] == '\0' ||
              tls.opts.ca_file[0] == '\0')) ||
            (tls.opts.ciphersuites != NULL &&
             strncmp(tls.opts.ciphersuites, "TLS_", 4) != 0) ||
            (tls.opts.ciphers != NULL &&
             (tls.opts.ciphers[0] == ':' ||
              strchr(tls.opts.ciphers, ',') != NULL)))
            abort();
    } else if (rc != FL_EINVAL || why[0] == '\0') {
        abort();
    }
    fl_cluster_tls_fini(&tls);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fl_config_t *cfg = fl_config_alloc();
    if (!cfg)
        abort();
    char *before = values_of(cfg);
    char err[512] = "";
    int rc = fl_config_load_string(cfg, (const char *)data, size, "fuzz.yaml",
                                   err, sizeof err);
    char *after = values_of(cfg);
    if (rc == FL_OK) {
        /* What was loaded prints as YAML that loads to the same values. */
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        if (!f || fl_config_print(cfg, f) != FL_OK)
            abort();
        fclose(f);
        fl_config_t *back = fl_config_alloc();
        if (!back || fl_config_load_string(back, buf, len, "print", err,
                                           sizeof err) != FL_OK)
            abort();
        char *again = values_of(back);
        if (strcmp(after, again) != 0)
            abort();
        free(again);
        free(buf);
        fl_config_free(back);
        (void)fl_config_validate(cfg, err, sizeof err);
        check_cluster_opts(cfg);
    } else if (rc != FL_EINVAL || err[0] == '\0' ||
               strcmp(before, after) != 0) {
        abort();
    }
    free(before);
    free(after);
    fl_config_free(cfg);
    return 0;
}
