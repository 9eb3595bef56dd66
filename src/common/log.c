/* log.c - levels per component, the trace switch, the sink, records and
 * rate-limited lines, and the monotonic clock. The line format of the
 * default sink is log_format.c's. */
#include "common/internal.h"

#include "common/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* FL__LOG_UNREAD everywhere until the first log reads the environment. */
_Atomic uint8_t fl__log_max[FL_LOG_COMPONENT_MAX] = {
    FL__LOG_UNREAD, FL__LOG_UNREAD, FL__LOG_UNREAD, FL__LOG_UNREAD,
    FL__LOG_UNREAD, FL__LOG_UNREAD, FL__LOG_UNREAD, FL__LOG_UNREAD,
    FL__LOG_UNREAD, FL__LOG_UNREAD, FL__LOG_UNREAD, FL__LOG_UNREAD,
    FL__LOG_UNREAD, FL__LOG_UNREAD, FL__LOG_UNREAD, FL__LOG_UNREAD};

/* The settings fl__log_max is computed from. Written under cfg_mu;
 * `read` is also loaded without it (acquire, pairing with the release
 * store in settings_read) to skip the lock once the environment is read. */
static pthread_mutex_t cfg_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic bool cfg_read;
static fl_log_level_t cfg_level = FL_LOG_WARN;
static uint32_t cfg_traced; /* bit c: component c at debug */

/* The sink: a callback and its argument, published together as one
 * pointer to a slot of a small ring. A switch fills the next slot, then
 * publishes it, so that a log call reads a callback and the argument set
 * with it; it would take FL__LOG_SINK_SLOTS switches during one log call
 * to reuse the slot that call is reading. NULL: the default sink. */
#define FL__LOG_SINK_SLOTS 8u
typedef struct sink {
    fl_log_cb cb;
    void *arg;
} sink_t;
static sink_t sink_ring[FL__LOG_SINK_SLOTS];
static unsigned sink_next;
static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(const sink_t *) log_sink;
static _Atomic(uint64_t (*)(void)) log_clock;

static const char *const comp_names[] = {
    [FL_LOGC_COMMON] = "common",   [FL_LOGC_SCHED] = "sched",
    [FL_LOGC_ACTOR] = "actor",     [FL_LOGC_REMOTE] = "remote",
    [FL_LOGC_RPC] = "rpc",         [FL_LOGC_APP] = "app",
    [FL_LOGC_CLUSTER] = "cluster",
};
#define NCOMP (sizeof comp_names / sizeof *comp_names)

const char *fl_log_component_name(fl_log_component_t component)
{
    unsigned c = (unsigned)component;
    return c < NCOMP && comp_names[c] != NULL ? comp_names[c] : "?";
}

/* Recompute the table from the settings (cfg_mu held). Relaxed stores:
 * a level alone, nothing published with it. */
static void table_store(void)
{
    for (unsigned c = 0; c < FL_LOG_COMPONENT_MAX; c++) {
        unsigned v = (cfg_traced >> c) & 1u ? (unsigned)FL_LOG_DEBUG
                                            : (unsigned)cfg_level;
        atomic_store_explicit(&fl__log_max[c], (uint8_t)v,
                              memory_order_relaxed);
    }
}

static int level_parse(const char *e, fl_log_level_t *out)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(e, names[i]) == 0) {
            *out = (fl_log_level_t)i;
            return FL_OK;
        }
    }
    return FL_EINVAL;
}

/* The component set named by list (see fl_log_set_trace) into *out. */
static int trace_parse(const char *list, uint32_t *out)
{
    uint32_t set = 0;
    const char *p = list;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        const char *name = p;
        bool off = false;
        while (n > 0 && (*name == ' ' || *name == '-')) {
            off |= *name == '-';
            name++;
            n--;
        }
        while (n > 0 && name[n - 1] == ' ')
            n--;
        uint32_t bits = 0;
        if (n == 3 && strncmp(name, "all", 3) == 0) {
            bits = (1u << FL_LOG_COMPONENT_MAX) - 1u;
        } else if (n > 0) {
            unsigned c = 0;
            while (c < NCOMP && !(strlen(comp_names[c]) == n &&
                                  strncmp(comp_names[c], name, n) == 0))
                c++;
            if (c == NCOMP)
                return FL_EINVAL;
            bits = 1u << c;
        }
        set = off ? set & ~bits : set | bits;
        p = name + n;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    *out = set;
    return FL_OK;
}

/* A FLING_TRACE that named no component, to be said once (cfg_mu). */
static char bad_trace[128];

static void emit_v(unsigned comp, fl_log_level_t level, uint32_t suppressed,
                   const fl_log_field_t *fields, size_t nfields,
                   const char *fmt, va_list ap) FL_PRINTF(6, 0);
static void emit(unsigned comp, fl_log_level_t level,
                 const fl_log_field_t *fields, size_t nfields, const char *fmt,
                 ...) FL_PRINTF(5, 6);

/* After settings_read, with cfg_mu let go: warn of a bad FLING_TRACE. */
static void say_bad_trace(void)
{
    char value[sizeof bad_trace];
    pthread_mutex_lock(&cfg_mu);
    snprintf(value, sizeof value, "%s", bad_trace);
    bad_trace[0] = '\0';
    pthread_mutex_unlock(&cfg_mu);
    if (value[0] != '\0' && fl__log_on(FL_LOGC_COMMON, FL_LOG_WARN))
        emit(FL_LOGC_COMMON, FL_LOG_WARN, FL_KV(FL_F("FLING_TRACE", value)),
             "FLING_TRACE ignored: it names no component (common, sched, "
             "actor, remote, rpc, app, all)");
}

/* Read FLING_LOG and FLING_TRACE once (cfg_mu held). */
static void settings_read(void)
{
    if (atomic_load_explicit(&cfg_read, memory_order_relaxed))
        return;
    const char *e = getenv("FLING_LOG");
    cfg_level = FL_LOG_WARN;
    if (e != NULL)
        (void)level_parse(e, &cfg_level);
    cfg_traced = 0;
    e = getenv("FLING_TRACE");
    if (e != NULL && trace_parse(e, &cfg_traced) != FL_OK) {
        cfg_traced = 0;
        snprintf(bad_trace, sizeof bad_trace, "%s", e);
    }
    table_store();
    /* Pairs with the acquire load in settings_ensure. */
    atomic_store_explicit(&cfg_read, true, memory_order_release);
}

static void settings_ensure(void)
{
    /* Pairs with the release store in settings_read. */
    if (fl__likely(atomic_load_explicit(&cfg_read, memory_order_acquire)))
        return;
    pthread_mutex_lock(&cfg_mu);
    settings_read();
    pthread_mutex_unlock(&cfg_mu);
    say_bad_trace();
}

void fl__log_reset(void)
{
    pthread_mutex_lock(&cfg_mu);
    atomic_store_explicit(&cfg_read, false, memory_order_relaxed);
    for (unsigned c = 0; c < FL_LOG_COMPONENT_MAX; c++)
        atomic_store_explicit(&fl__log_max[c], (uint8_t)FL__LOG_UNREAD,
                              memory_order_relaxed);
    pthread_mutex_unlock(&cfg_mu);
}

void fl_log_set_level(fl_log_level_t level)
{
    pthread_mutex_lock(&cfg_mu);
    settings_read();
    cfg_level = level;
    table_store();
    pthread_mutex_unlock(&cfg_mu);
    say_bad_trace();
}

fl_log_level_t fl_log_get_level(void)
{
    settings_ensure();
    pthread_mutex_lock(&cfg_mu);
    fl_log_level_t l = cfg_level;
    pthread_mutex_unlock(&cfg_mu);
    return l;
}

int fl_log_set_trace(const char *components)
{
    uint32_t set;
    if (components == NULL || trace_parse(components, &set) != FL_OK)
        return FL_EINVAL;
    pthread_mutex_lock(&cfg_mu);
    settings_read();
    cfg_traced = set;
    bad_trace[0] = '\0'; /* replaced: not worth a line any more */
    table_store();
    pthread_mutex_unlock(&cfg_mu);
    return FL_OK;
}

int fl_log_enabled(fl_log_component_t component, fl_log_level_t level)
{
    unsigned c = (unsigned)component;
    if (c >= FL_LOG_COMPONENT_MAX)
        return 0;
    settings_ensure();
    return fl__log_on(c, level);
}

void fl_log_set_handler(fl_log_cb cb, void *arg)
{
    if (cb == NULL) {
        atomic_store_explicit(&log_sink, NULL, memory_order_release);
        return;
    }
    pthread_mutex_lock(&sink_mu);
    sink_t *slot = &sink_ring[sink_next++ % FL__LOG_SINK_SLOTS];
    slot->cb = cb;
    slot->arg = arg;
    /* Pairs with the acquire load in emit_v: the slot is filled first. */
    atomic_store_explicit(&log_sink, slot, memory_order_release);
    pthread_mutex_unlock(&sink_mu);
}

/* The kernel's id of this thread, asked once. */
static uint64_t thread_id(void)
{
    static _Thread_local uint64_t tid;
    if (tid == 0)
        tid = (uint64_t)syscall(SYS_gettid);
    return tid;
}

const char *fl__log_u64(char *buf, uint64_t n)
{
    snprintf(buf, 24, "%llu", (unsigned long long)n);
    return buf;
}

/* The most fields a record carries (the site's, and "suppressed"). */
#define MAX_FIELDS 16

/* Format the message, build the record and hand it to the sink. */
static void emit_v(unsigned comp, fl_log_level_t level, uint32_t suppressed,
                   const fl_log_field_t *fields, size_t nfields,
                   const char *fmt, va_list ap)
{
    char msg[FL__LOG_MESSAGE_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    fl_log_field_t all[MAX_FIELDS];
    char count[24];
    size_t n = 0;
    for (size_t i = 0; i < nfields && n < MAX_FIELDS - 1; i++) {
        if (fields[i].value != NULL) /* not applicable: left out */
            all[n++] = fields[i];
    }
    nfields = n;
    if (suppressed != 0)
        all[nfields++] =
            (fl_log_field_t){"suppressed", fl__log_u64(count, suppressed)};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fl_log_record_t rec = {
        .level = level,
        .component = (fl_log_component_t)comp,
        .component_name = fl_log_component_name((fl_log_component_t)comp),
        .message = msg,
        .fields = nfields > 0 ? all : NULL,
        .nfields = nfields,
        .time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec,
        .thread_id = thread_id(),
        .suppressed = suppressed,
    };
    /* Pairs with the release store in fl_log_set_handler. */
    const sink_t *sink = atomic_load_explicit(&log_sink, memory_order_acquire);
    if (sink != NULL)
        sink->cb(sink->arg, &rec);
    else
        fl__log_stderr(&rec);
}

static void emit(unsigned comp, fl_log_level_t level,
                 const fl_log_field_t *fields, size_t nfields, const char *fmt,
                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_v(comp, level, 0, fields, nfields, fmt, ap);
    va_end(ap);
}

/* Whether level is enabled for comp, the environment read first. */
static bool enabled(unsigned comp, fl_log_level_t level)
{
    if (comp >= FL_LOG_COMPONENT_MAX)
        return false;
    settings_ensure();
    return fl__log_on(comp, level);
}

void fl__log_emit(unsigned comp, fl_log_level_t level,
                  const fl_log_field_t *fields, size_t nfields, const char *fmt,
                  ...)
{
    if (!enabled(comp, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit_v(comp, level, 0, fields, nfields, fmt, ap);
    va_end(ap);
}

void fl_log(fl_log_level_t level, const char *fmt, ...)
{
    if (!enabled(FL_LOGC_APP, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit_v(FL_LOGC_APP, level, 0, NULL, 0, fmt, ap);
    va_end(ap);
}

void fl_log_kv(fl_log_component_t component, fl_log_level_t level,
               const fl_log_field_t *fields, size_t nfields, const char *fmt,
               ...)
{
    if (!enabled((unsigned)component, level))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit_v((unsigned)component, level, 0, fields, nfields, fmt, ap);
    va_end(ap);
}

bool fl__ratelimit_take(fl__ratelimit_t *rl, uint64_t now_ns,
                        uint32_t *suppressed)
{
    uint32_t burst = rl->burst != 0 ? rl->burst : FL__LOG_BURST;
    fl__spin_lock(&rl->lk);
    if (rl->window_ns == 0 || now_ns - rl->window_ns >= FL__LOG_WINDOW_NS) {
        rl->owed += rl->suppressed;
        rl->window_ns = now_ns != 0 ? now_ns : 1;
        rl->logged = 0;
        rl->suppressed = 0;
    }
    bool take = rl->logged < burst;
    if (take) {
        rl->logged++;
        *suppressed = rl->owed;
        rl->owed = 0;
    } else if (rl->suppressed < UINT32_MAX) {
        rl->suppressed++;
    }
    fl__spin_unlock(&rl->lk);
    return take;
}

uint64_t fl__log_now(void)
{
    /* Relaxed: a test installs its clock before logging. */
    uint64_t (*now)(void) =
        atomic_load_explicit(&log_clock, memory_order_relaxed);
    return now != NULL ? now() : fl_clock_now_ns();
}

void fl__log_set_clock(uint64_t (*now)(void))
{
    atomic_store_explicit(&log_clock, now, memory_order_relaxed);
}

void fl__log_limited(fl__ratelimit_t *rl, unsigned comp, fl_log_level_t level,
                     const fl_log_field_t *fields, size_t nfields,
                     const char *fmt, ...)
{
    uint32_t suppressed = 0;
    if (!enabled(comp, level) ||
        !fl__ratelimit_take(rl, fl__log_now(), &suppressed))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit_v(comp, level, suppressed, fields, nfields, fmt, ap);
    va_end(ap);
}

uint64_t fl_clock_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void fl__say(char *why, size_t why_len, const char *fmt, ...)
{
    if (why == NULL || why_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
}
