/*
 * log_record_test.c - what a log handler receives (fl_log_record_t,
 * src/common/log.c): level, component, message, fields, wall-clock time
 * and thread for fl_log, fl_log_kv and the library's FL_LOG_KV; fields
 * with a NULL value left out; the trace switch at run time
 * (fl_log_set_trace) and its one-load check (fl__log_on).
 */
#include "fl_test.h"

#include "common/internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A copy of the last record, and how many came. One thread. */
typedef struct got {
    int n;
    fl_log_level_t level;
    fl_log_component_t component;
    char component_name[16];
    char message[256];
    char fields[512]; /* "k=v k=v" */
    size_t nfields;
    int64_t time_ns;
    uint64_t thread_id;
    uint32_t suppressed;
} got_t;

static void capture(void *arg, const fl_log_record_t *rec)
{
    got_t *g = arg;
    g->n++;
    g->level = rec->level;
    g->component = rec->component;
    snprintf(g->component_name, sizeof g->component_name, "%s",
             rec->component_name);
    snprintf(g->message, sizeof g->message, "%s", rec->message);
    g->fields[0] = '\0';
    size_t k = 0;
    for (size_t i = 0; i < rec->nfields; i++)
        k += (size_t)snprintf(g->fields + k, sizeof g->fields - k, "%s%s=%s",
                              i ? " " : "", rec->fields[i].key,
                              rec->fields[i].value);
    g->nfields = rec->nfields;
    g->time_ns = rec->time_ns;
    g->thread_id = rec->thread_id;
    g->suppressed = rec->suppressed;
}

static got_t got;

static int setup(void **state)
{
    (void)state;
    memset(&got, 0, sizeof got);
    fl_log_set_level(FL_LOG_WARN);
    assert_fl_ok(fl_log_set_trace(""));
    fl_log_set_handler(capture, &got);
    return fl_test_arm(state);
}

static int teardown(void **state)
{
    fl_log_set_handler(NULL, NULL);
    fl_log_set_level(FL_LOG_WARN);
    assert_fl_ok(fl_log_set_trace(""));
    return fl_test_disarm(state);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_fl_log_is_a_record_of_the_app_component(void **state)
{
    (void)state;
    int64_t before = wall_ns();
    fl_log(FL_LOG_WARN, "hello %s %d", "world", 42);
    int64_t after = wall_ns();
    assert_int_equal(1, got.n);
    assert_int_equal(FL_LOG_WARN, got.level);
    assert_int_equal(FL_LOGC_APP, got.component);
    assert_string_equal("app", got.component_name);
    assert_string_equal("hello world 42", got.message);
    assert_int_equal(0, got.nfields);
    assert_int_equal(0, got.suppressed);
    assert_true(got.time_ns >= before && got.time_ns <= after);
    assert_int_equal((uint64_t)syscall(SYS_gettid), got.thread_id);
}

static void test_fl_log_kv_carries_component_and_fields(void **state)
{
    (void)state;
    const fl_log_field_t f[] = {
        {"endpoint", "greeter"}, {"peer", NULL}, {"method", "a.B.C"}};
    fl_log_kv(FL_LOGC_REMOTE, FL_LOG_ERROR, f, 3, "lost %d", 7);
    assert_int_equal(1, got.n);
    assert_int_equal(FL_LOG_ERROR, got.level);
    assert_int_equal(FL_LOGC_REMOTE, got.component);
    assert_string_equal("remote", got.component_name);
    assert_string_equal("lost 7", got.message);
    /* The NULL value is left out. */
    assert_int_equal(2, got.nfields);
    assert_string_equal("endpoint=greeter method=a.B.C", got.fields);
}

static void test_library_sites_log_their_folders_component(void **state)
{
    (void)state;
    /* This file is no library folder's: FL_LOG_COMPONENT is common. */
    FL_LOG_KV(FL_LOG_WARN,
              FL_KV(FL_F("endpoint", "e1"), FL_FU64("corr", 18446744073709ull)),
              "site %s", "x");
    assert_int_equal(1, got.n);
    assert_int_equal(FL_LOGC_COMMON, got.component);
    assert_string_equal("common", got.component_name);
    assert_string_equal("site x", got.message);
    assert_string_equal("endpoint=e1 corr=18446744073709", got.fields);
}

/* Counts how often its argument is evaluated. */
static int evaluated;

static const char *count_eval(const char *s)
{
    evaluated++;
    return s;
}

static void test_a_disabled_site_evaluates_nothing(void **state)
{
    (void)state;
    evaluated = 0;
    FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("k", count_eval("v"))), "%s",
              count_eval("m"));
    assert_int_equal(0, evaluated);
    assert_int_equal(0, got.n);
    /* One load decides: the table holds the level. */
    assert_int_equal(FL_LOG_WARN, atomic_load(&fl__log_max[FL_LOGC_COMMON]));
    assert_fl_ok(fl_log_set_trace("common"));
    FL_LOG_KV(FL_LOG_DEBUG, FL_KV(FL_F("k", count_eval("v"))), "%s",
              count_eval("m"));
    assert_int_equal(2, evaluated);
    assert_int_equal(1, got.n);
    assert_int_equal(FL_LOG_DEBUG, got.level);
    assert_string_equal("k=v", got.fields);
}

static void test_trace_turns_debug_on_for_named_components_only(void **state)
{
    (void)state;
    assert_fl_ok(fl_log_set_trace("remote,rpc"));
    assert_true(fl_log_enabled(FL_LOGC_REMOTE, FL_LOG_DEBUG));
    assert_true(fl_log_enabled(FL_LOGC_RPC, FL_LOG_DEBUG));
    assert_false(fl_log_enabled(FL_LOGC_ACTOR, FL_LOG_DEBUG));
    assert_false(fl_log_enabled(FL_LOGC_ACTOR, FL_LOG_INFO));
    assert_true(fl_log_enabled(FL_LOGC_ACTOR, FL_LOG_WARN));
    assert_false(fl_log_enabled(FL_LOGC_APP, FL_LOG_DEBUG));
    fl_log_kv(FL_LOGC_RPC, FL_LOG_DEBUG, NULL, 0, "rpc debug");
    fl_log_kv(FL_LOGC_SCHED, FL_LOG_DEBUG, NULL, 0, "sched debug");
    fl_log(FL_LOG_DEBUG, "app debug");
    assert_int_equal(1, got.n);
    assert_string_equal("rpc debug", got.message);
    /* The level of the others still applies, and moves under the trace. */
    fl_log_set_level(FL_LOG_ERROR);
    assert_true(fl_log_enabled(FL_LOGC_RPC, FL_LOG_DEBUG));
    assert_false(fl_log_enabled(FL_LOGC_SCHED, FL_LOG_WARN));
    assert_int_equal(FL_LOG_ERROR, fl_log_get_level());
}

static void test_trace_all_and_minus(void **state)
{
    (void)state;
    assert_fl_ok(fl_log_set_trace("all,-sched"));
    static const fl_log_component_t on[] = {FL_LOGC_COMMON, FL_LOGC_ACTOR,
                                            FL_LOGC_REMOTE, FL_LOGC_RPC,
                                            FL_LOGC_APP};
    for (size_t i = 0; i < sizeof on / sizeof *on; i++)
        assert_true(fl_log_enabled(on[i], FL_LOG_DEBUG));
    assert_false(fl_log_enabled(FL_LOGC_SCHED, FL_LOG_DEBUG));
    fl_log(FL_LOG_DEBUG, "app %d", 1);
    assert_int_equal(1, got.n);
    assert_string_equal("app 1", got.message);
    /* Spaces around names are allowed; "" turns every trace off. */
    assert_fl_ok(fl_log_set_trace(" sched , actor "));
    assert_true(fl_log_enabled(FL_LOGC_SCHED, FL_LOG_DEBUG));
    assert_false(fl_log_enabled(FL_LOGC_RPC, FL_LOG_DEBUG));
    assert_fl_ok(fl_log_set_trace(""));
    assert_false(fl_log_enabled(FL_LOGC_SCHED, FL_LOG_DEBUG));
}

static void test_trace_refuses_unknown_names_and_changes_nothing(void **state)
{
    (void)state;
    assert_fl_ok(fl_log_set_trace("rpc"));
    assert_fl(FL_EINVAL, fl_log_set_trace("rpc,rcp"));
    assert_fl(FL_EINVAL, fl_log_set_trace(NULL));
    assert_true(fl_log_enabled(FL_LOGC_RPC, FL_LOG_DEBUG));
    assert_false(fl_log_enabled(FL_LOGC_REMOTE, FL_LOG_DEBUG));
    assert_false(
        fl_log_enabled((fl_log_component_t)FL_LOG_COMPONENT_MAX, FL_LOG_ERROR));
}

static void test_component_names(void **state)
{
    (void)state;
    assert_string_equal("common", fl_log_component_name(FL_LOGC_COMMON));
    assert_string_equal("sched", fl_log_component_name(FL_LOGC_SCHED));
    assert_string_equal("actor", fl_log_component_name(FL_LOGC_ACTOR));
    assert_string_equal("remote", fl_log_component_name(FL_LOGC_REMOTE));
    assert_string_equal("rpc", fl_log_component_name(FL_LOGC_RPC));
    assert_string_equal("app", fl_log_component_name(FL_LOGC_APP));
    assert_string_equal("cluster", fl_log_component_name(FL_LOGC_CLUSTER));
    assert_string_equal("?", fl_log_component_name((fl_log_component_t)9));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_fl_log_is_a_record_of_the_app_component),
        T(test_fl_log_kv_carries_component_and_fields),
        T(test_library_sites_log_their_folders_component),
        T(test_a_disabled_site_evaluates_nothing),
        T(test_trace_turns_debug_on_for_named_components_only),
        T(test_trace_all_and_minus),
        T(test_trace_refuses_unknown_names_and_changes_nothing),
        T(test_component_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
