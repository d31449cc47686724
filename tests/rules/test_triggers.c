/* Trigger semantics over synthetic sample streams (sample timestamps are the only clock). */
#include "rules_test.h"

#include <stdlib.h>
#include <string.h>

#define RULE(trigger_yaml)                                                                         \
    "CollectionRules:\n"                                                                           \
    "  R:\n"                                                                                       \
    "    Trigger:\n" trigger_yaml

static bool feed(const struct vg_rule *r, void *st, uint64_t t, int id, double v)
{
    struct vg_sample s = smp(t, id, v);
    return vg_trigger_observe(&r->trigger, st, &s);
}

static void cpu_fires_only_after_full_window(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: CPUUsage\n"
                                               "      Settings:\n"
                                               "        GreaterThan: 80\n"
                                               "        SlidingWindowDuration: 10s\n"));
    void *st = state_new(r);
    assert_int_equal(r->metrics, VG_METRIC_BIT(VG_M_CPU_PERCENT));
    /* A 5 s spike then normal load: never fires. */
    for (uint64_t t = 0; t <= 5000; t += 1000)
        assert_false(feed(r, st, t, VG_M_CPU_PERCENT, 95));
    for (uint64_t t = 6000; t <= 30000; t += 1000)
        assert_false(feed(r, st, t, VG_M_CPU_PERCENT, 40));
    /* Sustained: the window opens at 31 s and fires at 41 s, not a sample earlier. */
    for (uint64_t t = 31000; t < 41000; t += 1000)
        assert_false(feed(r, st, t, VG_M_CPU_PERCENT, 90));
    assert_true(feed(r, st, 41000, VG_M_CPU_PERCENT, 90));
    /* Re-armed: another full window is needed. */
    for (uint64_t t = 42000; t < 51000; t += 1000)
        assert_false(feed(r, st, t, VG_M_CPU_PERCENT, 90));
    assert_true(feed(r, st, 51000, VG_M_CPU_PERCENT, 90));
    /* Exactly at the threshold is not "greater than". */
    vg_trigger_reset(&r->trigger, st);
    for (uint64_t t = 0; t <= 20000; t += 1000)
        assert_false(feed(r, st, t, VG_M_CPU_PERCENT, 80));
    free(st);
    fx_free(&f);
}

static void cpu_gap_resets_window(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: CPUUsage\n"
                                               "      Settings:\n"
                                               "        GreaterThan: 80\n"
                                               "        SlidingWindowDuration: 10s\n"));
    void *st = state_new(r);
    for (uint64_t t = 0; t <= 6000; t += 1000)
        assert_false(feed(r, st, t, VG_M_CPU_PERCENT, 90));
    /* 6 s -> 9 s is a 3 s gap with 1 s samples (> 1.5 intervals): the window restarts at 9 s.
     * Without the reset it would fire at 10 s. */
    for (uint64_t t = 9000; t < 19000; t += 1000)
        assert_false(feed(r, st, t, VG_M_CPU_PERCENT, 90));
    assert_true(feed(r, st, 19000, VG_M_CPU_PERCENT, 90));
    /* A 1.4 interval jitter is not a gap. */
    vg_trigger_reset(&r->trigger, st);
    assert_false(feed(r, st, 0, VG_M_CPU_PERCENT, 90));
    assert_false(feed(r, st, 1000, VG_M_CPU_PERCENT, 90));
    assert_false(feed(r, st, 2400, VG_M_CPU_PERCENT, 90));
    assert_false(feed(r, st, 3400, VG_M_CPU_PERCENT, 90));
    for (uint64_t t = 4400; t < 10000; t += 1000)
        assert_false(feed(r, st, t, VG_M_CPU_PERCENT, 90));
    assert_true(feed(r, st, 10400, VG_M_CPU_PERCENT, 90));
    /* Samples without the metric do not count as passing. */
    vg_trigger_reset(&r->trigger, st);
    struct vg_sample none = smp(0, VG_M_RSS, 1);
    for (uint64_t t = 0; t <= 20000; t += 1000) {
        none.t_ms = t;
        assert_false(vg_trigger_observe(&r->trigger, st, &none));
    }
    free(st);
    fx_free(&f);
}

static void cpu_less_than_and_defaults(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: CPUUsage\n"
                                               "      Settings:\n"
                                               "        LessThan: 10\n"
                                               "        SlidingWindowDuration: 00:00:05\n"));
    void *st = state_new(r);
    /* LessThan alone drops GreaterThan's default of 50. */
    for (uint64_t t = 0; t < 5000; t += 1000)
        assert_false(feed(r, st, t, VG_M_CPU_PERCENT, 2));
    assert_true(feed(r, st, 5000, VG_M_CPU_PERCENT, 2));
    assert_false(feed(r, st, 6000, VG_M_CPU_PERCENT, 60));
    free(st);
    fx_free(&f);

    /* No settings: GreaterThan 50 over one minute. */
    r = fx_rule(&f, RULE("      Type: cpuusage\n"));
    st = state_new(r);
    for (uint64_t t = 0; t < 60000; t += 1000)
        assert_false(feed(r, st, t, VG_M_CPU_PERCENT, 51));
    assert_true(feed(r, st, 60000, VG_M_CPU_PERCENT, 51));
    free(st);
    fx_free(&f);
}

static void memory_usage(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: MemoryUsage\n"
                                               "      Settings:\n"
                                               "        GreaterThan: 512MB\n"));
    void *st = state_new(r);
    assert_int_equal(r->metrics, VG_METRIC_BIT(VG_M_RSS));
    assert_false(feed(r, st, 0, VG_M_RSS, 512 * MB));
    assert_true(feed(r, st, 1000, VG_M_RSS, 513 * MB)); /* window 0: immediate */
    free(st);
    fx_free(&f);

    r = fx_rule(&f, RULE("      Type: MemoryUsage\n"
                         "      Settings:\n"
                         "        Metric: CgroupPercent\n"
                         "        GreaterThan: 90\n"
                         "        SlidingWindowDuration: 2s\n"));
    st = state_new(r);
    assert_int_equal(r->metrics, VG_METRIC_BIT(VG_M_CG_MEM_PERCENT));
    assert_false(feed(r, st, 0, VG_M_CG_MEM_PERCENT, 95));
    assert_false(feed(r, st, 1000, VG_M_CG_MEM_PERCENT, 95));
    assert_true(feed(r, st, 2000, VG_M_CG_MEM_PERCENT, 95));
    free(st);
    fx_free(&f);
}

/* A trigger over a runtime metric: the rule knows its runtime, and the values come from the
 * runtime's own samples (struct vg_rt_values) through vg_sample_set_runtime. */
static void runtime_metric(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: MemoryUsage\n"
                                               "      Settings:\n"
                                               "        Metric: NodeHeap\n"
                                               "        GreaterThan: 100MB\n"));
    void *st = state_new(r);
    assert_int_equal(r->metrics, VG_METRIC_BIT(VG_M_NODE_HEAP_USED));
    assert_true(r->needs_runtime);
    assert_string_equal(r->runtime, "node");
    struct vg_rt_values rt = {0};
    struct vg_sample s = smp(0, VG_M_RSS, 900 * MB); /* RSS alone never fires it */
    vg_sample_set_runtime(&s, &rt);
    assert_false(vg_trigger_observe(&r->trigger, st, &s));
    assert_int_equal(vg_rt_values_set(&rt, "node", "nodejs_heap_used_bytes", 101 * MB), 0);
    vg_sample_set_runtime(&s, &rt);
    assert_true(vg_sample_has(&s, VG_M_NODE_HEAP_USED));
    s.t_ms = 1000;
    assert_true(vg_trigger_observe(&r->trigger, st, &s));
    /* another runtime's value of the same name is not this one's */
    vg_rt_values_clear(&rt);
    assert_int_equal(vg_rt_values_set(&rt, "jvm", "nodejs_heap_used_bytes", 500 * MB), 0);
    vg_sample_set_runtime(&s, &rt);
    assert_false(vg_sample_has(&s, VG_M_NODE_HEAP_USED));
    vg_rt_values_free(&rt);
    free(st);
    fx_free(&f);

    r = fx_rule(&f, RULE("      Type: Metric\n"
                         "      Settings:\n"
                         "        Name: nodejs_heap_total_bytes\n"
                         "        GreaterThan: 1\n"));
    assert_string_equal(r->runtime, "node");
    assert_int_equal(r->metrics, VG_METRIC_BIT(VG_M_NODE_HEAP_TOTAL));
    fx_free(&f);
    r = fx_rule(&f, RULE("      Type: MemoryGrowth\n"
                         "      Settings:\n"
                         "        Metric: NodeHeap\n"
                         "        Delta: 8MB\n"));
    assert_string_equal(r->runtime, "node");
    fx_free(&f);
    /* /proc metrics: any process */
    r = fx_rule(&f, RULE("      Type: MemoryUsage\n"
                         "      Settings:\n"
                         "        GreaterThan: 1GB\n"));
    assert_null(r->runtime);
    assert_false(r->needs_runtime);
    fx_free(&f);
}

/* Feeds values[] one second apart and returns the indexes that fired as a bit mask. */
static uint64_t fire_mask(const struct vg_rule *r, void *st, const double *mb, size_t n,
                          uint64_t step_ms)
{
    uint64_t mask = 0;
    for (size_t i = 0; i < n; i++)
        if (feed(r, st, i * step_ms, VG_M_RSS, mb[i] * MB))
            mask |= 1ull << i;
    return mask;
}

static const char *growth_yaml(const char *baseline)
{
    static char buf[512];
    snprintf(buf, sizeof(buf),
             RULE("      Type: MemoryGrowth\n"
                  "      Settings:\n"
                  "        Delta: 100MB\n"
                  "%s%s%s"),
             baseline ? "        Baseline: " : "", baseline ? baseline : "", baseline ? "\n" : "");
    return buf;
}

static void memgrowth_once_per_delta(void **unused)
{
    static const char *modes[] = {NULL, "LastFire", "Start", "Minimum"};
    for (size_t m = 0; m < 4; m++) {
        struct fx f;
        const struct vg_rule *r = fx_rule(&f, growth_yaml(modes[m]));
        void *st = state_new(r);
        /* 0 -> 350 MB in 10 MB steps: fires at 100, 200 and 300 in every mode. */
        int fires = 0;
        for (int i = 0; i <= 35; i++) {
            bool fired = feed(r, st, (uint64_t)i * 1000, VG_M_RSS, i * 10 * MB);
            if (fired) {
                fires++;
                assert_int_equal(i % 10, 0);
            }
        }
        assert_int_equal(fires, 3);
        free(st);
        fx_free(&f);
    }
}

static void memgrowth_baselines_differ(void **unused)
{
    struct fx f;
    const struct vg_rule *r;
    void *st;
    /* Coarse samples: 0, 150, 240. Start levels fire at 150 (>=100) and 240 (>=200);
     * LastFire needs 250 after firing at 150. */
    static const double coarse[] = {0, 150, 240};
    r = fx_rule(&f, growth_yaml("Start"));
    st = state_new(r);
    assert_int_equal(fire_mask(r, st, coarse, 3, 1000), 0x6);
    free(st);
    fx_free(&f);
    r = fx_rule(&f, growth_yaml("LastFire"));
    st = state_new(r);
    assert_int_equal(fire_mask(r, st, coarse, 3, 1000), 0x2);
    free(st);
    fx_free(&f);

    /* Growth, a drop, regrowth: Minimum follows the drop, LastFire and Start do not. */
    static const double dip[] = {0, 100, 50, 150, 160};
    r = fx_rule(&f, growth_yaml("Minimum"));
    st = state_new(r);
    assert_int_equal(fire_mask(r, st, dip, 5, 1000), 0x2 | 0x8);
    free(st);
    fx_free(&f);
    r = fx_rule(&f, growth_yaml("LastFire"));
    st = state_new(r);
    assert_int_equal(fire_mask(r, st, dip, 5, 1000), 0x2);
    free(st);
    fx_free(&f);
    r = fx_rule(&f, growth_yaml("Start"));
    st = state_new(r);
    assert_int_equal(fire_mask(r, st, dip, 5, 1000), 0x2);
    free(st);
    fx_free(&f);
}

static void memgrowth_within(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: MemoryGrowth\n"
                                               "      Settings:\n"
                                               "        Delta: 100MB\n"
                                               "        Within: 5m\n"));
    void *st = state_new(r);
    /* Slow leak: 10 MB a minute = 50 MB per 5 minutes, 350 MB in total: never fires. */
    for (int i = 0; i <= 35; i++)
        assert_false(feed(r, st, (uint64_t)i * 60000, VG_M_RSS, i * 10 * MB));
    /* A plateau longer than the window, then fast: 10 MB a second from 350 MB fires after
     * 100 MB, i.e. at 450 MB. */
    for (int i = 36; i <= 42; i++)
        assert_false(feed(r, st, (uint64_t)i * 60000, VG_M_RSS, 350 * MB));
    uint64_t t0 = 42 * 60000;
    int fired_at = -1;
    for (int i = 1; i <= 10; i++)
        if (feed(r, st, t0 + (uint64_t)i * 1000, VG_M_RSS, (350 + i * 10) * MB)) {
            assert_int_equal(fired_at, -1);
            fired_at = i;
        }
    assert_int_equal(fired_at, 10);
    free(st);
    fx_free(&f);
}

static void memgrowth_save_restore(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, growth_yaml(NULL));
    struct vg_trigger_persist p;
    void *st = state_new(r);
    assert_false(feed(r, st, 0, VG_M_RSS, 0));
    assert_true(feed(r, st, 1000, VG_M_RSS, 120 * MB));
    vg_trigger_save(&r->trigger, st, &p);
    assert_int_equal(p.n, 2);
    free(st);
    /* "Daemon restart": a fresh state restored from the saved struct keeps the baseline. */
    st = state_new(r);
    vg_trigger_restore(&r->trigger, st, &p);
    assert_false(feed(r, st, 5000, VG_M_RSS, 200 * MB));
    assert_true(feed(r, st, 6000, VG_M_RSS, 220 * MB));
    free(st);
    /* Without restoring, the first sample becomes the baseline. */
    st = state_new(r);
    assert_false(feed(r, st, 5000, VG_M_RSS, 200 * MB));
    assert_false(feed(r, st, 6000, VG_M_RSS, 220 * MB));
    free(st);
    /* Triggers without persistent state save nothing. */
    fx_free(&f);
    r = fx_rule(&f, RULE("      Type: CPUUsage\n"));
    st = state_new(r);
    vg_trigger_save(&r->trigger, st, &p);
    assert_int_equal(p.n, 0);
    free(st);
    fx_free(&f);
}

static void eventcount(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: EventCount\n"
                                               "      Settings:\n"
                                               "        Counter: process_major_page_faults_total\n"
                                               "        Count: 100\n"
                                               "        SlidingWindowDuration: 10s\n"));
    void *st = state_new(r);
    assert_int_equal(r->metrics, VG_METRIC_BIT(VG_M_MAJFLT));
    /* +5 per second is 50 per 10 s: never. */
    for (uint64_t t = 0; t <= 60000; t += 1000)
        assert_false(feed(r, st, t, VG_M_MAJFLT, 1000 + (double)t / 1000 * 5));
    /* Flat for 20 s, then +20 per second: 100 more at 85 s. */
    for (uint64_t t = 61000; t <= 80000; t += 1000)
        assert_false(feed(r, st, t, VG_M_MAJFLT, 1300));
    for (uint64_t k = 1; k < 5; k++)
        assert_false(feed(r, st, 80000 + k * 1000, VG_M_MAJFLT, 1300 + (double)k * 20));
    assert_true(feed(r, st, 85000, VG_M_MAJFLT, 1400));
    /* Re-armed from 1400: the next 100 arrive at 90 s. */
    for (uint64_t k = 6; k < 10; k++)
        assert_false(feed(r, st, 80000 + k * 1000, VG_M_MAJFLT, 1300 + (double)k * 20));
    assert_true(feed(r, st, 90000, VG_M_MAJFLT, 1500));
    /* A counter going backwards starts over instead of firing. */
    assert_false(feed(r, st, 91000, VG_M_MAJFLT, 3));
    assert_false(feed(r, st, 92000, VG_M_MAJFLT, 90));
    assert_true(feed(r, st, 93000, VG_M_MAJFLT, 103));
    free(st);
    fx_free(&f);
}

static void thresholds(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: ThreadCount\n"
                                               "      Settings:\n"
                                               "        GreaterThan: 100\n"
                                               "        SlidingWindowDuration: 0\n"));
    void *st = state_new(r);
    assert_false(feed(r, st, 0, VG_M_THREADS, 100));
    assert_true(feed(r, st, 1000, VG_M_THREADS, 101));
    free(st);
    fx_free(&f);

    r = fx_rule(&f, RULE("      Type: FileDescriptorCount\n"
                         "      Settings:\n"
                         "        GreaterThan: 1000\n"
                         "        SlidingWindowDuration: 3s\n"));
    st = state_new(r);
    assert_int_equal(r->metrics, VG_METRIC_BIT(VG_M_FDS));
    assert_false(feed(r, st, 0, VG_M_FDS, 2000));
    assert_false(feed(r, st, 1000, VG_M_FDS, 2000));
    assert_false(feed(r, st, 2000, VG_M_FDS, 2000));
    assert_true(feed(r, st, 3000, VG_M_FDS, 2000));
    free(st);
    fx_free(&f);

    r = fx_rule(&f, RULE("      Type: Metric\n"
                         "      Settings:\n"
                         "        Name: process_io_write_bytes_total\n"
                         "        GreaterThan: 10\n"
                         "        LessThan: 20\n"
                         "        SlidingWindowDuration: 1s\n"));
    st = state_new(r);
    assert_int_equal(r->metrics, VG_METRIC_BIT(VG_M_IO_WRITE));
    assert_false(feed(r, st, 0, VG_M_IO_WRITE, 15));
    assert_false(feed(r, st, 1000, VG_M_IO_WRITE, 25)); /* outside the band: reset */
    assert_false(feed(r, st, 2000, VG_M_IO_WRITE, 15));
    assert_true(feed(r, st, 3000, VG_M_IO_WRITE, 15));
    free(st);
    fx_free(&f);
}

static void startup_once(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: Startup\n"));
    void *st = state_new(r);
    assert_true(vg_rule_once(r));
    assert_int_equal(r->metrics, 0);
    assert_true(feed(r, st, 0, VG_M_RSS, 1));
    for (uint64_t t = 1000; t < 10000; t += 1000)
        assert_false(feed(r, st, t, VG_M_RSS, 1));
    free(st);
    fx_free(&f);
}

static void runtime_triggers_validate_but_never_fire(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: EventCounter\n"
                                               "      Settings:\n"
                                               "        ProviderName: System.Runtime\n"
                                               "        CounterName: cpu-usage\n"
                                               "        GreaterThan: 70\n"));
    void *st = state_new(r);
    assert_true(r->needs_runtime);
    assert_string_equal(r->trigger.type->runtime, "dotnet");
    assert_false(feed(r, st, 0, VG_M_CPU_PERCENT, 99));
    free(st);
    fx_free(&f);
    r = fx_rule(&f, RULE("      Type: AspNetResponseStatus\n"
                         "      Settings:\n"
                         "        StatusCodes: [\"500-599\", \"429\"]\n"
                         "        ResponseCount: 10\n"));
    assert_true(r->needs_runtime);
    fx_free(&f);
}

const struct CMUnitTest vg_trigger_tests[] = {
    cmocka_unit_test(cpu_fires_only_after_full_window),
    cmocka_unit_test(cpu_gap_resets_window),
    cmocka_unit_test(cpu_less_than_and_defaults),
    cmocka_unit_test(memory_usage),
    cmocka_unit_test(runtime_metric),
    cmocka_unit_test(memgrowth_once_per_delta),
    cmocka_unit_test(memgrowth_baselines_differ),
    cmocka_unit_test(memgrowth_within),
    cmocka_unit_test(memgrowth_save_restore),
    cmocka_unit_test(eventcount),
    cmocka_unit_test(thresholds),
    cmocka_unit_test(startup_once),
    cmocka_unit_test(runtime_triggers_validate_but_never_fire),
};
const size_t vg_trigger_tests_n = sizeof(vg_trigger_tests) / sizeof(vg_trigger_tests[0]);
