/*
 * src/cluster/registration_opts.c - the options of a retrying registration
 * (defaults, validation, jitter) and its responses.
 */
#include <fling/registration.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/internal.h"

void fl_registration_opts_default(fl_registration_opts_t *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->initial_timeout_ms = FL_REGISTRATION_INITIAL_TIMEOUT_MS;
    o->max_timeout_ms = FL_REGISTRATION_MAX_TIMEOUT_MS;
    o->error_delay_ms = FL_REGISTRATION_ERROR_DELAY_MS;
    o->refused_delay_ms = FL_REGISTRATION_REFUSED_DELAY_MS;
    o->jitter = FL_REGISTRATION_JITTER;
}

int fl_registration_opts_validate(const fl_registration_opts_t *o, char *why,
                                  size_t why_len)
{
    if (o == NULL) {
        fl__say(why, why_len, "registration options must not be NULL");
        return FL_EINVAL;
    }
    if (o->initial_timeout_ms <= 0) {
        fl__say(why, why_len,
                "initial_timeout_ms (cluster.registration.initial-timeout) "
                "must be > 0 ms, got %lld ms",
                (long long)o->initial_timeout_ms);
        return FL_EINVAL;
    }
    if (o->max_timeout_ms <= 0) {
        fl__say(why, why_len,
                "max_timeout_ms (cluster.registration.max-timeout) must be "
                "> 0 ms, got %lld ms",
                (long long)o->max_timeout_ms);
        return FL_EINVAL;
    }
    if (o->error_delay_ms < 0) {
        fl__say(why, why_len,
                "error_delay_ms (cluster.registration.error-delay) must be "
                ">= 0 ms, got %lld ms",
                (long long)o->error_delay_ms);
        return FL_EINVAL;
    }
    if (o->refused_delay_ms < 0) {
        fl__say(why, why_len,
                "refused_delay_ms "
                "(cluster.registration.refused-registration-delay) must be "
                ">= 0 ms, got %lld ms",
                (long long)o->refused_delay_ms);
        return FL_EINVAL;
    }
    /* Written so that NaN fails too. */
    if (!(o->jitter >= 0.0 && o->jitter <= 1.0)) {
        fl__say(why, why_len,
                "jitter (cluster.registration.jitter) must be between 0 and "
                "1, got %g",
                o->jitter);
        return FL_EINVAL;
    }
    return FL_OK;
}

int64_t fl_registration_jitter(const fl_registration_opts_t *o,
                               int64_t delay_ms)
{
    if (delay_ms <= 0 || o->jitter <= 0.0 || o->random == NULL)
        return delay_ms < 0 ? 0 : delay_ms;
    /* 53 random bits give u uniform in [0, 1); the factor spans
     * [1 - j, 1 + j). */
    double u = (double)(o->random(o->random_arg) >> 11) * 0x1.0p-53;
    double f = 1.0 + o->jitter * (2.0 * u - 1.0);
    double d = (double)delay_ms * f;
    if (d >= (double)INT64_MAX)
        return INT64_MAX;
    return d < 0.0 ? 0 : (int64_t)d;
}

fl_registration_response_t *
fl_registration_response_alloc(fl_registration_outcome_t outcome, void *payload,
                               fl_free_cb payload_free, const char *reason, ...)
{
    fl_registration_response_t *r = fl__calloc(1, sizeof *r);
    if (r == NULL) {
        if (payload_free != NULL)
            payload_free(payload);
        return NULL;
    }
    r->outcome = outcome;
    r->payload = payload;
    r->payload_free = payload_free;
    if (reason != NULL) {
        va_list ap;
        va_start(ap, reason);
        vsnprintf(r->reason, sizeof r->reason, reason, ap);
        va_end(ap);
    }
    return r;
}

void fl_registration_response_free(void *p)
{
    fl_registration_response_t *r = p;
    if (r == NULL)
        return;
    if (r->payload_free != NULL)
        r->payload_free(r->payload);
    fl_rpc_gateway_free(r->gateway);
    fl__free(r);
}
