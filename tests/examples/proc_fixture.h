/*
 * proc_fixture.h - runs an example's program as a child process and
 * follows its log lines through a pipe, for the tests of examples/.
 *
 * The child's stdout and stderr go to one pipe; it dies with the test
 * (PR_SET_PDEATHSIG). proc_next waits for the program's next line of the
 * application (" app: " in fl_log_format's layout) and proc_find for the
 * next one that starts with a prefix; both fail the test after
 * FL_TEST_WAIT_MS, printing what the program wrote. Only the test's main
 * thread uses a proc.
 */
#ifndef PROC_FIXTURE_H
#define PROC_FIXTURE_H

#include "fl_test.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define PROC_OUT_MAX (256 * 1024)

typedef struct proc {
    const char *name; /* for failure messages */
    pid_t pid;
    int fd;                 /* the read end of the pipe, -1 at its end */
    char out[PROC_OUT_MAX]; /* everything read so far, NUL-terminated */
    size_t len;
    size_t cursor; /* start of the first line not yet looked at */
    int status;    /* waitpid's, once reaped */
    bool reaped;
} proc_t;

/* Starts argv[0] with argv (NULL-terminated) as p; fails the test if it
 * cannot. */
static inline void proc_start(proc_t *p, const char *name, char *const argv[])
{
    memset(p, 0, sizeof *p);
    p->name = name;
    int fds[2];
    assert_int_equal(0, pipe(fds));
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Dies with the test, should it fail before stopping us. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    p->pid = pid;
    p->fd = fds[0];
}

/* Reads what is there, waiting up to timeout_ms for something; false at
 * the end of the pipe or on a timeout. */
static inline bool proc_read(proc_t *p, int timeout_ms)
{
    if (p->fd < 0)
        return false;
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN};
    int n = poll(&pfd, 1, timeout_ms);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    if (p->len + 1 >= sizeof p->out)
        fail_msg("%s wrote more than %d bytes", p->name, PROC_OUT_MAX);
    ssize_t got = read(p->fd, p->out + p->len, sizeof p->out - 1 - p->len);
    if (got <= 0) {
        close(p->fd);
        p->fd = -1;
        return false;
    }
    p->len += (size_t)got;
    p->out[p->len] = '\0';
    return true;
}

static inline void proc_dump(const proc_t *p)
{
    fprintf(stderr, "---- %s (pid %d) wrote:\n%s---- end of %s\n", p->name,
            (int)p->pid, p->out, p->name);
}

/* The text of the next complete application line after the cursor into
 * line (cap bytes), moving the cursor past it; false if none is complete
 * yet. Other lines (the library's, sanitizers') are passed over. */
static inline bool proc_take_app_line(proc_t *p, char *line, size_t cap)
{
    static const char mark[] = " app: ";
    for (;;) {
        char *start = p->out + p->cursor;
        char *nl = strchr(start, '\n');
        if (nl == NULL)
            return false;
        p->cursor = (size_t)(nl + 1 - p->out);
        *nl = '\0';
        char *app = strstr(start, mark);
        bool found = app != NULL;
        if (found)
            snprintf(line, cap, "%s", app + sizeof mark - 1);
        *nl = '\n';
        if (found)
            return true;
    }
}

/* Waits for the next application line of p: with prefix NULL, whatever
 * it is; otherwise the next that starts with prefix, passing over others
 * (skip) or failing the test if the next one does not (!skip). */
static inline void proc_await(proc_t *p, const char *prefix, bool skip,
                              char *line, size_t cap)
{
    uint64_t t0 = fl_clock_now_ns();
    for (;;) {
        while (proc_take_app_line(p, line, cap)) {
            if (prefix == NULL || strncmp(line, prefix, strlen(prefix)) == 0)
                return;
            if (!skip) {
                proc_dump(p);
                fail_msg("%s: expected a line starting with \"%s\", got "
                         "\"%s\"",
                         p->name, prefix, line);
            }
        }
        uint64_t waited = fl_test_ms_since(t0);
        if (waited >= FL_TEST_WAIT_MS || p->fd < 0) {
            proc_dump(p);
            fail_msg("%s: no line starting with \"%s\" within %d ms%s", p->name,
                     prefix != NULL ? prefix : "", FL_TEST_WAIT_MS,
                     p->fd < 0 ? " (it has exited)" : "");
        }
        (void)proc_read(p, (int)(FL_TEST_WAIT_MS - waited));
    }
}

/* The next application line, which must start with prefix. */
static inline void proc_next(proc_t *p, const char *prefix, char *line,
                             size_t cap)
{
    proc_await(p, prefix, false, line, cap);
}

/* The next application line that starts with prefix. */
static inline void proc_find(proc_t *p, const char *prefix, char *line,
                             size_t cap)
{
    proc_await(p, prefix, true, line, cap);
}

/* Fails the test if p has written a complete application line starting
 * with prefix by now (reads what is there without waiting). */
static inline void proc_assert_no_line(proc_t *p, const char *prefix)
{
    while (proc_read(p, 0))
        ;
    size_t keep = p->cursor;
    char line[2048];
    while (proc_take_app_line(p, line, sizeof line)) {
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            proc_dump(p);
            fail_msg("%s: unexpected line \"%s\"", p->name, line);
        }
    }
    p->cursor = keep;
}

/* Sends sig to p and reaps it, reading its output to the end. */
static inline void proc_stop(proc_t *p, int sig)
{
    assert_int_equal(0, kill(p->pid, sig));
    while (p->fd >= 0) {
        if (!proc_read(p, FL_TEST_WAIT_MS) && p->fd >= 0) {
            proc_dump(p);
            fail_msg("%s did not end within %d ms of signal %d", p->name,
                     FL_TEST_WAIT_MS, sig);
        }
    }
    assert_int_equal(p->pid, waitpid(p->pid, &p->status, 0));
    p->reaped = true;
}

/* Waits for p to end by itself (reading its output to the end), then
 * fails the test unless it exited with status and wrote line, whole. */
static inline void proc_expect_exit(proc_t *p, int status, const char *line)
{
    while (p->fd >= 0) {
        if (!proc_read(p, FL_TEST_WAIT_MS) && p->fd >= 0) {
            proc_dump(p);
            fail_msg("%s did not end within %d ms", p->name, FL_TEST_WAIT_MS);
        }
    }
    assert_int_equal(p->pid, waitpid(p->pid, &p->status, 0));
    p->reaped = true;
    bool found = false;
    size_t n = strlen(line);
    for (const char *s = p->out; !found && s != NULL && *s;) {
        found = strncmp(s, line, n) == 0 && (s[n] == '\n' || s[n] == '\0');
        s = strchr(s, '\n');
        s = s != NULL ? s + 1 : NULL;
    }
    if (!found || !WIFEXITED(p->status) || WEXITSTATUS(p->status) != status) {
        proc_dump(p);
        fail_msg("%s: expected exit %d and the line \"%s\"; got status %d",
                 p->name, status, line, p->status);
    }
}

/* Stops p with SIGTERM: it must exit 0 after logging its last line,
 * which starts with last. */
static inline void proc_stop_cleanly(proc_t *p, const char *last)
{
    proc_stop(p, SIGTERM);
    char line[2048];
    proc_find(p, last, line, sizeof line);
    if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0) {
        proc_dump(p);
        fail_msg("%s: status %d after SIGTERM, not exit 0", p->name, p->status);
    }
}

/* Kills p at once (kill -9) and reaps it. */
static inline void proc_kill(proc_t *p)
{
    proc_stop(p, SIGKILL);
    assert_true(WIFSIGNALED(p->status));
    assert_int_equal(SIGKILL, WTERMSIG(p->status));
}

/* Reaps p if the test has not: kills it first. */
static inline void proc_end(proc_t *p)
{
    if (p->pid > 0 && !p->reaped) {
        (void)kill(p->pid, SIGKILL);
        (void)waitpid(p->pid, &p->status, 0);
        p->reaped = true;
    }
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
}

#endif
