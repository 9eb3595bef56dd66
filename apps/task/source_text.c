/*
 * apps/task/source_text.c - source.text: the lines of a file. Instance i
 * of n takes the byte range [size*i/n, size*(i+1)/n) and owns exactly the
 * lines that START in it, so the n instances read each line once. A line
 * is handed on in place in the read buffer, without its '\n' (a '\r'
 * before it stays); the last line may lack its '\n'. The buffer grows to
 * hold a line longer than itself, up to a line of 1 GiB: a longer one
 * fails the task rather than the machine's memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fling/common.h>

#include "task_int.h"

#define DEFAULT_BUFFER (256 * 1024)

#define DEFAULT_MAX_LINE ((size_t)1 << 30)

static size_t first_buffer = DEFAULT_BUFFER;
static size_t max_line = DEFAULT_MAX_LINE;

void fj_source_text_set_buffer(size_t bytes)
{
    first_buffer = bytes ? bytes : DEFAULT_BUFFER;
}

void fj_source_text_set_max_line(size_t bytes)
{
    max_line = bytes ? bytes : DEFAULT_MAX_LINE;
}

typedef struct text_source {
    const char *path;
    int fd;
    uint64_t start, end; /* the range whose lines this instance owns */
} text_source_t;

static int text_finish(fj_op_t *op, int ok)
{
    text_source_t *s = op->impl;
    close(s->fd);
    free(s);
    op->impl = NULL;
    return FL_OK;
}

static int read_fail(fj_op_t *op, text_source_t *s, int e)
{
    return fj_op_fail(op, FL_ESYSTEM, "cannot read %s: %s", s->path,
                      strerror(e));
}

static int text_produce(fj_op_t *op)
{
    text_source_t *s = op->impl;
    /* Start one byte early: everything up to and including the first
     * '\n' from there belongs to the line the previous instance owns (a
     * '\n' just before start means our first line starts at start). */
    uint64_t off = s->start > 0 ? s->start - 1 : 0; /* file offset of buf */
    int skipping = s->start > 0;
    if (s->start >= s->end)
        return FL_OK;
    size_t cap = first_buffer <= max_line ? first_buffer : max_line + 1;
    char *buf = malloc(cap);
    if (!buf)
        return fj_op_fail(op, FL_ENOMEM,
                          "cannot read %s: out of memory for a buffer of %zu "
                          "bytes",
                          s->path, cap);
    size_t head = 0, tail = 0; /* the unread bytes: buf[head, tail) */
    int eof = 0, rc = FL_OK;
    for (;;) {
        if (!skipping && off + head >= s->end)
            break; /* the next line starts past our range */
        char *nl = memchr(buf + head, '\n', tail - head);
        if (nl) {
            size_t len = (size_t)(nl - (buf + head));
            if (!skipping) {
                rc = fj_source_emit(op, buf + head, len);
                if (rc != FL_OK)
                    break;
            }
            skipping = 0;
            head += len + 1;
            continue;
        }
        if (eof) {
            if (!skipping && head < tail)
                rc = fj_source_emit(op, buf + head, tail - head);
            break;
        }
        /* No whole line buffered: keep the partial one, make room, read. */
        if (skipping) {
            off += tail;
            head = tail = 0;
        } else if (head > 0) {
            memmove(buf, buf + head, tail - head);
            off += head;
            tail -= head;
            head = 0;
        }
        if (tail == cap) {
            /* A partial line fills the buffer (when skipping, the buffer
             * was just emptied, so this is a line of ours). */
            if (cap > max_line) {
                rc = fj_op_fail(op, FL_EINVAL,
                                "cannot read %s: the line at byte %llu is "
                                "longer than %zu bytes, the most a record "
                                "holds",
                                s->path, (unsigned long long)off, max_line);
                break;
            }
            size_t ncap = cap > max_line / 2 ? max_line + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = fj_op_fail(op, FL_ENOMEM,
                                "cannot read %s: out of memory for a line of "
                                "more than %zu bytes",
                                s->path, cap);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = pread(s->fd, buf + tail, cap - tail, (off_t)(off + tail));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = read_fail(op, s, errno);
            break;
        }
        if (n == 0)
            eof = 1;
        tail += (size_t)n;
    }
    free(buf);
    return rc;
}

int fj_source_text_setup(fj_op_t *op)
{
    const char *path = fj_op_param(op, "path");
    if (!path)
        return FL_EINVAL;
    text_source_t *s = calloc(1, sizeof(*s));
    if (!s)
        return fj_op_fail(op, FL_ENOMEM, "cannot open %s: out of memory", path);
    s->path = path;
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is then
     * refused below); reads of a regular file ignore the flag. */
    s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (s->fd < 0) {
        int e = errno;
        free(s);
        return fj_op_fail(op, e == ENOENT ? FL_ENOENT : FL_ESYSTEM,
                          "cannot open %s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        int e = errno;
        close(s->fd);
        free(s);
        return fj_op_fail(op, FL_ESYSTEM, "cannot read %s: %s", path,
                          strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        /* Byte ranges need a size: only a regular file has one. */
        int dir = S_ISDIR(st.st_mode);
        close(s->fd);
        free(s);
        return fj_op_fail(op, FL_ESYSTEM, "cannot read %s: %s", path,
                          dir ? strerror(EISDIR)
                              : "not a regular file (a FIFO, a device or a "
                                "socket); give a file");
    }
    const fj_task_t *t = op->run->task;
    unsigned __int128 size = (uint64_t)st.st_size;
    s->start = (uint64_t)(size * t->subtask / t->parallelism);
    s->end = (uint64_t)(size * (t->subtask + 1) / t->parallelism);
    op->impl = s;
    op->produce = text_produce;
    op->finish = text_finish;
    return FL_OK;
}
