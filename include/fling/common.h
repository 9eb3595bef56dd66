/*
 * fling/common.h - error codes, logging, clock and the allocator seam.
 *
 * Every fallible fling function returns an int that is one of the codes
 * below (FL_OK = 0). Codes >= FL_EUSER are free for applications: they
 * travel through futures (and later across the wire) unchanged.
 */
#ifndef FLING_COMMON_H
#define FLING_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(FL_BUILDING_LIBRARY) && defined(__GNUC__)
#define FL_EXTERN __attribute__((visibility("default")))
#else
#define FL_EXTERN
#endif

#if defined(__GNUC__)
#define FL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define FL_PRINTF(fmt, args)
#endif

/*
 * The one error table. X(name, message): name becomes FL_<name>, message is
 * what fl_strerror() returns. Append only; numbers are part of the ABI and,
 * from the remoting layer on, of the wire protocol.
 */
#define FL_ERRNO_MAP(X)                                                        \
    X(OK, "success")                                                           \
    X(EINVAL, "invalid argument")                                              \
    X(ENOMEM, "out of memory")                                                 \
    X(ECLOSED, "object closed")                                                \
    X(EUNREACHABLE, "recipient unreachable")                                   \
    X(ETIMEDOUT, "timed out")                                                  \
    X(ECANCELED, "canceled")                                                   \
    X(EALREADY, "already completed")                                           \
    X(ENOENT, "not found")                                                     \
    X(EEXIST, "already exists")                                                \
    X(EDEADLK, "blocking wait refused on a runtime thread")                    \
    X(ENOREPLY, "request dropped without a reply")                             \
    X(ELIMIT, "resource limit reached")                                        \
    X(ESTATE, "invalid state")                                                 \
    X(EPENDING, "not completed yet")                                           \
    X(ESYSTEM, "operating system error")                                       \
    X(EINTERNAL, "internal error")                                             \
    X(ENOTSTARTED, "endpoint not started")                                     \
    X(EFENCING, "fencing token mismatch")                                      \
    X(ECONNECT, "could not connect to rpc endpoint")                           \
    X(EHANDSHAKE, "rpc handshake failed")                                      \
    X(ENOTSUP, "not supported")                                                \
    X(ENOMETHOD, "no such rpc method")                                         \
    X(EDECODE, "could not decode message")                                     \
    X(EPROTO, "protocol error")                                                \
    X(EMSGSIZE, "message too large")                                           \
    X(EADDRINUSE, "address in use")                                            \
    X(ETLS, "TLS failure")                                                     \
    X(EFULL, "recipient's mailbox is full")

typedef enum fl_err {
#define FL__ERR_ENUM(name, msg) FL_##name,
    FL_ERRNO_MAP(FL__ERR_ENUM)
#undef FL__ERR_ENUM
        FL__ERR_COUNT,
    /* First code available to applications. */
    FL_EUSER = 1000
} fl_err_t;

/*
 * fl_strerror returns the message of an error code: a string literal, never
 * NULL ("application error" for codes >= FL_EUSER, "unknown error" for
 * anything else). Any thread; never blocks.
 */
FL_EXTERN const char *fl_strerror(int err);

/*
 * fl_err_name returns the symbolic name of a code ("FL_ETIMEDOUT"), a string
 * literal, never NULL ("FL_EUSER" for application codes, "FL_EUNKNOWN"
 * otherwise). Any thread; never blocks.
 */
FL_EXTERN const char *fl_err_name(int err);

/* Log levels, most severe first. */
typedef enum fl_log_level {
    FL_LOG_ERROR = 0,
    FL_LOG_WARN = 1,
    FL_LOG_INFO = 2,
    FL_LOG_DEBUG = 3
} fl_log_level_t;

/*
 * Log components: the part of fling a record comes from, or FL_LOGC_APP
 * for fl_log() called by the application. Append only; every value is
 * below FL_LOG_COMPONENT_MAX. Their names ("common", "sched", ...) are
 * what FLING_TRACE and fl_log_set_trace take.
 */
typedef enum fl_log_component {
    FL_LOGC_COMMON = 0,
    FL_LOGC_SCHED = 1,
    FL_LOGC_ACTOR = 2,
    FL_LOGC_REMOTE = 3,
    FL_LOGC_RPC = 4,
    FL_LOGC_APP = 5,
    FL_LOGC_CLUSTER = 6
} fl_log_component_t;

#define FL_LOG_COMPONENT_MAX 16

/* One key=value field of a record: the endpoint id, peer address, method
 * or correlation id a line is about. Both strings are borrowed. A field
 * given with a NULL value is left out of the record. */
typedef struct fl_log_field {
    const char *key;
    const char *value;
} fl_log_field_t;

/*
 * A log record, as a handler receives it. Every pointer is borrowed for
 * the duration of the handler's call only.
 */
typedef struct fl_log_record {
    fl_log_level_t level;
    fl_log_component_t component;
    const char *component_name; /* "rpc"; never NULL */
    const char *message;        /* one line, without the fields */
    const fl_log_field_t *fields;
    size_t nfields;
    int64_t time_ns;    /* wall clock (CLOCK_REALTIME), ns since 1970 UTC */
    uint64_t thread_id; /* the kernel's id of the logging thread (gettid) */
    /* Lines of a rate-limited site dropped since its last line (0 if none);
     * also the last field, "suppressed", when not 0. */
    uint32_t suppressed;
} fl_log_record_t;

/*
 * A log handler. Called with no fling lock held, on whatever thread logged;
 * rec and everything it points to are only valid during the call. Must
 * not block for long, nor call back into fling's logging.
 */
typedef void (*fl_log_cb)(void *arg, const fl_log_record_t *rec);

/*
 * fl_log_set_level sets the most verbose level that is emitted for every
 * component (default FL_LOG_WARN, or the value of the environment variable
 * FLING_LOG: error|warn|info|debug, read at the first log). Components
 * traced (fl_log_set_trace) stay at debug. Any thread.
 */
FL_EXTERN void fl_log_set_level(fl_log_level_t level);

/* fl_log_get_level returns the level set for every component. Any thread. */
FL_EXTERN fl_log_level_t fl_log_get_level(void);

/*
 * fl_log_set_trace turns debug on for the components named in a comma
 * separated list ("remote,rpc"; "all" for every one; "-name" turns one
 * off again, "all,-sched"; "" for none), and off for every other one,
 * which then follow fl_log_set_level. The environment variable
 * FLING_TRACE, read at the first log, takes the same list. Returns FL_OK,
 * or FL_EINVAL (nothing changed) for a NULL list or an unknown name. Any
 * thread.
 */
FL_EXTERN int fl_log_set_trace(const char *components);

/*
 * fl_log_enabled is true if a record of component at level would be
 * emitted: one load, so a caller can skip building fields. Any thread.
 */
FL_EXTERN int fl_log_enabled(fl_log_component_t component,
                             fl_log_level_t level);

/* fl_log_component_name returns "rpc" for FL_LOGC_RPC (a string literal;
 * "?" for a value of no component). Any thread. */
FL_EXTERN const char *fl_log_component_name(fl_log_component_t component);

/*
 * fl_log_set_handler replaces the sink (NULL restores the default, which
 * writes one line per record to stderr, as fl_log_format does). Install it
 * before starting systems: a log call racing with the switch may still
 * reach the old sink (always with the arg given with it). Any thread.
 */
FL_EXTERN void fl_log_set_handler(fl_log_cb cb, void *arg);

/*
 * fl_log_format writes the default sink's line for rec into buf (cap
 * bytes, NUL terminated, no newline; truncated to fit):
 *   2026-12-05T00:12:03.123456Z WARN  [t4711] remote: message key=value
 * UTC time with microseconds, level padded to 5, kernel thread id,
 * component, message (its control characters escaped as below, so that
 * text from a peer cannot start a line of its own), then the fields; a
 * value that is empty or holds a
 * space, '"', '=', '\\' or a control character is quoted, with '"' and
 * '\\' escaped by a backslash and control characters written as a
 * backslash and n, t or xNN. Returns the length of the whole line (as
 * snprintf). Any thread; never blocks.
 */
FL_EXTERN size_t fl_log_format(const fl_log_record_t *rec, char *buf,
                               size_t cap);

/*
 * fl_log emits a record of component FL_LOGC_APP at a level if that level
 * is enabled for it. Any thread; does not block beyond the sink.
 */
FL_EXTERN void fl_log(fl_log_level_t level, const char *fmt, ...)
    FL_PRINTF(2, 3);

/*
 * fl_log_kv emits a record of component with nfields fields (borrowed for
 * the call) if level is enabled for it; fl_log with fields and a
 * component. Any thread; does not block beyond the sink.
 */
FL_EXTERN void fl_log_kv(fl_log_component_t component, fl_log_level_t level,
                         const fl_log_field_t *fields, size_t nfields,
                         const char *fmt, ...) FL_PRINTF(5, 6);

/* fl_clock_now_ns returns CLOCK_MONOTONIC in nanoseconds. Any thread. */
FL_EXTERN uint64_t fl_clock_now_ns(void);

/*
 * fl_replace_allocator swaps the functions fling allocates with (the
 * allocator seam). Call it before any other fling function, from one
 * thread; returns FL_EINVAL if any pointer is NULL, FL_ESTATE if fling has
 * already allocated memory. A failing allocation surfaces as FL_ENOMEM from
 * the call that needed it; fling never aborts on out of memory.
 */
FL_EXTERN int fl_replace_allocator(void *(*malloc_fn)(size_t),
                                   void *(*calloc_fn)(size_t, size_t),
                                   void *(*realloc_fn)(void *, size_t),
                                   void (*free_fn)(void *));

/* Duration value meaning "no timeout". */
#define FL_INFINITE ((int64_t)-1)

#ifdef __cplusplus
}
#endif

#endif /* FLING_COMMON_H */
