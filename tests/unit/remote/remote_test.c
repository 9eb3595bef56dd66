/*
 * remote_test.c - RPC between two real processes over TCP on 127.0.0.1
 * (docs/contract.md S1, G1-G4, C1-C2, T1, E12, R1-R7): this test process and
 * remote_peer (remote_peer.c), started with fork/exec for each case, on
 * port 0 unless the case picks the port.
 *
 * Covered: every call style (tell, closure, future, blocking, per-call and
 * next-call timeouts) from the test to the peer and from the peer back to
 * the test; fenced and unfenced gateways; handler errors across the wire;
 * endpoints not started and terminated; handshake errors (unknown
 * endpoint, unsupported gateway, unresolvable host, refused port); frame
 * limits in both directions; port ranges; a peer killed with SIGKILL while
 * calls are pending, then restarted on the same port.
 *
 * Every wait is on an event (a pipe, a future, a latch, a parked call the
 * peer reports) and bounded. A peer still running when a case ends, passed
 * or failed, is killed and reaped by the teardown; one whose test process
 * dies gets SIGKILL from the kernel (PR_SET_PDEATHSIG) and end of file on
 * its stdin.
 *
 * The RemoteGateway handlers of the test's endpoints are the peer's own
 * (remote_fixture.h); the waits, connects and calls that fail the test are
 * fl_test.h's.
 */
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

/* True if msg contains a whole decimal number within [lo, hi]. */
static bool has_number_in(const char *msg, unsigned long long lo,
                          unsigned long long hi)
{
    for (const char *s = msg; *s;) {
        if (*s >= '0' && *s <= '9') {
            char *end;
            unsigned long long v = strtoull(s, &end, 10);
            if (v >= lo && v <= hi)
                return true;
            s = end;
        } else {
            s++;
        }
    }
    return false;
}

/* A frame-limit failure's message must give the frame's size (size to
 * size + 1024) and the maximum SMALL_FRAME; frame and whose name them. */
static void expect_sizes(const char *msg, unsigned long long size,
                         const char *frame, const char *whose)
{
    if (!has_number_in(msg, SMALL_FRAME, SMALL_FRAME) ||
        !has_number_in(msg, size, size + 1024))
        fail_msg("message \"%s\" does not give the %s's size (~%llu) and %s "
                 "maximum (%u)",
                 msg, frame, size, whose, SMALL_FRAME);
}

/* Writes the address of endpoint id on 127.0.0.1:port into buf. */
static void format_address(char *buf, size_t size, int port, const char *id)
{
    snprintf(buf, size, "fling.tcp://127.0.0.1:%d/%s", port, id);
}

static void expect_address(int port, const char *id, const char *got)
{
    char want[256];
    format_address(want, sizeof want, port, id);
    assert_string_equal(want, got);
}

/* A heap text of n letters (rg_text) that the test frees. */
static char *text_of(size_t n)
{
    char *s = rg_text((int64_t)n, 'a');
    assert_non_null(s);
    return s;
}

/* ---- the peer process ---------------------------------------------------- */

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

static void peer_register(peer_t *p)
{
    for (int i = 0; i < MAX_PEERS; i++) {
        if (!live_peers[i]) {
            live_peers[i] = p;
            return;
        }
    }
    fail_msg("more than %d peers at once", MAX_PEERS);
}

static int reap(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* Reaps p (which has exited or been killed), closes our ends of its pipes
 * and forgets it; returns its wait status. */
static int peer_reap(peer_t *p)
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
static int peer_kill_now(peer_t *p)
{
    if (p->pid > 0)
        kill(p->pid, SIGKILL);
    return peer_reap(p);
}

/* The teardown's part: no peer outlives its case. */
static void reap_all_peers(void)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (live_peers[i])
            (void)peer_kill_now(live_peers[i]);
}

static int remote_teardown(void **state)
{
    reap_all_peers();
    return fl_test_disarm(state);
}

/* FL_TEST plus the peers' teardown. */
#define REMOTE_TEST(fn)                                                        \
    cmocka_unit_test_setup_teardown(fn, fl_test_arm, remote_teardown)

/* Waits until p's stdout is readable, at most until WAIT_MS after t0_ns:
 * 1 if it is, 0 if the time ran out, -1 if poll failed (errno says why). */
static int peer_poll(peer_t *p, uint64_t t0_ns)
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
static bool peer_wait_eof(peer_t *p)
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
static bool peer_read_line(peer_t *p)
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
 * max_frame unless 0) and waits for its line. Returns true once it serves
 * (p has its port and addresses); false if it reported an error and exited
 * (p->line has the line, the process is reaped, *exit_status its status).
 */
static bool peer_try_spawn(peer_t *p, const char *port, uint32_t max_frame,
                           int *exit_status)
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

static void peer_spawn(peer_t *p, const char *port, uint32_t max_frame)
{
    if (!peer_try_spawn(p, port, max_frame, NULL))
        fail_msg("remote_peer did not start: \"%s\"", p->line);
}

static void describe_status(int st, char *buf, size_t size)
{
    if (WIFEXITED(st))
        snprintf(buf, size, "exited with %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, size, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(buf, size, "status 0x%x", (unsigned)st);
}

/* Waits (bounded) for p to exit and reaps it; fails unless with status 0. */
static void peer_expect_clean_exit(peer_t *p, const char *how)
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
static void peer_stop(peer_t *p)
{
    close(p->in_fd);
    p->in_fd = -1;
    peer_expect_clean_exit(p, "end of file on its stdin");
}

/* SIGKILLs p and reaps it. */
static void peer_crash(peer_t *p)
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
static int listen_on(int port, int *bound)
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
static void hold_two_ports(int fds[2], int *first)
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
static int closed_port(void)
{
    int port = 0;
    int fd = listen_on(0, &port);
    assert_true(fd >= 0);
    close(fd);
    return port;
}

/* The options of a service of this process on 127.0.0.1:port (one worker). */
static fl_rpc_service_opts_t port_opts(const char *port)
{
    fl_rpc_service_opts_t o = {0};
    o.workers = 1;
    o.bind_host = "127.0.0.1";
    o.port = port;
    return o;
}

/* No service can listen on port (all its ports are taken): FL_EADDRINUSE
 * with a message naming it (what: "the range", "the port"). */
static void expect_ports_busy(const char *port, const char *what)
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

/* ---- the test process's own service and endpoints ------------------------ */

/* The test endpoints' RemoteGateway: the methods the peer calls back, with
 * the peer's handlers; the others stay NULL (FL_ENOMETHOD). */
static Flremote__RemoteGateway_Service back_impl = {
    .base = FLREMOTE__REMOTE_GATEWAY__BASE_INIT,
    .echo = rg_echo,
    .fail = rg_fail,
    .block = rg_block,
    .count = rg_count,
    .size = rg_size,
};
static ProtobufCService *const back_services[1] = {&back_impl.base};

/* A listening service of the test process on 127.0.0.1, port 0. */
static fl_rpc_service_t *test_service(uint32_t max_frame)
{
    fl_rpc_service_opts_t o = {0};
    o.workers = 2;
    o.default_timeout_ms = LONG_MS;
    o.bind_host = "127.0.0.1";
    o.port = "0";
    o.max_frame_size = max_frame;
    o.name = "remote_test";
    fl_rpc_service_t *svc = NULL;
    int rc = fl_rpc_service_alloc(&o, &svc);
    if (rc != FL_OK)
        fail_msg("fl_rpc_service_alloc: %s (%s)", fl_err_name(rc),
                 fl_rpc_last_message());
    assert_non_null(svc);
    assert_true(fl_rpc_service_port(svc) > 0);
    return svc;
}

/* Creates a test endpoint on svc with state b (and starts it if start). */
static fl_rpc_endpoint_t *back_endpoint(fl_rpc_service_t *svc, const char *id,
                                        rg_store_t *b,
                                        const fl_fencing_token_t *tok,
                                        bool start)
{
    fl_rpc_endpoint_opts_t o = {0};
    o.id = id;
    o.services = back_services;
    o.nservices = 1;
    o.state = b;
    o.on_start = rg_on_start;
    o.fencing_token = tok;
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    if (start)
        assert_fl_ok(fl_rpc_endpoint_start(ep));
    return ep;
}

/* ---- calls --------------------------------------------------------------- */

static Flremote__EchoRequest echo_req(const char *text, int64_t n)
{
    Flremote__EchoRequest r = FLREMOTE__ECHO_REQUEST__INIT;
    r.text = (char *)text;
    r.n = n;
    return r;
}

static Flremote__FailRequest fail_req(int code, const char *message)
{
    Flremote__FailRequest r = FLREMOTE__FAIL_REQUEST__INIT;
    r.code = code;
    r.message = (char *)message;
    return r;
}

/* A successful EchoReply future: checks the descriptor, text and n. */
static void expect_echo_reply(fl_future_t *f, const char *text, int64_t n)
{
    fl_test_future_ok(f, "call failed");
    ProtobufCMessage *m = fl_future_take_value(f);
    assert_non_null(m);
    assert_ptr_equal(&flremote__echo_reply__descriptor, m->descriptor);
    Flremote__EchoReply *r = (Flremote__EchoReply *)m;
    assert_string_equal(text, r->text);
    assert_int_equal(n, r->n);
    protobuf_c_message_free_unpacked(m, NULL);
}

static void expect_echo(fl_rpc_gateway_t *gw, const char *text, int64_t n)
{
    Flremote__EchoRequest req = echo_req(text, n);
    fl_future_t *f = fl_test_call(gw, M_ECHO, &req.base, 0);
    expect_echo_reply(f, text, n);
    fl_future_release(f);
}

static int echo_code(fl_rpc_gateway_t *gw)
{
    Flremote__EchoRequest req = echo_req("ping", 1);
    return fl_test_call_code(gw, M_ECHO, &req.base, 0, NULL, 0);
}

/* A Size call that must succeed with a text of exactly size bytes. */
static void expect_size_reply(fl_rpc_gateway_t *gw, int64_t size)
{
    Flremote__SizeRequest req = FLREMOTE__SIZE_REQUEST__INIT;
    req.size = size;
    fl_future_t *f = fl_test_call(gw, M_SIZE, &req.base, 0);
    assert_fl_ok(fl_test_future_code(f));
    Flremote__EchoReply *r = fl_future_value(f);
    assert_non_null(r);
    assert_int_equal(size, r->n);
    assert_int_equal(size, strlen(r->text));
    fl_future_release(f);
}

/* A CountReply call (WaitCount, WaitParked, Release) that must succeed. */
static int64_t count_call(fl_rpc_gateway_t *gw, unsigned m,
                          const ProtobufCMessage *req)
{
    fl_future_t *f = fl_test_call(gw, m, req, 0);
    fl_test_future_ok(f, "method %u failed", m);
    Flremote__CountReply *r = fl_future_value(f);
    assert_non_null(r);
    int64_t count = r->count;
    fl_future_release(f);
    return count;
}

/* The peer's count once it has reached n (WaitCount). */
static int64_t peer_wait_count(fl_rpc_gateway_t *gw, int64_t n)
{
    Flremote__CountRequest req = FLREMOTE__COUNT_REQUEST__INIT;
    req.n = n;
    return count_call(gw, M_WAIT_COUNT, &req.base);
}

/* Returns once the peer has at least `want` calls parked under tag. */
static void peer_wait_parked(fl_rpc_gateway_t *gw, int64_t tag, int64_t want)
{
    Flremote__TagRequest req = FLREMOTE__TAG_REQUEST__INIT;
    req.tag = tag;
    req.want = want;
    int64_t have = count_call(gw, M_WAIT_PARKED, &req.base);
    if (have < want)
        fail_msg("peer has %" PRId64 " calls parked under %" PRId64
                 ", want %" PRId64,
                 have, tag, want);
}

/* Answers the peer's calls parked under tag; returns how many. */
static int64_t peer_release(fl_rpc_gateway_t *gw, int64_t tag)
{
    Flremote__TagRequest req = FLREMOTE__TAG_REQUEST__INIT;
    req.tag = tag;
    return count_call(gw, M_RELEASE, &req.base);
}

/* Sends a Count tell through the stub (closure NULL); it must be queued. */
static void tell_count(fl_rpc_gateway_t *gw, int64_t n)
{
    Flremote__CountRequest req = FLREMOTE__COUNT_REQUEST__INIT;
    req.n = n;
    rg_stub_call(fl_rpc_gateway_service(gw), M_COUNT, &req.base, NULL);
    assert_fl_ok(fl_rpc_last_error());
}

/* Waits (bounded) for the closure that records into c. */
static void closure_wait(rg_seen_t *c)
{
    if (!rg_seen_wait(c, WAIT_MS))
        fail_msg("the closure did not run in %d ms", WAIT_MS);
}

/* A stub call of m through gw whose closure records into c (initialised
 * here; the caller ends it with rg_seen_fini); returns once it ran. */
static void closure_call(rg_seen_t *c, fl_rpc_gateway_t *gw, unsigned m,
                         const ProtobufCMessage *req)
{
    rg_seen_init(c, NULL);
    assert_true(rg_stub_call(fl_rpc_gateway_service(gw), (int)m, req, c));
    closure_wait(c);
}

/* A stub call's code; *got_reply (may be NULL): whether a reply came. */
static int closure_code(fl_rpc_gateway_t *gw, unsigned m,
                        const ProtobufCMessage *req, bool *got_reply)
{
    rg_seen_t c;
    closure_call(&c, gw, m, req);
    if (got_reply)
        *got_reply = c.got_reply;
    int code = c.code;
    rg_seen_fini(&c);
    return code;
}

/* A future and a blocking Echo through gw must both fail with code. */
static void expect_calls_fail(fl_rpc_gateway_t *gw, int code)
{
    assert_fl(code, echo_code(gw));
    Flremote__EchoRequest req = echo_req("blocking", 2);
    assert_fl(code, fl_test_call_sync_code(gw, M_ECHO, &req.base, 0));
}

/* A connect expected to fail with want: its message must name `names`
 * (unless NULL); with `what`, the failure must come within PROMPT_MS. */
static void expect_connect_error(fl_rpc_service_t *svc, const char *address,
                                 int want, const char *names, const char *what)
{
    char msg[512];
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(want, fl_test_connect_error(svc, address, RG, msg, sizeof msg));
    uint64_t el = fl_test_ms_since(t0);
    if (names && !strstr(msg, names))
        fail_msg("message \"%s\" does not name %s", msg, names);
    if (what)
        fl_test_assert_elapsed(what, el, 0, PROMPT_MS);
}

/* ---- the fixture: a peer, the test's service and endpoints ----------------
 */

typedef struct fixture {
    peer_t peer;
    fl_rpc_service_t *svc;          /* the test process's service (listening) */
    rg_store_t back;                /* state of the three test endpoints */
    fl_rpc_endpoint_t *back_ep;     /* "back": unfenced, started */
    fl_rpc_endpoint_t *backf_ep;    /* "backf": fenced (TEST_TOKEN), started */
    fl_rpc_endpoint_t *backidle_ep; /* "backidle": created, not started */
    fl_rpc_gateway_t *plain;        /* to the peer's "plain" */
} fixture_t;

/* max frame sizes: 0 = the default (10 MiB). */
static void fx_begin_with(fixture_t *fx, uint32_t peer_max, uint32_t test_max)
{
    memset(fx, 0, sizeof *fx);
    peer_spawn(&fx->peer, "0", peer_max);
    fx->svc = test_service(test_max);
    rg_store_init(&fx->back);
    fl_fencing_token_t t = fl_test_token(TEST_TOKEN_BYTE);
    fx->back_ep = back_endpoint(fx->svc, "back", &fx->back, NULL, true);
    fx->backf_ep = back_endpoint(fx->svc, "backf", &fx->back, &t, true);
    fx->backidle_ep =
        back_endpoint(fx->svc, "backidle", &fx->back, NULL, false);
    int64_t started = rg_store_wait(&fx->back, &fx->back.started, 2, WAIT_MS);
    if (started < 2)
        fail_msg("%" PRId64 " of the 2 test endpoints started in %d ms",
                 started, WAIT_MS);
    fx->plain = fl_test_connect(fx->svc, fx->peer.plain, RG, NULL);
}

static void fx_begin(fixture_t *fx)
{
    fx_begin_with(fx, 0, 0);
}

static void fx_end(fixture_t *fx)
{
    (void)rg_store_release(&fx->back, true, 0);
    fl_rpc_gateway_free(fx->plain);
    peer_stop(&fx->peer);
    fl_test_endpoint_end(fx->back_ep);
    fl_test_endpoint_end(fx->backf_ep);
    fl_test_endpoint_end(fx->backidle_ep);
    fl_test_service_end(fx->svc);
    rg_store_fini(&fx->back);
}

/* ---- CallBack: the peer calls the test process ----------------------------
 */

typedef struct cb_args {
    const char *address; /* NULL: the test endpoint "back" */
    const fl_fencing_token_t *token;
    Flremote__Style style;
    int method;
    const char *text;
    int64_t n;
    int code;
    int64_t timeout_ms;
    int64_t text_size;
} cb_args_t;

/* Has the peer make the call a describes; returns what it saw (the caller
 * frees it with cb_free). */
static Flremote__CallBackReply *call_back(fixture_t *fx, const cb_args_t *a)
{
    Flremote__CallBackRequest req = FLREMOTE__CALL_BACK_REQUEST__INIT;
    req.address = (char *)(a->address ? a->address
                                      : fl_rpc_endpoint_address(fx->back_ep));
    if (a->token) {
        req.token.data = (uint8_t *)a->token->bytes;
        req.token.len = sizeof a->token->bytes;
    }
    req.style = a->style;
    req.method = a->method;
    req.text = (char *)(a->text ? a->text : "");
    req.n = a->n;
    req.code = a->code;
    req.timeout_ms = a->timeout_ms;
    req.text_size = a->text_size;
    fl_future_t *f = fl_test_call(fx->plain, M_CALL_BACK, &req.base, 0);
    fl_test_future_ok(f, "CallBack failed");
    Flremote__CallBackReply *r = fl_future_take_value(f);
    assert_non_null(r);
    fl_future_release(f);
    return r;
}

static void cb_free(Flremote__CallBackReply *r)
{
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* call_back whose report must show a connect that succeeded and a call
 * that ended with want. */
static Flremote__CallBackReply *call_back_expect(fixture_t *fx,
                                                 const cb_args_t *a, int want)
{
    Flremote__CallBackReply *r = call_back(fx, a);
    assert_fl_ok(r->connect_code);
    if (r->code != want)
        fail_msg("the peer's call (style %d): %s (%s), want %s", (int)a->style,
                 fl_err_name(r->code), r->message, fl_err_name(want));
    return r;
}

/* A call through gw that must fail at once with FL_EMSGSIZE, its message
 * giving the frame's size (~size) and SMALL_FRAME. */
static void expect_call_too_big(fl_rpc_gateway_t *gw, unsigned m,
                                const ProtobufCMessage *req,
                                unsigned long long size, const char *frame,
                                const char *whose)
{
    char msg[512], what[64];
    snprintf(what, sizeof what, "oversized %s", frame);
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_EMSGSIZE, fl_test_call_code(gw, m, req, 0, msg, sizeof msg));
    fl_test_assert_elapsed(what, fl_test_ms_since(t0), 0, PROMPT_MS);
    expect_sizes(msg, size, frame, whose);
}

/* The peer's future call of method (Size: a reply of size bytes; Echo: a
 * request with a text of size bytes) to "back" must fail at once with
 * FL_EMSGSIZE, its message giving the frame's size (~size) and SMALL_FRAME. */
static void expect_call_back_too_big(fixture_t *fx, int method, int64_t size,
                                     const char *frame, const char *whose)
{
    cb_args_t a = {.style = FLREMOTE__STYLE__STYLE_FUTURE, .method = method};
    if (method == M_SIZE)
        a.n = size;
    else
        a.text_size = size;
    Flremote__CallBackReply *r = call_back_expect(fx, &a, FL_EMSGSIZE);
    expect_sizes(r->message, (unsigned long long)size, frame, whose);
    fl_test_assert_elapsed("the peer's oversized call", (uint64_t)r->elapsed_ms,
                           0, PROMPT_MS);
    cb_free(r);
}

/* ======================================================================== */
/* ---- the peer process ---------------------------------------------------- */

static void
test_peer_reports_its_port_and_addresses_and_stops_cleanly(void **state)
{
    (void)state;
    peer_t p;
    peer_spawn(&p, "0", 0);
    assert_true(p.port > 0 && p.port <= 65535);
    expect_address(p.port, "plain", p.plain);
    expect_address(p.port, "fenced", p.fenced);
    expect_address(p.port, "idle", p.idle);
    expect_address(p.port, "doomed", p.doomed);
    peer_stop(&p);

    /* SIGTERM stops it cleanly too, also with a client connected. */
    peer_spawn(&p, "0", 0);
    fl_rpc_service_t *svc = test_service(0);
    fl_rpc_gateway_t *gw = fl_test_connect(svc, p.plain, RG, NULL);
    expect_echo(gw, "before SIGTERM", 1);
    assert_int_equal(0, kill(p.pid, SIGTERM));
    peer_expect_clean_exit(&p, "SIGTERM");
    fl_rpc_gateway_free(gw);
    fl_test_service_end(svc);
}

/* ---- calls from the test to the peer --------------------------------------
 */

static void test_tell_to_the_peer_runs_its_handler(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    tell_count(fx.plain, 1);
    tell_count(fx.plain, 10);
    tell_count(fx.plain, 100);
    assert_int_equal(111, peer_wait_count(fx.plain, 111));

    fx_end(&fx);
}

static void test_closure_call_to_the_peer_delivers_the_reply(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    rg_seen_t c;
    Flremote__EchoRequest req = echo_req("closure reply", 21);
    closure_call(&c, fx.plain, M_ECHO, &req.base);
    assert_int_equal(1, c.runs);
    assert_true(c.got_reply);
    assert_fl_ok(c.code);
    assert_string_equal("closure reply", c.text);
    assert_int_equal(21, c.n);

    /* A failure: NULL reply, exact code and message. */
    rg_seen_t e;
    Flremote__FailRequest freq = fail_req(FL_EUSER + 5, "boom number 5");
    closure_call(&e, fx.plain, M_FAIL, &freq.base);
    assert_int_equal(1, e.runs);
    assert_false(e.got_reply);
    assert_fl(FL_EUSER + 5, e.code);
    assert_string_equal("boom number 5", e.message);

    rg_seen_fini(&c);
    rg_seen_fini(&e);
    fx_end(&fx);
}

typedef struct call_from {
    fl_rpc_gateway_t *gw;
    rg_seen_t *c;
} call_from_t;

static void call_from_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    call_from_t *cf = arg;
    Flremote__EchoRequest req = echo_req("from an endpoint", 91);
    rg_stub_call(fl_rpc_gateway_service(cf->gw), M_ECHO, &req.base, cf->c);
}

static void
test_closure_of_a_remote_call_runs_on_the_calling_endpoint(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    rg_seen_t c;
    rg_seen_init(&c, fx.back_ep);

    call_from_t cf = {.gw = fx.plain, .c = &c};
    assert_fl_ok(fl_rpc_run_async(fx.back_ep, call_from_task, &cf, NULL));
    closure_wait(&c);
    assert_int_equal(1, c.runs);
    assert_true(c.got_reply);
    assert_string_equal("from an endpoint", c.text);
    assert_int_equal(91, c.n);
    assert_true(c.on_caller);

    rg_seen_fini(&c);
    fx_end(&fx);
}

static void test_future_call_to_the_peer_completes_with_the_reply(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    expect_echo(fx.plain, "future reply", 31);

    /* Large request and reply (several reads and writes each). */
    char *text = text_of(3u << 20);
    expect_echo(fx.plain, text, 77);
    free(text);

    expect_size_reply(fx.plain, 2 << 20);

    fx_end(&fx);
}

static void test_blocking_call_to_the_peer_returns_the_reply(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    Flremote__EchoRequest req = echo_req("blocking reply", 41);
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(fl_rpc_call_sync(fx.plain, M_ECHO, &req.base, 0, &reply));
    assert_non_null(reply);
    assert_ptr_equal(&flremote__echo_reply__descriptor, reply->descriptor);
    Flremote__EchoReply *r = (Flremote__EchoReply *)reply;
    assert_string_equal("blocking reply", r->text);
    assert_int_equal(41, r->n);
    protobuf_c_message_free_unpacked(reply, NULL);

    /* A failure leaves the reply NULL; the handler's message crosses too,
     * in fl_rpc_last_message(). */
    Flremote__FailRequest freq = fail_req(FL_EUSER + 43, "blocking failure");
    assert_fl(FL_EUSER + 43,
              fl_test_call_sync_code(fx.plain, M_FAIL, &freq.base, 0));
    assert_string_equal("blocking failure", fl_rpc_last_message());

    fx_end(&fx);
}

static void test_many_calls_in_flight_are_answered_by_correlation(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    enum { N = 64 };

    /* One call stays parked while N others overtake it. */
    Flremote__EchoRequest breq = echo_req("parked", 7);
    fl_future_t *parked = fl_test_call(fx.plain, M_BLOCK, &breq.base, 0);
    fl_future_t *fs[N];
    char texts[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], "call %d", i);
        Flremote__EchoRequest req = echo_req(texts[i], i);
        fs[i] = fl_test_call(fx.plain, M_ECHO, &req.base, 0);
    }
    for (int i = 0; i < N; i++) {
        expect_echo_reply(fs[i], texts[i], i);
        fl_future_release(fs[i]);
    }
    assert_false(fl_future_done(parked));
    assert_int_equal(1, peer_release(fx.plain, 7));
    expect_echo_reply(parked, "released", 7);
    fl_future_release(parked);

    fx_end(&fx);
}

/* ---- timeouts, test -> peer -----------------------------------------------
 */

static void
test_call_timeout_to_the_peer_fails_etimedout_after_the_given_time(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    /* fl_rpc_call with its own timeout. */
    Flremote__EchoRequest r1 = echo_req("never answered in time", 1);
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_ETIMEDOUT, fl_test_call_code(fx.plain, M_BLOCK, &r1.base,
                                              SHORT_MS, NULL, 0));
    fl_test_assert_elapsed("fl_rpc_call timeout", fl_test_ms_since(t0),
                           SHORT_MS, SHORT_MS + PROMPT_MS);

    /* fl_rpc_call_sync with its own timeout (the reply stays NULL). */
    t0 = fl_clock_now_ns();
    assert_fl(FL_ETIMEDOUT,
              fl_test_call_sync_code(fx.plain, M_BLOCK, &r1.base, SHORT_MS));
    fl_test_assert_elapsed("fl_rpc_call_sync timeout", fl_test_ms_since(t0),
                           SHORT_MS, SHORT_MS + PROMPT_MS);

    /* A call that keeps waiting, then late answers to the two that timed
     * out: they are dropped, and the connection keeps serving. */
    Flremote__EchoRequest r2 = echo_req("waits", 2);
    fl_future_t *waiting = fl_test_call(fx.plain, M_BLOCK, &r2.base, 0);
    peer_wait_parked(fx.plain, 1, 2);
    peer_wait_parked(fx.plain, 2, 1);
    assert_int_equal(2, peer_release(fx.plain, 1));
    expect_echo(fx.plain, "after late answers", 3);
    assert_false(fl_future_done(waiting));
    assert_int_equal(1, peer_release(fx.plain, 2));
    expect_echo_reply(waiting, "released", 2);
    fl_future_release(waiting);

    fx_end(&fx);
}

static void
test_next_timeout_applies_to_the_next_remote_stub_call_only(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    enum { GW_MS = 1500 };
    assert_fl_ok(fl_rpc_gateway_set_timeout(fx.plain, GW_MS));
    Flremote__EchoRequest req = echo_req("blocked", 5);

    rg_seen_t c1;
    uint64_t t0 = fl_clock_now_ns();
    fl_rpc_next_timeout(SHORT_MS);
    closure_call(&c1, fx.plain, M_BLOCK, &req.base);
    assert_false(c1.got_reply);
    assert_fl(FL_ETIMEDOUT, c1.code);
    fl_test_assert_elapsed("call after fl_rpc_next_timeout",
                           fl_test_ms_since(t0), SHORT_MS, GW_MS);

    /* The next stub call falls back to the gateway's timeout. */
    rg_seen_t c2;
    t0 = fl_clock_now_ns();
    closure_call(&c2, fx.plain, M_BLOCK, &req.base);
    assert_fl(FL_ETIMEDOUT, c2.code);
    fl_test_assert_elapsed("next call (gateway timeout)", fl_test_ms_since(t0),
                           GW_MS, GW_MS + PROMPT_MS);
    assert_int_equal(1, c1.runs);
    assert_int_equal(1, c2.runs);

    assert_fl_ok(fl_rpc_gateway_set_timeout(fx.plain, LONG_MS));
    peer_wait_parked(fx.plain, 5, 2);
    assert_int_equal(2, peer_release(fx.plain, 5));
    rg_seen_fini(&c1);
    rg_seen_fini(&c2);
    fx_end(&fx);
}

/* ---- errors across the wire -----------------------------------------------
 */

static void test_handler_errors_cross_the_wire_intact(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    char msg[512];

    Flremote__FailRequest r1 = fail_req(FL_EUSER + 42, "custom failure: 42");
    fl_future_t *f = fl_test_call(fx.plain, M_FAIL, &r1.base, 0);
    assert_fl(FL_EUSER + 42, fl_test_future_code(f));
    assert_string_equal("custom failure: 42", fl_future_message(f));
    assert_null(fl_future_value(f));
    fl_future_release(f);

    /* fl_rpc_fail(code, NULL): the code's own message. */
    Flremote__FailRequest r2 = fail_req(FL_ESTATE, "");
    assert_fl(FL_ESTATE, fl_test_call_code(fx.plain, M_FAIL, &r2.base, 0, msg,
                                           sizeof msg));
    assert_string_equal(fl_strerror(FL_ESTATE), msg);

    /* A fling code that is not the transport's own. */
    Flremote__FailRequest r3 = fail_req(FL_ENOENT, "no such thing here");
    assert_fl(FL_ENOENT, fl_test_call_code(fx.plain, M_FAIL, &r3.base, 0, msg,
                                           sizeof msg));
    assert_string_equal("no such thing here", msg);

    /* A long message arrives cut as a local one would be (a future keeps
     * 255 bytes), from its start. */
    char longmsg[301];
    memset(longmsg, 'm', 300);
    memcpy(longmsg, "start:", 6);
    longmsg[300] = '\0';
    Flremote__FailRequest r4 = fail_req(FL_EUSER + 1, longmsg);
    assert_fl(FL_EUSER + 1, fl_test_call_code(fx.plain, M_FAIL, &r4.base, 0,
                                              msg, sizeof msg));
    assert_int_equal(255, strlen(msg));
    assert_memory_equal(longmsg, msg, 255);

    fx_end(&fx);
}

static void test_fenced_endpoint_serves_only_its_token(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    fl_fencing_token_t right = fl_test_token(PEER_TOKEN_BYTE);
    fl_fencing_token_t wrong = fl_test_token(WRONG_TOKEN_BYTE);
    fl_fencing_token_t got;

    fl_rpc_gateway_t *ok = fl_test_connect(fx.svc, fx.peer.fenced, RG, &right);
    expect_echo(ok, "right token", 1);
    Flremote__EchoRequest req = echo_req("blocking", 2);
    assert_fl_ok(fl_test_call_sync_code(ok, M_ECHO, &req.base, 0));
    assert_fl_ok(fl_rpc_gateway_fencing_token(ok, &got));
    assert_memory_equal(right.bytes, got.bytes, sizeof got.bytes);

    /* Another token and no token connect (tokens are not checked then),
     * but every call fails with FL_EFENCING. */
    fl_rpc_gateway_t *bad = fl_test_connect(fx.svc, fx.peer.fenced, RG, &wrong);
    fl_rpc_gateway_t *none = fl_test_connect(fx.svc, fx.peer.fenced, RG, NULL);
    expect_calls_fail(bad, FL_EFENCING);
    expect_calls_fail(none, FL_EFENCING);
    assert_fl(FL_ENOTSUP, fl_rpc_gateway_fencing_token(none, &got));

    /* A tell with the wrong token is dropped: only the right one counts
     * (one connection, one endpoint: handled in order). */
    tell_count(bad, 1000);
    tell_count(none, 1000);
    tell_count(ok, 1);
    assert_int_equal(1, peer_wait_count(ok, 1));

    /* The unfenced endpoint keeps serving unfenced calls. */
    expect_echo(fx.plain, "unfenced", 3);

    fl_rpc_gateway_free(ok);
    fl_rpc_gateway_free(bad);
    fl_rpc_gateway_free(none);
    fx_end(&fx);
}

static void
test_not_started_endpoint_connects_but_calls_fail_enotstarted(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    fl_rpc_gateway_t *gw = fl_test_connect(fx.svc, fx.peer.idle, RG, NULL);
    uint64_t t0 = fl_clock_now_ns();
    expect_calls_fail(gw, FL_ENOTSTARTED);
    fl_test_assert_elapsed("calls to a not started endpoint",
                           fl_test_ms_since(t0), 0, PROMPT_MS);

    Flremote__EchoRequest req = echo_req("blocking", 2);
    bool got_reply = true;
    assert_fl(FL_ENOTSTARTED, closure_code(gw, M_ECHO, &req.base, &got_reply));
    assert_false(got_reply);

    fl_rpc_gateway_free(gw);
    fx_end(&fx);
}

static void
test_calls_to_a_terminated_remote_endpoint_fail_fast_unreachable(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    fl_rpc_gateway_t *gw = fl_test_connect(fx.svc, fx.peer.doomed, RG, NULL);
    expect_echo(gw, "still alive", 1);

    Flremote__CloseRequest creq = FLREMOTE__CLOSE_REQUEST__INIT;
    creq.id = "doomed";
    fl_future_t *cf = fl_test_call(fx.plain, M_CLOSE_ENDPOINT, &creq.base, 0);
    fl_test_future_ok(cf, "CloseEndpoint");
    fl_future_release(cf);

    uint64_t t0 = fl_clock_now_ns();
    expect_calls_fail(gw, FL_EUNREACHABLE);
    Flremote__EchoRequest req = echo_req("blocking", 2);
    assert_fl(FL_EUNREACHABLE, closure_code(gw, M_ECHO, &req.base, NULL));
    fl_test_assert_elapsed("calls to a terminated endpoint",
                           fl_test_ms_since(t0), 0, PROMPT_MS);

    /* Its id is gone: a new connect fails; the other endpoints serve. */
    expect_connect_error(fx.svc, fx.peer.doomed, FL_ECONNECT, fx.peer.doomed,
                         NULL);
    expect_echo(fx.plain, "others still serve", 4);

    fl_rpc_gateway_free(gw);
    fx_end(&fx);
}

/* ---- handshake errors ------------------------------------------------------
 */

static void
test_connect_to_an_unknown_endpoint_fails_econnect_naming_it(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    char address[300];
    format_address(address, sizeof address, fx.peer.port, "nobody");

    expect_connect_error(fx.svc, address, FL_ECONNECT, address,
                         "connect to an unknown endpoint");

    /* The connection stays good for the endpoints that exist. */
    expect_echo(fx.plain, "after a failed handshake", 1);

    fx_end(&fx);
}

static void
test_connect_with_an_unsupported_gateway_fails_ehandshake(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    char msg[512];

    assert_fl(FL_EHANDSHAKE, fl_test_connect_error(fx.svc, fx.peer.plain, OTHER,
                                                   msg, sizeof msg));
    if (!strstr(msg, "The rpc endpoint does not support the gateway ") ||
        !strstr(msg, "OtherGateway"))
        fail_msg("unexpected handshake message \"%s\"", msg);
    /* Also for an endpoint that is not started (answered in every state). */
    assert_fl(FL_EHANDSHAKE, fl_test_connect_error(fx.svc, fx.peer.idle, OTHER,
                                                   msg, sizeof msg));
    expect_echo(fx.plain, "after a refused gateway", 1);

    fx_end(&fx);
}

static void test_connect_to_an_unresolvable_host_fails_promptly(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = test_service(0); /* default timeout LONG_MS */
    const char *address = "fling.tcp://no-such-host.invalid:6123/plain";

    expect_connect_error(svc, address, FL_ECONNECT, address,
                         "connect to an unresolvable host");

    fl_test_service_end(svc);
}

static void test_connect_to_a_refused_port_fails_promptly(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = test_service(0); /* default timeout LONG_MS */
    char address[128];
    format_address(address, sizeof address, closed_port(), "plain");

    expect_connect_error(svc, address, FL_ECONNECT, address,
                         "connect to a refused port");
    /* Again at once (now backing off): still a prompt FL_ECONNECT. */
    expect_connect_error(svc, address, FL_ECONNECT, address,
                         "second connect to a refused port");

    fl_test_service_end(svc);
}

/* ---- frame limits ----------------------------------------------------------
 */

/* Frame-limit cases, peer at SMALL_FRAME: our oversized request fails at
 * once with both sizes; the peer's call to us whose reply would exceed the
 * peer's maximum fails with FL_EMSGSIZE. */
static void test_frame_limits_of_the_peer(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin_with(&fx, SMALL_FRAME, 0);

    char *text = text_of(OVER_SMALL);
    Flremote__EchoRequest req = echo_req(text, 1);
    size_t body = protobuf_c_message_get_packed_size(&req.base);
    expect_call_too_big(fx.plain, M_ECHO, &req.base, body, "request",
                        "the peer's");
    assert_fl(FL_EMSGSIZE,
              fl_test_call_sync_code(fx.plain, M_ECHO, &req.base, 0));
    assert_fl(FL_EMSGSIZE, closure_code(fx.plain, M_ECHO, &req.base, NULL));
    free(text);

    /* Below the limit, and on the same connection: served. */
    char *small = text_of(1000);
    expect_echo(fx.plain, small, 2);
    free(small);

    /* The peer's call to us: a reply over the peer's maximum. */
    expect_call_back_too_big(&fx, M_SIZE, OVER_SMALL, "reply", "the peer's");

    fx_end(&fx);
}

/* Frame-limit cases, test process at SMALL_FRAME: the peer's reply over
 * our maximum fails our call with FL_EMSGSIZE; the peer's oversized
 * request to us fails at once at the peer. */
static void test_frame_limits_of_the_test_process(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin_with(&fx, 0, SMALL_FRAME);

    Flremote__SizeRequest sreq = FLREMOTE__SIZE_REQUEST__INIT;
    sreq.size = OVER_SMALL;
    expect_call_too_big(fx.plain, M_SIZE, &sreq.base, OVER_SMALL, "reply",
                        "our");

    /* A reply below the limit on the same connection: served. */
    expect_size_reply(fx.plain, 60000);

    /* The peer's request to us over our maximum. */
    expect_call_back_too_big(&fx, M_ECHO, OVER_SMALL, "request", "our");

    fx_end(&fx);
}

/* ---- port ranges -----------------------------------------------------------
 */

static void test_a_busy_port_makes_the_range_use_the_next_one(void **state)
{
    (void)state;
    int fds[2], lo = 0;
    hold_two_ports(fds, &lo);
    close(fds[1]); /* lo stays taken, lo + 1 is free */
    char range[32], list[32];
    snprintf(range, sizeof range, "%d-%d", lo, lo + 1);
    snprintf(list, sizeof list, "%d,%d", lo, lo + 1);

    /* In this process, with a comma list. */
    fl_rpc_service_opts_t o = port_opts(list);
    fl_rpc_service_t *svc = NULL;
    int rc = fl_rpc_service_alloc(&o, &svc);
    if (rc != FL_OK)
        fail_msg("service on %s: %s (%s)", list, fl_err_name(rc),
                 fl_rpc_last_message());
    assert_int_equal(lo + 1, fl_rpc_service_port(svc));
    fl_test_service_end(svc);

    /* The peer, with a range: it serves on lo + 1. */
    peer_t p;
    peer_spawn(&p, range, 0);
    assert_int_equal(lo + 1, p.port);
    expect_address(lo + 1, "plain", p.plain);
    fl_rpc_service_t *client = test_service(0);
    fl_rpc_gateway_t *gw = fl_test_connect(client, p.plain, RG, NULL);
    expect_echo(gw, "on the next port", 1);
    fl_rpc_gateway_free(gw);
    fl_test_service_end(client);
    peer_stop(&p);

    close(fds[0]);
}

static void test_all_ports_busy_fails_eaddrinuse_naming_the_range(void **state)
{
    (void)state;
    int fds[2], lo = 0;
    hold_two_ports(fds, &lo);
    char range[32], single[16];
    snprintf(range, sizeof range, "%d-%d", lo, lo + 1);
    snprintf(single, sizeof single, "%d", lo);

    expect_ports_busy(range, "the range");
    expect_ports_busy(single, "the port");

    /* The peer reports the same and exits (status 2). */
    peer_t p;
    int st = 0;
    assert_false(peer_try_spawn(&p, range, 0, &st));
    if (strncmp(p.line, "error FL_EADDRINUSE ", 20) != 0 ||
        !strstr(p.line, range))
        fail_msg("peer said \"%s\", want FL_EADDRINUSE naming %s", p.line,
                 range);
    assert_true(WIFEXITED(st));
    assert_int_equal(2, WEXITSTATUS(st));

    close(fds[0]);
    close(fds[1]);
}

/* ---- the peer crashes ------------------------------------------------------
 */

typedef struct sync_job {
    fl_rpc_gateway_t *gw;
    int rc;
    bool reply_null;
    fl_test_latch_t *done;
} sync_job_t;

/* A blocking Block call (tag 9) from a thread of its own. */
static void *sync_block_main(void *arg)
{
    sync_job_t *s = arg;
    Flremote__EchoRequest req = echo_req("blocking, pending", 9);
    ProtobufCMessage *reply = NULL;
    s->rc = fl_rpc_call_sync(s->gw, M_BLOCK, &req.base, LONG_MS, &reply);
    s->reply_null = reply == NULL;
    if (reply)
        protobuf_c_message_free_unpacked(reply, NULL);
    fl_test_latch_count_down(s->done);
    return NULL;
}

static void
test_killed_peer_fails_pending_calls_then_serves_again_after_restart(
    void **state)
{
    (void)state;
    enum { K = 4 };
    peer_t p;
    peer_spawn(&p, "0", 0);
    int port = p.port;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    fl_rpc_service_t *svc = test_service(0); /* default timeout LONG_MS */
    fl_rpc_gateway_t *gw = fl_test_connect(svc, p.plain, RG, NULL);
    expect_echo(gw, "before the crash", 1);

    /* Calls pending at the peer in every style: K futures, a closure, a
     * blocking call on another thread. */
    Flremote__EchoRequest req = echo_req("pending", 9);
    fl_future_t *fs[K];
    for (int i = 0; i < K; i++)
        fs[i] = fl_test_call(gw, M_BLOCK, &req.base, LONG_MS);
    rg_seen_t c;
    rg_seen_init(&c, NULL);
    fl_rpc_next_timeout(LONG_MS);
    rg_stub_call(fl_rpc_gateway_service(gw), M_BLOCK, &req.base, &c);
    sync_job_t s = {.gw = gw, .rc = -1, .done = fl_test_latch_alloc(1)};
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, sync_block_main, &s));
    peer_wait_parked(gw, 9, K + 2);

    uint64_t t0 = fl_clock_now_ns();
    peer_crash(&p);
    for (int i = 0; i < K; i++) {
        int rc = fl_test_future_code(fs[i]);
        if (rc != FL_EUNREACHABLE)
            fail_msg("pending future %d: %s (%s), want FL_EUNREACHABLE", i,
                     fl_err_name(rc), fl_future_message(fs[i]));
        fl_future_release(fs[i]);
    }
    closure_wait(&c);
    assert_false(c.got_reply);
    assert_fl(FL_EUNREACHABLE, c.code);
    fl_test_latch_await(s.done);
    assert_int_equal(0, pthread_join(th, NULL));
    assert_fl(FL_EUNREACHABLE, s.rc);
    assert_true(s.reply_null);
    fl_test_assert_elapsed("failing the pending calls", fl_test_ms_since(t0), 0,
                           PROMPT_MS);

    /* The same port again; the old gateway's next calls reach it once the
     * reconnect (with its backoff) lets them: until then FL_EUNREACHABLE
     * at once, nothing else. */
    peer_spawn(&p, portstr, 0);
    assert_int_equal(port, p.port);
    t0 = fl_clock_now_ns();
    int attempts = 0;
    for (;;) {
        attempts++;
        Flremote__EchoRequest again = echo_req("after the restart", 2);
        fl_future_t *f = fl_test_call(gw, M_ECHO, &again.base, PROMPT_MS);
        int rc = fl_test_future_code(f);
        if (rc == FL_OK) {
            expect_echo_reply(f, "after the restart", 2);
            fl_future_release(f);
            break;
        }
        if (rc != FL_EUNREACHABLE)
            fail_msg("call %d after the restart: %s (%s), want FL_OK or "
                     "FL_EUNREACHABLE",
                     attempts, fl_err_name(rc), fl_future_message(f));
        fl_future_release(f);
        if (fl_test_ms_since(t0) > RESTART_RETRY_MS)
            fail_msg("no call succeeded within %d ms of the restart (%d "
                     "attempts)",
                     RESTART_RETRY_MS, attempts);
        /* Pace the retries (the backoff decides when one can succeed). */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    print_message("restart: first success after %d call(s), %llu ms\n",
                  attempts, (unsigned long long)fl_test_ms_since(t0));
    expect_echo(gw, "and again", 3);
    fl_rpc_gateway_t *fresh = fl_test_connect(svc, p.plain, RG, NULL);
    expect_echo(fresh, "a new gateway", 4);

    fl_rpc_gateway_free(fresh);
    fl_rpc_gateway_free(gw);
    peer_stop(&p);
    fl_test_service_end(svc);
    rg_seen_fini(&c);
    fl_test_latch_free(s.done);
}

/* ---- calls from the peer to the test process --------------------------------
 */

static void test_peer_tells_the_test_process(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    Flremote__CallBackReply *r = call_back_expect(
        &fx,
        &(cb_args_t){
            .style = FLREMOTE__STYLE__STYLE_TELL, .method = M_COUNT, .n = 5},
        FL_OK);
    cb_free(r);
    assert_int_equal(5, rg_store_wait(&fx.back, &fx.back.count, 1, WAIT_MS));

    fx_end(&fx);
}

static void test_peer_calls_the_test_process_in_every_style(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    for (size_t i = 0; i < N_ANSWERED_STYLES; i++) {
        Flremote__CallBackReply *r =
            call_back_expect(&fx,
                             &(cb_args_t){.style = ANSWERED_STYLES[i],
                                          .method = M_ECHO,
                                          .text = "from the peer",
                                          .n = 100 + (int64_t)i},
                             FL_OK);
        assert_int_equal(100 + i, r->n);
        assert_string_equal("from the peer", r->text);
        if (ANSWERED_STYLES[i] == FLREMOTE__STYLE__STYLE_CLOSURE)
            assert_int_equal(1, r->closure_runs);
        cb_free(r);
    }

    /* A large reply from us to the peer. */
    Flremote__CallBackReply *r =
        call_back_expect(&fx,
                         &(cb_args_t){.style = FLREMOTE__STYLE__STYLE_FUTURE,
                                      .method = M_SIZE,
                                      .n = 1 << 20},
                         FL_OK);
    assert_int_equal(1 << 20, r->n);
    assert_int_equal(1 << 20, r->text_len);
    cb_free(r);

    fx_end(&fx);
}

static void test_peer_call_timeouts_to_the_test_process(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    /* closure: fl_rpc_next_timeout; future: fl_rpc_call; sync. */
    for (size_t i = 0; i < N_ANSWERED_STYLES; i++) {
        Flremote__CallBackReply *r =
            call_back_expect(&fx,
                             &(cb_args_t){.style = ANSWERED_STYLES[i],
                                          .method = M_BLOCK,
                                          .text = "never answered in time",
                                          .timeout_ms = SHORT_MS},
                             FL_ETIMEDOUT);
        fl_test_assert_elapsed("the peer's call timeout",
                               (uint64_t)r->elapsed_ms, SHORT_MS,
                               SHORT_MS + PROMPT_MS);
        cb_free(r);
    }

    /* Late answers to the three reach the peer after its timeouts; the
     * peer's next call is served. */
    assert_int_equal(3, rg_store_release(&fx.back, true, 0));
    Flremote__CallBackReply *r =
        call_back_expect(&fx,
                         &(cb_args_t){.style = FLREMOTE__STYLE__STYLE_SYNC,
                                      .method = M_ECHO,
                                      .text = "after late answers",
                                      .n = 8},
                         FL_OK);
    assert_int_equal(8, r->n);
    cb_free(r);

    fx_end(&fx);
}

static void test_peer_gets_the_test_processs_errors_intact(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    for (size_t i = 0; i < N_ANSWERED_STYLES; i++) {
        int code = FL_EUSER + 77 + (int)i;
        Flremote__CallBackReply *r =
            call_back_expect(&fx,
                             &(cb_args_t){.style = ANSWERED_STYLES[i],
                                          .method = M_FAIL,
                                          .code = code,
                                          .text = "from the test process"},
                             code);
        /* A blocking call returns only the code. */
        if (ANSWERED_STYLES[i] != FLREMOTE__STYLE__STYLE_SYNC)
            assert_string_equal("from the test process", r->message);
        cb_free(r);
    }

    Flremote__CallBackReply *r =
        call_back_expect(&fx,
                         &(cb_args_t){.style = FLREMOTE__STYLE__STYLE_FUTURE,
                                      .method = M_FAIL,
                                      .code = FL_ESTATE},
                         FL_ESTATE);
    assert_string_equal(fl_strerror(FL_ESTATE), r->message);
    cb_free(r);

    fx_end(&fx);
}

static void test_peer_calls_fenced_and_idle_test_endpoints(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    const char *fenced = fl_rpc_endpoint_address(fx.backf_ep);
    fl_fencing_token_t right = fl_test_token(TEST_TOKEN_BYTE);
    fl_fencing_token_t wrong = fl_test_token(WRONG_TOKEN_BYTE);

    /* The right token is served; a wrong one and none connect (tokens are
     * not checked then), but the call fails with FL_EFENCING. Not started:
     * the connect succeeds, the call fails. */
    const struct {
        cb_args_t args;
        int want;
    } cases[] = {
        {{.address = fenced,
          .token = &right,
          .style = FLREMOTE__STYLE__STYLE_FUTURE,
          .method = M_ECHO,
          .text = "right token",
          .n = 1},
         FL_OK},
        {{.address = fenced,
          .token = &wrong,
          .style = FLREMOTE__STYLE__STYLE_SYNC,
          .method = M_ECHO,
          .text = "wrong token"},
         FL_EFENCING},
        {{.address = fenced,
          .style = FLREMOTE__STYLE__STYLE_CLOSURE,
          .method = M_ECHO,
          .text = "no token"},
         FL_EFENCING},
        {{.address = fl_rpc_endpoint_address(fx.backidle_ep),
          .style = FLREMOTE__STYLE__STYLE_FUTURE,
          .method = M_ECHO,
          .text = "too early"},
         FL_ENOTSTARTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Flremote__CallBackReply *r =
            call_back_expect(&fx, &cases[i].args, cases[i].want);
        if (cases[i].want == FL_OK)
            assert_int_equal(cases[i].args.n, r->n);
        cb_free(r);
    }

    /* An id the test process does not have: the connect fails. */
    char address[300];
    format_address(address, sizeof address, fl_rpc_service_port(fx.svc),
                   "nobody");
    Flremote__CallBackReply *r =
        call_back(&fx, &(cb_args_t){.address = address,
                                    .style = FLREMOTE__STYLE__STYLE_FUTURE,
                                    .method = M_ECHO});
    assert_fl(FL_ECONNECT, r->connect_code);
    if (!strstr(r->message, address))
        fail_msg("message \"%s\" does not name %s", r->message, address);
    cb_free(r);

    fx_end(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        REMOTE_TEST(test_peer_reports_its_port_and_addresses_and_stops_cleanly),
        REMOTE_TEST(test_tell_to_the_peer_runs_its_handler),
        REMOTE_TEST(test_closure_call_to_the_peer_delivers_the_reply),
        REMOTE_TEST(test_closure_of_a_remote_call_runs_on_the_calling_endpoint),
        REMOTE_TEST(test_future_call_to_the_peer_completes_with_the_reply),
        REMOTE_TEST(test_blocking_call_to_the_peer_returns_the_reply),
        REMOTE_TEST(test_many_calls_in_flight_are_answered_by_correlation),
        REMOTE_TEST(
            test_call_timeout_to_the_peer_fails_etimedout_after_the_given_time),
        REMOTE_TEST(
            test_next_timeout_applies_to_the_next_remote_stub_call_only),
        REMOTE_TEST(test_handler_errors_cross_the_wire_intact),
        REMOTE_TEST(test_fenced_endpoint_serves_only_its_token),
        REMOTE_TEST(
            test_not_started_endpoint_connects_but_calls_fail_enotstarted),
        REMOTE_TEST(
            test_calls_to_a_terminated_remote_endpoint_fail_fast_unreachable),
        REMOTE_TEST(
            test_connect_to_an_unknown_endpoint_fails_econnect_naming_it),
        REMOTE_TEST(test_connect_with_an_unsupported_gateway_fails_ehandshake),
        REMOTE_TEST(test_connect_to_an_unresolvable_host_fails_promptly),
        REMOTE_TEST(test_connect_to_a_refused_port_fails_promptly),
        REMOTE_TEST(test_frame_limits_of_the_peer),
        REMOTE_TEST(test_frame_limits_of_the_test_process),
        REMOTE_TEST(test_a_busy_port_makes_the_range_use_the_next_one),
        REMOTE_TEST(test_all_ports_busy_fails_eaddrinuse_naming_the_range),
        REMOTE_TEST(
            test_killed_peer_fails_pending_calls_then_serves_again_after_restart),
        REMOTE_TEST(test_peer_tells_the_test_process),
        REMOTE_TEST(test_peer_calls_the_test_process_in_every_style),
        REMOTE_TEST(test_peer_call_timeouts_to_the_test_process),
        REMOTE_TEST(test_peer_gets_the_test_processs_errors_intact),
        REMOTE_TEST(test_peer_calls_fenced_and_idle_test_endpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
