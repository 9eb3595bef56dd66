/*
 * peer_process.h - the remote_peer process of the remote_*_test.c programs
 * (RPC between two real processes over TCP on 127.0.0.1): starting it with
 * fork/exec for each case on port 0 unless the case picks the port,
 * reading its ready line, stopping, killing and reaping it; the sockets
 * that hold ports; the time bounds, tokens and message checks the cases
 * share.
 *
 * Every wait is on an event (a pipe, a future, a latch, a parked call the
 * peer reports) and bounded. A peer still running when a case ends, passed
 * or failed, is killed and reaped by the teardown (REMOTE_TEST); one whose
 * test process dies gets SIGKILL from the kernel (PR_SET_PDEATHSIG) and
 * end of file on its stdin.
 *
 * Header-only (static inline) because each program is built from one file.
 */
#ifndef PEER_PROCESS_H
#define PEER_PROCESS_H

#include "fl_test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "remote_fixture.h"

#ifndef REMOTE_PEER_PATH
#error                                                                         \
    "REMOTE_PEER_PATH must name the remote_peer program (tests/CMakeLists.txt)"
#endif

/* The timeout of calls and services whose calls must end some other way:
 * a failure that arrives "at once" arrives far below it. */
#define LONG_MS 30000
/* What "at once" / "promptly" means here (also under sanitizers). */
#define PROMPT_MS 5000
/* The per-call timeouts under test. */
#define SHORT_MS 200
/* The small maximum frame size of the frame-limit cases, and a payload
 * over it. */
#define SMALL_FRAME 65536u
#define OVER_SMALL 100000
/* Bound of the retries after a restart. */
#define RESTART_RETRY_MS 15000

/* The peer's fenced endpoint takes PEER_TOKEN (16 bytes of 0xA1); the test
 * process's fenced endpoint takes TEST_TOKEN (16 bytes of 0xC3). */
static const char PEER_TOKEN_HEX[] = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
#define PEER_TOKEN_BYTE 0xA1
#define TEST_TOKEN_BYTE 0xC3
#define WRONG_TOKEN_BYTE 0xB2

/* The styles of a call that is answered (all but the tell). */
static const Flremote__Style ANSWERED_STYLES[] = {
    FLREMOTE__STYLE__STYLE_CLOSURE, FLREMOTE__STYLE__STYLE_FUTURE,
    FLREMOTE__STYLE__STYLE_SYNC};
#define N_ANSWERED_STYLES (sizeof ANSWERED_STYLES / sizeof ANSWERED_STYLES[0])

/* Writes the address of endpoint id on 127.0.0.1:port into buf. */
static inline void format_address(char *buf, size_t size, int port,
                                  const char *id)
{
    snprintf(buf, size, "fling.tcp://127.0.0.1:%d/%s", port, id);
}

static inline void expect_address(int port, const char *id, const char *got)
{
    char want[256];
    format_address(want, sizeof want, port, id);
    assert_string_equal(want, got);
}

/* A heap text of n letters (rg_text) that the test frees. */
static inline char *text_of(size_t n)
{
    char *s = rg_text((int64_t)n, 'a');
    assert_non_null(s);
    return s;
}

/* ---- the peer process ---------------------------------------------------- */

/* Set by a test before it spawns peers: they speak TLS with the test
 * certificates of this folder (remote_peer --tls). NULL: plaintext. */
static const char *peer_tls_dir;

typedef struct peer {
    pid_t pid;  /* 0 once reaped */
    int in_fd;  /* our end of its stdin: closing it stops the peer */
    int out_fd; /* its stdout */
    int port;
    char line[1024]; /* its ready (or error) line */
    char plain[256], fenced[256], idle[256], doomed[256];
} peer_t;

/* The peers alive now, for the teardown. */
#define MAX_PEERS 4
static peer_t *live_peers[MAX_PEERS];

static inline void peer_register(peer_t *p)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        if (!live_peers[i]) {
            live_peers[i] = p;
            return;
        }
    }
    fail_msg("more than %d peers at once", MAX_PEERS);
}

static inline int reap(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* Reaps p (which has exited or been killed), closes our ends of its pipes
 * and forgets it; returns its wait status. */
static inline int peer_reap(peer_t *p)
{
    int st = 0;
    if (p->pid > 0)
        st = reap(p->pid);
    p->pid = 0;
    if (p->in_fd >= 0)
        close(p->in_fd);
    if (p->out_fd >= 0)
        close(p->out_fd);
    p->in_fd = p->out_fd = -1;
    for (int i = 0; i < MAX_PEERS; i++)
        if (live_peers[i] == p)
            live_peers[i] = NULL;
    return st;
}

/* Kills and reaps p if it still runs; returns its wait status. */
static inline int peer_kill_now(peer_t *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGKILL);
    return peer_reap(p);
}

/* The teardown's part: no peer outlives its case. */
static inline void reap_all_peers(void)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (live_peers[i])
            (void)peer_kill_now(live_peers[i]);
}

static inline int remote_teardown(void **state)
{
    reap_all_peers();
    return fl_test_disarm(state);
}

/* FL_TEST plus the peers' teardown. */
#define REMOTE_TEST(fn)                                                        \
    cmocka_unit_test_setup_teardown(fn, fl_test_arm, remote_teardown)

/* Waits until p's stdout is readable, at most until WAIT_MS after t0_ns:
 * 1 if it is, 0 if the time ran out, -1 if poll failed (errno says why). */
static inline int peer_poll(peer_t *p, uint64_t t0_ns)
{
    for (;;) {
        int64_t left = WAIT_MS - (int64_t)fl_test_ms_since(t0_ns);
        if (left <= 0)
            return 0;
        struct pollfd pf = {.fd = p->out_fd, .events = POLLIN};
        int rc = poll(&pf, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        return rc < 0 ? -1 : rc > 0;
    }
}

/*
 * Reads p's stdout up to end of file, at most WAIT_MS. True if it ended
 * (the peer has exited or is exiting); the bytes are discarded.
 */
static inline bool peer_wait_eof(peer_t *p)
{
    uint64_t t0 = fl_clock_now_ns();
    for (;;) {
        if (peer_poll(p, t0) <= 0)
            return false;
        char buf[256];
        ssize_t n = read(p->out_fd, buf, sizeof buf);
        if (n == 0)
            return true;
        if (n < 0 && errno != EINTR)
            return true;
    }
}

/*
 * Reads p's first line (at most WAIT_MS) into p->line. True for a line,
 * false for end of file before one.
 */
static inline bool peer_read_line(peer_t *p)
{
    size_t len = 0;
    uint64_t t0 = fl_clock_now_ns();
    while (len < sizeof p->line - 1) {
        int rc = peer_poll(p, t0);
        if (rc == 0)
            fail_msg("remote_peer printed no line in %d ms", WAIT_MS);
        if (rc < 0)
            fail_msg("poll: %s", strerror(errno));
        ssize_t n = read(p->out_fd, p->line + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (p->line[len] == '\n') {
            p->line[len] = '\0';
            return true;
        }
        len++;
    }
    p->line[len] = '\0';
    return false;
}

/*
 * Starts remote_peer on 127.0.0.1 with --port port (and --max-frame
 * max_frame unless 0, --tls peer_tls_dir if set) and waits for its line.
 * Returns true once it serves (p has its port and addresses); false if it
 * reported an error and exited (p->line has the line, the process is reaped,
 * *exit_status its status).
 */
static inline bool peer_try_spawn(peer_t *p, const char *port,
                                  uint32_t max_frame, int *exit_status)
{
    memset(p, 0, sizeof *p);
    p->in_fd = p->out_fd = -1;
    char frame[32];
    snprintf(frame, sizeof frame, "%u", max_frame);
    const char *argv[10];
    int a = 0;
    argv[a++] = REMOTE_PEER_PATH;
    argv[a++] = "--port";
    argv[a++] = port;
    argv[a++] = "--token";
    argv[a++] = PEER_TOKEN_HEX;
    if (max_frame) {
        argv[a++] = "--max-frame";
        argv[a++] = frame;
    }
    if (peer_tls_dir != NULL) {
        argv[a++] = "--tls";
        argv[a++] = peer_tls_dir;
    }
    argv[a] = NULL;

    /* O_CLOEXEC: the next peer must not inherit this one's pipes, or
     * closing our end of a stdin would not reach its reader. */
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
        fail_msg("pipe2: %s", strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Only async-signal-safe calls between fork and exec. */
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
            _exit(126);
        /* Die with the test process, even if it never reaches teardown. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        execv(REMOTE_PEER_PATH, (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->pid = pid;
    p->in_fd = in[1];
    p->out_fd = out[0];
    peer_register(p);

    bool got = peer_read_line(p);
    if (got && strncmp(p->line, "ready ", 6) == 0) {
        if (sscanf(p->line,
                   "ready port=%d plain=%255s fenced=%255s idle=%255s "
                   "doomed=%255s",
                   &p->port, p->plain, p->fenced, p->idle, p->doomed) != 5)
            fail_msg("unexpected ready line \"%s\"", p->line);
        return true;
    }
    /* An error line, or none: it exits by itself. */
    if (!peer_wait_eof(p))
        fail_msg("remote_peer said \"%s\" and did not exit", p->line);
    int st = peer_reap(p);
    if (exit_status)
        *exit_status = st;
    return false;
}

static inline void peer_spawn(peer_t *p, const char *port, uint32_t max_frame)
{
    if (!peer_try_spawn(p, port, max_frame, NULL))
        fail_msg("remote_peer did not start: \"%s\"", p->line);
}

static inline void describe_status(int st, char *buf, size_t size)
{
    if (WIFEXITED(st))
        snprintf(buf, size, "exited with %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, size, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, size, "status 0x%x", (unsigned)st);
}

/* Waits (bounded) for p to exit and reaps it; fails unless with status 0. */
static inline void peer_expect_clean_exit(peer_t *p, const char *how)
{
    bool ended = peer_wait_eof(p);
    if (!ended) {
        (void)peer_kill_now(p);
        fail_msg("remote_peer did not exit within %d ms after %s", WAIT_MS,
                 how);
    }
    int st = peer_reap(p);
    char d[64];
    describe_status(st, d, sizeof d);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("remote_peer %s after %s, want exit status 0", d, how);
}

/* Stops p by closing its stdin; it must exit 0. */
static inline void peer_stop(peer_t *p)
{
    close(p->in_fd);
    p->in_fd = -1;
    peer_expect_clean_exit(p, "end of file on its stdin");
}

/* SIGKILLs p and reaps it. */
static inline void peer_crash(peer_t *p)
{
    int st = peer_kill_now(p);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
        char d[64];
        describe_status(st, d, sizeof d);
        fail_msg("remote_peer %s, want killed by SIGKILL", d);
    }
}

/* ---- sockets that hold ports --------------------------------------------- */

/* A TCP socket listening on 127.0.0.1:port (0: any); -1 if taken. *bound
 * (may be NULL) gets the port. No SO_REUSEADDR: it holds the port. */
static inline int listen_on(int port, int *bound)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fd, 4) != 0) {
        close(fd);
        return -1;
    }
    socklen_t len = sizeof sa;
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&sa, &len));
    if (bound)
        *bound = ntohs(sa.sin_port);
    return fd;
}

/* Two listening sockets on consecutive ports; *first gets the lower one. */
static inline void hold_two_ports(int fds[2], int *first)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        int p = 0;
        fds[0] = listen_on(0, &p);
        assert_true(fds[0] >= 0);
        if (p < 65535) {
            fds[1] = listen_on(p + 1, NULL);
            if (fds[1] >= 0) {
                *first = p;
                return;
            }
        }
        close(fds[0]);
    }
    fail_msg("found no two consecutive free ports in 100 attempts");
}

/* A port nothing listens on (held to find it, then closed). */
static inline int closed_port(void)
{
    int port = 0;
    int fd = listen_on(0, &port);
    assert_true(fd >= 0);
    close(fd);
    return port;
}

/* The options of a service of this process on 127.0.0.1:port (one worker). */
static inline fl_rpc_service_opts_t port_opts(const char *port)
{
    fl_rpc_service_opts_t o = {0};
    o.workers = 1;
    o.bind_host = "127.0.0.1";
    o.port = port;
    return o;
}

/* No service can listen on port (all its ports are taken): FL_EADDRINUSE
 * with a message naming it (what: "the range", "the port"). */
static inline void expect_ports_busy(const char *port, const char *what)
{
    fl_rpc_service_opts_t o = port_opts(port);
    fl_rpc_service_t *svc = NULL;
    assert_fl(FL_EADDRINUSE, fl_rpc_service_alloc(&o, &svc));
    assert_null(svc);
    const char *m = fl_rpc_last_message();
    assert_non_null(m);
    if (!strstr(m, port))
        fail_msg("message \"%s\" does not name %s %s", m, what, port);
}

#endif /* PEER_PROCESS_H */
