/*
 * kv_client - calls a kv_server: pipelined Puts, blocking Gets, a Delete,
 * a List, and the errors a caller meets.
 *
 *   kv_client ADDRESS TOKEN [COUNT]
 *
 * ADDRESS and TOKEN are what kv_server printed. The client connects a
 * KvStore gateway fenced with TOKEN, puts COUNT keys (default 100, at
 * least 10) with every call in flight at once, reads two back with
 * blocking calls, deletes one and reads it again (a failure: FL_ENOENT),
 * lists the keys "key-00*", and makes one call through a gateway with a
 * wrong token (a failure: FL_EFENCING). It prints what each step gave and
 * exits 0 only if every step gave what it should.
 *
 * What to copy from it: connecting, the future and blocking call styles,
 * waiting for many futures at once, and printing a failure with its code,
 * meaning and message.
 */
#include <fling/fling.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.pb-c.h" /* generated from kv.proto by protoc-c */

static int failures;

/* Records a step that did not give what it should. */
static void expect(bool ok, const char *step)
{
    if (!ok) {
        fprintf(stderr, "kv_client: step '%s' gave an unexpected result\n",
                step);
        failures++;
    }
}

/* Prints "<what>: FL_X (<meaning>): <message>": a failure, as the caller
 * gets it (the message is the handler's own for a handler's failure). */
static void print_failure(FILE *to, const char *what, int rc,
                          const char *message)
{
    fprintf(to, "%s: %s (%s)%s%s\n", what, fl_err_name(rc), fl_strerror(rc),
            message != NULL && message[0] ? ": " : "",
            message != NULL ? message : "");
}

/* Connects a KvStore gateway to address, stamped with token. NULL (and a
 * line on stderr) on failure. */
static fl_rpc_gateway_t *connect_kv(fl_rpc_service_t *svc, const char *address,
                                    const fl_fencing_token_t *token)
{
    fl_future_t *cf = NULL;
    int rc =
        fl_rpc_connect(svc, address, &kv__kv_store__descriptor, token, &cf);
    if (rc != FL_OK) {
        print_failure(stderr, "kv_client: fl_rpc_connect", rc,
                      fl_rpc_last_message());
        return NULL;
    }
    fl_rpc_gateway_t *gw = NULL;
    rc = fl_future_wait(cf, FL_INFINITE); /* bounded by the default timeout */
    if (rc == FL_OK)
        gw = fl_future_take_value(cf); /* the gateway is ours now */
    else
        print_failure(stderr, "kv_client: connect", rc, fl_future_message(cf));
    fl_future_release(cf);
    return gw;
}

/* The index of a method of KvStore, for fl_rpc_call / fl_rpc_call_sync. */
static unsigned method(const char *name)
{
    int i = fl_rpc_method_index(&kv__kv_store__descriptor, name);
    if (i < 0) {
        fprintf(stderr, "kv_client: KvStore has no method %s\n", name);
        exit(1);
    }
    return (unsigned)i;
}

/*
 * Puts key-000 ... with count calls in flight at once: fl_rpc_call returns
 * a future at once, and fl_future_all joins them. Returns FL_OK or the
 * first failure.
 */
static int put_pipelined(fl_rpc_gateway_t *gw, int count)
{
    fl_future_t **fs = calloc((size_t)count, sizeof *fs);
    if (fs == NULL)
        return FL_ENOMEM;
    const unsigned put = method("Put");
    int rc = FL_OK, issued = 0;
    for (; issued < count; issued++) {
        char key[32], value[32];
        snprintf(key, sizeof key, "key-%03d", issued);
        snprintf(value, sizeof value, "value-%d", issued);
        Kv__PutRequest req = KV__PUT_REQUEST__INIT;
        req.key = key; /* the call packs req before it returns */
        req.value = value;
        rc = fl_rpc_call(gw, put, &req.base, 0, &fs[issued]);
        if (rc != FL_OK) {
            print_failure(stderr, "kv_client: fl_rpc_call(Put)", rc,
                          fl_rpc_last_message());
            break;
        }
    }
    if (rc == FL_OK) {
        fl_future_t *all = fl_future_all(fs, (size_t)issued);
        rc = all != NULL ? fl_future_wait(all, FL_INFINITE) : FL_ENOMEM;
        if (rc != FL_OK && all != NULL)
            print_failure(stderr, "kv_client: Put", rc, fl_future_message(all));
        fl_future_release(all);
    }
    for (int i = 0; i < issued; i++)
        fl_future_release(fs[i]); /* frees each reply too */
    free(fs);
    return rc;
}

/*
 * Gets key with a blocking call and prints "get <key> = <value>", or the
 * failure. Returns the call's code.
 */
static int get_blocking(fl_rpc_gateway_t *gw, const char *key, const char *as)
{
    Kv__GetRequest req = KV__GET_REQUEST__INIT;
    req.key = (char *)key;
    ProtobufCMessage *reply = NULL;
    int rc = fl_rpc_call_sync(gw, method("Get"), &req.base, 0, &reply);
    if (rc == FL_OK) {
        printf("%s = %s\n", as, ((Kv__GetReply *)reply)->value);
        protobuf_c_message_free_unpacked(reply, NULL); /* ours to free */
    } else {
        /* fl_rpc_last_message(): why, on this thread, after the call. */
        print_failure(stdout, as, rc, fl_rpc_last_message());
    }
    return rc;
}

/* Deletes key (blocking). Returns the call's code; *deleted the answer. */
static int delete_blocking(fl_rpc_gateway_t *gw, const char *key, bool *deleted)
{
    Kv__DeleteRequest req = KV__DELETE_REQUEST__INIT;
    req.key = (char *)key;
    ProtobufCMessage *reply = NULL;
    int rc = fl_rpc_call_sync(gw, method("Delete"), &req.base, 0, &reply);
    if (rc != FL_OK) {
        print_failure(stderr, "kv_client: Delete", rc, fl_rpc_last_message());
        return rc;
    }
    *deleted = ((Kv__DeleteReply *)reply)->deleted;
    protobuf_c_message_free_unpacked(reply, NULL);
    return FL_OK;
}

/* Lists the keys with prefix through a future, and prints them. Returns
 * the call's code; *n the number of keys. */
static int list(fl_rpc_gateway_t *gw, const char *prefix, size_t *n)
{
    Kv__ListRequest req = KV__LIST_REQUEST__INIT;
    req.prefix = (char *)prefix;
    fl_future_t *f = NULL;
    int rc = fl_rpc_call(gw, method("List"), &req.base, 0, &f);
    if (rc != FL_OK) {
        print_failure(stderr, "kv_client: fl_rpc_call(List)", rc,
                      fl_rpc_last_message());
        return rc;
    }
    rc = fl_future_wait(f, FL_INFINITE);
    if (rc == FL_OK) {
        const Kv__ListReply *reply = fl_future_value(f); /* the future's */
        *n = reply->n_keys;
        printf("list %s: %zu keys:", prefix, reply->n_keys);
        for (size_t i = 0; i < reply->n_keys; i++)
            printf(" %s", reply->keys[i]);
        printf("\n");
    } else {
        print_failure(stderr, "kv_client: List", rc, fl_future_message(f));
    }
    fl_future_release(f); /* frees the reply too */
    return rc;
}

/* Reads 32 hex digits into *t; false if text is anything else. */
static bool parse_token(const char *text, fl_fencing_token_t *t)
{
    if (strlen(text) != 32)
        return false;
    for (int i = 0; i < 16; i++) {
        char two[3] = {text[2 * i], text[2 * i + 1], '\0'};
        char *end;
        unsigned long byte = strtoul(two, &end, 16);
        if (end != two + 2)
            return false;
        t->bytes[i] = (unsigned char)byte;
    }
    return true;
}

/* The steps, through a gateway fenced with the right token. */
static void run(fl_rpc_gateway_t *gw, int count)
{
    int rc = put_pipelined(gw, count);
    if (rc == FL_OK)
        printf("put %d keys, pipelined (%d calls issued, then waited for)\n",
               count, count);
    expect(rc == FL_OK, "put");

    char last[32], as[64];
    snprintf(last, sizeof last, "key-%03d", count - 1);
    snprintf(as, sizeof as, "get %s", last);
    expect(get_blocking(gw, "key-003", "get key-003") == FL_OK, "get");
    expect(get_blocking(gw, last, as) == FL_OK, "get last");

    bool deleted = false;
    rc = delete_blocking(gw, "key-003", &deleted);
    if (rc == FL_OK)
        printf("delete key-003: %s\n", deleted ? "deleted" : "not there");
    expect(rc == FL_OK && deleted, "delete");
    /* Now a failure: the handler's code and message, as it sent them. */
    expect(get_blocking(gw, "key-003", "get key-003") == FL_ENOENT,
           "get deleted");

    size_t n = 0;
    expect(list(gw, "key-00", &n) == FL_OK && n == 9, "list");
}

int main(int argc, char **argv)
{
    fl_fencing_token_t token;
    int count = argc > 3 ? atoi(argv[3]) : 100;
    if (argc < 3 || argc > 4 || !parse_token(argv[2], &token) || count < 10 ||
        count > 100000) {
        fprintf(stderr, "usage: kv_client ADDRESS TOKEN [COUNT (10..100000)]"
                        "\n  (ADDRESS and TOKEN as kv_server printed them)\n");
        return 2;
    }
    const char *address = argv[1];

    /* A local-only service: it cannot be called, but it calls out (its
     * I/O thread starts with the first remote connect). */
    fl_rpc_service_t *svc = NULL;
    int rc = fl_rpc_service_alloc(NULL, &svc);
    if (rc != FL_OK) {
        print_failure(stderr, "kv_client: fl_rpc_service_alloc", rc,
                      fl_rpc_last_message());
        return 1;
    }

    fl_rpc_gateway_t *gw = connect_kv(svc, address, &token);
    if (gw != NULL) {
        printf("connected to %s\n", fl_rpc_gateway_address(gw));
        run(gw, count);
        fl_rpc_gateway_free(gw);

        /* A gateway with another token connects (tokens are checked per
         * call), and each of its calls fails with FL_EFENCING. */
        fl_fencing_token_t wrong = token;
        wrong.bytes[15] ^= 0xff;
        fl_rpc_gateway_t *stale = connect_kv(svc, address, &wrong);
        if (stale != NULL) {
            rc = get_blocking(stale, "key-000", "with a wrong token");
            expect(rc == FL_EFENCING, "wrong token");
            fl_rpc_gateway_free(stale);
        } else {
            failures++;
        }
    } else {
        failures++;
    }

    /* Gateways first, then the service: shut down, then free. */
    if (fl_rpc_service_shutdown(svc) != FL_OK)
        failures++;
    fl_rpc_service_free(svc);
    if (failures > 0) {
        fprintf(stderr, "kv_client: %d step(s) failed\n", failures);
        return 1;
    }
    printf("done\n");
    return 0;
}
