/*
 * cluster.c - the cluster utilities' options from a configuration
 * (fling/cluster.h): the glue between config.c's keys and the option
 * structs of registration.c and heartbeat.c.
 */
#include <fling/cluster.h>

#include <stdio.h>

static void say(char *why, size_t why_len, const char *text)
{
    if (why != NULL && why_len > 0)
        snprintf(why, why_len, "%s", text);
}

int fl_cluster_registration_opts(const fl_config_t *cfg,
                                 fl_registration_opts_t *o, char *why,
                                 size_t why_len)
{
    if (cfg == NULL || o == NULL) {
        say(why, why_len, "fl_cluster_registration_opts: cfg and o are needed");
        return FL_EINVAL;
    }
    fl_registration_opts_t r;
    fl_registration_opts_default(&r);
    bool jitter = true;
    /* Every key is in the config's table: these only fail on a bug. */
    if (fl_config_get_duration_ms(cfg, FL_CONFIG_REGISTRATION_INITIAL_TIMEOUT,
                                  &r.initial_timeout_ms) != FL_OK ||
        fl_config_get_duration_ms(cfg, FL_CONFIG_REGISTRATION_MAX_TIMEOUT,
                                  &r.max_timeout_ms) != FL_OK ||
        fl_config_get_duration_ms(cfg, FL_CONFIG_REGISTRATION_ERROR_DELAY,
                                  &r.error_delay_ms) != FL_OK ||
        fl_config_get_duration_ms(cfg, FL_CONFIG_REGISTRATION_REFUSED_DELAY,
                                  &r.refused_delay_ms) != FL_OK ||
        fl_config_get_bool(cfg, FL_CONFIG_REGISTRATION_JITTER, &jitter) !=
            FL_OK) {
        say(why, why_len, "the configuration lacks a cluster.registration key");
        return FL_EINVAL;
    }
    r.jitter = jitter ? FL_REGISTRATION_JITTER : 0.0;
    int rc = fl_config_validate(cfg, why, why_len);
    if (rc == FL_OK)
        rc = fl_registration_opts_validate(&r, why, why_len);
    if (rc == FL_OK)
        *o = r;
    return rc;
}

int fl_cluster_heartbeat_opts(const fl_config_t *cfg, fl_heartbeat_opts_t *o,
                              char *why, size_t why_len)
{
    if (cfg == NULL || o == NULL) {
        say(why, why_len, "fl_cluster_heartbeat_opts: cfg and o are needed");
        return FL_EINVAL;
    }
    int64_t interval, timeout, threshold;
    if (fl_config_get_duration_ms(cfg, FL_CONFIG_HEARTBEAT_INTERVAL,
                                  &interval) != FL_OK ||
        fl_config_get_duration_ms(cfg, FL_CONFIG_HEARTBEAT_TIMEOUT, &timeout) !=
            FL_OK ||
        fl_config_get_int(cfg, FL_CONFIG_HEARTBEAT_RPC_FAILURE_THRESHOLD,
                          &threshold) != FL_OK) {
        say(why, why_len, "the configuration lacks a heartbeat key");
        return FL_EINVAL;
    }
    /* The interval against the timeout: fl_config_validate says it. */
    int rc = fl_config_validate(cfg, why, why_len);
    if (rc != FL_OK)
        return rc;
    o->interval_ms = interval;
    o->timeout_ms = timeout;
    o->failure_threshold = (int)threshold;
    return FL_OK;
}
