/*
 * apps/task/sink_text.c - sink.text: instance i writes its records, one a
 * line, to <path>/part-<i>, through the temporary file
 * <path>/.part-<i>.inprogress-<attempt> renamed when the task succeeds.
 * A failed or canceled attempt removes its temporary file, so the folder
 * only ever holds whole part files. The folder is made if missing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <fling/common.h>

#include "task_int.h"

#define SINK_BUFFER (256 * 1024)

typedef struct text_sink {
    int fd;
    size_t used;
    char *tmp;  /* <path>/.part-<i>.inprogress-<attempt> */
    char *part; /* <path>/part-<i> */
    char buf[SINK_BUFFER];
} text_sink_t;

static int write_all(fj_op_t *op, text_sink_t *s, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(s->fd, data, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fj_op_fail(op, FL_ESYSTEM, "cannot write %s: %s", s->tmp,
                              strerror(errno));
        }
        data += n;
        len -= (size_t)n;
    }
    return FL_OK;
}

static int flush(fj_op_t *op, text_sink_t *s)
{
    int rc = write_all(op, s, s->buf, s->used);
    s->used = 0;
    return rc;
}

static int sink_push(fj_op_t *op, const char *data, size_t len)
{
    text_sink_t *s = op->impl;
    op->stats->in++;
    if (len + 1 > SINK_BUFFER - s->used) {
        int rc = flush(op, s);
        if (rc != FL_OK)
            return rc;
        if (len + 1 > SINK_BUFFER) {
            rc = write_all(op, s, data, len);
            if (rc == FL_OK)
                rc = write_all(op, s, "\n", 1);
            if (rc != FL_OK)
                return rc;
            op->stats->out++;
            return FL_OK;
        }
    }
    memcpy(s->buf + s->used, data, len);
    s->buf[s->used + len] = '\n';
    s->used += len + 1;
    op->stats->out++;
    return FL_OK;
}

/* Removes the temporary files that earlier attempts of this subtask left
 * behind (a process killed in the middle): they are never renamed. */
static void remove_stale(const char *dir, uint32_t subtask, uint32_t attempt)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    char prefix[48];
    int plen = snprintf(prefix, sizeof(prefix), ".part-%" PRIu32 ".inprogress-",
                        subtask);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, (size_t)plen) != 0)
            continue;
        char *end = NULL;
        const char *num = e->d_name + plen;
        unsigned long a = strtoul(num, &end, 10);
        if (end == num || *end != '\0' || a >= attempt)
            continue;
        unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

static int sink_finish(fj_op_t *op, int ok)
{
    text_sink_t *s = op->impl;
    int rc = FL_OK;
    if (ok) {
        rc = flush(op, s);
        if (rc == FL_OK && fsync(s->fd) != 0)
            rc = fj_op_fail(op, FL_ESYSTEM, "cannot write %s: %s", s->tmp,
                            strerror(errno));
    }
    if (close(s->fd) != 0 && ok && rc == FL_OK)
        rc = fj_op_fail(op, FL_ESYSTEM, "cannot write %s: %s", s->tmp,
                        strerror(errno));
    if (ok && rc == FL_OK && rename(s->tmp, s->part) != 0)
        rc = fj_op_fail(op, FL_ESYSTEM, "cannot rename %s to %s: %s", s->tmp,
                        s->part, strerror(errno));
    if (!ok || rc != FL_OK) {
        unlink(s->tmp);
    } else {
        const fj_task_t *t = op->run->task;
        remove_stale(fj_spec_param(op->spec, "path"), t->subtask, t->attempt);
    }
    free(s->tmp);
    free(s->part);
    free(s);
    op->impl = NULL;
    return rc;
}

/* Makes the folder path and its missing parents, like mkdir -p. */
static int make_dirs(fj_op_t *op, const char *path)
{
    char *p = strdup(path);
    if (!p)
        return fj_op_fail(op, FL_ENOMEM,
                          "cannot create the folder %s: out "
                          "of memory",
                          path);
    int rc = FL_OK;
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char saved = *c;
        *c = '\0';
        struct stat st;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = fj_op_fail(op, FL_ESYSTEM, "cannot create the folder %s: %s",
                            p, strerror(errno));
            break;
        }
        if (saved == '\0') {
            if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
                rc = fj_op_fail(op, FL_ESYSTEM,
                                "cannot create the folder %s: %s", p,
                                strerror(ENOTDIR));
            break;
        }
        *c = saved;
    }
    free(p);
    return rc;
}

int fj_sink_text_setup(fj_op_t *op)
{
    const char *path = fj_op_param(op, "path");
    if (!path)
        return FL_EINVAL;
    if (path[0] == '\0')
        return fj_op_fail(op, FL_EINVAL,
                          "has an empty 'path'; name the output folder");
    int rc = make_dirs(op, path);
    if (rc != FL_OK)
        return rc;
    const fj_task_t *t = op->run->task;
    text_sink_t *s = malloc(sizeof(*s));
    if (!s)
        return fj_op_fail(op, FL_ENOMEM, "is out of memory");
    s->used = 0;
    s->fd = -1;
    s->part = NULL;
    if (asprintf(&s->tmp, "%s/.part-%" PRIu32 ".inprogress-%" PRIu32, path,
                 t->subtask, t->attempt) < 0)
        s->tmp = NULL;
    if (!s->tmp ||
        asprintf(&s->part, "%s/part-%" PRIu32, path, t->subtask) < 0) {
        free(s->tmp);
        free(s);
        return fj_op_fail(op, FL_ENOMEM, "is out of memory");
    }
    s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (s->fd < 0) {
        rc = fj_op_fail(op, FL_ESYSTEM, "cannot create %s: %s", s->tmp,
                        strerror(errno));
        free(s->tmp);
        free(s->part);
        free(s);
        return rc;
    }
    op->impl = s;
    op->push = sink_push;
    op->finish = sink_finish;
    return FL_OK;
}
