/*
 * tests/apps/task/task_fixture.h - what the task runner's tests share: a
 * scratch folder per case, files written and read whole, grep -F run as a
 * process, the part files of an output folder put together, and one
 * subtask run.
 */
#ifndef FLING_TESTS_TASK_FIXTURE_H
#define FLING_TESTS_TASK_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl_test.h"
#include "task/task.h"
#include "task/task_int.h"

/* A growing byte buffer. */
typedef struct tbuf {
    char *data;
    size_t len, cap;
} tbuf_t;

static inline void tbuf_add(tbuf_t *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        b->data = realloc(b->data, cap);
        assert_non_null(b->data);
        b->cap = cap;
    }
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static inline void tbuf_free(tbuf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* Makes a fresh scratch folder; the caller frees the path with
 * rm_scratch. */
static inline char *scratch(void)
{
    char tmpl[] = "/tmp/fling-task-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char *p = strdup(tmpl);
    assert_non_null(p);
    return p;
}

/* Removes a scratch folder and everything under it, and frees its path. */
static inline void rm_scratch(char *dir)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", dir, (char *)NULL);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(dir);
}

/* dir/name, to free. */
static inline char *path_in(const char *dir, const char *name)
{
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
    return p;
}

/* A scratch folder and the paths of a task's input file (dir/in.txt, not
 * made) and output folder (dir/out). */
typedef struct scratch_io {
    char *dir, *input, *out;
} scratch_io_t;

/* Makes a fresh scratch folder and its two paths; free with
 * rm_scratch_io. */
static inline scratch_io_t scratch_io(void)
{
    scratch_io_t s = {scratch(), NULL, NULL};
    s.input = path_in(s.dir, "in.txt");
    s.out = path_in(s.dir, "out");
    return s;
}

/* Removes the scratch folder of s, and frees its paths. */
static inline void rm_scratch_io(scratch_io_t *s)
{
    free(s->input);
    free(s->out);
    rm_scratch(s->dir);
}

static inline void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Appends the whole file at path to b; returns 0, or -1 (errno) if it
 * cannot be opened. */
static inline int read_file(const char *path, tbuf_t *b)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    char chunk[65536];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        tbuf_add(b, chunk, (size_t)n);
    assert_true(n == 0);
    close(fd);
    return 0;
}

/* Runs `grep -F -- pattern file` in the C locale and returns its output
 * in out (grep's status 1, no line found, is fine). */
static inline void run_grep(const char *pattern, const char *file, tbuf_t *out)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        setenv("LC_ALL", "C", 1);
        execlp("grep", "grep", "-F", "--", pattern, file, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char chunk[65536];
    ssize_t n;
    while ((n = read(fds[0], chunk, sizeof(chunk))) > 0)
        tbuf_add(out, chunk, (size_t)n);
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_true(WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 1);
}

/* The names in dir, sorted, joined by ' ' ("" for none; dot files
 * included, . and .. not), into names. */
static inline void list_dir(const char *dir, tbuf_t *names)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort);
    assert_true(n >= 0);
    tbuf_add(names, "", 0);
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        if (strcmp(nm, ".") != 0 && strcmp(nm, "..") != 0) {
            if (names->len)
                tbuf_add(names, " ", 1);
            tbuf_add(names, nm, strlen(nm));
        }
        free(list[i]);
    }
    free(list);
}

/* Asserts that dir holds exactly the names listed (sorted, ' ' between). */
static inline void assert_dir(const char *dir, const char *names)
{
    tbuf_t got = {0};
    list_dir(dir, &got);
    assert_string_equal(got.data, names);
    tbuf_free(&got);
}

/* part-0 .. part-<n-1> of dir, concatenated into out. */
static inline void concat_parts(const char *dir, unsigned n, tbuf_t *out)
{
    tbuf_add(out, "", 0);
    for (unsigned i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "part-%u", i);
        char *p = path_in(dir, name);
        assert_int_equal(read_file(p, out), 0);
        free(p);
    }
}

/* A task of chain for subtask i of n, attempt 0, no library. */
static inline fj_task_t task_of(const fj_op_spec_t *chain, size_t n_ops,
                                unsigned i, unsigned n)
{
    fj_task_t t;
    memset(&t, 0, sizeof(t));
    t.chain = chain;
    t.n_ops = n_ops;
    t.subtask = i;
    t.parallelism = n;
    return t;
}

/* Runs t and returns its code, with the message in err. */
static inline int run_task(const fj_task_t *t, fj_task_stats_t *stats,
                           char *err, size_t errlen)
{
    return fj_task_run(t, stats, err, errlen);
}

#endif
