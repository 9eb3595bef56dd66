/*
 * cluster_fixture.h - the cluster programs as child processes for the
 * tests of tests/apps/cluster/: spawn fling-jobmanager and
 * fling-taskmanager with -D options, read their stdout and stderr through
 * pipes line by line, wait for a line (bounded in time), signal them and
 * collect their exit status.
 *
 * The programs log to stderr (no --log), one record a line:
 *   2026-12-05T00:12:03.123456Z INFO  [t4711] app: Registered ...
 * cf_next_app reads up to the next line of component "app" and returns its
 * message; the tests assert those exactly and in order. Each wait fails
 * the test after CF_WAIT_MS. Every child started is killed (SIGKILL) by
 * cf_teardown, so a failed test leaves none behind.
 *
 * A test reads a child's pipes only while it waits on that child (a line,
 * its exit), so the others' output piles up in their pipes meanwhile.
 * cf_spawn makes each pipe CF_PIPE_BYTES (1 MiB) where the kernel allows
 * it (fs.pipe-max-size, the user's pipe quota; else it keeps 64 KiB,
 * quietly): a child that writes more than that between two reads of the
 * test blocks on its log until the test reads it.
 *
 * Each child runs in a process group of its own and dies with the test
 * (see cf_spawn).
 *
 * When a wait fails, cf_diagnose tells why on the test's stderr: the
 * child's exit status if it ended, else its state and the stacks of all
 * its threads (gdb, bounded by CF_GDB_S).
 */
#ifndef CLUSTER_FIXTURE_H
#define CLUSTER_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fl_test.h"

#ifndef JM_PATH
#error "JM_PATH must name the fling-jobmanager program"
#endif
#ifndef TM_PATH
#error "TM_PATH must name the fling-taskmanager program"
#endif

/* How long any one awaited line may take (sanitizer builds are slow). */
#define CF_WAIT_MS 30000
#define CF_MAX_PROCS 16
#define CF_MAX_ARGS 48
#define CF_BUF 65536
/* The size asked for each pipe of a child (see above). */
#define CF_PIPE_BYTES (1 << 20)
/* How long the stack dump of a silent child may take, in seconds. */
#define CF_GDB_S 30

/* One stream of a child: bytes read, not yet taken as lines. */
typedef struct cf_stream {
    int fd;
    char buf[CF_BUF];
    size_t len;
    bool eof;
} cf_stream_t;

typedef struct cf_proc {
    const char *name; /* "jm", "tm1" for messages */
    pid_t pid;
    cf_stream_t out, err;
    int status; /* once reaped */
    bool reaped;
} cf_proc_t;

static cf_proc_t *cf_procs[CF_MAX_PROCS];

static inline uint64_t cf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * cf_spawn starts program with args (NULL terminated, after argv[0]) and
 * its stdout and stderr on pipes. p is the caller's and must be STATIC:
 * cf_teardown reads it after the test function has returned.
 */
static inline void cf_spawn(cf_proc_t *p, const char *name, const char *program,
                            const char *const *args)
{
    memset(p, 0, sizeof *p);
    p->name = name;
    const char *argv[CF_MAX_ARGS];
    size_t n = 0;
    argv[n++] = program;
    for (size_t i = 0; args[i] != NULL && n < CF_MAX_ARGS - 1; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0)
        fail_msg("pipe: %s", strerror(errno));
    /* A failure leaves the pipe as it was. */
    (void)fcntl(out[0], F_SETPIPE_SZ, CF_PIPE_BYTES);
    (void)fcntl(err[0], F_SETPIPE_SZ, CF_PIPE_BYTES);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        /* A group of its own, whose link outside is the test: were the
         * test's group orphaned (its launcher exited) while the child is
         * stopped (SIGSTOP), the kernel would send the group SIGHUP and
         * SIGCONT, ending the child. It dies with the test instead. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the test died before prctl */
            _exit(127);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        close(out[1]);
        close(err[1]);
        execv(program, (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    p->pid = pid;
    p->out.fd = out[0];
    p->err.fd = err[0];
    fcntl(p->out.fd, F_SETFL, O_NONBLOCK);
    fcntl(p->err.fd, F_SETFL, O_NONBLOCK);
    for (size_t i = 0; i < CF_MAX_PROCS; i++)
        if (cf_procs[i] == NULL) {
            cf_procs[i] = p;
            break;
        }
}

/*
 * cf_diagnose prints to stderr why p may have gone silent: its exit status
 * if it ended (reaping it, waiting up to 2 s for a child that closed its
 * pipes), else its state (/proc/PID/status) and the stacks of all its
 * threads, from gdb run for CF_GDB_S s at most. Blocks meanwhile.
 */
static inline void cf_diagnose(cf_proc_t *p)
{
    uint64_t until = cf_now_ms() + 2000;
    while (!p->reaped) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid) {
            p->reaped = true;
            break;
        }
        if (cf_now_ms() >= until)
            break;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (p->reaped) {
        if (WIFEXITED(p->status))
            fprintf(stderr, "%s (pid %ld) exited with status %d\n", p->name,
                    (long)p->pid, WEXITSTATUS(p->status));
        else if (WIFSIGNALED(p->status))
            fprintf(stderr, "%s (pid %ld) was killed by signal %d%s\n", p->name,
                    (long)p->pid, WTERMSIG(p->status),
                    WCOREDUMP(p->status) ? " (core dumped)" : "");
        return;
    }
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)p->pid);
    FILE *f = fopen(path, "r");
    if (f != NULL) {
        while (fgets(line, sizeof line, f) != NULL)
            if (strncmp(line, "State:", 6) == 0 ||
                strncmp(line, "Threads:", 8) == 0)
                fprintf(stderr, "%s (pid %ld) %s", p->name, (long)p->pid, line);
        fclose(f);
    }
    /* Bytes it wrote that no wait has taken yet. */
    if (p->err.len > 0)
        fprintf(stderr, "%s: unread stderr:\n%.*s\n", p->name, (int)p->err.len,
                p->err.buf);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "timeout -s KILL %d gdb -p %ld -batch -nx -ex 'set pagination "
             "off' -ex 'thread apply all bt' </dev/null 1>&2",
             CF_GDB_S, (long)p->pid);
    fprintf(stderr, "%s (pid %ld) is alive; its threads:\n", p->name,
            (long)p->pid);
    fflush(stderr);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "%s: gdb ended with status %d\n", p->name, rc);
}

/* Takes one whole line out of s into line (without '\n'): true if any. */
static inline bool cf_take_line(cf_stream_t *s, char *line, size_t cap)
{
    char *nl = memchr(s->buf, '\n', s->len);
    size_t n;
    if (nl != NULL)
        n = (size_t)(nl - s->buf);
    else if (s->eof && s->len > 0)
        n = s->len; /* a last line without its newline */
    else
        return false;
    size_t keep = n < cap - 1 ? n : cap - 1;
    memcpy(line, s->buf, keep);
    line[keep] = '\0';
    size_t used = nl != NULL ? n + 1 : n;
    memmove(s->buf, s->buf + used, s->len - used);
    s->len -= used;
    return true;
}

/* Reads what s has, waiting up to ms; false at EOF with nothing left. */
static inline void cf_fill(cf_stream_t *s, int ms)
{
    if (s->eof)
        return;
    struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
    if (poll(&pfd, 1, ms) <= 0)
        return;
    if (s->len == sizeof s->buf) /* a line longer than the buffer */
        s->len = 0;
    ssize_t r = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
    if (r == 0)
        s->eof = true;
    else if (r > 0)
        s->len += (size_t)r;
}

/*
 * cf_next_line gives the next line of the stream within CF_WAIT_MS; false
 * at EOF. Fails the test on the timeout.
 */
static inline bool cf_next_line(cf_proc_t *p, cf_stream_t *s, char *line,
                                size_t cap)
{
    uint64_t deadline = cf_now_ms() + CF_WAIT_MS;
    for (;;) {
        if (cf_take_line(s, line, cap)) {
            if (getenv("CF_ECHO") != NULL) /* debugging: see every line */
                fprintf(stderr, "%s| %s\n", p->name, line);
            return true;
        }
        if (s->eof)
            return false;
        uint64_t now = cf_now_ms();
        if (now >= deadline) {
            cf_diagnose(p);
            fail_msg("%s: no line on %s within %d ms", p->name,
                     s == &p->out ? "stdout" : "stderr", CF_WAIT_MS);
        }
        cf_fill(s, (int)(deadline - now));
    }
}

/*
 * cf_next_app returns (in line) the message of the next log line of
 * component app on p's stderr, skipping the other components' lines.
 * Fails the test at EOF or after CF_WAIT_MS.
 */
static inline void cf_next_app(cf_proc_t *p, char *line, size_t cap)
{
    char raw[4096];
    while (cf_next_line(p, &p->err, raw, sizeof raw)) {
        const char *m = strstr(raw, "] app: ");
        if (m != NULL && strncmp(raw, "20", 2) == 0) {
            snprintf(line, cap, "%s", m + strlen("] app: "));
            return;
        }
    }
    cf_diagnose(p);
    fail_msg("%s: stderr ended while an app line was awaited", p->name);
}

/* cf_expect_app asserts that the next app line of p is expected. */
static inline void cf_expect_app(cf_proc_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void cf_expect_app(cf_proc_t *p, const char *fmt, ...)
{
    char expected[2048], line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(expected, sizeof expected, fmt, ap);
    va_end(ap);
    cf_next_app(p, line, sizeof line);
    if (strcmp(expected, line) != 0)
        fail_msg("%s: expected the line\n  %s\ngot\n  %s", p->name, expected,
                 line);
}

/*
 * cf_wait_stderr reads p's stderr until `count` lines containing needle
 * have gone by (any component). Fails at EOF or after CF_WAIT_MS.
 */
static inline void cf_wait_stderr(cf_proc_t *p, const char *needle, int count)
{
    char raw[4096];
    while (count > 0 && cf_next_line(p, &p->err, raw, sizeof raw))
        if (strstr(raw, needle) != NULL)
            count--;
    if (count > 0) {
        cf_diagnose(p);
        fail_msg("%s: stderr ended before '%s' came", p->name, needle);
    }
}

/* cf_read_address reads p's first stdout line, "fling.tcp://host:port"
 * (or "fling.ssl://host:port", TLS on), into addr and returns the port. */
static inline int cf_read_address(cf_proc_t *p, char *addr, size_t cap)
{
    if (!cf_next_line(p, &p->out, addr, cap))
        fail_msg("%s: stdout ended before its address", p->name);
    const char *colon = strrchr(addr, ':');
    if ((strncmp(addr, "fling.tcp://", 12) != 0 &&
         strncmp(addr, "fling.ssl://", 12) != 0) ||
        colon == NULL)
        fail_msg("%s: first line is not an address: %s", p->name, addr);
    return atoi(colon + 1);
}

/* cf_wait_exit waits (CF_WAIT_MS at most) for p to end; returns its wait
 * status. Drains its pipes meanwhile. */
static inline int cf_wait_exit(cf_proc_t *p)
{
    uint64_t deadline = cf_now_ms() + CF_WAIT_MS;
    while (!p->reaped) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid) {
            p->reaped = true;
            break;
        }
        if (cf_now_ms() >= deadline) {
            cf_diagnose(p);
            fail_msg("%s (pid %ld) did not exit within %d ms", p->name,
                     (long)p->pid, CF_WAIT_MS);
        }
        /* Keep reading so that a full pipe cannot block the child. */
        struct pollfd pfd[2] = {{.fd = p->out.fd, .events = POLLIN},
                                {.fd = p->err.fd, .events = POLLIN}};
        if (poll(pfd, 2, 20) > 0) {
            if (p->out.len == sizeof p->out.buf)
                p->out.len = 0;
            if (p->err.len == sizeof p->err.buf)
                p->err.len = 0;
            cf_fill(&p->out, 0);
            cf_fill(&p->err, 0);
        }
    }
    return p->status;
}

/* cf_stop sends sig and asserts that p exits with status. */
static inline void cf_stop(cf_proc_t *p, int sig, int status)
{
    kill(p->pid, sig);
    int ws = cf_wait_exit(p);
    if (!WIFEXITED(ws))
        fail_msg("%s ended by signal %d, expected exit status %d", p->name,
                 WIFSIGNALED(ws) ? WTERMSIG(ws) : -1, status);
    assert_int_equal(status, WEXITSTATUS(ws));
}

/* cf_kill9 kills p at once and reaps it. */
static inline void cf_kill9(cf_proc_t *p)
{
    kill(p->pid, SIGKILL);
    int ws = cf_wait_exit(p);
    assert_true(WIFSIGNALED(ws));
}

/* cf_release closes p's pipes (after it exited); cf_teardown does it too. */
static inline void cf_release(cf_proc_t *p)
{
    for (size_t i = 0; i < CF_MAX_PROCS; i++)
        if (cf_procs[i] == p)
            cf_procs[i] = NULL;
    close(p->out.fd);
    close(p->err.fd);
}

/* Kills and reaps every child still running; closes their pipes. */
static int cf_teardown(void **state)
{
    for (size_t i = 0; i < CF_MAX_PROCS; i++) {
        cf_proc_t *p = cf_procs[i];
        if (p == NULL)
            continue;
        if (!p->reaped) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &p->status, 0);
            p->reaped = true;
        }
        close(p->out.fd);
        close(p->err.fd);
        cf_procs[i] = NULL;
    }
    return fl_test_disarm(state);
}

#define CF_TEST(fn)                                                            \
    cmocka_unit_test_setup_teardown(fn, fl_test_arm, cf_teardown)

/* The -D options every test gives: loopback, short heartbeats and
 * registration delays, so that losses are seen in well under a second. */
#define CF_FAST                                                                \
    "-D", "heartbeat.interval=200 ms", "-D", "heartbeat.timeout=3 s", "-D",    \
        "cluster.registration.error-delay=200 ms", "-D",                       \
        "cluster.registration.refused-registration-delay=200 ms", "-D",        \
        "cluster.registration.jitter=false"

#endif
