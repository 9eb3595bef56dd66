/*
 * grpc_peer - gRPC C++ unary calls, the peer of fling's rpc.remote_*
 * benchmarks.
 *
 *   grpc_peer [--list] [name...]
 *
 * Runs the named benchmarks (all of them when none is named) and prints one
 * line per figure to stdout, in fling_bench's format:
 *
 *   <benchmark>.<metric> <value> <unit>
 *
 * Diagnostics go to stderr. Exit status: 0 when every benchmark ran, 1 when
 * one failed, 2 for a bad command line.
 *
 * The server runs in a child process, forked before gRPC is initialised in
 * either process: an Echo service (echo.proto) on the callback API,
 * listening on 127.0.0.1 port 0 with insecure credentials and, when a _tls
 * benchmark runs, on a second port 0 with TLS credentials, gRPC's defaults
 * otherwise. It writes its ports to a pipe and serves until the read end of
 * a second pipe, its control pipe, sees end-of-file: the parent closes it
 * when done (or dies), and reaps the child; on an error the parent kills
 * it. The client uses one channel per port, one HTTP/2 connection each,
 * for every call. Request and reply are both a 64-byte Blob.
 *
 *   grpc.unary    200,000 sequential calls on the blocking stub (after
 *                 10,000 for warm-up), each one timed: p50_us, p99_us, rate.
 *   grpc.unary64  500,000 calls with 64 in flight (after 20,000 for
 *                 warm-up) on the callback API: 64 calls are started, and
 *                 the completion of each one starts the next. rate.
 *   grpc.unary_tls, grpc.unary64_tls
 *                 the same code on the TLS channel: mutual TLS
 *                 (grpc::SslServerCredentials requiring and verifying the
 *                 client's certificate, grpc::SslCredentials with the
 *                 client's), from the test certificates of
 *                 scripts/test-certs.sh: $FLING_BENCH_CERTS when set
 *                 (scripts/bench.sh makes one set per run, the same as
 *                 fling_bench's), else a scratch folder made here and
 *                 removed at the end. server.* on the server, client.* on
 *                 the client, ca.crt trusted by both; gRPC checks that the
 *                 server's certificate names 127.0.0.1.
 */
#include "echo.grpc.pb.h"
#include "echo.pb.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FLING_TEST_CERTS_SCRIPT
#error "FLING_TEST_CERTS_SCRIPT: the path of scripts/test-certs.sh"
#endif

namespace
{

// ---- sizes ------------------------------------------------------------------

constexpr size_t kDataSize = 62; // + tag and length = a 64-byte Blob
constexpr uint32_t kUnaryWarmup = 10000;
constexpr uint32_t kUnaryCalls = 200000;
constexpr uint32_t kDepth = 64;
constexpr uint32_t kPipelinedWarmup = 20000;
// Half of fling's 1,000,000: at 15,000-25,000 calls/s on the 2-core VM a
// million calls take 40-70 s per run, and 20-35 s give the same rate.
constexpr uint32_t kPipelinedCalls = 500000;
// How long one pipelined run may take before it is called hung.
constexpr auto kHangTimeout = std::chrono::minutes(10);

// ---- output -----------------------------------------------------------------

void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// note writes one diagnostic line to stderr.
void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    std::fputs("grpc_peer: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
}

// emit prints one figure with 0 or 1 decimals and flushes.
void emit(const char *bench, const char *metric, double value, int decimals,
          const char *unit)
{
    std::printf("%s.%s %.*f %s\n", bench, metric, decimals, value, unit);
    std::fflush(stdout);
}

uint64_t now_ns()
{
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

// make_blob fills b with kDataSize bytes whose first 8 are seq.
void make_blob(flingbench::Blob *b, uint64_t seq)
{
    char data[kDataSize];
    std::memset(data, 0x5a, sizeof data);
    std::memcpy(data, &seq, sizeof seq);
    b->set_data(data, sizeof data);
}

// ---- the test certificates -------------------------------------------------

// The PEM files of both sides (scripts/test-certs.sh's set).
struct Certs {
    std::string ca, server_crt, server_key, client_crt, client_key;
};

// The scratch folder made by make_certs, removed by the destructor.
struct Scratch {
    std::string dir;
    ~Scratch()
    {
        if (!dir.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
        }
    }
};

// on_path: an executable named prog is in $PATH.
bool on_path(const char *prog)
{
    const char *path = std::getenv("PATH");
    std::stringstream dirs(path != nullptr ? path : "");
    std::string dir;
    while (std::getline(dirs, dir, ':'))
        if (access(((dir.empty() ? "." : dir) + "/" + prog).c_str(), X_OK) == 0)
            return true;
    return false;
}

// make_certs runs scripts/test-certs.sh into a new scratch folder (kept in
// *scratch). true, or false after saying why. Before any thread starts.
bool make_certs(Scratch *scratch)
{
    const char *script = FLING_TEST_CERTS_SCRIPT;
    if (!on_path("openssl")) {
        note("openssl is not in PATH: the _tls benchmarks make their "
             "certificates with %s, which needs it; install the Debian "
             "package openssl (scripts/deps.sh test)",
             script);
        return false;
    }
    const char *tmp = std::getenv("TMPDIR");
    std::string dir = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") +
                      "/grpc-peer-certs.XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) {
        note("cannot make a scratch folder %s: %s", dir.c_str(),
             std::strerror(errno));
        return false;
    }
    scratch->dir = dir;
    posix_spawn_file_actions_t fa;
    char *argv[] = {const_cast<char *>(script), dir.data(), nullptr};
    pid_t pid;
    int err = posix_spawn_file_actions_init(&fa);
    if (err == 0) {
        // The file list it prints is of no interest; its errors go to
        // stderr, beside ours.
        err = posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null",
                                               O_WRONLY, 0);
        if (err == 0)
            err = posix_spawn(&pid, script, &fa, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
    }
    if (err != 0) {
        note("cannot run %s: %s", script, std::strerror(err));
        return false;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        note("%s %s failed (status 0x%x, its reason above): no certificates "
             "for TLS",
             script, dir.c_str(), status);
        return false;
    }
    note("test certificates made in %s (removed at the end)", dir.c_str());
    return true;
}

// read_file reads path into *text. false after saying why.
bool read_file(const std::string &path, std::string *text)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in || ss.str().empty()) {
        note("cannot read %s: %s", path.c_str(),
             errno != 0 ? std::strerror(errno) : "empty");
        return false;
    }
    *text = ss.str();
    return true;
}

// load_certs reads the certificates of $FLING_BENCH_CERTS, or of a set
// made into a scratch folder. true, or false after saying why.
bool load_certs(Certs *c, Scratch *scratch)
{
    const char *given = std::getenv("FLING_BENCH_CERTS");
    std::string dir;
    if (given != nullptr && *given != '\0') {
        dir = given;
    } else {
        if (!make_certs(scratch))
            return false;
        dir = scratch->dir;
    }
    return read_file(dir + "/ca.crt", &c->ca) &&
           read_file(dir + "/server.crt", &c->server_crt) &&
           read_file(dir + "/server.key", &c->server_key) &&
           read_file(dir + "/client.crt", &c->client_crt) &&
           read_file(dir + "/client.key", &c->client_key);
}

// ---- the server (child process) ---------------------------------------------

class EchoService final : public flingbench::Echo::CallbackService
{
    grpc::ServerUnaryReactor *Echo(grpc::CallbackServerContext *ctx,
                                   const flingbench::Blob *req,
                                   flingbench::Blob *reply) override
    {
        reply->set_data(req->data());
        grpc::ServerUnaryReactor *r = ctx->DefaultReactor();
        r->Finish(grpc::Status::OK);
        return r;
    }
};

// serve runs in the child: starts the server (with a TLS port when certs
// is not null), writes its ports (two ints, the TLS one 0 when none) to
// port_fd, serves until ctl_fd reads end-of-file. Returns the exit status.
int serve(int port_fd, int ctl_fd, const Certs *certs)
{
    EchoService service;
    grpc::ServerBuilder builder;
    int ports[2] = {0, 0};
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &ports[0]);
    if (certs != nullptr) {
        grpc::SslServerCredentialsOptions o(
            GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
        o.pem_root_certs = certs->ca;
        o.pem_key_cert_pairs.push_back({certs->server_key, certs->server_crt});
        builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(o),
                                 &ports[1]);
    }
    builder.RegisterService(&service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (server == nullptr || ports[0] <= 0 ||
        (certs != nullptr && ports[1] <= 0)) {
        note("server: could not listen on 127.0.0.1:0");
        return 1;
    }
    if (write(port_fd, ports, sizeof ports) !=
        static_cast<ssize_t>(sizeof ports)) {
        note("server: writing the port: %s", std::strerror(errno));
        return 1;
    }
    close(port_fd);
    char c;
    ssize_t n;
    while ((n = read(ctl_fd, &c, 1)) != 0 && !(n < 0 && errno != EINTR)) {
    }
    server->Shutdown();
    server->Wait();
    return 0;
}

// The server child as the parent sees it.
struct Child {
    pid_t pid = -1;
    int ctl_fd = -1;       // write end of the control pipe
    int ports[2] = {0, 0}; // insecure, TLS (0: none)
};

// start_server forks the server, with a TLS port when certs is not null.
// true on success; false after saying why, with no child left running.
bool start_server(Child *c, const Certs *certs)
{
    int port_pipe[2], ctl_pipe[2];
    if (pipe(port_pipe) != 0) {
        note("pipe: %s", std::strerror(errno));
        return false;
    }
    if (pipe(ctl_pipe) != 0) {
        note("pipe: %s", std::strerror(errno));
        close(port_pipe[0]);
        close(port_pipe[1]);
        return false;
    }
    std::fflush(nullptr);
    c->pid = fork();
    if (c->pid < 0) {
        note("fork: %s", std::strerror(errno));
        close(port_pipe[0]);
        close(port_pipe[1]);
        close(ctl_pipe[0]);
        close(ctl_pipe[1]);
        return false;
    }
    if (c->pid == 0) {
        close(port_pipe[0]);
        close(ctl_pipe[1]);
        _exit(serve(port_pipe[1], ctl_pipe[0], certs));
    }
    close(port_pipe[1]);
    close(ctl_pipe[0]);
    c->ctl_fd = ctl_pipe[1];
    ssize_t n;
    do
        n = read(port_pipe[0], c->ports, sizeof c->ports);
    while (n < 0 && errno == EINTR);
    close(port_pipe[0]);
    if (n != static_cast<ssize_t>(sizeof c->ports) || c->ports[0] <= 0 ||
        (certs != nullptr && c->ports[1] <= 0)) {
        note("the server did not tell its port");
        close(c->ctl_fd);
        kill(c->pid, SIGKILL);
        waitpid(c->pid, nullptr, 0);
        c->pid = -1;
        return false;
    }
    return true;
}

// stop_server closes the control pipe and reaps the child, killing it
// first unless ok. true if it exited with status 0 after a graceful stop.
bool stop_server(Child *c, bool ok)
{
    if (c->pid <= 0)
        return ok;
    if (!ok)
        kill(c->pid, SIGKILL);
    close(c->ctl_fd);
    int status = 0;
    while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {
    }
    c->pid = -1;
    if (ok && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        note("the server ended with status 0x%x", status);
        return false;
    }
    return ok;
}

// ---- grpc.unary -------------------------------------------------------------

// calls makes n blocking calls; when lat is not null, stores each one's time
// in ns. false after saying why.
bool calls(const char *bench, flingbench::Echo::Stub *stub, uint64_t first,
           uint32_t n, uint64_t *lat)
{
    flingbench::Blob req, reply;
    for (uint32_t i = 0; i < n; i++) {
        grpc::ClientContext ctx;
        make_blob(&req, first + i);
        uint64_t t0 = now_ns();
        grpc::Status s = stub->Echo(&ctx, req, &reply);
        if (lat != nullptr)
            lat[i] = now_ns() - t0;
        if (!s.ok()) {
            note("%s: call %llu: %s", bench,
                 static_cast<unsigned long long>(first + i),
                 s.error_message().c_str());
            return false;
        }
        if (reply.data() != req.data()) {
            note("%s: call %llu: wrong reply", bench,
                 static_cast<unsigned long long>(first + i));
            return false;
        }
    }
    return true;
}

// percentile_us: the nearest-rank pct-th percentile (1..100) of n > 0
// sorted nanosecond samples, in microseconds.
double percentile_us(const std::vector<uint64_t> &sorted, unsigned pct)
{
    size_t n = sorted.size();
    size_t rank = std::max<size_t>(1, std::min(n, (n * pct + 99) / 100));
    return static_cast<double>(sorted[rank - 1]) / 1e3;
}

bool bench_unary(const char *bench, flingbench::Echo::Stub *stub)
{
    std::vector<uint64_t> lat(kUnaryCalls);
    if (!calls(bench, stub, 0, kUnaryWarmup, nullptr))
        return false;
    uint64_t t0 = now_ns();
    if (!calls(bench, stub, kUnaryWarmup, kUnaryCalls, lat.data()))
        return false;
    double secs = static_cast<double>(now_ns() - t0) / 1e9;
    std::sort(lat.begin(), lat.end());
    note("%s: %u sequential calls in %.3f s (after %u for warm-up)", bench,
         kUnaryCalls, secs, kUnaryWarmup);
    emit(bench, "p50_us", percentile_us(lat, 50), 1, "us");
    emit(bench, "p99_us", percentile_us(lat, 99), 1, "us");
    emit(bench, "rate", kUnaryCalls / secs, 0, "calls/s");
    return true;
}

// ---- grpc.unary64 -----------------------------------------------------------

// One pipelined run: kDepth calls in flight until n have been made.
class Pipeline
{
  public:
    Pipeline(flingbench::Echo::Stub *stub, uint64_t first, uint64_t n)
        : stub_(stub), next_(first), end_(first + n)
    {
    }

    // run starts kDepth calls and BLOCKS until every call made has ended.
    // true if all n succeeded; *secs is then the time from the start to the
    // last completion.
    bool run(const char *bench, double *secs)
    {
        uint64_t t0 = now_ns();
        // The run's own token: in_flight_ cannot reach 0 while the window is
        // being filled.
        in_flight_.store(1, std::memory_order_relaxed);
        for (uint32_t i = 0; i < kDepth; i++)
            issue();
        release();
        std::unique_lock<std::mutex> lock(mu_);
        if (!cv_.wait_for(lock, kHangTimeout, [this] { return ended_; })) {
            note("%s: HUNG: not finished after %lld s; giving up", bench,
                 static_cast<long long>(
                     std::chrono::seconds(kHangTimeout).count()));
            std::fflush(stdout);
            _exit(1);
        }
        if (!error_.empty()) {
            note("%s: %s", bench, error_.c_str());
            return false;
        }
        *secs = static_cast<double>(t_end_ - t0) / 1e9;
        return true;
    }

  private:
    struct Call {
        grpc::ClientContext ctx;
        flingbench::Blob req, reply;
    };

    // issue starts the next call, unless all have been started or one
    // failed. Any thread (the caller, or gRPC's callback threads).
    void issue()
    {
        if (failed_.load(std::memory_order_relaxed))
            return;
        uint64_t seq = next_.fetch_add(1, std::memory_order_relaxed);
        if (seq >= end_)
            return;
        in_flight_.fetch_add(1, std::memory_order_relaxed);
        Call *c = new Call;
        make_blob(&c->req, seq);
        stub_->async()->Echo(
            &c->ctx, &c->req, &c->reply,
            [this, c, seq](grpc::Status s) { done(c, seq, s); });
    }

    // done runs once per call on a gRPC callback thread: checks it, frees
    // it, starts the next one.
    void done(Call *c, uint64_t seq, const grpc::Status &s)
    {
        bool ok = s.ok() && c->reply.data() == c->req.data();
        if (!ok) {
            std::lock_guard<std::mutex> lock(mu_);
            if (error_.empty())
                error_ =
                    "call " + std::to_string(seq) + ": " +
                    (s.ok() ? std::string("wrong reply") : s.error_message());
            failed_.store(true, std::memory_order_relaxed);
        }
        delete c;
        issue();
        release();
    }

    // release ends one call (or the run's token); the last one ends the run.
    void release()
    {
        // acq_rel: the last decrement sees every other call's writes.
        if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::lock_guard<std::mutex> lock(mu_);
            t_end_ = now_ns();
            ended_ = true;
            cv_.notify_one();
        }
    }

    flingbench::Echo::Stub *stub_;
    std::atomic<uint64_t> next_;
    const uint64_t end_;
    std::atomic<uint64_t> in_flight_{0};
    std::atomic<bool> failed_{false};
    std::mutex mu_; // guards the fields below
    std::condition_variable cv_;
    bool ended_ = false;
    uint64_t t_end_ = 0;
    std::string error_;
};

bool bench_unary64(const char *bench, flingbench::Echo::Stub *stub)
{
    double secs = 0;
    {
        Pipeline warm(stub, 0, kPipelinedWarmup);
        if (!warm.run(bench, &secs))
            return false;
    }
    Pipeline p(stub, kPipelinedWarmup, kPipelinedCalls);
    if (!p.run(bench, &secs))
        return false;
    note("%s: %u calls, %u in flight, in %.3f s (after %u for warm-up)", bench,
         kPipelinedCalls, kDepth, secs, kPipelinedWarmup);
    emit(bench, "rate", kPipelinedCalls / secs, 0, "calls/s");
    return true;
}

// ---- the table and main -----------------------------------------------------

struct Bench {
    const char *name;
    bool (*run)(const char *name, flingbench::Echo::Stub *stub);
    bool tls; // on the TLS channel
    const char *what;
};

const Bench kBenches[] = {
    {"grpc.unary", bench_unary, false,
     "200,000 sequential unary calls, 64-byte request and reply"},
    {"grpc.unary64", bench_unary64, false,
     "500,000 unary calls, 64 in flight (callback API)"},
    {"grpc.unary_tls", bench_unary, true,
     "grpc.unary over mutual TLS (SslCredentials, client cert required)"},
    {"grpc.unary64_tls", bench_unary64, true,
     "grpc.unary64 over mutual TLS (SslCredentials, client cert required)"},
};

// stub_for returns the stub of the insecure or the TLS channel, creating
// channel and stub on first use (one HTTP/2 connection each).
flingbench::Echo::Stub *stub_for(bool tls, const Child &child,
                                 const Certs &certs,
                                 std::unique_ptr<flingbench::Echo::Stub> *stubs)
{
    std::unique_ptr<flingbench::Echo::Stub> &stub = stubs[tls ? 1 : 0];
    if (stub != nullptr)
        return stub.get();
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (tls) {
        grpc::SslCredentialsOptions o;
        o.pem_root_certs = certs.ca;
        o.pem_private_key = certs.client_key;
        o.pem_cert_chain = certs.client_crt;
        creds = grpc::SslCredentials(o);
    } else {
        creds = grpc::InsecureChannelCredentials();
    }
    stub = flingbench::Echo::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(child.ports[tls ? 1 : 0]), creds));
    return stub.get();
}

} // namespace

int main(int argc, char **argv)
{
    std::vector<const Bench *> sel;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (std::strcmp(a, "--list") == 0) {
            for (const Bench &b : kBenches)
                std::printf("%-20s %s\n", b.name, b.what);
            return 0;
        }
        if (std::strcmp(a, "-h") == 0 || std::strcmp(a, "--help") == 0) {
            std::printf("usage: grpc_peer [--list] [name...]\n");
            return 0;
        }
        const Bench *found = nullptr;
        for (const Bench &b : kBenches)
            if (std::strcmp(b.name, a) == 0)
                found = &b;
        if (found == nullptr) {
            std::string known;
            for (const Bench &b : kBenches)
                known += std::string(" ") + b.name;
            note("unknown benchmark '%s'; known:%s", a, known.c_str());
            return 2;
        }
        if (std::find(sel.begin(), sel.end(), found) == sel.end())
            sel.push_back(found);
    }
    if (sel.empty())
        for (const Bench &b : kBenches)
            sel.push_back(&b);

    // A dead server must fail a write, not kill the client.
    std::signal(SIGPIPE, SIG_IGN);
    // The certificates, when a _tls benchmark runs; without them those
    // fail and the others run.
    Scratch scratch;
    Certs certs;
    bool tls = false;
    for (const Bench *b : sel)
        tls = tls || b->tls;
    bool have_certs = tls && load_certs(&certs, &scratch);
    // Fork before gRPC starts any thread in this process.
    Child child;
    if (!start_server(&child, have_certs ? &certs : nullptr))
        return 1;
    note("gRPC %s, server on 127.0.0.1:%d, TLS on %d (pid %d)",
         grpc::Version().c_str(), child.ports[0], child.ports[1],
         static_cast<int>(child.pid));
    int failed = 0;
    {
        std::unique_ptr<flingbench::Echo::Stub> stubs[2];
        for (const Bench *b : sel) {
            if (b->tls && !have_certs) {
                note("%s: FAILED: no test certificates (above)", b->name);
                failed++;
            } else if (!b->run(b->name,
                               stub_for(b->tls, child, certs, stubs))) {
                note("%s: FAILED", b->name);
                failed++;
            }
        }
    }
    if (!stop_server(&child, failed == 0) && failed == 0)
        failed++;
    return failed > 0 ? 1 : 0;
}
