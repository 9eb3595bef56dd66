/*
 * log_capture.h - a log handler that keeps every record (level,
 * component, message, fields as "k=v k=v", suppressed count) for the RPC
 * log tests, waits on them, and a clock for the rate limits that the test
 * moves. Any thread may log; the test reads under the same lock.
 *
 * Header-only (static inline): each tests/unit/rpc/<name>_test.c is its
 * own program.
 */
#ifndef LOG_CAPTURE_H
#define LOG_CAPTURE_H

#include "fl_test.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/internal.h"

#define CAP_MAX 1024

typedef struct cap_rec {
    fl_log_level_t level;
    char component[16];
    char message[600];
    char fields[600];
    uint32_t suppressed;
} cap_rec_t;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int n;
    cap_rec_t r[CAP_MAX];
} cap = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {{0}}};

/* The value of field key of a captured record into out ("" if none). */
static inline void cap_field(const cap_rec_t *r, const char *key, char *out,
                             size_t cap_len)
{
    out[0] = '\0';
    char pat[64];
    snprintf(pat, sizeof pat, "%s=", key);
    const char *p = r->fields;
    while (p != NULL && *p != '\0') {
        if (strncmp(p, pat, strlen(pat)) == 0) {
            p += strlen(pat);
            size_t n = strcspn(p, " ");
            snprintf(out, cap_len, "%.*s", (int)n, p);
            return;
        }
        p = strchr(p, ' ');
        if (p != NULL)
            p++;
    }
}

static inline void cap_handler(void *arg, const fl_log_record_t *rec)
{
    (void)arg;
    pthread_mutex_lock(&cap.mu);
    if (cap.n < CAP_MAX) {
        cap_rec_t *r = &cap.r[cap.n++];
        r->level = rec->level;
        snprintf(r->component, sizeof r->component, "%s", rec->component_name);
        snprintf(r->message, sizeof r->message, "%s", rec->message);
        size_t k = 0;
        r->fields[0] = '\0';
        for (size_t i = 0; i < rec->nfields && k < sizeof r->fields; i++)
            k += (size_t)snprintf(r->fields + k, sizeof r->fields - k,
                                  "%s%s=%s", i ? " " : "", rec->fields[i].key,
                                  rec->fields[i].value);
        r->suppressed = rec->suppressed;
    }
    pthread_cond_broadcast(&cap.cv);
    pthread_mutex_unlock(&cap.mu);
}

/* Forget what was captured. */
static inline void cap_clear(void)
{
    pthread_mutex_lock(&cap.mu);
    cap.n = 0;
    pthread_mutex_unlock(&cap.mu);
}

/* Copies into out (up to max) the records at level or more severe of
 * component (NULL: any); returns how many there are. */
static inline int cap_select(fl_log_level_t level, const char *component,
                             cap_rec_t *out, int max)
{
    int k = 0;
    pthread_mutex_lock(&cap.mu);
    for (int i = 0; i < cap.n; i++) {
        const cap_rec_t *r = &cap.r[i];
        if (r->level > level ||
            (component != NULL && strcmp(r->component, component) != 0))
            continue;
        if (k < max)
            out[k] = *r;
        k++;
    }
    pthread_mutex_unlock(&cap.mu);
    return k;
}

/* Waits (bounded) until a record of component whose message begins with
 * prefix has come; copies the first into out. */
static inline void cap_wait(const char *component, const char *prefix,
                            cap_rec_t *out)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += FL_TEST_WAIT_MS / 1000;
    pthread_mutex_lock(&cap.mu);
    for (;;) {
        for (int i = 0; i < cap.n; i++) {
            if (strcmp(cap.r[i].component, component) == 0 &&
                strncmp(cap.r[i].message, prefix, strlen(prefix)) == 0) {
                *out = cap.r[i];
                pthread_mutex_unlock(&cap.mu);
                return;
            }
        }
        if (pthread_cond_timedwait(&cap.cv, &cap.mu, &dl) != 0)
            break;
    }
    pthread_mutex_unlock(&cap.mu);
    fail_msg("no %s record \"%s...\" within %d ms", component, prefix,
             FL_TEST_WAIT_MS);
}

/* The rate limits' clock: moved by the test only. */
static _Atomic uint64_t cap_now = 1000 * FL__LOG_WINDOW_NS;

static inline uint64_t cap_clock(void)
{
    return atomic_load(&cap_now);
}

/* Moves the rate limits' clock on by `windows` windows. */
static inline void cap_advance(unsigned windows)
{
    atomic_fetch_add(&cap_now, (uint64_t)windows * FL__LOG_WINDOW_NS);
}

#endif /* LOG_CAPTURE_H */
