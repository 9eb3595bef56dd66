# The cluster.* benchmarks that run the build's cluster programs
# (cluster.register, cluster.deploy, cluster.failover): their sources and
# how a program that runs them is set up. Included by the top-level
# CMakeLists.txt, so that both fling_bench (bench/) and their smoke test
# (tests/bench/, built without FLING_BUILD_BENCH) use them.
set(FLING_CLUSTER_BENCH_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/cluster_util.c
    ${CMAKE_CURRENT_LIST_DIR}/cluster_register_bench.c
    ${CMAKE_CURRENT_LIST_DIR}/cluster_jobs.c
    ${CMAKE_CURRENT_LIST_DIR}/cluster_deploy_bench.c
    ${CMAKE_CURRENT_LIST_DIR}/cluster_failover_bench.c)
set(FLING_CLUSTER_BENCH_DIR ${CMAKE_CURRENT_LIST_DIR})

# fling_cluster_bench(target): target runs the cluster benchmarks: the
# paths of fling-jobmanager, fling-taskmanager, the job's user library and
# scripts/netns-pair.sh compiled in, the gateways linked. Without apps/
# (FLING_BUILD_APPS=OFF) the benchmarks say they cannot run.
function(fling_cluster_bench target)
  target_include_directories(${target} PRIVATE ${FLING_CLUSTER_BENCH_DIR})
  if(NOT (TARGET fling-jobmanager AND TARGET fling-taskmanager))
    return()
  endif()
  if(NOT TARGET fling_bench_idle)
    # The job's user library: a filter that drops each record after 20 ms.
    add_library(fling_bench_idle SHARED
                ${FLING_CLUSTER_BENCH_DIR}/cluster_idle_udf.c)
    target_include_directories(fling_bench_idle PRIVATE
                               ${PROJECT_SOURCE_DIR}/apps/task/include)
    target_compile_definitions(fling_bench_idle PRIVATE _GNU_SOURCE)
    target_compile_options(fling_bench_idle PRIVATE ${FLING_WARNINGS}
                                                    -fvisibility=hidden)
  endif()
  add_dependencies(${target} fling-jobmanager fling-taskmanager
                   fling_bench_idle)
  target_link_libraries(${target} PRIVATE fling_gateways)
  target_compile_definitions(${target} PRIVATE
    FLING_JM_PATH="$<TARGET_FILE:fling-jobmanager>"
    FLING_TM_PATH="$<TARGET_FILE:fling-taskmanager>"
    FLING_IDLE_UDF="$<TARGET_FILE:fling_bench_idle>"
    FLING_NETNS_SCRIPT="${PROJECT_SOURCE_DIR}/scripts/netns-pair.sh")
endfunction()
