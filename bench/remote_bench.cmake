# The rpc.remote_* benchmarks of fling_bench (TCP and TLS): their sources
# and how a program that runs them is set up. Included by bench/ (for
# fling_bench) and by tests/bench/ (for their smoke test, built without
# FLING_BUILD_BENCH). The program brings its own output (note, emit, fail)
# and, for the server process, handles `--serve [--workers N] [--tls DIR]`
# by calling serve_main (bench.h).
set(FLING_REMOTE_BENCH_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/bench_run.c
    ${CMAKE_CURRENT_LIST_DIR}/bench_certs.c
    ${CMAKE_CURRENT_LIST_DIR}/rpc_local_bench.c
    ${CMAKE_CURRENT_LIST_DIR}/rpc_remote_bench.c)
set(FLING_REMOTE_BENCH_DIR ${CMAKE_CURRENT_LIST_DIR})

# fling_remote_bench(target): target runs the rpc.remote_* benchmarks: the
# BenchGateway compiled (bench.proto), and the path of scripts/test-certs.sh
# compiled in, which makes the _tls ones' certificates.
function(fling_remote_bench target)
  target_include_directories(${target} PRIVATE ${FLING_REMOTE_BENCH_DIR})
  fling_protobuf_generate(${target} ${FLING_REMOTE_BENCH_DIR}/bench.proto)
  target_compile_definitions(${target} PRIVATE
    FLING_TEST_CERTS_SCRIPT="${PROJECT_SOURCE_DIR}/scripts/test-certs.sh")
endfunction()
