/*
 * fling_spawn.h - runs the fling client (or any program) as a process,
 * its stdout and stderr into files, and gives back its exit status and
 * both outputs whole. Shared by tests/apps/client/ and
 * tests/apps/cluster/client_cluster_test.c. cmocka assertions; one thread.
 */
#ifndef FLING_SPAWN_H
#define FLING_SPAWN_H

#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl_test.h"

extern char **environ;

typedef struct result {
    int status; /* the exit status */
    char *out, *err;
} result_t;

static inline void result_free(result_t *r)
{
    free(r->out);
    free(r->err);
}

/* The whole of the file behind fd, from its start (malloc'd, NUL
 * terminated). */
static inline char *slurp_fd(int fd)
{
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    ssize_t n;
    while ((n = pread(fd, s + len, cap - len - 1, (off_t)len)) > 0) {
        len += (size_t)n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            s = realloc(s, cap);
            assert_non_null(s);
        }
    }
    assert_true(n == 0);
    s[len] = '\0';
    return s;
}

/* The whole of the file at path (malloc'd, NUL terminated). */
static inline char *slurp(const char *path)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    char *s = slurp_fd(fd);
    close(fd);
    return s;
}

/*
 * spawn_into runs argv (argv[0] a path, NULL terminated) in the folder cwd
 * (NULL: ours), its stdout and stderr into out_fd and err_fd (emptied
 * first, their shared offsets at 0), waits for it and asserts that it
 * exited. The test's timeout bounds it.
 */
static inline result_t spawn_into(const char *const *argv, const char *cwd,
                                  int out_fd, int err_fd)
{
    assert_int_equal(0, ftruncate(out_fd, 0));
    assert_int_equal(0, ftruncate(err_fd, 0));
    assert_int_equal(0, lseek(out_fd, 0, SEEK_SET));
    assert_int_equal(0, lseek(err_fd, 0, SEEK_SET));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    if (cwd != NULL)
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    pid_t pid;
    assert_int_equal(
        0, posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ));
    posix_spawn_file_actions_destroy(&fa);
    int st;
    assert_int_equal(pid, waitpid(pid, &st, 0));
    assert_true(WIFEXITED(st));
    result_t r = {WEXITSTATUS(st), slurp_fd(out_fd), slurp_fd(err_fd)};
    return r;
}

/* spawn_into with two fresh temporary files, removed after. */
static inline result_t spawn_tmp(const char *const *argv)
{
    char out[] = "/tmp/fling_spawn_out_XXXXXX",
         err[] = "/tmp/fling_spawn_err_XXXXXX";
    int fo = mkstemp(out), fe = mkstemp(err);
    assert_true(fo >= 0 && fe >= 0);
    unlink(out);
    unlink(err);
    result_t r = spawn_into(argv, NULL, fo, fe);
    close(fo);
    close(fe);
    return r;
}

#ifdef FLING_CLIENT
/* argv: the fling program, then args (NULL terminated, at most 62). */
static inline void fling_argv(const char *argv[64], const char *const *args)
{
    argv[0] = FLING_CLIENT;
    size_t n = 1;
    for (; args[n - 1] != NULL; n++) {
        assert_true(n < 63);
        argv[n] = args[n - 1];
    }
    argv[n] = NULL;
}

/* Runs fling with args (NULL terminated); the test's timeout bounds it. */
static inline result_t run_fling(const char *const *args)
{
    const char *argv[64];
    fling_argv(argv, args);
    return spawn_tmp(argv);
}
#endif

#endif
