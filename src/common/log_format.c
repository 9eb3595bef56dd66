/* log_format.c - the line of a log record, as the default sink writes it
 * to stderr (docs/guide.md, "Logging"). */
#include "common/internal.h"

#include "common/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A line under construction: what does not fit is counted, not written. */
typedef struct line {
    char *p;
    size_t cap; /* bytes of p, NUL included */
    size_t len; /* of the whole line, written or not */
} line_t;

static void put_c(line_t *l, char ch)
{
    if (l->len + 1 < l->cap)
        l->p[l->len] = ch;
    l->len++;
}

static void put_s(line_t *l, const char *s)
{
    while (*s != '\0')
        put_c(l, *s++);
}

/* A value needs quotes if it is empty, or holds a space, a quote, an
 * '=', a backslash or a control character. */
static bool needs_quotes(const char *v)
{
    if (*v == '\0')
        return true;
    for (; *v != '\0'; v++) {
        unsigned char ch = (unsigned char)*v;
        if (ch <= ' ' || ch == '"' || ch == '=' || ch == '\\' || ch == 0x7f)
            return true;
    }
    return false;
}

/* A control character as an escape: \n, \t or \xNN. */
static void put_control(line_t *l, unsigned char ch)
{
    if (ch == '\n') {
        put_s(l, "\\n");
    } else if (ch == '\t') {
        put_s(l, "\\t");
    } else {
        char hex[8];
        snprintf(hex, sizeof hex, "\\x%02x", ch);
        put_s(l, hex);
    }
}

/* The message: as it is, but control characters escaped, so that text a
 * peer sent (a service name, an error) cannot start a line of its own. */
static void put_text(line_t *l, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < ' ' || ch == 0x7f)
            put_control(l, ch);
        else
            put_c(l, (char)ch);
    }
}

static void put_value(line_t *l, const char *v)
{
    if (v == NULL)
        v = "";
    if (!needs_quotes(v)) {
        put_s(l, v);
        return;
    }
    put_c(l, '"');
    for (; *v != '\0'; v++) {
        unsigned char ch = (unsigned char)*v;
        if (ch == '"' || ch == '\\') {
            put_c(l, '\\');
            put_c(l, (char)ch);
        } else if (ch < ' ' || ch == 0x7f) {
            put_control(l, ch);
        } else {
            put_c(l, (char)ch);
        }
    }
    put_c(l, '"');
}

static const char *level_name(fl_log_level_t level)
{
    switch (level) {
    case FL_LOG_ERROR:
        return "ERROR";
    case FL_LOG_WARN:
        return "WARN ";
    case FL_LOG_INFO:
        return "INFO ";
    default:
        return "DEBUG";
    }
}

size_t fl_log_format(const fl_log_record_t *rec, char *buf, size_t cap)
{
    line_t l = {buf, cap, 0};
    char head[96];
    time_t sec = (time_t)(rec->time_ns / 1000000000);
    long usec = (long)(rec->time_ns % 1000000000 / 1000);
    struct tm tm;
    if (rec->time_ns < 0 || gmtime_r(&sec, &tm) == NULL) {
        memset(&tm, 0, sizeof tm);
        tm.tm_year = 70;
        tm.tm_mday = 1;
        usec = 0;
    }
    snprintf(head, sizeof head,
             "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s [t%llu] ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, usec, level_name(rec->level),
             (unsigned long long)rec->thread_id);
    put_s(&l, head);
    put_s(&l, rec->component_name != NULL ? rec->component_name : "?");
    put_s(&l, ": ");
    put_text(&l, rec->message != NULL ? rec->message : "");
    for (size_t i = 0; i < rec->nfields; i++) {
        put_c(&l, ' ');
        put_s(&l, rec->fields[i].key != NULL ? rec->fields[i].key : "?");
        put_c(&l, '=');
        put_value(&l, rec->fields[i].value);
    }
    if (cap > 0)
        buf[l.len < cap ? l.len : cap - 1] = '\0';
    return l.len;
}

void fl__log_stderr(const fl_log_record_t *rec)
{
    char line[FL__LOG_MESSAGE_MAX + 1024];
    size_t n = fl_log_format(rec, line, sizeof line - 1);
    if (n > sizeof line - 2)
        n = sizeof line - 2; /* truncated: the line still ends */
    line[n++] = '\n';
    /* One write: lines of different threads do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
