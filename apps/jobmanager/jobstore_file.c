/*
 * jobstore_file.c - a stored job as a file (jobstore.h): the folder
 * high-availability.storageDir/jobs holds one file <job id>.job a job:
 *
 *   fling-jobstore 1\n
 *   <job id, 32 hex digits>\n
 *   <parallelism, decimal>\n
 *   <submission time, ms since the epoch, decimal>\n
 *   <the job file's folder>\n
 *   <the job as JSON, to the end>
 *
 * written to a temporary file, flushed, renamed into place and the folder
 * flushed (after an unlink too): a power loss neither loses a written file
 * nor brings a removed one back. A file is untrusted input: every field is
 * checked (fuzz/jobstore_fuzz.c), and only a regular file is read (not a
 * FIFO, nor a symbolic link).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fling/common.h>

#include "jobstore.h"

#define MAGIC "fling-jobstore 1"
#define FILE_MAX (64u << 20) /* bytes; a job file is far smaller */

/* The next line of buf[*at..len) into [*s, *s + *n); false without one. */
static bool next_line(const char *buf, size_t len, size_t *at, const char **s,
                      size_t *n)
{
    const char *nl = memchr(buf + *at, '\n', len - *at);
    if (nl == NULL)
        return false;
    *s = buf + *at;
    *n = (size_t)(nl - *s);
    *at = (size_t)(nl - buf) + 1;
    return true;
}

/* A decimal of at most 18 digits into *v; false otherwise. */
static bool decimal(const char *s, size_t n, int64_t *v)
{
    if (n == 0 || n > 18)
        return false;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return true;
}

static char *dup_n(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c != NULL) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

int jm_jobfile_parse(const char *buf, size_t len, jm_stored_job_t *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size_t at = 0, n[5];
    const char *s[5];
    static const char *const what[5] = {
        "the first line is not '" MAGIC "'", "no job id of 32 hex digits",
        "no parallelism", "no submission time", "no job folder"};
    for (int i = 0; i < 5; i++) {
        if (!next_line(buf, len, &at, &s[i], &n[i])) {
            snprintf(err, errlen, "%s", what[i]);
            return FL_EINVAL;
        }
    }
    int64_t p = 0, t = 0;
    bool hex = n[1] == 32;
    for (size_t i = 0; hex && i < 32; i++)
        hex = strchr("0123456789abcdef", s[1][i]) != NULL && s[1][i] != '\0';
    int bad = n[0] != strlen(MAGIC) || memcmp(s[0], MAGIC, n[0]) != 0 ? 0
              : !hex                                                  ? 1
              : !decimal(s[2], n[2], &p) || p > UINT32_MAX            ? 2
              : !decimal(s[3], n[3], &t)                              ? 3
              : memchr(s[4], '\0', n[4]) != NULL                      ? 4
                                                                      : -1;
    if (bad < 0 && memchr(buf + at, '\0', len - at) != NULL) {
        snprintf(err, errlen, "the job holds a NUL byte");
        return FL_EINVAL;
    }
    if (bad >= 0) {
        snprintf(err, errlen, "%s", what[bad]);
        return FL_EINVAL;
    }
    memcpy(out->job_id, s[1], 32);
    out->job_id[32] = '\0';
    out->parallelism = (uint32_t)p;
    out->submitted_ms = t;
    out->job_dir = dup_n(s[4], n[4]);
    out->json = dup_n(buf + at, len - at);
    if (out->job_dir == NULL || out->json == NULL) {
        free(out->job_dir);
        free(out->json);
        memset(out, 0, sizeof *out);
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    return FL_OK;
}

/* Writes all n bytes of p to fd: FL_OK or FL_ESYSTEM. */
static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return FL_ESYSTEM;
        p += w;
        n -= (size_t)w;
    }
    return FL_OK;
}

/* Flushes the folder dir to the disk, so that a rename or an unlink of its
 * file path survives a power loss: FL_OK or FL_ESYSTEM with why. */
static int sync_dir(const char *dir, const char *path, char *err, size_t errlen)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0 && fsync(fd) == 0) {
        close(fd);
        return FL_OK;
    }
    snprintf(err, errlen, "cannot flush the folder of %s: %s", path,
             strerror(errno));
    if (fd >= 0)
        close(fd);
    return FL_ESYSTEM;
}

int jm_jobfile_write(const char *dir, const jm_stored_job_t *j, char *err,
                     size_t errlen)
{
    if (strchr(j->job_dir, '\n') != NULL) {
        snprintf(err, errlen, "its folder's name holds a newline");
        return FL_EINVAL;
    }
    char tmp[4200], path[4200], head[200];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, j->job_id);
    snprintf(path, sizeof path, "%s/%s.job", dir, j->job_id);
    int hn = snprintf(head, sizeof head, MAGIC "\n%s\n%u\n%lld\n", j->job_id,
                      (unsigned)j->parallelism, (long long)j->submitted_ms);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = fd < 0 ? FL_ESYSTEM : FL_OK;
    if (rc == FL_OK)
        rc = write_all(fd, head, (size_t)hn);
    if (rc == FL_OK)
        rc = write_all(fd, j->job_dir, strlen(j->job_dir));
    if (rc == FL_OK)
        rc = write_all(fd, "\n", 1);
    if (rc == FL_OK)
        rc = write_all(fd, j->json, strlen(j->json));
    if (rc == FL_OK && fsync(fd) != 0)
        rc = FL_ESYSTEM;
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && rc == FL_OK) {
        rc = FL_ESYSTEM;
        e = errno;
    }
    if (rc == FL_OK && rename(tmp, path) != 0) {
        rc = FL_ESYSTEM;
        e = errno;
    }
    if (rc != FL_OK) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(e));
        unlink(tmp);
        return rc;
    }
    return sync_dir(dir, path, err, errlen);
}

int jm_jobfile_remove(const char *dir, const char *job_id, char *err,
                      size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.job", dir, job_id);
    if (unlink(path) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "cannot remove %s: %s", path, strerror(errno));
        return FL_ESYSTEM;
    }
    return sync_dir(dir, path, err, errlen);
}

/* Reads the file at path into a NUL-terminated buffer: FL_OK (*buf the
 * caller's), FL_ESYSTEM or FL_ELIMIT with why. */
static int read_file(const char *path, char **buf, size_t *len, char *err,
                     size_t errlen)
{
    /* Neither a FIFO (whose open and read would wait for a writer) nor
     * whatever a symbolic link names. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        if (errno == ELOOP)
            snprintf(err, errlen, "it is a symbolic link");
        else
            snprintf(err, errlen, "cannot read it: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        return FL_ESYSTEM;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "it is not a regular file");
        return FL_ESYSTEM;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > FILE_MAX) {
        close(fd);
        snprintf(err, errlen, "it has more than %u bytes", FILE_MAX);
        return FL_ELIMIT;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *b = malloc(n + 1);
    while (b != NULL && got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return FL_ENOMEM;
    }
    b[got] = '\0';
    *buf = b;
    *len = got;
    return FL_OK;
}

int jm_jobfile_load(const char *dir, jm_jobfile_cb fn, void *arg, char *err,
                    size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "cannot read the folder %s: %s", dir,
                 strerror(errno));
        return FL_ESYSTEM;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n != 36 || strcmp(e->d_name + 32, ".job") != 0)
            continue;
        char path[4200], why[300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *buf = NULL;
        size_t len = 0;
        jm_stored_job_t j;
        int rc = read_file(path, &buf, &len, why, sizeof why);
        if (rc == FL_OK)
            rc = jm_jobfile_parse(buf, len, &j, why, sizeof why);
        if (rc == FL_OK && strncmp(j.job_id, e->d_name, 32) != 0) {
            snprintf(why, sizeof why, "it holds job %s", j.job_id);
            free(j.json);
            free(j.job_dir);
            rc = FL_EINVAL;
        }
        free(buf);
        fn(arg, path, rc == FL_OK ? &j : NULL, why);
    }
    closedir(d);
    return FL_OK;
}

int jm_jobfile_mkdirs(const char *dir, char *err, size_t errlen)
{
    char p[4096];
    int n = snprintf(p, sizeof p, "%s", dir);
    if (n <= 0 || (size_t)n >= sizeof p) {
        snprintf(err, errlen, "the folder name is empty or too long");
        return FL_EINVAL;
    }
    for (char *c = p + 1; *c != '\0'; c++) {
        if (*c != '/')
            continue;
        *c = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            goto fail;
        *c = '/';
    }
    if (mkdir(p, 0700) != 0 && errno != EEXIST)
        goto fail;
    return FL_OK;
fail:
    snprintf(err, errlen, "cannot make the folder %s: %s", p, strerror(errno));
    return FL_ESYSTEM;
}
