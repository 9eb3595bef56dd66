/*
 * hello - fling's RPC in one file: the HelloGateway / HelloEndpoint example
 * of Flink's RPC, in C.
 *
 * In Flink, a gateway is a Java interface (HelloGateway with sayHello), an
 * endpoint is a class implementing it (HelloEndpoint), and a caller gets a
 * proxy with rpcService.connect(address, HelloGateway.class). In fling:
 *
 *   gateway   a protobuf service, hello.proto, compiled by protoc-c into
 *             hello.pb-c.h/.c (messages, client stubs, a service struct);
 *   endpoint  the service struct filled with our handlers
 *             (HELLO__HELLO_GATEWAY__INIT), registered with an RPC service;
 *             every call runs on the endpoint's own "main thread", one at a
 *             time, so its state needs no locks;
 *   caller    fl_rpc_connect() gives a gateway; its ProtobufCService goes
 *             to the generated stubs, or to fl_rpc_call / fl_rpc_call_sync.
 *
 * The demo runs the same steps twice: first with the endpoint in this
 * process, then across two processes over TCP, with exactly the same calls
 * (only the address differs). Each run creates the endpoint, connects,
 * calls SayHello once in each call style, shows a per-call timeout and two
 * failures, closes the endpoint and frees everything. It prints what each
 * step gave and exits 0 only if every step of both runs gave what it
 * should.
 *
 *   fling_demo                 (built and run by `make hello`)
 *   fling_demo --serve [PORT]  the server process of the second run: an RPC
 *                              service on 127.0.0.1 (port 0 = any) with the
 *                              endpoint; it prints "address <addr>", starts
 *                              the endpoint when it reads "start" on stdin
 *                              (answering "started"), and shuts down
 *                              cleanly at the end of stdin
 */
#include <fling/fling.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hello.pb-c.h" /* generated from hello.proto by protoc-c */

/* ---- the endpoint -------------------------------------------------------- */

/* The endpoint's state. Only ever touched on the endpoint's main thread. */
typedef struct hello_endpoint {
    unsigned greeted;     /* SayHello calls answered or to be answered */
    unsigned pending;     /* replies deferred and not sent yet */
    fl_future_t *drained; /* on_stop's future: done when pending is 0 */
} hello_endpoint_t;

/* Where the endpoint's lines go: stdout, or stderr in the server process
 * (whose stdout talks to the demo). */
static FILE *say;
static const char *who = ""; /* "[server] " there */

static int hello_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    fprintf(say, "%s[endpoint] on_start: %s is ready\n", who,
            fl_rpc_endpoint_id(ep));
    return FL_OK; /* anything else: the endpoint fails to start */
}

/*
 * on_stop runs once when the endpoint is closed. Returning NULL means
 * "stopped". Here a reply may still be waiting for its delay: we return a
 * future instead, and the endpoint keeps serving (the delayed reply runs)
 * until we complete it.
 */
static fl_future_t *hello_on_stop(fl_rpc_endpoint_t *ep, void *state)
{
    hello_endpoint_t *self = state;
    fprintf(say, "%s[endpoint] on_stop: said hello %u times\n", who,
            self->greeted);
    if (self->pending == 0)
        return NULL;
    self->drained = fl_future_alloc();
    /* One reference for the endpoint, ours stays for completing it. */
    return fl_future_retain(self->drained);
}

/* A reply that waits for its delay (see the handler). */
typedef struct later {
    Hello__HelloReply_Closure closure;
    fl_rpc_call_t *call;
    char text[128];
} later_t;

/* Runs on the main thread once the delay is over: answers the call. */
static void reply_later(fl_rpc_endpoint_t *ep, void *state, void *arg)
{
    FL_RPC_ASSERT_MAIN_THREAD(ep); /* as every hook and task is */
    hello_endpoint_t *self = state;
    later_t *later = arg;
    Hello__HelloReply reply = HELLO__HELLO_REPLY__INIT;
    reply.message = later->text;
    /* If the caller has given up (timed out), the answer is discarded. */
    later->closure(&reply, later->call);
    free(later);
    if (--self->pending == 0 && self->drained != NULL) {
        fl_future_complete(self->drained, NULL, NULL); /* on_stop is done */
        fl_future_release(self->drained);
        self->drained = NULL;
    }
}

/* Runs instead of reply_later if the endpoint can no longer run it (it
 * was stopped or has terminated), on whatever thread finds that out: the
 * call must still be answered once. (It must not touch the state.) */
static void drop_later(void *arg)
{
    later_t *later = arg;
    fl_rpc_fail(later->call, FL_ECANCELED, "the endpoint went away");
    free(later);
}

/*
 * The handler of SayHello, Flink's HelloEndpoint.sayHello. protoc-c names
 * the service struct's member say_hello, so HELLO__HELLO_GATEWAY__INIT(p)
 * expects a function named p##say_hello. It runs on the endpoint's main
 * thread; req is borrowed until it returns. It must answer the call
 * exactly once: closure(&reply, call) now, fl_rpc_fail, or later through
 * fl_rpc_defer.
 */
static void hello_endpoint_say_hello(Hello__HelloGateway_Service *service,
                                     const Hello__HelloRequest *req,
                                     Hello__HelloReply_Closure closure,
                                     void *call)
{
    hello_endpoint_t *self = fl_rpc_call_state(call);
    if (req->name == NULL || req->name[0] == '\0') {
        /* The caller gets exactly this code and message. */
        fl_rpc_fail(call, FL_EINVAL, "SayHello needs a name");
        return;
    }
    self->greeted++;

    if (req->delay_ms == 0) {
        /* Reply now. fling packs the reply before closure() returns, so
         * the reply and its text may live on the stack. */
        char text[128];
        snprintf(text, sizeof text, "Hello, %.100s!", req->name);
        Hello__HelloReply reply = HELLO__HELLO_REPLY__INIT;
        reply.message = text;
        closure(&reply, call);
        return;
    }

    /* Reply later, without blocking the main thread: keep the call open
     * and schedule the answer on the main thread after the delay. */
    later_t *later = malloc(sizeof *later);
    if (later == NULL) {
        fl_rpc_fail(call, FL_ENOMEM, NULL);
        return;
    }
    later->closure = closure;
    later->call = fl_rpc_defer(call);
    snprintf(later->text, sizeof later->text, "Hello, %.100s, at last!",
             req->name);
    self->pending++;
    /* Always consumes later: if reply_later cannot run, drop_later does. */
    int rc = fl_rpc_schedule_run_async(fl_rpc_call_endpoint(call), reply_later,
                                       later, drop_later,
                                       (int64_t)req->delay_ms, NULL);
    if (rc != FL_OK)
        self->pending--;
}

/* The implementation: HelloGateway with our handler. Must outlive the
 * endpoint, hence static. */
static Hello__HelloGateway_Service hello_impl =
    HELLO__HELLO_GATEWAY__INIT(hello_endpoint_);

/* ---- the caller's side --------------------------------------------------- */

static int failures;

/* expect records a step that did not give the expected result. */
static void expect(bool ok, const char *step)
{
    if (!ok) {
        printf("   ^ unexpected result in step '%s'\n", step);
        failures++;
    }
}

/*
 * The closure of a closure-style call. It runs once: with the reply
 * (borrowed, freed after the return) or with NULL on failure, when
 * fl_rpc_last_error() and fl_rpc_last_message() say why. Called from
 * outside any endpoint, as here, it runs on the thread that completes the
 * call, so it only copies the answer and completes a future that main()
 * waits on.
 */
typedef struct reply_box {
    fl_future_t *done;
    char message[128];
} reply_box_t;

static void on_hello_reply(const Hello__HelloReply *reply, void *data)
{
    reply_box_t *box = data;
    if (reply == NULL) {
        fl_future_fail(box->done, fl_rpc_last_error(), "%s",
                       fl_rpc_last_message());
        return;
    }
    snprintf(box->message, sizeof box->message, "%s", reply->message);
    fl_future_complete(box->done, box->message, NULL);
}

/* print_failure prints a failed call's code name and message. */
static void print_failure(int code, const char *message)
{
    printf("%s: %s\n", fl_err_name(code), message);
}

/* Starts the endpoint: directly, or by asking the server process. */
typedef int (*start_fn)(void *arg);

/* Connect to address and run steps 0-6 against the endpoint there. */
static int run_steps(fl_rpc_service_t *svc, const char *address, start_fn start,
                     void *start_arg)
{
    /* Connect a gateway by address, as a caller elsewhere would. The
     * future's value is the gateway; take it to own it. For a
     * "fling.tcp://" address this opens a TCP connection and runs the
     * handshake (protocol version, does the endpoint implement the
     * gateway?). */
    fl_future_t *cf;
    int rc = fl_rpc_connect(svc, address, &hello__hello_gateway__descriptor,
                            NULL, &cf);
    if (rc != FL_OK) {
        fprintf(stderr, "fl_rpc_connect: %s\n", fl_strerror(rc));
        return rc;
    }
    rc = fl_future_wait(cf, FL_INFINITE);
    if (rc != FL_OK) {
        fprintf(stderr, "connect: %s\n", fl_future_message(cf));
        fl_future_release(cf);
        return rc;
    }
    fl_rpc_gateway_t *gw = fl_future_take_value(cf);
    fl_future_release(cf);
    printf("gateway connected to %s\n", fl_rpc_gateway_address(gw));

    /* What the generated stubs take, and the method index that
     * fl_rpc_call and fl_rpc_call_sync take. */
    ProtobufCService *hello = fl_rpc_gateway_service(gw);
    int index =
        fl_rpc_method_index(&hello__hello_gateway__descriptor, "SayHello");
    if (index < 0) {
        fl_rpc_gateway_free(gw);
        return FL_ENOENT;
    }
    const unsigned say_hello = (unsigned)index;

    Hello__HelloRequest req = HELLO__HELLO_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;

    /* 0. A call before start fails with FL_ENOTSTARTED. */
    req.name = "early bird";
    rc = fl_rpc_call_sync(gw, say_hello, &req.base, 0, &reply);
    printf("0. before start:   ");
    /* A blocking call's failure message: fl_rpc_last_message(). */
    print_failure(rc, fl_rpc_last_message());
    if (rc == FL_OK)
        protobuf_c_message_free_unpacked(reply, NULL);
    expect(rc == FL_ENOTSTARTED, "before start");

    /* Start it: on_start runs on its main thread, then calls are served. */
    if ((rc = start(start_arg)) != FL_OK) {
        fprintf(stderr, "starting the endpoint: %s\n", fl_strerror(rc));
        fl_rpc_gateway_free(gw);
        return rc;
    }

    /* 1. Blocking: waits for the reply (timeout 0: the gateway's). The
     * reply is ours to free. Never do this on an endpoint's main thread
     * (it is refused there with FL_EDEADLK). */
    req.name = "Ada";
    rc = fl_rpc_call_sync(gw, say_hello, &req.base, 0, &reply);
    if (rc == FL_OK) {
        printf("1. blocking:       %s\n",
               ((Hello__HelloReply *)reply)->message);
        protobuf_c_message_free_unpacked(reply, NULL);
    } else {
        printf("1. blocking:       ");
        print_failure(rc, fl_rpc_last_message());
    }
    expect(rc == FL_OK, "blocking");

    /* 2. Future: fl_rpc_call returns at once; the future's value is the
     * unpacked reply, owned by the future. */
    req.name = "Grace";
    fl_future_t *f;
    if ((rc = fl_rpc_call(gw, say_hello, &req.base, 0, &f)) == FL_OK) {
        rc = fl_future_wait(f, FL_INFINITE); /* or chain a continuation */
        printf("2. future:         ");
        if (rc == FL_OK)
            printf("%s\n", ((Hello__HelloReply *)fl_future_value(f))->message);
        else
            print_failure(rc, fl_future_message(f));
        fl_future_release(f); /* frees the reply too */
    }
    expect(rc == FL_OK, "future");

    /* 3. Closure: the generated stub with a closure; it returns at once and
     * the closure runs when the reply arrives. Calls copy the request, so
     * req may change (or be freed) as soon as the stub returns. */
    reply_box_t box = {.done = fl_future_alloc()};
    if (box.done == NULL) {
        fl_rpc_gateway_free(gw);
        return FL_ENOMEM;
    }
    req.name = "Linus";
    hello__hello_gateway__say_hello(hello, &req, on_hello_reply, &box);
    rc = fl_future_wait(box.done, FL_INFINITE);
    printf("3. closure:        ");
    if (rc == FL_OK)
        printf("%s\n", box.message);
    else
        print_failure(rc, fl_future_message(box.done));
    fl_future_release(box.done);
    expect(rc == FL_OK, "closure");

    /* 4. Tell: the stub with closure NULL, fire and forget. Nobody gets the
     * reply; fl_rpc_last_error() only says whether the call was queued. */
    req.name = "Barbara";
    hello__hello_gateway__say_hello(hello, &req, NULL, NULL);
    rc = fl_rpc_last_error();
    printf("4. tell:           %s (queued; the reply goes nowhere)\n",
           fl_err_name(rc));
    expect(rc == FL_OK, "tell");

    /* 5. A per-call timeout: the endpoint answers after 500 ms, this call
     * waits 100 ms. (For a stub call: fl_rpc_next_timeout(100) first.) */
    req.name = "Edsger";
    req.delay_ms = 500;
    rc = fl_rpc_call_sync(gw, say_hello, &req.base, 100, &reply);
    printf("5. timeout 100 ms: ");
    if (rc == FL_OK) {
        printf("%s\n", ((Hello__HelloReply *)reply)->message);
        protobuf_c_message_free_unpacked(reply, NULL);
    } else {
        print_failure(rc, fl_rpc_last_message());
    }
    expect(rc == FL_ETIMEDOUT, "timeout");
    req.delay_ms = 0;

    /* 6. A handler failure: the caller gets the handler's code and
     * message (here through a future, which carries the message). Across
     * the wire too. */
    req.name = "";
    if ((rc = fl_rpc_call(gw, say_hello, &req.base, 0, &f)) == FL_OK) {
        rc = fl_future_wait(f, FL_INFINITE);
        printf("6. handler fails:  ");
        if (rc == FL_OK)
            printf("%s\n", ((Hello__HelloReply *)fl_future_value(f))->message);
        else
            print_failure(rc, fl_future_message(f));
        fl_future_release(f);
    }
    expect(rc == FL_EINVAL, "handler fails");
    fl_rpc_gateway_free(gw);
    return FL_OK;
}

/* Create the endpoint "hello" (not started) on svc. */
static int create_endpoint(fl_rpc_service_t *svc, hello_endpoint_t *state,
                           fl_rpc_endpoint_t **ep)
{
    /* It exists and can be connected to, but it rejects calls until it is
     * started. */
    ProtobufCService *const services[] = {&hello_impl.base};
    fl_rpc_endpoint_opts_t eo = {
        .id = "hello",
        .services = services,
        .nservices = 1,
        .state = state,
        .on_start = hello_on_start,
        .on_stop = hello_on_stop,
    };
    int rc = fl_rpc_endpoint_create(svc, &eo, ep);
    if (rc != FL_OK)
        fprintf(stderr, "fl_rpc_endpoint_create: %s\n", fl_strerror(rc));
    else
        fprintf(say, "%sendpoint created at %s\n", who,
                fl_rpc_endpoint_address(*ep));
    return rc;
}

/*
 * Close the endpoint: on_stop runs, the endpoint serves until on_stop's
 * future completes (the delayed reply of step 5 is still sent), then it
 * terminates. Waits for the termination future. The endpoint greeted Ada,
 * Grace, Linus, Barbara (the tell) and Edsger.
 */
static int close_endpoint(fl_rpc_endpoint_t *ep, hello_endpoint_t *state)
{
    fprintf(say, "%sclosing the endpoint\n", who);
    fl_future_t *term = fl_rpc_endpoint_close(ep);
    if (term == NULL)
        return FL_ENOMEM;
    int rc = fl_future_wait(term, FL_INFINITE);
    fprintf(say, "%sendpoint terminated: %s\n", who,
            rc == FL_OK ? "ok" : fl_future_message(term));
    fl_future_release(term);
    expect(rc == FL_OK, "close");
    /* The endpoint's state is ours again. */
    fprintf(say, "%sthe endpoint said hello %u times\n", who, state->greeted);
    expect(state->greeted == 5, "greeted");
    return rc;
}

static int start_here(void *ep)
{
    return fl_rpc_endpoint_start(ep);
}

/* Run 1: endpoint and caller in this process ("fling://local/hello"). */
static int run_in_process(void)
{
    fl_rpc_service_t *svc = NULL;
    fl_rpc_endpoint_t *ep = NULL;
    hello_endpoint_t state = {0};
    /* A local RPC service with an actor system of its own (NULL options:
     * one worker per core, 10 s default timeout). */
    int rc = fl_rpc_service_alloc(NULL, &svc);
    if (rc != FL_OK) {
        fprintf(stderr, "fl_rpc_service_alloc: %s\n", fl_strerror(rc));
        return rc;
    }
    rc = create_endpoint(svc, &state, &ep);
    if (rc == FL_OK)
        rc = run_steps(svc, fl_rpc_endpoint_address(ep), start_here, ep);
    if (rc == FL_OK)
        rc = close_endpoint(ep, &state);
    /* Closes any endpoint still open and waits for it, then stops the
     * actor system the service owns. */
    if (fl_rpc_service_shutdown(svc) != FL_OK)
        failures++;
    fl_rpc_endpoint_free(ep);
    fl_rpc_service_free(svc);
    return rc;
}

/* ---- two processes --------------------------------------------------------
 */

/* The server process: serve the endpoint until stdin ends. */
static int serve(const char *port)
{
    say = stderr;
    who = "[server] ";
    fl_rpc_service_t *svc = NULL;
    fl_rpc_endpoint_t *ep = NULL;
    hello_endpoint_t state = {0};
    /* A remote service: listens on 127.0.0.1; its endpoints' addresses are
     * fling.tcp://127.0.0.1:<port>/<id>. */
    fl_rpc_service_opts_t so = {.bind_host = "127.0.0.1", .port = port};
    int rc = fl_rpc_service_alloc(&so, &svc);
    if (rc != FL_OK) {
        fprintf(stderr, "[server] fl_rpc_service_alloc: %s: %s\n",
                fl_strerror(rc), fl_rpc_last_message());
        return 1;
    }
    rc = create_endpoint(svc, &state, &ep);
    if (rc == FL_OK) {
        printf("address %s\n", fl_rpc_endpoint_address(ep));
        fflush(stdout);
        char line[64];
        while (fgets(line, sizeof line, stdin) != NULL) {
            if (strcmp(line, "start\n") == 0) {
                rc = fl_rpc_endpoint_start(ep);
                printf("%s\n", rc == FL_OK ? "started" : fl_strerror(rc));
                fflush(stdout);
            }
        }
        rc = close_endpoint(ep, &state);
    }
    if (fl_rpc_service_shutdown(svc) != FL_OK)
        failures++;
    fl_rpc_endpoint_free(ep);
    fl_rpc_service_free(svc);
    return rc == FL_OK && failures == 0 ? 0 : 1;
}

typedef struct server {
    pid_t pid;
    FILE *to;   /* its stdin */
    FILE *from; /* its stdout */
} server_t;

static int start_remote(void *arg)
{
    server_t *s = arg;
    char line[64];
    fputs("start\n", s->to);
    fflush(s->to);
    if (fgets(line, sizeof line, s->from) == NULL)
        return FL_EUNREACHABLE;
    return strcmp(line, "started\n") == 0 ? FL_OK : FL_ESTATE;
}

/* Run 2: the endpoint in a child process, called over TCP. */
static int run_two_processes(const char *self)
{
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        return FL_ESYSTEM;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return FL_ESYSTEM;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl(self, self, "--serve", "0", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    server_t s = {pid, fdopen(in[1], "w"), fdopen(out[0], "r")};
    int rc = FL_ESYSTEM;
    char line[512];
    if (s.to != NULL && s.from != NULL &&
        fgets(line, sizeof line, s.from) != NULL &&
        strncmp(line, "address ", 8) == 0) {
        line[strcspn(line, "\n")] = '\0';
        printf("server process %d serves %s\n", (int)pid, line + 8);
        /* The caller's side: a local-only service; its transport starts
         * with the first remote connect. */
        fl_rpc_service_t *svc = NULL;
        rc = fl_rpc_service_alloc(NULL, &svc);
        if (rc == FL_OK)
            rc = run_steps(svc, line + 8, start_remote, &s);
        fl_rpc_service_free(svc);
    }
    /* End of its stdin: the server closes the endpoint and exits. */
    if (s.to != NULL)
        fclose(s.to);
    else
        close(in[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (s.from != NULL)
        fclose(s.from);
    else
        close(out[0]);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    printf("server process stopped %s\n", clean ? "cleanly" : "with a failure");
    expect(clean, "server exit");
    return rc;
}

int main(int argc, char **argv)
{
    say = stdout;
    if (argc >= 2 && strcmp(argv[1], "--serve") == 0)
        return serve(argc >= 3 ? argv[2] : "0");

    printf("fling %s: HelloGateway / HelloEndpoint\n", FLING_VERSION_STRING);
    printf("\n== in one process ==\n");
    int rc = run_in_process();
    if (rc == FL_OK) {
        printf("\n== across two processes, over TCP ==\n");
        fflush(stdout);
        /* Our own program, for the server process. */
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) {
            rc = FL_ESYSTEM;
        } else {
            self[n] = '\0';
            rc = run_two_processes(self);
        }
    }
    if (rc != FL_OK || failures > 0) {
        printf("FAILED\n");
        return 1;
    }
    printf("every step gave the expected result\n");
    return 0;
}
