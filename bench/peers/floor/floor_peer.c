/*
 * floor_peer - the floor under fling's remote benchmarks: raw TCP between
 * two processes on 127.0.0.1, in plain C, without fling.
 *
 *   floor_peer [--list] [name...]
 *
 * Runs the named benchmarks (all of them when none is named) and prints one
 * line per figure to stdout, in fling_bench's format:
 *
 *   <benchmark>.<metric> <value> <unit>
 *
 * Diagnostics go to stderr. Exit status: 0 when every benchmark ran, 1 when
 * one failed, 2 for a bad command line.
 *
 * Every benchmark forks an echo server: the parent listens on 127.0.0.1
 * port 0, forks, and connects; the child accepts that one connection and
 * echoes every byte it reads, reading as much as is available (one read
 * into a large buffer) and writing it all back with one write. Both sides
 * use blocking sockets with TCP_NODELAY. The client closes the connection
 * when done, the child then reads end-of-file and exits, and the parent
 * reaps it; on an error the parent kills it first. A message is 64 bytes
 * with no framing at all: this is the least work two processes can do to
 * exchange it, what fling's rpc.remote_* benchmarks are compared with.
 *
 *   floor.pingpong   one 64-byte message out, its echo back, 200,000 round
 *                    trips (after 10,000 for warm-up), each one timed:
 *                    p50_us, p99_us, rate.
 *   floor.pipelined  64 messages of 64 bytes in flight, 1,000,000 messages
 *                    (after 100,000 for warm-up): the client sends 64, then,
 *                    whenever a read brings echoes back, sends as many new
 *                    messages as completed, in one write. rate.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../latency.h"

/* ---- sizes --------------------------------------------------------------- */

#define MSG_SIZE 64u
#define PINGPONG_WARMUP 10000u
#define PINGPONG_ROUND_TRIPS 200000u
#define PIPELINE_DEPTH 64u
#define PIPELINE_WARMUP 100000u
#define PIPELINE_MSGS 1000000u
/* The echo server's and the pipelined client's read buffer. */
#define BIG_BUF (256u * 1024u)

/* ---- output -------------------------------------------------------------- */

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* note writes one diagnostic line to stderr. */
static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("floor_peer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* emit prints one figure with 0 or 1 decimals and flushes. */
static void emit(const char *bench, const char *metric, double value,
                 int decimals, const char *unit)
{
    printf("%s.%s %.*f %s\n", bench, metric, decimals, value, unit);
    fflush(stdout);
}

/* now_ns: the monotonic clock in nanoseconds. */
static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- blocking I/O -------------------------------------------------------- */

/* write_all writes n bytes, retrying on EINTR and short writes. 0 or -1
 * (errno set). */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* read_full reads exactly n bytes. 1 when done, 0 at end-of-file (the peer
 * closed: an error for the caller), -1 on error (errno set). */
static int read_full(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n > 0) {
        ssize_t k = read(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (k == 0)
            return 0;
        p += k;
        n -= (size_t)k;
    }
    return 1;
}

/* read_some: one read of up to n bytes, retried on EINTR. */
static ssize_t read_some(int fd, void *buf, size_t n)
{
    ssize_t k;
    do
        k = read(fd, buf, n);
    while (k < 0 && errno == EINTR);
    return k;
}

static int set_nodelay(int fd)
{
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* ---- the echo server ----------------------------------------------------- */

/*
 * serve runs in the child: accepts one connection on lfd and echoes
 * everything until end-of-file. NEVER returns: exits 0 on end-of-file, 1 on
 * an error.
 */
static void serve(int lfd)
{
    static char buf[BIG_BUF];
    int fd;
    do
        fd = accept(lfd, NULL, NULL);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        note("server: accept: %s", strerror(errno));
        _exit(1);
    }
    close(lfd);
    if (set_nodelay(fd) != 0) {
        note("server: TCP_NODELAY: %s", strerror(errno));
        _exit(1);
    }
    for (;;) {
        ssize_t n = read_some(fd, buf, sizeof buf);
        if (n == 0)
            _exit(0);
        if (n < 0 || write_all(fd, buf, (size_t)n) != 0) {
            note("server: %s: %s", n < 0 ? "read" : "write", strerror(errno));
            _exit(1);
        }
    }
}

/* A client connected to its forked echo server. */
typedef struct link {
    int fd;
    pid_t child;
} link_t;

/*
 * link_open listens on 127.0.0.1 port 0, forks the echo server and
 * connects to it (TCP_NODELAY). 0 on success; -1 after saying why, with
 * nothing left open and no child left running.
 */
static int link_open(const char *bench, link_t *l)
{
    struct sockaddr_in a = {0};
    socklen_t alen = sizeof a;
    int lfd = -1;
    l->fd = -1;
    l->child = -1;
    a.sin_family = AF_INET;
    a.sin_port = 0;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) {
        note("%s: listen on 127.0.0.1:0: %s", bench, strerror(errno));
        goto fail;
    }
    /* Nothing buffered in stdio may be written twice. */
    fflush(NULL);
    l->child = fork();
    if (l->child < 0) {
        note("%s: fork: %s", bench, strerror(errno));
        goto fail;
    }
    if (l->child == 0)
        serve(lfd);
    if ((l->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(l->fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        set_nodelay(l->fd) != 0) {
        note("%s: connect to 127.0.0.1:%u: %s", bench,
             (unsigned)ntohs(a.sin_port), strerror(errno));
        goto fail;
    }
    close(lfd);
    return 0;
fail:
    if (lfd >= 0)
        close(lfd);
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->child > 0) {
        kill(l->child, SIGKILL);
        waitpid(l->child, NULL, 0);
    }
    l->child = -1;
    return -1;
}

/*
 * link_close closes the connection and reaps the server: gracefully (it
 * reads end-of-file and exits) when ok, otherwise it is killed first.
 * Returns 0 if the server exited with status 0 after a graceful close.
 */
static int link_close(const char *bench, link_t *l, bool ok)
{
    int status = 0, rc = 0;
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->child <= 0)
        return ok ? 0 : -1;
    if (!ok)
        kill(l->child, SIGKILL);
    while (waitpid(l->child, &status, 0) < 0) {
        if (errno != EINTR) {
            note("%s: waitpid: %s", bench, strerror(errno));
            rc = -1;
            break;
        }
    }
    if (ok && rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        note("%s: the echo server ended with status 0x%x", bench, status);
        rc = -1;
    }
    l->child = -1;
    return ok ? rc : -1;
}

/* ---- floor.pingpong ------------------------------------------------------ */

/* round_trips makes n round trips on fd; when lat is not NULL, stores each
 * one's time in ns. 0, or -1 after saying why. */
static int round_trips(const char *bench, int fd, uint64_t first, uint32_t n,
                       uint64_t *lat)
{
    char out[MSG_SIZE], in[MSG_SIZE];
    memset(out, 0x5a, sizeof out);
    for (uint32_t i = 0; i < n; i++) {
        uint64_t seq = first + i, back;
        memcpy(out, &seq, sizeof seq);
        uint64_t t0 = now_ns();
        if (write_all(fd, out, sizeof out) != 0) {
            note("%s: write: %s", bench, strerror(errno));
            return -1;
        }
        int r = read_full(fd, in, sizeof in);
        if (r <= 0) {
            note("%s: read: %s", bench,
                 r == 0 ? "connection closed" : strerror(errno));
            return -1;
        }
        if (lat != NULL)
            lat[i] = now_ns() - t0;
        memcpy(&back, in, sizeof back);
        if (back != seq) {
            note("%s: round trip %llu: wrong echo %llu", bench,
                 (unsigned long long)seq, (unsigned long long)back);
            return -1;
        }
    }
    return 0;
}

static int bench_pingpong(const char *bench)
{
    link_t l;
    uint64_t *lat = malloc(PINGPONG_ROUND_TRIPS * sizeof *lat);
    bool ok = false;
    if (lat == NULL) {
        note("%s: out of memory", bench);
        return -1;
    }
    if (link_open(bench, &l) != 0) {
        free(lat);
        return -1;
    }
    if (round_trips(bench, l.fd, 0, PINGPONG_WARMUP, NULL) != 0)
        goto out;
    uint64_t t0 = now_ns();
    if (round_trips(bench, l.fd, PINGPONG_WARMUP, PINGPONG_ROUND_TRIPS, lat) !=
        0)
        goto out;
    double secs = (double)(now_ns() - t0) / 1e9;
    qsort(lat, PINGPONG_ROUND_TRIPS, sizeof *lat, cmp_u64);
    note("%s: %u round trips of %u bytes in %.3f s (after %u for warm-up)",
         bench, PINGPONG_ROUND_TRIPS, MSG_SIZE, secs, PINGPONG_WARMUP);
    emit(bench, "p50_us", percentile_us(lat, PINGPONG_ROUND_TRIPS, 50), 1,
         "us");
    emit(bench, "p99_us", percentile_us(lat, PINGPONG_ROUND_TRIPS, 99), 1,
         "us");
    emit(bench, "rate", PINGPONG_ROUND_TRIPS / secs, 0, "round_trips/s");
    ok = true;
out:
    free(lat);
    return link_close(bench, &l, ok) == 0 && ok ? 0 : -1;
}

/* ---- floor.pipelined ----------------------------------------------------- */

/*
 * pipeline sends n messages with PIPELINE_DEPTH in flight. Message k of the
 * stream is 64 bytes of (k & 0xff), so every echoed byte can be checked
 * against its offset. *offset is the stream offset in bytes, kept across
 * calls. 0, or -1 after saying why.
 */
static int pipeline(const char *bench, int fd, uint64_t *offset, uint32_t n)
{
    static char out[PIPELINE_DEPTH * MSG_SIZE], in[BIG_BUF];
    uint64_t base = *offset / MSG_SIZE; /* first message of this run */
    uint64_t sent = 0, recvd_bytes = 0;
    uint64_t want = (uint64_t)n * MSG_SIZE;
    while (recvd_bytes < want) {
        /* Refill the window: one write for all the new messages. */
        uint64_t done = recvd_bytes / MSG_SIZE;
        uint64_t room = done + PIPELINE_DEPTH - sent;
        uint64_t k = room < n - sent ? room : n - sent;
        if (k > 0) {
            for (uint64_t i = 0; i < k; i++)
                memset(out + i * MSG_SIZE, (int)((base + sent + i) & 0xff),
                       MSG_SIZE);
            if (write_all(fd, out, k * MSG_SIZE) != 0) {
                note("%s: write: %s", bench, strerror(errno));
                return -1;
            }
            sent += k;
        }
        ssize_t r = read_some(fd, in, sizeof in);
        if (r <= 0) {
            note("%s: read: %s", bench,
                 r == 0 ? "connection closed" : strerror(errno));
            return -1;
        }
        for (ssize_t i = 0; i < r; i++) {
            uint64_t at = *offset + recvd_bytes + (uint64_t)i;
            if ((unsigned char)in[i] != ((at / MSG_SIZE) & 0xff)) {
                note("%s: wrong byte at stream offset %llu", bench,
                     (unsigned long long)at);
                return -1;
            }
        }
        recvd_bytes += (uint64_t)r;
        if (recvd_bytes > want) {
            note("%s: %llu bytes echoed, %llu sent", bench,
                 (unsigned long long)recvd_bytes, (unsigned long long)want);
            return -1;
        }
    }
    *offset += want;
    return 0;
}

static int bench_pipelined(const char *bench)
{
    link_t l;
    uint64_t offset = 0;
    bool ok = false;
    if (link_open(bench, &l) != 0)
        return -1;
    if (pipeline(bench, l.fd, &offset, PIPELINE_WARMUP) != 0)
        goto out;
    uint64_t t0 = now_ns();
    if (pipeline(bench, l.fd, &offset, PIPELINE_MSGS) != 0)
        goto out;
    double secs = (double)(now_ns() - t0) / 1e9;
    note("%s: %u messages of %u bytes, %u in flight, in %.3f s (after %u "
         "for warm-up)",
         bench, PIPELINE_MSGS, MSG_SIZE, PIPELINE_DEPTH, secs, PIPELINE_WARMUP);
    emit(bench, "rate", PIPELINE_MSGS / secs, 0, "msgs/s");
    ok = true;
out:
    return link_close(bench, &l, ok) == 0 && ok ? 0 : -1;
}

/* ---- the table and main -------------------------------------------------- */

typedef struct bench {
    const char *name;
    int (*run)(const char *name);
    const char *what;
} bench_t;

static const bench_t benches[] = {
    {"floor.pingpong", bench_pingpong,
     "raw TCP, 200,000 sequential round trips of 64 bytes"},
    {"floor.pipelined", bench_pipelined,
     "raw TCP, 1,000,000 messages of 64 bytes, 64 in flight, batched echo"},
};
#define NBENCHES (sizeof benches / sizeof benches[0])

int main(int argc, char **argv)
{
    const bench_t *sel[NBENCHES];
    size_t nsel = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--list") == 0) {
            for (size_t k = 0; k < NBENCHES; k++)
                printf("%-20s %s\n", benches[k].name, benches[k].what);
            return 0;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: floor_peer [--list] [name...]\n");
            return 0;
        }
        size_t k = 0;
        while (k < NBENCHES && strcmp(benches[k].name, a) != 0)
            k++;
        if (k == NBENCHES) {
            note("unknown benchmark '%s'; known: floor.pingpong "
                 "floor.pipelined",
                 a);
            return 2;
        }
        bool dup = false;
        for (size_t j = 0; j < nsel; j++)
            dup = dup || sel[j] == &benches[k];
        if (!dup)
            sel[nsel++] = &benches[k];
    }
    if (nsel == 0)
        for (size_t k = 0; k < NBENCHES; k++)
            sel[nsel++] = &benches[k];
    /* A dead server must fail a write, not kill the client. */
    signal(SIGPIPE, SIG_IGN);
    int failed = 0;
    for (size_t k = 0; k < nsel; k++) {
        if (sel[k]->run(sel[k]->name) != 0) {
            note("%s: FAILED", sel[k]->name);
            failed++;
        }
    }
    return failed > 0 ? 1 : 0;
}
