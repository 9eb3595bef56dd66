/*
 * actor_spawn_test.c - spawning actors: start and stop hooks, self, names
 * and lookup, stale references and stop, and the messages actors get.
 */
#include "actor_fixture.h"

/* ---- spawn, hooks, self -------------------------------------------------- */

static void
test_self_and_current_system_are_empty_outside_the_runtime(void **state)
{
    (void)state;
    assert_int_equal(0, fl_self().id);
    assert_null(fl_system_current());
    fl_system_t *sys = fl_test_system(1);
    assert_int_equal(0, fl_self().id);
    assert_null(fl_system_current());
    end_system(sys);
}

static void test_spawn_passes_the_state_to_receive(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    p.got = fl_test_latch_alloc(1);
    fl_actor_ref_t a;
    assert_fl_ok(fl_actor_spawn(sys, probe_receive, &p, NULL, &a));
    assert_true(a.id != 0);
    assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, 5)));
    fl_test_latch_await(p.got);
    assert_ptr_equal(&p, (void *)atomic_load(&p.state_seen));
    assert_int_equal(a.id, atomic_load(&p.recv_self));
    assert_false(atomic_load(&p.self_param_mismatch));
    assert_int_equal(5, p.log[0]);
    end_system(sys);
    fl_test_latch_free(p.got);
}

static void
test_start_hook_runs_first_on_the_actors_thread_with_self_equal_to_ref(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    for (int round = 0; round < 50; round++) {
        probe_t p;
        probe_init(&p, sys);
        p.got = fl_test_latch_alloc(1);
        fl_actor_ref_t a = spawn_probe(sys, &p, NULL);
        /* Sent at once: the start hook must still come first. */
        assert_fl_ok(fl_tell(sys, a, fl_test_msg_int(1, round)));
        fl_test_latch_await(p.got);
        assert_int_equal(1, atomic_load(&p.started));
        assert_false(atomic_load(&p.msg_before_start));
        assert_int_equal(a.id, atomic_load(&p.start_self));
        assert_true(atomic_load(&p.start_on_runtime));
        assert_false(atomic_load(&p.start_on_main));
        assert_false(atomic_load(&p.self_param_mismatch));
        stop_and_wait(sys, a);
        fl_test_latch_free(p.got);
    }
    end_system(sys);
}

static void
test_stop_hook_runs_once_on_the_actors_thread_after_the_last_message(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    fl_actor_ref_t a = spawn_probe_told(sys, &p, 3);
    assert_int_equal(0, atomic_load(&p.stopped));
    stop_and_wait(sys, a);
    assert_int_equal(1, atomic_load(&p.stopped));
    assert_int_equal(a.id, atomic_load(&p.stop_self));
    assert_true(atomic_load(&p.stop_on_runtime));
    assert_false(atomic_load(&p.stop_on_main));
    assert_false(atomic_load(&p.msg_after_stop));
    assert_false(fl_actor_alive(sys, a));
    end_system(sys);
    /* Shutdown does not run it again. */
    assert_int_equal(1, atomic_load(&p.stopped));
    fl_test_latch_free(p.got);
}

static void test_alive_is_true_until_the_actor_has_stopped(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    fl_actor_ref_t a = spawn_probe(sys, &p, NULL);
    assert_true(fl_actor_alive(sys, a));
    stop_and_wait(sys, a);
    assert_false(fl_actor_alive(sys, a));
    fl_actor_ref_t never = {0};
    assert_false(fl_actor_alive(sys, never));
    end_system(sys);
}

static void test_spawn_beyond_max_actors_returns_elimit(void **state)
{
    (void)state;
    fl_system_opts_t o = {0};
    o.workers = 1;
    o.max_actors = 2;
    fl_system_t *sys = NULL;
    assert_fl_ok(fl_system_alloc(&o, &sys));
    fl_actor_ref_t a, b, c;
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, NULL, &a));
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, NULL, &b));
    assert_fl(FL_ELIMIT, fl_actor_spawn(sys, noop_receive, NULL, NULL, &c));
    /* The limit counts live actors: a slot frees up once one stops. */
    stop_and_wait(sys, a);
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, NULL, &c));
    assert_true(c.id != a.id);
    end_system(sys);
}

/* ---- names ------------------------------------------------------------- */

static void test_lookup_finds_a_live_named_actor(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    char name[32];
    snprintf(name, sizeof name, "svc-%d", 1);
    fl_actor_ref_t a = spawn_probe(sys, &p, name);
    name[0] = 'X'; /* the name was copied */
    fl_actor_ref_t found = {0};
    assert_fl_ok(fl_actor_lookup(sys, "svc-1", &found));
    assert_int_equal(a.id, found.id);
    end_system(sys);
}

static void test_lookup_of_an_unknown_name_returns_enoent(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_actor_ref_t found;
    assert_fl(FL_ENOENT, fl_actor_lookup(sys, "nobody", &found));
    end_system(sys);
}

static void test_spawning_a_duplicate_live_name_returns_eexist(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    fl_actor_ref_t a = spawn_probe(sys, &p, "dup");
    fl_actor_opts_t o = {0};
    o.name = "dup";
    fl_actor_ref_t b;
    assert_fl(FL_EEXIST, fl_actor_spawn(sys, noop_receive, NULL, &o, &b));
    fl_actor_ref_t found;
    assert_fl_ok(fl_actor_lookup(sys, "dup", &found));
    assert_int_equal(a.id, found.id);
    end_system(sys);
}

static void test_name_is_reusable_after_the_actor_terminated(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    probe_init(&p, sys);
    fl_actor_ref_t a = spawn_probe(sys, &p, "reuse");
    stop_and_wait(sys, a);
    fl_actor_ref_t found;
    assert_fl(FL_ENOENT, fl_actor_lookup(sys, "reuse", &found));

    fl_actor_opts_t o = {0};
    o.name = "reuse";
    fl_actor_ref_t b;
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, &o, &b));
    assert_true(b.id != a.id);
    assert_fl_ok(fl_actor_lookup(sys, "reuse", &found));
    assert_int_equal(b.id, found.id);
    end_system(sys);
}

static void
test_name_of_255_bytes_is_accepted_and_256_bytes_rejected(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    char name[300];
    memset(name, 'n', 256);
    name[256] = '\0';
    fl_actor_opts_t o = {0};
    o.name = name;
    fl_actor_ref_t a;
    assert_fl(FL_EINVAL, fl_actor_spawn(sys, noop_receive, NULL, &o, &a));
    name[255] = '\0';
    assert_fl_ok(fl_actor_spawn(sys, noop_receive, NULL, &o, &a));
    fl_actor_ref_t found;
    assert_fl_ok(fl_actor_lookup(sys, name, &found));
    assert_int_equal(a.id, found.id);
    end_system(sys);
}

/* ---- stale references, stop ------------------------------------------------
 */

static void test_tell_to_a_stopped_actor_returns_eunreachable(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    fl_actor_ref_t a = spawn_stopped_probe(sys, &p);
    assert_fl(FL_EUNREACHABLE, fl_tell(sys, a, fl_test_msg_int(1, 1)));
    /* A new actor possibly reusing the slot is not reached by the old ref. */
    probe_t q;
    probe_init(&q, sys);
    fl_actor_ref_t b = spawn_probe(sys, &q, NULL);
    assert_true(a.id != b.id);
    assert_fl(FL_EUNREACHABLE, fl_tell(sys, a, fl_test_msg_int(1, 2)));
    end_system(sys);
    assert_int_equal(0, atomic_load(&p.received));
    assert_int_equal(0, atomic_load(&q.received));
}

static void
test_ask_to_a_stopped_actor_fails_at_once_with_eunreachable(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    fl_actor_ref_t a = spawn_stopped_probe(sys, &p);
    fl_future_t *f = NULL;
    assert_fl_ok(fl_ask(sys, a, fl_test_msg_int(1, 1), FL_INFINITE, &f));
    assert_non_null(f);
    assert_true(fl_future_done(f));
    assert_fl(FL_EUNREACHABLE, fl_future_error(f));
    fl_future_release(f);

    assert_ask_unreachable(sys, a, 1000);
    end_system(sys);
}

static void test_reference_that_never_existed_is_unreachable(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(1);
    fl_actor_ref_t refs[] = {{0}, {0x7fffffffffffull}, {UINT64_MAX}};
    for (size_t i = 0; i < 3; i++) {
        assert_fl(FL_EUNREACHABLE,
                  fl_tell(sys, refs[i], fl_test_msg_int(1, 1)));
        assert_fl(FL_EUNREACHABLE, fl_actor_stop(sys, refs[i]));
        assert_false(fl_actor_alive(sys, refs[i]));
        assert_ask_unreachable(sys, refs[i], 1000);
        assert_termination_unreachable(sys, refs[i]);
    }
    end_system(sys);
}

static void test_termination_of_a_stopped_actor_fails_at_once_with_eunreachable(
    void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    fl_actor_ref_t a = spawn_stopped_noop(sys);
    assert_termination_unreachable(sys, a);
    end_system(sys);
}

static void
test_stop_twice_returns_ok_then_eunreachable_after_termination(void **state)
{
    (void)state;
    fl_system_t *sys = fl_test_system(2);
    probe_t p;
    fl_actor_ref_t a = spawn_blocked_probe(sys, &p, 1);
    /* The actor is busy: both requests find it live. */
    fl_future_t *term = termination_of(sys, a);
    assert_fl_ok(fl_actor_stop(sys, a));
    assert_fl_ok(fl_actor_stop(sys, a));
    fl_test_latch_count_down(p.block);
    wait_terminated(term);
    assert_fl(FL_EUNREACHABLE, fl_actor_stop(sys, a));
    assert_int_equal(1, atomic_load(&p.stopped));
    end_system(sys);
    assert_int_equal(1, atomic_load(&p.stopped));
    probe_free_latches(&p);
}

/* ---- messages ------------------------------------------------------------ */

static void
test_msg_alloc_gives_a_zeroed_aligned_payload_of_the_given_type(void **state)
{
    (void)state;
    /* Each size right after one at least as large of the same block
     * class, whose bytes were set below: small payloads are zeroed by
     * stores of 16 or 80 bytes (msg.c), which must cover all of them. */
    const size_t sizes[] = {0,  1,  7,  16, 16, 48,  40,   48,
                            17, 80, 64, 80, 49, 100, 4096, 65537};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        fl_msg_t *m = fl_msg_alloc((uint32_t)(1000 + i), sizes[i]);
        assert_non_null(m);
        assert_int_equal(1000 + i, fl_msg_type(m));
        assert_int_equal(sizes[i], fl_msg_size(m));
        assert_int_equal(0, fl_msg_sender(m).id);
        assert_false(fl_msg_is_ask(m));
        unsigned char *d = fl_msg_data(m);
        if (sizes[i] > 0) {
            assert_non_null(d);
            assert_int_equal(0, (uintptr_t)d % 16);
            for (size_t j = 0; j < sizes[i]; j++)
                if (d[j] != 0)
                    fail_msg("byte %zu of a %zu-byte payload is %u", j,
                             sizes[i], d[j]);
            memset(d, 0xab, sizes[i]);
        }
        fl_msg_free(m);
    }
}

static void test_msg_alloc_larger_than_1_gib_returns_null(void **state)
{
    (void)state;
    assert_null(fl_msg_alloc(1, ((size_t)1 << 30) + 1));
    assert_null(fl_msg_alloc(1, SIZE_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        FL_TEST(test_self_and_current_system_are_empty_outside_the_runtime),
        FL_TEST(test_spawn_passes_the_state_to_receive),
        FL_TEST(
            test_start_hook_runs_first_on_the_actors_thread_with_self_equal_to_ref),
        FL_TEST(
            test_stop_hook_runs_once_on_the_actors_thread_after_the_last_message),
        FL_TEST(test_alive_is_true_until_the_actor_has_stopped),
        FL_TEST(test_spawn_beyond_max_actors_returns_elimit),
        FL_TEST(test_lookup_finds_a_live_named_actor),
        FL_TEST(test_lookup_of_an_unknown_name_returns_enoent),
        FL_TEST(test_spawning_a_duplicate_live_name_returns_eexist),
        FL_TEST(test_name_is_reusable_after_the_actor_terminated),
        FL_TEST(test_name_of_255_bytes_is_accepted_and_256_bytes_rejected),
        FL_TEST(test_tell_to_a_stopped_actor_returns_eunreachable),
        FL_TEST(test_ask_to_a_stopped_actor_fails_at_once_with_eunreachable),
        FL_TEST(test_reference_that_never_existed_is_unreachable),
        FL_TEST(
            test_termination_of_a_stopped_actor_fails_at_once_with_eunreachable),
        FL_TEST(test_stop_twice_returns_ok_then_eunreachable_after_termination),
        FL_TEST(
            test_msg_alloc_gives_a_zeroed_aligned_payload_of_the_given_type),
        FL_TEST(test_msg_alloc_larger_than_1_gib_returns_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
