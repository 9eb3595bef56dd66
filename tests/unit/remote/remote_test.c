/*
 * remote_test.c - RPC between two real processes over TCP on 127.0.0.1
 * (issue 4, contract 1.6, 2.4-2.8, 2.11, 2.12): this test process and
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
#include <stdatomic.h>
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

#include "remote_gateways.pb-c.h"

#ifndef REMOTE_PEER_PATH
#error                                                                         \
    "REMOTE_PEER_PATH must name the remote_peer program (tests/CMakeLists.txt)"
#endif

/* How long a test waits for anything that should happen. */
#define WAIT_MS 20000
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

#define NS_PER_MS 1000000ull

#define RG (&flremote__remote_gateway__descriptor)
#define OTHER (&flremote__other_gateway__descriptor)

/* RemoteGateway method indices: the order of the .proto. */
enum {
    M_ECHO = 0,
    M_FAIL = 1,
    M_BLOCK = 2,
    M_RELEASE = 3,
    M_WAIT_PARKED = 4,
    M_COUNT = 5,
    M_WAIT_COUNT = 6,
    M_SIZE = 7,
    M_CLOSE_ENDPOINT = 8,
    M_CALL_BACK = 9
};

/* The peer's fenced endpoint takes PEER_TOKEN (16 bytes of 0xA1); the test
 * process's fenced endpoint takes TEST_TOKEN (16 bytes of 0xC3). */
static const char PEER_TOKEN_HEX[] = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
#define PEER_TOKEN_BYTE 0xA1
#define TEST_TOKEN_BYTE 0xC3
#define WRONG_TOKEN_BYTE 0xB2

static fl_fencing_token_t token_of(uint8_t b)
{
    fl_fencing_token_t t;
    memset(t.bytes, b, sizeof t.bytes);
    return t;
}

static uint64_t ms_since(uint64_t t0_ns)
{
    return (fl_clock_now_ns() - t0_ns) / NS_PER_MS;
}

static void wait_latch(fl_test_latch_t *l)
{
    if (fl_test_latch_wait(l, WAIT_MS) != 0)
        fail_msg("latch not reached in %d ms (count left %llu)", WAIT_MS,
                 (unsigned long long)fl_test_latch_count(l));
}

/* Asserts lo <= el < hi (milliseconds), naming what was measured. */
static void assert_elapsed(const char *what, uint64_t el, uint64_t lo,
                           uint64_t hi)
{
    if (el < lo || el >= hi)
        fail_msg("%s took %llu ms, want [%llu, %llu)", what,
                 (unsigned long long)el, (unsigned long long)lo,
                 (unsigned long long)hi);
}

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

static void peer_unregister(peer_t *p)
{
    for (int i = 0; i < MAX_PEERS; i++)
        if (live_peers[i] == p)
            live_peers[i] = NULL;
}

static void peer_close_fds(peer_t *p)
{
    if (p->in_fd >= 0)
        close(p->in_fd);
    if (p->out_fd >= 0)
        close(p->out_fd);
    p->in_fd = p->out_fd = -1;
}

static int reap(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* Kills and reaps p if it still runs; returns its wait status. */
static int peer_kill_now(peer_t *p)
{
    int st = 0;
    if (p->pid > 0) {
        kill(p->pid, SIGKILL);
        st = reap(p->pid);
        p->pid = 0;
    }
    peer_close_fds(p);
    peer_unregister(p);
    return st;
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

/*
 * Reads p's stdout up to end of file, at most WAIT_MS. True if it ended
 * (the peer has exited or is exiting); the bytes are discarded.
 */
static bool peer_wait_eof(peer_t *p)
{
    uint64_t t0 = fl_clock_now_ns();
    for (;;) {
        int64_t left = WAIT_MS - (int64_t)ms_since(t0);
        if (left <= 0)
            return false;
        struct pollfd pf = {.fd = p->out_fd, .events = POLLIN};
        int rc = poll(&pf, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
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
        int64_t left = WAIT_MS - (int64_t)ms_since(t0);
        if (left <= 0)
            fail_msg("remote_peer printed no line in %d ms", WAIT_MS);
        struct pollfd pf = {.fd = p->out_fd, .events = POLLIN};
        int rc = poll(&pf, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            fail_msg("poll: %s", strerror(errno));
        if (rc == 0)
            continue;
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
    int st = reap(p->pid);
    p->pid = 0;
    peer_close_fds(p);
    peer_unregister(p);
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
    int st = reap(p->pid);
    p->pid = 0;
    peer_close_fds(p);
    peer_unregister(p);
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

/* A port nothing listens on (bound to find it, then closed). */
static int closed_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(0, bind(fd, (struct sockaddr *)&sa, sizeof sa));
    socklen_t len = sizeof sa;
    assert_int_equal(0, getsockname(fd, (struct sockaddr *)&sa, &len));
    close(fd);
    return ntohs(sa.sin_port);
}

/* ---- the test process's own service and endpoints ------------------------ */

/* Calls the peer makes to us park here (Block) until the case ends. */
#define BACK_PARK_MAX 16

/* State of the test process's endpoints "back", "backf" and "backidle". */
typedef struct back {
    fl_test_latch_t *started; /* on_start counts down */
    fl_test_latch_t *counted; /* optional: Count counts down */
    atomic_llong count;
    pthread_mutex_t mu;
    struct {
        fl_rpc_call_t *call;
        Flremote__EchoReply_Closure closure;
    } parked[BACK_PARK_MAX];
    int nparked;
} back_t;

static int bk_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    (void)ep;
    back_t *b = state;
    fl_test_latch_count_down(b->started);
    return FL_OK;
}

static void bk_echo(Flremote__RemoteGateway_Service *svc,
                    const Flremote__EchoRequest *in,
                    Flremote__EchoReply_Closure closure, void *closure_data)
{
    (void)svc;
    Flremote__EchoReply r = FLREMOTE__ECHO_REPLY__INIT;
    r.text = in->text;
    r.n = in->n;
    closure(&r, closure_data);
}

static void bk_fail(Flremote__RemoteGateway_Service *svc,
                    const Flremote__FailRequest *in,
                    Flremote__EchoReply_Closure closure, void *closure_data)
{
    (void)svc;
    (void)closure;
    if (in->message[0] == '\0')
        fl_rpc_fail(closure_data, in->code, NULL);
    else
        fl_rpc_fail(closure_data, in->code, "%s", in->message);
}

static void bk_block(Flremote__RemoteGateway_Service *svc,
                     const Flremote__EchoRequest *in,
                     Flremote__EchoReply_Closure closure, void *closure_data)
{
    (void)svc;
    (void)in;
    back_t *b = fl_rpc_call_state(closure_data);
    pthread_mutex_lock(&b->mu);
    bool room = b->nparked < BACK_PARK_MAX;
    fl_rpc_call_t *call = room ? fl_rpc_defer(closure_data) : NULL;
    if (call) {
        b->parked[b->nparked].call = call;
        b->parked[b->nparked].closure = closure;
        b->nparked++;
    }
    pthread_mutex_unlock(&b->mu);
    if (!call)
        fl_rpc_fail(closure_data, FL_ELIMIT, "Block: no room to park");
}

static void bk_count(Flremote__RemoteGateway_Service *svc,
                     const Flremote__CountRequest *in,
                     Flremote__Empty_Closure closure, void *closure_data)
{
    (void)svc;
    back_t *b = fl_rpc_call_state(closure_data);
    atomic_fetch_add(&b->count, in->n);
    Flremote__Empty e = FLREMOTE__EMPTY__INIT;
    closure(&e, closure_data);
    if (b->counted)
        fl_test_latch_count_down(b->counted);
}

static void bk_size(Flremote__RemoteGateway_Service *svc,
                    const Flremote__SizeRequest *in,
                    Flremote__EchoReply_Closure closure, void *closure_data)
{
    (void)svc;
    if (in->size < 0 || in->size > (64 << 20)) {
        fl_rpc_fail(closure_data, FL_EINVAL, "Size out of range");
        return;
    }
    char *text = malloc((size_t)in->size + 1);
    if (!text) {
        fl_rpc_fail(closure_data, FL_ENOMEM, NULL);
        return;
    }
    memset(text, 'z', (size_t)in->size);
    text[in->size] = '\0';
    Flremote__EchoReply r = FLREMOTE__ECHO_REPLY__INIT;
    r.text = text;
    r.n = in->size;
    closure(&r, closure_data);
    free(text);
}

/* The test endpoints' RemoteGateway: the methods the peer calls back; the
 * others stay NULL (FL_ENOMETHOD). */
static ProtobufCService *const *back_services(void)
{
    static Flremote__RemoteGateway_Service impl;
    static ProtobufCService *const services[1] = {&impl.base};
    static bool filled; /* the test thread, before any endpoint exists */
    if (!filled) {
        flremote__remote_gateway__init(&impl, NULL);
        impl.echo = bk_echo;
        impl.fail = bk_fail;
        impl.block = bk_block;
        impl.count = bk_count;
        impl.size = bk_size;
        filled = true;
    }
    return services;
}

/* Answers every call parked in b with text "released"; returns how many. */
static int back_release_all(back_t *b)
{
    pthread_mutex_lock(&b->mu);
    int n = b->nparked;
    fl_rpc_call_t *calls[BACK_PARK_MAX];
    Flremote__EchoReply_Closure closures[BACK_PARK_MAX];
    for (int i = 0; i < n; i++) {
        calls[i] = b->parked[i].call;
        closures[i] = b->parked[i].closure;
    }
    b->nparked = 0;
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < n; i++) {
        Flremote__EchoReply r = FLREMOTE__ECHO_REPLY__INIT;
        r.text = "released";
        closures[i](&r, calls[i]);
    }
    return n;
}

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

static fl_rpc_endpoint_t *back_endpoint(fl_rpc_service_t *svc, const char *id,
                                        back_t *b,
                                        const fl_fencing_token_t *tok,
                                        bool start)
{
    fl_rpc_endpoint_opts_t o = {0};
    o.id = id;
    o.services = back_services();
    o.nservices = 1;
    o.state = b;
    o.on_start = bk_on_start;
    o.fencing_token = tok;
    fl_rpc_endpoint_t *ep = NULL;
    assert_fl_ok(fl_rpc_endpoint_create(svc, &o, &ep));
    if (start)
        assert_fl_ok(fl_rpc_endpoint_start(ep));
    return ep;
}

static void endpoint_end(fl_rpc_endpoint_t *ep)
{
    fl_future_t *t = fl_rpc_endpoint_close(ep);
    assert_non_null(t);
    (void)fl_future_wait(t, WAIT_MS);
    if (!fl_future_done(t))
        fail_msg("endpoint %s did not terminate", fl_rpc_endpoint_id(ep));
    assert_fl_ok(fl_future_error(t));
    fl_future_release(t);
    fl_rpc_endpoint_free(ep);
}

static void service_end(fl_rpc_service_t *svc)
{
    assert_fl_ok(fl_rpc_service_shutdown(svc));
    fl_rpc_service_free(svc);
}

/* ---- futures, gateways and calls ------------------------------------------
 */

/* Waits (bounded) for f; fails the test if it does not complete. */
static int wait_code(fl_future_t *f)
{
    assert_non_null(f);
    (void)fl_future_wait(f, WAIT_MS);
    if (!fl_future_done(f))
        fail_msg("future not completed in %d ms", WAIT_MS);
    return fl_future_error(f);
}

static fl_rpc_gateway_t *connect_gw(fl_rpc_service_t *svc, const char *address,
                                    const ProtobufCServiceDescriptor *d,
                                    const fl_fencing_token_t *tok)
{
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(svc, address, d, tok, &f));
    int rc = wait_code(f);
    if (rc != FL_OK)
        fail_msg("connect %s: %s (%s)", address, fl_err_name(rc),
                 fl_future_message(f));
    fl_rpc_gateway_t *gw = fl_future_take_value(f);
    assert_non_null(gw);
    fl_future_release(f);
    return gw;
}

/* Connects expecting a failure: returns the code, copies the message and
 * the time it took. */
static int connect_error(fl_rpc_service_t *svc, const char *address,
                         const ProtobufCServiceDescriptor *d, char *msg,
                         size_t msg_size, uint64_t *elapsed_ms)
{
    uint64_t t0 = fl_clock_now_ns();
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_connect(svc, address, d, NULL, &f));
    int rc = wait_code(f);
    if (elapsed_ms)
        *elapsed_ms = ms_since(t0);
    snprintf(msg, msg_size, "%s", fl_future_message(f));
    if (rc == FL_OK)
        fl_rpc_gateway_free(fl_future_take_value(f));
    fl_future_release(f);
    return rc;
}

static fl_future_t *call_f(fl_rpc_gateway_t *gw, unsigned m,
                           const ProtobufCMessage *req, int64_t timeout_ms)
{
    fl_future_t *f = NULL;
    assert_fl_ok(fl_rpc_call(gw, m, req, timeout_ms, &f));
    assert_non_null(f);
    return f;
}

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
    int rc = wait_code(f);
    if (rc != FL_OK)
        fail_msg("call failed: %s (%s)", fl_err_name(rc), fl_future_message(f));
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
    fl_future_t *f = call_f(gw, M_ECHO, &req.base, 0);
    expect_echo_reply(f, text, n);
    fl_future_release(f);
}

/* A call expected to fail: returns its code, copies its message. */
static int call_error(fl_rpc_gateway_t *gw, unsigned m,
                      const ProtobufCMessage *req, int64_t timeout_ms,
                      char *msg, size_t msg_size)
{
    fl_future_t *f = call_f(gw, m, req, timeout_ms);
    int rc = wait_code(f);
    if (msg)
        snprintf(msg, msg_size, "%s", fl_future_message(f));
    fl_future_release(f);
    return rc;
}

static int echo_code(fl_rpc_gateway_t *gw)
{
    Flremote__EchoRequest req = echo_req("ping", 1);
    return call_error(gw, M_ECHO, &req.base, 0, NULL, 0);
}

/* A CountReply call (WaitCount, WaitParked, Release) that must succeed. */
static int64_t count_call(fl_rpc_gateway_t *gw, unsigned m,
                          const ProtobufCMessage *req)
{
    fl_future_t *f = call_f(gw, m, req, 0);
    int rc = wait_code(f);
    if (rc != FL_OK)
        fail_msg("method %u failed: %s (%s)", m, fl_err_name(rc),
                 fl_future_message(f));
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
    flremote__remote_gateway__count(fl_rpc_gateway_service(gw), &req, NULL,
                                    NULL);
    assert_fl_ok(fl_rpc_last_error());
}

/* What a stub closure saw. */
typedef struct closure_ctx {
    atomic_int runs;
    bool got_reply;
    char text[128];
    int64_t n;
    int code;
    char message[300];
    fl_rpc_endpoint_t *caller; /* optional: the endpoint that called */
    bool on_caller;            /* fl_rpc_in_main_thread(caller) */
    fl_test_latch_t *done;
} closure_ctx_t;

static void echo_closure(const Flremote__EchoReply *reply, void *data)
{
    closure_ctx_t *c = data;
    c->got_reply = reply != NULL;
    if (reply) {
        snprintf(c->text, sizeof c->text, "%s", reply->text);
        c->n = reply->n;
    }
    c->code = fl_rpc_last_error();
    const char *m = fl_rpc_last_message();
    snprintf(c->message, sizeof c->message, "%s", m ? m : "(null)");
    if (c->caller)
        c->on_caller = fl_rpc_in_main_thread(c->caller);
    atomic_fetch_add(&c->runs, 1);
    fl_test_latch_count_down(c->done);
}

/* ---- the fixture: a peer, the test's service and endpoints ----------------
 */

typedef struct fixture {
    peer_t peer;
    fl_rpc_service_t *svc;          /* the test process's service (listening) */
    back_t back;                    /* state of the three test endpoints */
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
    fx->back.started = fl_test_latch_alloc(2);
    atomic_init(&fx->back.count, 0);
    pthread_mutex_init(&fx->back.mu, NULL);
    fl_fencing_token_t t = token_of(TEST_TOKEN_BYTE);
    fx->back_ep = back_endpoint(fx->svc, "back", &fx->back, NULL, true);
    fx->backf_ep = back_endpoint(fx->svc, "backf", &fx->back, &t, true);
    fx->backidle_ep =
        back_endpoint(fx->svc, "backidle", &fx->back, NULL, false);
    wait_latch(fx->back.started);
    fx->plain = connect_gw(fx->svc, fx->peer.plain, RG, NULL);
}

static void fx_begin(fixture_t *fx)
{
    fx_begin_with(fx, 0, 0);
}

static void fx_end(fixture_t *fx)
{
    (void)back_release_all(&fx->back);
    fl_rpc_gateway_free(fx->plain);
    peer_stop(&fx->peer);
    endpoint_end(fx->back_ep);
    endpoint_end(fx->backf_ep);
    endpoint_end(fx->backidle_ep);
    service_end(fx->svc);
    fl_test_latch_free(fx->back.started);
    fl_test_latch_free(fx->back.counted);
    pthread_mutex_destroy(&fx->back.mu);
}

/* ---- CallBack: the peer calls the test process ----------------------------
 */

typedef struct cb_args {
    const char *address;
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
 * frees it with protobuf_c_message_free_unpacked). */
static Flremote__CallBackReply *call_back(fixture_t *fx, const cb_args_t *a)
{
    Flremote__CallBackRequest req = FLREMOTE__CALL_BACK_REQUEST__INIT;
    req.address = (char *)a->address;
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
    fl_future_t *f = call_f(fx->plain, M_CALL_BACK, &req.base, 0);
    int rc = wait_code(f);
    if (rc != FL_OK)
        fail_msg("CallBack failed: %s (%s)", fl_err_name(rc),
                 fl_future_message(f));
    Flremote__CallBackReply *r = fl_future_take_value(f);
    assert_non_null(r);
    fl_future_release(f);
    return r;
}

static void cb_free(Flremote__CallBackReply *r)
{
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

/* The peer's report must show a connect and a call that succeeded. */
static void expect_cb_ok(const Flremote__CallBackReply *r)
{
    assert_fl_ok(r->connect_code);
    if (r->code != FL_OK)
        fail_msg("the peer's call failed: %s (%s)", fl_err_name(r->code),
                 r->message);
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
    char want[256];
    snprintf(want, sizeof want, "fling.tcp://127.0.0.1:%d/plain", p.port);
    assert_string_equal(want, p.plain);
    snprintf(want, sizeof want, "fling.tcp://127.0.0.1:%d/fenced", p.port);
    assert_string_equal(want, p.fenced);
    snprintf(want, sizeof want, "fling.tcp://127.0.0.1:%d/idle", p.port);
    assert_string_equal(want, p.idle);
    snprintf(want, sizeof want, "fling.tcp://127.0.0.1:%d/doomed", p.port);
    assert_string_equal(want, p.doomed);
    peer_stop(&p);

    /* SIGTERM stops it cleanly too, also with a client connected. */
    peer_spawn(&p, "0", 0);
    fl_rpc_service_t *svc = test_service(0);
    fl_rpc_gateway_t *gw = connect_gw(svc, p.plain, RG, NULL);
    expect_echo(gw, "before SIGTERM", 1);
    assert_int_equal(0, kill(p.pid, SIGTERM));
    peer_expect_clean_exit(&p, "SIGTERM");
    fl_rpc_gateway_free(gw);
    service_end(svc);
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
    ProtobufCService *stub = fl_rpc_gateway_service(fx.plain);

    closure_ctx_t c = {.done = fl_test_latch_alloc(1)};
    Flremote__EchoRequest req = echo_req("closure reply", 21);
    flremote__remote_gateway__echo(stub, &req, echo_closure, &c);
    wait_latch(c.done);
    assert_int_equal(1, atomic_load(&c.runs));
    assert_true(c.got_reply);
    assert_fl_ok(c.code);
    assert_string_equal("closure reply", c.text);
    assert_int_equal(21, c.n);

    /* A failure: NULL reply, exact code and message. */
    closure_ctx_t e = {.done = fl_test_latch_alloc(1)};
    Flremote__FailRequest freq = fail_req(FL_EUSER + 5, "boom number 5");
    flremote__remote_gateway__fail(stub, &freq, echo_closure, &e);
    wait_latch(e.done);
    assert_int_equal(1, atomic_load(&e.runs));
    assert_false(e.got_reply);
    assert_fl(FL_EUSER + 5, e.code);
    assert_string_equal("boom number 5", e.message);

    fl_test_latch_free(c.done);
    fl_test_latch_free(e.done);
    fx_end(&fx);
}

typedef struct call_from {
    fl_rpc_gateway_t *gw;
    closure_ctx_t *c;
} call_from_t;

static void call_from_task(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    (void)ep;
    (void)state;
    call_from_t *cf = arg;
    Flremote__EchoRequest req = echo_req("from an endpoint", 91);
    flremote__remote_gateway__echo(fl_rpc_gateway_service(cf->gw), &req,
                                   echo_closure, cf->c);
}

static void
test_closure_of_a_remote_call_runs_on_the_calling_endpoint(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1), .caller = fx.back_ep};

    call_from_t cf = {.gw = fx.plain, .c = &c};
    assert_fl_ok(fl_rpc_run_async(fx.back_ep, call_from_task, &cf, NULL));
    wait_latch(c.done);
    assert_int_equal(1, atomic_load(&c.runs));
    assert_true(c.got_reply);
    assert_string_equal("from an endpoint", c.text);
    assert_int_equal(91, c.n);
    assert_true(c.on_caller);

    fl_test_latch_free(c.done);
    fx_end(&fx);
}

static void test_future_call_to_the_peer_completes_with_the_reply(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);

    expect_echo(fx.plain, "future reply", 31);

    /* Large request and reply (several reads and writes each). */
    size_t big = 3u << 20;
    char *text = malloc(big + 1);
    assert_non_null(text);
    for (size_t i = 0; i < big; i++)
        text[i] = (char)('a' + (i * 7) % 26);
    text[big] = '\0';
    expect_echo(fx.plain, text, 77);
    free(text);

    Flremote__SizeRequest sreq = FLREMOTE__SIZE_REQUEST__INIT;
    sreq.size = 2 << 20;
    fl_future_t *f = call_f(fx.plain, M_SIZE, &sreq.base, 0);
    assert_fl_ok(wait_code(f));
    Flremote__EchoReply *r = fl_future_value(f);
    assert_non_null(r);
    assert_int_equal(2 << 20, r->n);
    assert_int_equal(2 << 20, strlen(r->text));
    fl_future_release(f);

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

    Flremote__FailRequest freq = fail_req(FL_EUSER + 43, "blocking failure");
    reply = (ProtobufCMessage *)&freq; /* must become NULL */
    assert_fl(FL_EUSER + 43,
              fl_rpc_call_sync(fx.plain, M_FAIL, &freq.base, 0, &reply));
    assert_null(reply);

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
    fl_future_t *parked = call_f(fx.plain, M_BLOCK, &breq.base, 0);
    fl_future_t *fs[N];
    char texts[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(texts[i], sizeof texts[i], "call %d", i);
        Flremote__EchoRequest req = echo_req(texts[i], i);
        fs[i] = call_f(fx.plain, M_ECHO, &req.base, 0);
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
    fl_future_t *f = call_f(fx.plain, M_BLOCK, &r1.base, SHORT_MS);
    assert_fl(FL_ETIMEDOUT, wait_code(f));
    assert_elapsed("fl_rpc_call timeout", ms_since(t0), SHORT_MS,
                   SHORT_MS + PROMPT_MS);
    fl_future_release(f);

    /* fl_rpc_call_sync with its own timeout. */
    ProtobufCMessage *reply = (ProtobufCMessage *)&r1; /* must become NULL */
    t0 = fl_clock_now_ns();
    assert_fl(FL_ETIMEDOUT,
              fl_rpc_call_sync(fx.plain, M_BLOCK, &r1.base, SHORT_MS, &reply));
    assert_elapsed("fl_rpc_call_sync timeout", ms_since(t0), SHORT_MS,
                   SHORT_MS + PROMPT_MS);
    assert_null(reply);

    /* A call that keeps waiting, then late answers to the two that timed
     * out: they are dropped, and the connection keeps serving. */
    Flremote__EchoRequest r2 = echo_req("waits", 2);
    fl_future_t *waiting = call_f(fx.plain, M_BLOCK, &r2.base, 0);
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
    ProtobufCService *stub = fl_rpc_gateway_service(fx.plain);

    closure_ctx_t c1 = {.done = fl_test_latch_alloc(1)};
    uint64_t t0 = fl_clock_now_ns();
    fl_rpc_next_timeout(SHORT_MS);
    flremote__remote_gateway__block(stub, &req, echo_closure, &c1);
    wait_latch(c1.done);
    assert_false(c1.got_reply);
    assert_fl(FL_ETIMEDOUT, c1.code);
    assert_elapsed("call after fl_rpc_next_timeout", ms_since(t0), SHORT_MS,
                   GW_MS);

    /* The next stub call falls back to the gateway's timeout. */
    closure_ctx_t c2 = {.done = fl_test_latch_alloc(1)};
    t0 = fl_clock_now_ns();
    flremote__remote_gateway__block(stub, &req, echo_closure, &c2);
    wait_latch(c2.done);
    assert_fl(FL_ETIMEDOUT, c2.code);
    assert_elapsed("next call (gateway timeout)", ms_since(t0), GW_MS,
                   GW_MS + PROMPT_MS);
    assert_int_equal(1, atomic_load(&c1.runs));
    assert_int_equal(1, atomic_load(&c2.runs));

    assert_fl_ok(fl_rpc_gateway_set_timeout(fx.plain, LONG_MS));
    peer_wait_parked(fx.plain, 5, 2);
    assert_int_equal(2, peer_release(fx.plain, 5));
    fl_test_latch_free(c1.done);
    fl_test_latch_free(c2.done);
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
    fl_future_t *f = call_f(fx.plain, M_FAIL, &r1.base, 0);
    assert_fl(FL_EUSER + 42, wait_code(f));
    assert_string_equal("custom failure: 42", fl_future_message(f));
    assert_null(fl_future_value(f));
    fl_future_release(f);

    /* fl_rpc_fail(code, NULL): the code's own message. */
    Flremote__FailRequest r2 = fail_req(FL_ESTATE, "");
    assert_fl(FL_ESTATE,
              call_error(fx.plain, M_FAIL, &r2.base, 0, msg, sizeof msg));
    assert_string_equal(fl_strerror(FL_ESTATE), msg);

    /* A fling code that is not the transport's own. */
    Flremote__FailRequest r3 = fail_req(FL_ENOENT, "no such thing here");
    assert_fl(FL_ENOENT,
              call_error(fx.plain, M_FAIL, &r3.base, 0, msg, sizeof msg));
    assert_string_equal("no such thing here", msg);

    /* A long message arrives cut as a local one would be (a future keeps
     * 255 bytes), from its start. */
    char longmsg[301];
    memset(longmsg, 'm', 300);
    memcpy(longmsg, "start:", 6);
    longmsg[300] = '\0';
    Flremote__FailRequest r4 = fail_req(FL_EUSER + 1, longmsg);
    assert_fl(FL_EUSER + 1,
              call_error(fx.plain, M_FAIL, &r4.base, 0, msg, sizeof msg));
    assert_int_equal(255, strlen(msg));
    assert_memory_equal(longmsg, msg, 255);

    fx_end(&fx);
}

static void test_fenced_endpoint_serves_only_its_token(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    fl_fencing_token_t right = token_of(PEER_TOKEN_BYTE);
    fl_fencing_token_t wrong = token_of(WRONG_TOKEN_BYTE);
    fl_fencing_token_t got;

    fl_rpc_gateway_t *ok = connect_gw(fx.svc, fx.peer.fenced, RG, &right);
    expect_echo(ok, "right token", 1);
    Flremote__EchoRequest req = echo_req("blocking", 2);
    ProtobufCMessage *reply = NULL;
    assert_fl_ok(fl_rpc_call_sync(ok, M_ECHO, &req.base, 0, &reply));
    protobuf_c_message_free_unpacked(reply, NULL);
    assert_fl_ok(fl_rpc_gateway_fencing_token(ok, &got));
    assert_memory_equal(right.bytes, got.bytes, sizeof got.bytes);

    /* Another token and no token connect (tokens are not checked then),
     * but every call fails with FL_EFENCING. */
    fl_rpc_gateway_t *bad = connect_gw(fx.svc, fx.peer.fenced, RG, &wrong);
    fl_rpc_gateway_t *none = connect_gw(fx.svc, fx.peer.fenced, RG, NULL);
    assert_fl(FL_EFENCING, echo_code(bad));
    assert_fl(FL_EFENCING, echo_code(none));
    reply = (ProtobufCMessage *)&req;
    assert_fl(FL_EFENCING, fl_rpc_call_sync(bad, M_ECHO, &req.base, 0, &reply));
    assert_null(reply);
    reply = (ProtobufCMessage *)&req;
    assert_fl(FL_EFENCING,
              fl_rpc_call_sync(none, M_ECHO, &req.base, 0, &reply));
    assert_null(reply);
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

    fl_rpc_gateway_t *gw = connect_gw(fx.svc, fx.peer.idle, RG, NULL);
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_ENOTSTARTED, echo_code(gw));
    Flremote__EchoRequest req = echo_req("blocking", 2);
    ProtobufCMessage *reply = (ProtobufCMessage *)&req;
    assert_fl(FL_ENOTSTARTED,
              fl_rpc_call_sync(gw, M_ECHO, &req.base, 0, &reply));
    assert_null(reply);
    assert_elapsed("calls to a not started endpoint", ms_since(t0), 0,
                   PROMPT_MS);

    closure_ctx_t c = {.done = fl_test_latch_alloc(1)};
    flremote__remote_gateway__echo(fl_rpc_gateway_service(gw), &req,
                                   echo_closure, &c);
    wait_latch(c.done);
    assert_false(c.got_reply);
    assert_fl(FL_ENOTSTARTED, c.code);

    fl_test_latch_free(c.done);
    fl_rpc_gateway_free(gw);
    fx_end(&fx);
}

static void
test_calls_to_a_terminated_remote_endpoint_fail_fast_unreachable(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    fl_rpc_gateway_t *gw = connect_gw(fx.svc, fx.peer.doomed, RG, NULL);
    expect_echo(gw, "still alive", 1);

    Flremote__CloseRequest creq = FLREMOTE__CLOSE_REQUEST__INIT;
    creq.id = "doomed";
    fl_future_t *cf = call_f(fx.plain, M_CLOSE_ENDPOINT, &creq.base, 0);
    int rc = wait_code(cf);
    if (rc != FL_OK)
        fail_msg("CloseEndpoint: %s (%s)", fl_err_name(rc),
                 fl_future_message(cf));
    fl_future_release(cf);

    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_EUNREACHABLE, echo_code(gw));
    Flremote__EchoRequest req = echo_req("blocking", 2);
    ProtobufCMessage *reply = (ProtobufCMessage *)&req;
    assert_fl(FL_EUNREACHABLE,
              fl_rpc_call_sync(gw, M_ECHO, &req.base, 0, &reply));
    assert_null(reply);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1)};
    flremote__remote_gateway__echo(fl_rpc_gateway_service(gw), &req,
                                   echo_closure, &c);
    wait_latch(c.done);
    assert_fl(FL_EUNREACHABLE, c.code);
    assert_elapsed("calls to a terminated endpoint", ms_since(t0), 0,
                   PROMPT_MS);

    /* Its id is gone: a new connect fails; the other endpoints serve. */
    char msg[512];
    assert_fl(FL_ECONNECT,
              connect_error(fx.svc, fx.peer.doomed, RG, msg, sizeof msg, NULL));
    if (!strstr(msg, fx.peer.doomed))
        fail_msg("message \"%s\" does not name %s", msg, fx.peer.doomed);
    expect_echo(fx.plain, "others still serve", 4);

    fl_test_latch_free(c.done);
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
    char address[300], msg[512];
    snprintf(address, sizeof address, "fling.tcp://127.0.0.1:%d/nobody",
             fx.peer.port);

    uint64_t el = 0;
    assert_fl(FL_ECONNECT,
              connect_error(fx.svc, address, RG, msg, sizeof msg, &el));
    if (!strstr(msg, address))
        fail_msg("message \"%s\" does not name the address %s", msg, address);
    assert_elapsed("connect to an unknown endpoint", el, 0, PROMPT_MS);

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

    assert_fl(FL_EHANDSHAKE, connect_error(fx.svc, fx.peer.plain, OTHER, msg,
                                           sizeof msg, NULL));
    if (!strstr(msg, "The rpc endpoint does not support the gateway ") ||
        !strstr(msg, "OtherGateway"))
        fail_msg("unexpected handshake message \"%s\"", msg);
    /* Also for an endpoint that is not started (answered in every state). */
    assert_fl(FL_EHANDSHAKE, connect_error(fx.svc, fx.peer.idle, OTHER, msg,
                                           sizeof msg, NULL));
    expect_echo(fx.plain, "after a refused gateway", 1);

    fx_end(&fx);
}

static void test_connect_to_an_unresolvable_host_fails_promptly(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = test_service(0); /* default timeout LONG_MS */
    const char *address = "fling.tcp://no-such-host.invalid:6123/plain";
    char msg[512];
    uint64_t el = 0;

    assert_fl(FL_ECONNECT,
              connect_error(svc, address, RG, msg, sizeof msg, &el));
    if (!strstr(msg, address))
        fail_msg("message \"%s\" does not name the address", msg);
    assert_elapsed("connect to an unresolvable host", el, 0, PROMPT_MS);

    service_end(svc);
}

static void test_connect_to_a_refused_port_fails_promptly(void **state)
{
    (void)state;
    fl_rpc_service_t *svc = test_service(0); /* default timeout LONG_MS */
    char address[128], msg[512];
    snprintf(address, sizeof address, "fling.tcp://127.0.0.1:%d/plain",
             closed_port());
    uint64_t el = 0;

    assert_fl(FL_ECONNECT,
              connect_error(svc, address, RG, msg, sizeof msg, &el));
    if (!strstr(msg, address))
        fail_msg("message \"%s\" does not name the address", msg);
    assert_elapsed("connect to a refused port", el, 0, PROMPT_MS);

    /* Again at once (now backing off): still a prompt FL_ECONNECT. */
    assert_fl(FL_ECONNECT,
              connect_error(svc, address, RG, msg, sizeof msg, &el));
    if (!strstr(msg, address))
        fail_msg("message \"%s\" does not name the address", msg);
    assert_elapsed("second connect to a refused port", el, 0, PROMPT_MS);

    service_end(svc);
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
    char msg[512];

    char *text = malloc(OVER_SMALL + 1);
    assert_non_null(text);
    memset(text, 'q', OVER_SMALL);
    text[OVER_SMALL] = '\0';
    Flremote__EchoRequest req = echo_req(text, 1);
    size_t body = protobuf_c_message_get_packed_size(&req.base);

    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_EMSGSIZE,
              call_error(fx.plain, M_ECHO, &req.base, 0, msg, sizeof msg));
    assert_elapsed("oversized request", ms_since(t0), 0, PROMPT_MS);
    if (!has_number_in(msg, SMALL_FRAME, SMALL_FRAME) ||
        !has_number_in(msg, body, body + 1024))
        fail_msg("message \"%s\" does not give the request's size (~%zu) "
                 "and the peer's maximum (%u)",
                 msg, body, SMALL_FRAME);
    ProtobufCMessage *reply = (ProtobufCMessage *)&req;
    assert_fl(FL_EMSGSIZE,
              fl_rpc_call_sync(fx.plain, M_ECHO, &req.base, 0, &reply));
    assert_null(reply);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1)};
    flremote__remote_gateway__echo(fl_rpc_gateway_service(fx.plain), &req,
                                   echo_closure, &c);
    wait_latch(c.done);
    assert_fl(FL_EMSGSIZE, c.code);
    free(text);

    /* Below the limit, and on the same connection: served. */
    char small[1001];
    memset(small, 's', 1000);
    small[1000] = '\0';
    expect_echo(fx.plain, small, 2);

    /* The peer's call to us: a reply over the peer's maximum. */
    Flremote__CallBackReply *r = call_back(
        &fx, &(cb_args_t){.address = fl_rpc_endpoint_address(fx.back_ep),
                          .style = FLREMOTE__STYLE__STYLE_FUTURE,
                          .method = M_SIZE,
                          .n = OVER_SMALL});
    assert_fl_ok(r->connect_code);
    assert_fl(FL_EMSGSIZE, r->code);
    if (!has_number_in(r->message, SMALL_FRAME, SMALL_FRAME) ||
        !has_number_in(r->message, OVER_SMALL, OVER_SMALL + 1024))
        fail_msg("message \"%s\" does not give the reply's size (~%d) "
                 "and the peer's maximum (%u)",
                 r->message, OVER_SMALL, SMALL_FRAME);
    assert_true(r->elapsed_ms < PROMPT_MS);
    cb_free(r);

    fl_test_latch_free(c.done);
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
    char msg[512];

    Flremote__SizeRequest sreq = FLREMOTE__SIZE_REQUEST__INIT;
    sreq.size = OVER_SMALL;
    uint64_t t0 = fl_clock_now_ns();
    assert_fl(FL_EMSGSIZE,
              call_error(fx.plain, M_SIZE, &sreq.base, 0, msg, sizeof msg));
    assert_elapsed("oversized reply", ms_since(t0), 0, PROMPT_MS);
    if (!has_number_in(msg, SMALL_FRAME, SMALL_FRAME) ||
        !has_number_in(msg, OVER_SMALL, OVER_SMALL + 1024))
        fail_msg("message \"%s\" does not give the reply's size (~%d) and "
                 "our maximum (%u)",
                 msg, OVER_SMALL, SMALL_FRAME);

    /* A reply below the limit on the same connection: served. */
    sreq.size = 60000;
    fl_future_t *f = call_f(fx.plain, M_SIZE, &sreq.base, 0);
    assert_fl_ok(wait_code(f));
    Flremote__EchoReply *r = fl_future_value(f);
    assert_int_equal(60000, strlen(r->text));
    fl_future_release(f);

    /* The peer's request to us over our maximum. */
    Flremote__CallBackReply *cr = call_back(
        &fx, &(cb_args_t){.address = fl_rpc_endpoint_address(fx.back_ep),
                          .style = FLREMOTE__STYLE__STYLE_FUTURE,
                          .method = M_ECHO,
                          .text_size = OVER_SMALL});
    assert_fl_ok(cr->connect_code);
    assert_fl(FL_EMSGSIZE, cr->code);
    if (!has_number_in(cr->message, SMALL_FRAME, SMALL_FRAME) ||
        !has_number_in(cr->message, OVER_SMALL, OVER_SMALL + 1024))
        fail_msg("message \"%s\" does not give the request's size (~%d) "
                 "and our maximum (%u)",
                 cr->message, OVER_SMALL, SMALL_FRAME);
    assert_true(cr->elapsed_ms < PROMPT_MS);
    cb_free(cr);

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
    fl_rpc_service_opts_t o = {0};
    o.workers = 1;
    o.bind_host = "127.0.0.1";
    o.port = list;
    fl_rpc_service_t *svc = NULL;
    int rc = fl_rpc_service_alloc(&o, &svc);
    if (rc != FL_OK)
        fail_msg("service on %s: %s (%s)", list, fl_err_name(rc),
                 fl_rpc_last_message());
    assert_int_equal(lo + 1, fl_rpc_service_port(svc));
    service_end(svc);

    /* The peer, with a range: it serves on lo + 1. */
    peer_t p;
    peer_spawn(&p, range, 0);
    assert_int_equal(lo + 1, p.port);
    char want[128];
    snprintf(want, sizeof want, "fling.tcp://127.0.0.1:%d/plain", lo + 1);
    assert_string_equal(want, p.plain);
    fl_rpc_service_t *client = test_service(0);
    fl_rpc_gateway_t *gw = connect_gw(client, p.plain, RG, NULL);
    expect_echo(gw, "on the next port", 1);
    fl_rpc_gateway_free(gw);
    service_end(client);
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

    fl_rpc_service_opts_t o = {0};
    o.workers = 1;
    o.bind_host = "127.0.0.1";
    o.port = range;
    fl_rpc_service_t *svc = NULL;
    assert_fl(FL_EADDRINUSE, fl_rpc_service_alloc(&o, &svc));
    assert_null(svc);
    const char *m = fl_rpc_last_message();
    assert_non_null(m);
    if (!strstr(m, range))
        fail_msg("message \"%s\" does not name the range %s", m, range);

    o.port = single;
    assert_fl(FL_EADDRINUSE, fl_rpc_service_alloc(&o, &svc));
    assert_null(svc);
    m = fl_rpc_last_message();
    assert_non_null(m);
    if (!strstr(m, single))
        fail_msg("message \"%s\" does not name the port %s", m, single);

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
    fl_rpc_gateway_t *gw = connect_gw(svc, p.plain, RG, NULL);
    expect_echo(gw, "before the crash", 1);

    /* Calls pending at the peer in every style: K futures, a closure, a
     * blocking call on another thread. */
    Flremote__EchoRequest req = echo_req("pending", 9);
    fl_future_t *fs[K];
    for (int i = 0; i < K; i++)
        fs[i] = call_f(gw, M_BLOCK, &req.base, LONG_MS);
    closure_ctx_t c = {.done = fl_test_latch_alloc(1)};
    fl_rpc_next_timeout(LONG_MS);
    flremote__remote_gateway__block(fl_rpc_gateway_service(gw), &req,
                                    echo_closure, &c);
    sync_job_t s = {.gw = gw, .rc = -1, .done = fl_test_latch_alloc(1)};
    pthread_t th;
    assert_int_equal(0, pthread_create(&th, NULL, sync_block_main, &s));
    peer_wait_parked(gw, 9, K + 2);

    uint64_t t0 = fl_clock_now_ns();
    peer_crash(&p);
    for (int i = 0; i < K; i++) {
        int rc = wait_code(fs[i]);
        if (rc != FL_EUNREACHABLE)
            fail_msg("pending future %d: %s (%s), want FL_EUNREACHABLE", i,
                     fl_err_name(rc), fl_future_message(fs[i]));
        fl_future_release(fs[i]);
    }
    wait_latch(c.done);
    assert_false(c.got_reply);
    assert_fl(FL_EUNREACHABLE, c.code);
    wait_latch(s.done);
    assert_int_equal(0, pthread_join(th, NULL));
    assert_fl(FL_EUNREACHABLE, s.rc);
    assert_true(s.reply_null);
    assert_elapsed("failing the pending calls", ms_since(t0), 0, PROMPT_MS);

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
        fl_future_t *f = call_f(gw, M_ECHO, &again.base, PROMPT_MS);
        int rc = wait_code(f);
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
        if (ms_since(t0) > RESTART_RETRY_MS)
            fail_msg("no call succeeded within %d ms of the restart (%d "
                     "attempts)",
                     RESTART_RETRY_MS, attempts);
        /* Pace the retries (the backoff decides when one can succeed). */
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    print_message("restart: first success after %d call(s), %llu ms\n",
                  attempts, (unsigned long long)ms_since(t0));
    expect_echo(gw, "and again", 3);
    fl_rpc_gateway_t *fresh = connect_gw(svc, p.plain, RG, NULL);
    expect_echo(fresh, "a new gateway", 4);

    fl_rpc_gateway_free(fresh);
    fl_rpc_gateway_free(gw);
    peer_stop(&p);
    service_end(svc);
    fl_test_latch_free(c.done);
    fl_test_latch_free(s.done);
}

/* ---- calls from the peer to the test process --------------------------------
 */

static void test_peer_tells_the_test_process(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    fx.back.counted = fl_test_latch_alloc(1);

    Flremote__CallBackReply *r = call_back(
        &fx, &(cb_args_t){.address = fl_rpc_endpoint_address(fx.back_ep),
                          .style = FLREMOTE__STYLE__STYLE_TELL,
                          .method = M_COUNT,
                          .n = 5});
    expect_cb_ok(r);
    cb_free(r);
    wait_latch(fx.back.counted);
    assert_int_equal(5, atomic_load(&fx.back.count));

    fx_end(&fx);
}

static void test_peer_calls_the_test_process_in_every_style(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    const char *addr = fl_rpc_endpoint_address(fx.back_ep);
    const Flremote__Style styles[] = {FLREMOTE__STYLE__STYLE_CLOSURE,
                                      FLREMOTE__STYLE__STYLE_FUTURE,
                                      FLREMOTE__STYLE__STYLE_SYNC};

    for (int i = 0; i < 3; i++) {
        Flremote__CallBackReply *r =
            call_back(&fx, &(cb_args_t){.address = addr,
                                        .style = styles[i],
                                        .method = M_ECHO,
                                        .text = "from the peer",
                                        .n = 100 + i});
        expect_cb_ok(r);
        assert_int_equal(100 + i, r->n);
        assert_string_equal("from the peer", r->text);
        if (styles[i] == FLREMOTE__STYLE__STYLE_CLOSURE)
            assert_int_equal(1, r->closure_runs);
        cb_free(r);
    }

    /* A large reply from us to the peer. */
    Flremote__CallBackReply *r =
        call_back(&fx, &(cb_args_t){.address = addr,
                                    .style = FLREMOTE__STYLE__STYLE_FUTURE,
                                    .method = M_SIZE,
                                    .n = 1 << 20});
    expect_cb_ok(r);
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
    const char *addr = fl_rpc_endpoint_address(fx.back_ep);
    /* closure: fl_rpc_next_timeout; future: fl_rpc_call; sync. */
    const Flremote__Style styles[] = {FLREMOTE__STYLE__STYLE_CLOSURE,
                                      FLREMOTE__STYLE__STYLE_FUTURE,
                                      FLREMOTE__STYLE__STYLE_SYNC};

    for (int i = 0; i < 3; i++) {
        Flremote__CallBackReply *r =
            call_back(&fx, &(cb_args_t){.address = addr,
                                        .style = styles[i],
                                        .method = M_BLOCK,
                                        .text = "never answered in time",
                                        .timeout_ms = SHORT_MS});
        assert_fl_ok(r->connect_code);
        if (r->code != FL_ETIMEDOUT)
            fail_msg("style %d: %s (%s), want FL_ETIMEDOUT", (int)styles[i],
                     fl_err_name(r->code), r->message);
        assert_elapsed("the peer's call timeout", (uint64_t)r->elapsed_ms,
                       SHORT_MS, SHORT_MS + PROMPT_MS);
        cb_free(r);
    }

    /* Late answers to the three reach the peer after its timeouts; the
     * peer's next call is served. */
    assert_int_equal(3, back_release_all(&fx.back));
    Flremote__CallBackReply *r =
        call_back(&fx, &(cb_args_t){.address = addr,
                                    .style = FLREMOTE__STYLE__STYLE_SYNC,
                                    .method = M_ECHO,
                                    .text = "after late answers",
                                    .n = 8});
    expect_cb_ok(r);
    assert_int_equal(8, r->n);
    cb_free(r);

    fx_end(&fx);
}

static void test_peer_gets_the_test_processs_errors_intact(void **state)
{
    (void)state;
    fixture_t fx;
    fx_begin(&fx);
    const char *addr = fl_rpc_endpoint_address(fx.back_ep);
    const Flremote__Style styles[] = {FLREMOTE__STYLE__STYLE_CLOSURE,
                                      FLREMOTE__STYLE__STYLE_FUTURE,
                                      FLREMOTE__STYLE__STYLE_SYNC};

    for (int i = 0; i < 3; i++) {
        Flremote__CallBackReply *r =
            call_back(&fx, &(cb_args_t){.address = addr,
                                        .style = styles[i],
                                        .method = M_FAIL,
                                        .code = FL_EUSER + 77 + i,
                                        .text = "from the test process"});
        assert_fl_ok(r->connect_code);
        assert_fl(FL_EUSER + 77 + i, r->code);
        /* A blocking call returns only the code. */
        if (styles[i] != FLREMOTE__STYLE__STYLE_SYNC)
            assert_string_equal("from the test process", r->message);
        cb_free(r);
    }

    Flremote__CallBackReply *r =
        call_back(&fx, &(cb_args_t){.address = addr,
                                    .style = FLREMOTE__STYLE__STYLE_FUTURE,
                                    .method = M_FAIL,
                                    .code = FL_ESTATE});
    assert_fl(FL_ESTATE, r->code);
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
    fl_fencing_token_t right = token_of(TEST_TOKEN_BYTE);
    fl_fencing_token_t wrong = token_of(WRONG_TOKEN_BYTE);

    Flremote__CallBackReply *r =
        call_back(&fx, &(cb_args_t){.address = fenced,
                                    .token = &right,
                                    .style = FLREMOTE__STYLE__STYLE_FUTURE,
                                    .method = M_ECHO,
                                    .text = "right token",
                                    .n = 1});
    expect_cb_ok(r);
    assert_int_equal(1, r->n);
    cb_free(r);

    r = call_back(&fx, &(cb_args_t){.address = fenced,
                                    .token = &wrong,
                                    .style = FLREMOTE__STYLE__STYLE_SYNC,
                                    .method = M_ECHO,
                                    .text = "wrong token"});
    assert_fl_ok(r->connect_code);
    assert_fl(FL_EFENCING, r->code);
    cb_free(r);

    r = call_back(&fx, &(cb_args_t){.address = fenced,
                                    .style = FLREMOTE__STYLE__STYLE_CLOSURE,
                                    .method = M_ECHO,
                                    .text = "no token"});
    assert_fl_ok(r->connect_code);
    assert_fl(FL_EFENCING, r->code);
    cb_free(r);

    /* Not started: the connect succeeds, the call fails. */
    r = call_back(
        &fx, &(cb_args_t){.address = fl_rpc_endpoint_address(fx.backidle_ep),
                          .style = FLREMOTE__STYLE__STYLE_FUTURE,
                          .method = M_ECHO,
                          .text = "too early"});
    assert_fl_ok(r->connect_code);
    assert_fl(FL_ENOTSTARTED, r->code);
    cb_free(r);

    /* An id the test process does not have: the connect fails. */
    char address[300];
    snprintf(address, sizeof address, "fling.tcp://127.0.0.1:%d/nobody",
             fl_rpc_service_port(fx.svc));
    r = call_back(&fx, &(cb_args_t){.address = address,
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
