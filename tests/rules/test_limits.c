/* Limits over a fake wall clock: every call gets `now` explicitly. */
#include "rules_test.h"

#include <string.h>

static void sliding_window_throttles_and_recovers(void **unused)
{
    struct vg_rule_limits lim = {.action_count = 2, .action_count_window_ms = 10000};
    struct vg_limits l;
    const char *why;
    uint64_t ms;
    vg_limits_init(&l, &lim, false, 0);
    assert_int_equal(vg_limits_state(&l, 0, &why), VG_RULE_RUNNING);
    assert_string_equal(why, "This collection rule is active and waiting for its triggering "
                             "conditions to be satisfied.");
    assert_int_equal(vg_limits_begin(&l, 1000), VG_LIMIT_OK);
    assert_int_equal(vg_limits_state(&l, 1500, &why), VG_RULE_ACTION_EXECUTING);
    assert_string_equal(why, "This collection rule has had its triggering conditions satisfied "
                             "and is currently executing its action list.");
    assert_int_equal(vg_limits_begin(&l, 1500), VG_LIMIT_EXECUTING);
    vg_limits_end(&l, 2000);
    assert_int_equal(vg_limits_begin(&l, 3000), VG_LIMIT_OK);
    vg_limits_end(&l, 3500);
    /* Two runs within 10 s: throttled until the run at 1 s leaves the window. */
    assert_int_equal(vg_limits_begin(&l, 4000), VG_LIMIT_THROTTLED);
    assert_int_equal(vg_limits_state(&l, 4000, &why), VG_RULE_THROTTLED);
    assert_string_equal(why, "This collection rule is temporarily throttled because the "
                             "ActionCountLimit has been reached within the "
                             "ActionCountSlidingWindowDuration.");
    assert_true(vg_limits_window_countdown(&l, 4000, &ms));
    assert_int_equal(ms, 7000);
    assert_int_equal(vg_limits_window_runs(&l, 4000), 2);
    /* A throttled fire is not a run. */
    assert_int_equal(l.lifetime, 2);
    assert_int_equal(vg_limits_check(&l, 11000), VG_LIMIT_THROTTLED); /* 1 s run still counts */
    assert_int_equal(vg_limits_state(&l, 11001, &why), VG_RULE_RUNNING);
    assert_false(vg_limits_window_countdown(&l, 11001, &ms));
    assert_int_equal(vg_limits_window_runs(&l, 11001), 1);
    assert_int_equal(vg_limits_begin(&l, 11001), VG_LIMIT_OK);
    vg_limits_end(&l, 11002);
    assert_int_equal(vg_limits_begin(&l, 12000), VG_LIMIT_THROTTLED);
    assert_int_equal(l.lifetime, 3);
    /* Never finishes: with a window the count only throttles. */
    assert_int_equal(vg_limits_begin(&l, 100000), VG_LIMIT_OK);
    vg_limits_free(&l);
}

static void lifetime_count_finishes(void **unused)
{
    struct vg_rule_limits lim = {.action_count = 2};
    struct vg_limits l;
    const char *why;
    vg_limits_init(&l, &lim, false, 0);
    assert_int_equal(vg_limits_begin(&l, 10), VG_LIMIT_OK);
    vg_limits_end(&l, 20);
    assert_int_equal(vg_limits_state(&l, 30, NULL), VG_RULE_RUNNING);
    assert_int_equal(vg_limits_begin(&l, 40), VG_LIMIT_OK);
    assert_int_equal(vg_limits_state(&l, 45, NULL), VG_RULE_ACTION_EXECUTING);
    vg_limits_end(&l, 50);
    assert_int_equal(vg_limits_state(&l, 60, &why), VG_RULE_FINISHED);
    assert_string_equal(why,
                        "The collection rule will no longer trigger because the ActionCount was "
                        "reached.");
    assert_int_equal(vg_limits_begin(&l, 1000000), VG_LIMIT_FINISHED);
    assert_int_equal(vg_limits_window_runs(&l, 60), 2);
    vg_limits_free(&l);
}

static void rule_duration_finishes(void **unused)
{
    struct vg_rule_limits lim = {.action_count = 5, .rule_duration_ms = 5000};
    struct vg_limits l;
    const char *why;
    uint64_t ms;
    vg_limits_init(&l, &lim, false, 1000);
    assert_true(vg_limits_rule_countdown(&l, 2000, &ms));
    assert_int_equal(ms, 4000);
    assert_int_equal(vg_limits_check(&l, 5999), VG_LIMIT_OK);
    assert_int_equal(vg_limits_begin(&l, 6000), VG_LIMIT_FINISHED);
    assert_int_equal(vg_limits_state(&l, 6000, &why), VG_RULE_FINISHED);
    assert_string_equal(why, "The collection rule will no longer trigger because the "
                             "RuleDuration limit was reached.");
    assert_false(vg_limits_rule_countdown(&l, 6000, &ms));
    assert_int_equal(l.lifetime, 0);
    vg_limits_free(&l);
}

static void cooldown_holds(void **unused)
{
    struct vg_rule_limits lim = {.action_count = 100, .cooldown_ms = 30000};
    struct vg_limits l;
    const char *why;
    uint64_t ms;
    vg_limits_init(&l, &lim, false, 0);
    assert_false(vg_limits_cooldown_remaining(&l, 0, &ms));
    assert_int_equal(vg_limits_begin(&l, 0), VG_LIMIT_OK);
    vg_limits_end(&l, 5000);
    assert_int_equal(vg_limits_begin(&l, 10000), VG_LIMIT_COOLDOWN);
    assert_true(vg_limits_cooldown_remaining(&l, 10000, &ms));
    assert_int_equal(ms, 20000);
    assert_int_equal(vg_limits_state(&l, 10000, &why), VG_RULE_THROTTLED);
    assert_string_equal(why, VG_REASON_COOLDOWN);
    assert_int_equal(vg_limits_begin(&l, 29999), VG_LIMIT_COOLDOWN);
    assert_int_equal(vg_limits_begin(&l, 30000), VG_LIMIT_OK);
    assert_int_equal(l.lifetime, 2);
    vg_limits_free(&l);
}

static void rebuild_from_runs(void **unused)
{
    struct vg_rule_limits lim = {.action_count = 3, .action_count_window_ms = 10000};
    static const uint64_t runs[] = {5000, 1000, 3000};
    struct vg_limits l;
    uint64_t ms;
    assert_int_equal(vg_limits_rebuild(&l, &lim, false, 0, runs, 3, 6000), 0);
    assert_int_equal(l.lifetime, 3);
    assert_int_equal(vg_limits_state(&l, 6000, NULL), VG_RULE_THROTTLED);
    assert_true(vg_limits_window_countdown(&l, 6000, &ms));
    assert_int_equal(ms, 5000); /* oldest (1 s) + 10 s - 6 s */
    assert_int_equal(vg_limits_check(&l, 11001), VG_LIMIT_OK);
    assert_int_equal(vg_limits_window_runs(&l, 11001), 2);
    vg_limits_free(&l);

    /* Without a window the same history has used up ActionCount: finished after restart. */
    lim.action_count_window_ms = 0;
    assert_int_equal(vg_limits_rebuild(&l, &lim, false, 0, runs, 3, 6000), 0);
    assert_int_equal(vg_limits_state(&l, 6000, NULL), VG_RULE_FINISHED);
    vg_limits_free(&l);

    /* Cooldown and RuleDuration come back too: last run at 5 s, start at 0. */
    lim =
        (struct vg_rule_limits){.action_count = 10, .cooldown_ms = 4000, .rule_duration_ms = 60000};
    assert_int_equal(vg_limits_rebuild(&l, &lim, false, 0, runs, 3, 6000), 0);
    assert_int_equal(vg_limits_check(&l, 8999), VG_LIMIT_COOLDOWN);
    assert_int_equal(vg_limits_check(&l, 9000), VG_LIMIT_OK);
    assert_int_equal(vg_limits_check(&l, 60000), VG_LIMIT_FINISHED);
    vg_limits_free(&l);

    /* A Startup rule that already ran stays finished. */
    lim = (struct vg_rule_limits){.action_count = 5};
    assert_int_equal(vg_limits_rebuild(&l, &lim, true, 0, runs, 1, 6000), 0);
    assert_int_equal(vg_limits_check(&l, 6000), VG_LIMIT_FINISHED);
    vg_limits_free(&l);
}

static void startup_and_outside_finishes(void **unused)
{
    struct vg_rule_limits lim = {.action_count = 5};
    struct vg_limits l;
    const char *why;
    vg_limits_init(&l, &lim, true, 0);
    assert_int_equal(vg_limits_begin(&l, 0), VG_LIMIT_OK);
    vg_limits_end(&l, 10);
    assert_int_equal(vg_limits_state(&l, 20, &why), VG_RULE_FINISHED);
    assert_string_equal(why, "The collection rule will no longer trigger because the Startup "
                             "trigger only executes once.");
    vg_limits_free(&l);

    vg_limits_init(&l, &lim, false, 0);
    vg_limits_finish(&l, VG_FINISH_FAILURE, "egress provider unreachable");
    assert_int_equal(vg_limits_state(&l, 20, &why), VG_RULE_FINISHED);
    assert_string_equal(why, "The collection rule will no longer trigger because a failure "
                             "occurred with message: egress provider unreachable.");
    vg_limits_free(&l);

    vg_limits_init(&l, &lim, false, 0);
    vg_limits_finish(&l, VG_FINISH_CONFIG_CHANGED, NULL);
    assert_int_equal(vg_limits_state(&l, 20, &why), VG_RULE_FINISHED);
    assert_string_equal(why, "This collection rule will no longer trigger because it no longer "
                             "exists.");
    assert_string_equal(vg_rule_state_name(VG_RULE_ACTION_EXECUTING), "ActionExecuting");
    vg_limits_free(&l);
    vg_limits_free(NULL);
}

const struct CMUnitTest vg_limits_tests[] = {
    cmocka_unit_test(sliding_window_throttles_and_recovers),
    cmocka_unit_test(lifetime_count_finishes),
    cmocka_unit_test(rule_duration_finishes),
    cmocka_unit_test(cooldown_holds),
    cmocka_unit_test(rebuild_from_runs),
    cmocka_unit_test(startup_and_outside_finishes),
};
const size_t vg_limits_tests_n = sizeof(vg_limits_tests) / sizeof(vg_limits_tests[0]);
