/*
 * proto_user.c - a program that links a SHARED library holding the code
 * protoc-c generated from examples/kv/kv.proto (tests/install/consumer:
 * add_library(kvproto_shared SHARED) + fling_protobuf_generate). It
 * compiles only if the library exposes the generated headers to the
 * targets that link it, and runs only if the library carries the code.
 * Prints "proto_user: OK" and exits 0 on success; prints the failure and
 * exits 1 otherwise.
 */
#include <fling/fling.h>

#include <stdio.h>
#include <string.h>

#include "kv.pb-c.h"

int main(void)
{
    Kv__PutRequest req = KV__PUT_REQUEST__INIT;
    req.key = "k";
    req.value = "v";
    uint8_t buf[64];
    size_t len = kv__put_request__pack(&req, buf);
    Kv__PutRequest *back = kv__put_request__unpack(NULL, len, buf);
    if (back == NULL || strcmp(back->key, "k") != 0 ||
        strcmp(back->value, "v") != 0) {
        fprintf(stderr, "proto_user: a PutRequest did not survive packing\n");
        kv__put_request__free_unpacked(back, NULL);
        return 1;
    }
    kv__put_request__free_unpacked(back, NULL);
    int list = fl_rpc_method_index(&kv__kv_store__descriptor, "List");
    if (strcmp(kv__kv_store__descriptor.name, "kv.KvStore") != 0 || list != 3) {
        fprintf(stderr, "proto_user: KvStore is %s, List at %d\n",
                kv__kv_store__descriptor.name, list);
        return 1;
    }
    printf("proto_user: OK\n");
    return 0;
}
