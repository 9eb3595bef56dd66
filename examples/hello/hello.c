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
 * main() creates the endpoint, connects, calls SayHello once in each call
 * style, shows a per-call timeout and two failures, closes the endpoint and
 * frees everything. It prints what each step gave and exits 0 only if every
 * step gave what it should.
 *
 *   fling_demo          (built and run by `make demo`)
 */
#include <fling/fling.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "hello.pb-c.h" /* generated from hello.proto by protoc-c */

/* ---- the endpoint -------------------------------------------------------- */

/* The endpoint's state. Only ever touched on the endpoint's main thread. */
typedef struct hello_endpoint {
    unsigned greeted;     /* SayHello calls answered or to be answered */
    unsigned pending;     /* replies deferred and not sent yet */
    fl_future_t *drained; /* on_stop's future: done when pending is 0 */
} hello_endpoint_t;

static int hello_on_start(fl_rpc_endpoint_t *ep, void *state)
{
    printf("[endpoint] on_start: %s is ready\n", fl_rpc_endpoint_id(ep));
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
    printf("[endpoint] on_stop: said hello %u times\n", self->greeted);
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
    int rc =
        fl_rpc_schedule_run_async(fl_rpc_call_endpoint(call), reply_later,
                                  later, drop_later, (int64_t)req->delay_ms);
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

int main(void)
{
    fl_rpc_service_t *svc = NULL;
    fl_rpc_endpoint_t *ep = NULL;
    fl_rpc_gateway_t *gw = NULL;
    hello_endpoint_t state = {0};
    int rc;

    printf("fling %s: HelloGateway / HelloEndpoint\n", FLING_VERSION_STRING);

    /* A local RPC service with an actor system of its own (NULL options:
     * one worker per core, 10 s default timeout). */
    if ((rc = fl_rpc_service_alloc(NULL, &svc)) != FL_OK) {
        fprintf(stderr, "fl_rpc_service_alloc: %s\n", fl_strerror(rc));
        return 1;
    }

    /* Create the endpoint: it exists and can be connected to, but it
     * rejects calls until it is started. */
    ProtobufCService *const services[] = {&hello_impl.base};
    fl_rpc_endpoint_opts_t eo = {
        .id = "hello",
        .services = services,
        .nservices = 1,
        .state = &state,
        .on_start = hello_on_start,
        .on_stop = hello_on_stop,
    };
    if ((rc = fl_rpc_endpoint_create(svc, &eo, &ep)) != FL_OK) {
        fprintf(stderr, "fl_rpc_endpoint_create: %s\n", fl_strerror(rc));
        goto out;
    }
    printf("endpoint created at %s\n", fl_rpc_endpoint_address(ep));

    /* Connect a gateway by address, as a caller elsewhere would. The
     * future's value is the gateway; take it to own it. */
    fl_future_t *cf;
    if ((rc = fl_rpc_connect(svc, fl_rpc_endpoint_address(ep),
                             &hello__hello_gateway__descriptor, NULL, &cf)) !=
        FL_OK) {
        fprintf(stderr, "fl_rpc_connect: %s\n", fl_strerror(rc));
        goto out;
    }
    rc = fl_future_wait(cf, FL_INFINITE);
    if (rc != FL_OK) {
        fprintf(stderr, "connect: %s\n", fl_future_message(cf));
        fl_future_release(cf);
        goto out;
    }
    gw = fl_future_take_value(cf);
    fl_future_release(cf);
    printf("gateway connected to %s\n", fl_rpc_gateway_address(gw));

    /* What the generated stubs take, and the method index that
     * fl_rpc_call and fl_rpc_call_sync take. */
    ProtobufCService *hello = fl_rpc_gateway_service(gw);
    int index =
        fl_rpc_method_index(&hello__hello_gateway__descriptor, "SayHello");
    if (index < 0) {
        rc = FL_ENOENT;
        goto out;
    }
    const unsigned say_hello = (unsigned)index;

    Hello__HelloRequest req = HELLO__HELLO_REQUEST__INIT;
    ProtobufCMessage *reply = NULL;

    /* 0. A call before start fails with FL_ENOTSTARTED. */
    req.name = "early bird";
    rc = fl_rpc_call_sync(gw, say_hello, &req.base, 0, &reply);
    printf("0. before start:   ");
    print_failure(rc, fl_strerror(rc));
    if (rc == FL_OK)
        protobuf_c_message_free_unpacked(reply, NULL);
    expect(rc == FL_ENOTSTARTED, "before start");

    /* Start it: on_start runs on its main thread, then calls are served. */
    if ((rc = fl_rpc_endpoint_start(ep)) != FL_OK) {
        fprintf(stderr, "fl_rpc_endpoint_start: %s\n", fl_strerror(rc));
        goto out;
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
        print_failure(rc, fl_strerror(rc));
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
     * the closure runs when the reply arrives. Local calls copy the
     * request, so req may change (or be freed) as soon as the stub
     * returns. */
    reply_box_t box = {.done = fl_future_alloc()};
    if (box.done == NULL) {
        rc = FL_ENOMEM;
        goto out;
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
        print_failure(rc, fl_strerror(rc));
    }
    expect(rc == FL_ETIMEDOUT, "timeout");
    req.delay_ms = 0;

    /* 6. A handler failure: the caller gets the handler's code and
     * message (here through a future, which carries the message). */
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

    /* Close: on_stop runs, the endpoint serves until on_stop's future
     * completes (the delayed reply of step 5 is still sent), then it
     * terminates. Wait for the termination future. */
    printf("closing the endpoint\n");
    fl_future_t *term = fl_rpc_endpoint_close(ep);
    if (term == NULL) {
        rc = FL_ENOMEM;
        goto out;
    }
    rc = fl_future_wait(term, FL_INFINITE);
    printf("endpoint terminated: %s\n",
           rc == FL_OK ? "ok" : fl_future_message(term));
    fl_future_release(term);
    expect(rc == FL_OK, "close");

    /* The endpoint's state is ours again. It greeted Ada, Grace, Linus,
     * Barbara (the tell) and Edsger. */
    printf("the endpoint said hello %u times\n", state.greeted);
    expect(state.greeted == 5, "greeted");
    rc = FL_OK;

out:
    fl_rpc_gateway_free(gw);
    /* Closes any endpoint still open and waits for it, then stops the
     * actor system the service owns. */
    if (svc != NULL && fl_rpc_service_shutdown(svc) != FL_OK)
        failures++;
    fl_rpc_endpoint_free(ep);
    fl_rpc_service_free(svc);
    if (rc != FL_OK || failures > 0) {
        printf("FAILED\n");
        return 1;
    }
    printf("every step gave the expected result\n");
    return 0;
}
