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

static bool feed_rt(const struct vg_rule *r, void *st, uint64_t t, const char *provider,
                    const char *name, double v)
{
    struct vg_rt_values vs = {0};
    assert_int_equal(vg_rt_values_set(&vs, provider, name, v), 0);
    struct vg_sample s = {.t_ms = t, .rt = &vs};
    bool fired = vg_trigger_observe(&r->trigger, st, &s);
    vg_rt_values_free(&vs);
    return fired;
}

/* CPUUsage applies to every process and reads System.Runtime's cpu-usage where the sample
 * carries it, /proc's figure otherwise: switching source does not restart the window. */
static void cpu_prefers_runtime_counter(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: CPUUsage\n"
                                               "      Settings:\n"
                                               "        GreaterThan: 60\n"
                                               "        SlidingWindowDuration: 00:00:04\n"));
    assert_false(r->needs_runtime);
    assert_null(r->runtime);
    assert_true(r->trigger.type->flags & VG_TRIGGER_RT_PREFERRED);
    const struct vg_rt_metric_ref *ref = vg_trigger_rt_metric(&r->trigger);
    assert_string_equal(ref->provider, "System.Runtime");
    assert_string_equal(ref->name, "cpu-usage");
    void *st = state_new(r);
    struct vg_rt_values vs = {0};
    assert_int_equal(vg_rt_values_set(&vs, "System.Runtime", "cpu-usage", 90), 0);
    /* the counter wins over /proc (10%): the window runs on 90 */
    struct vg_sample s = smp(0, VG_M_CPU_PERCENT, 10);
    s.rt = &vs;
    assert_ptr_equal(vg_trigger_rt_value(&r->trigger, &s), &vs.v[0]);
    for (uint64_t t = 0; t < 2000; t += 1000) {
        s.t_ms = t;
        assert_false(vg_trigger_observe(&r->trigger, st, &s));
    }
    /* no counter (the session ended): /proc's 70 keeps the window going, and it fires */
    assert_false(feed(r, st, 2000, VG_M_CPU_PERCENT, 70));
    assert_null(vg_trigger_rt_value(&r->trigger, &(struct vg_sample){.t_ms = 2000}));
    assert_false(feed(r, st, 3000, VG_M_CPU_PERCENT, 70));
    assert_true(feed(r, st, 4000, VG_M_CPU_PERCENT, 70));
    /* a runtime counter below the threshold breaks the window though /proc says 99 */
    vg_trigger_reset(&r->trigger, st);
    assert_int_equal(vg_rt_values_set(&vs, "System.Runtime", "cpu-usage", 20), 0);
    for (uint64_t t = 0; t <= 8000; t += 1000) {
        s = smp(t, VG_M_CPU_PERCENT, 99);
        s.rt = &vs;
        assert_false(vg_trigger_observe(&r->trigger, st, &s));
    }
    /* another provider's cpu-usage is not the runtime's */
    vg_rt_values_free(&vs);
    assert_int_equal(vg_rt_values_set(&vs, "MyCompany", "cpu-usage", 99), 0);
    s = smp(9000, VG_M_CPU_PERCENT, 5);
    s.rt = &vs;
    assert_null(vg_trigger_rt_value(&r->trigger, &s));
    vg_rt_values_free(&vs);
    free(st);
    fx_free(&f);
    /* other types never prefer a runtime counter */
    r = fx_rule(&f, RULE("      Type: GCHeapSize\n"));
    assert_int_equal(vg_rt_values_set(&vs, "System.Runtime", "gc-heap-size", 99), 0);
    s = (struct vg_sample){.t_ms = 0, .rt = &vs};
    assert_null(vg_trigger_rt_value(&r->trigger, &s));
    vg_rt_values_free(&vs);
    fx_free(&f);
}

/* EventCounter and its shortcuts read the .NET session's counters: the value must hold for the
 * whole window; they name what the session must enable. */
static void eventcounter_window(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: EventCounter\n"
                                               "      Settings:\n"
                                               "        ProviderName: MyCompany-Orders\n"
                                               "        CounterName: queue-depth\n"
                                               "        GreaterThan: 70\n"
                                               "        SlidingWindowDuration: 00:00:05\n"));
    const struct vg_rt_metric_ref *ref = vg_trigger_rt_metric(&r->trigger);
    assert_non_null(ref);
    assert_string_equal(ref->provider, "MyCompany-Orders");
    assert_string_equal(ref->name, "queue-depth");
    void *st = state_new(r);
    assert_false(feed(r, st, 0, VG_M_CPU_PERCENT, 99)); /* no runtime sample: nothing */
    for (uint64_t t = 1000; t < 6000; t += 1000)
        assert_false(feed_rt(r, st, t, "MyCompany-Orders", "queue-depth", 80));
    assert_true(feed_rt(r, st, 6000, "mycompany-orders", "queue-depth", 80));
    assert_false(feed_rt(r, st, 7000, "MyCompany-Orders", "queue-depth", 80)); /* re-armed */
    assert_false(feed_rt(r, st, 8000, "MyCompany-Orders", "queue-depth", 50)); /* a dip */
    for (uint64_t t = 9000; t < 14000; t += 1000)
        assert_false(feed_rt(r, st, t, "MyCompany-Orders", "queue-depth", 90));
    assert_true(feed_rt(r, st, 14000, "MyCompany-Orders", "queue-depth", 90));
    assert_false(feed_rt(r, st, 30000, "MyCompany-Orders", "other-counter", 90));
    free(st);
    fx_free(&f);

    r = fx_rule(&f, RULE("      Type: GCHeapSize\n"
                         "      Settings:\n"
                         "        SlidingWindowDuration: 00:00:02\n"));
    ref = vg_trigger_rt_metric(&r->trigger);
    assert_string_equal(ref->provider, "System.Runtime");
    assert_string_equal(ref->name, "gc-heap-size");
    st = state_new(r);
    assert_false(feed_rt(r, st, 0, "System.Runtime", "gc-heap-size", 9)); /* default: > 10 MB */
    assert_false(feed_rt(r, st, 1000, "System.Runtime", "gc-heap-size", 11));
    assert_false(feed_rt(r, st, 2000, "System.Runtime", "gc-heap-size", 12));
    assert_true(feed_rt(r, st, 3000, "System.Runtime", "gc-heap-size", 12));
    free(st);
    fx_free(&f);

    r = fx_rule(&f, RULE("      Type: ThreadpoolQueueLength\n"
                         "      Settings:\n"
                         "        LessThan: 5\n"
                         "        SlidingWindowDuration: 00:00:01\n"));
    assert_string_equal(vg_trigger_rt_metric(&r->trigger)->name, "threadpool-queue-length");
    st = state_new(r);
    assert_false(feed_rt(r, st, 0, "System.Runtime", "threadpool-queue-length", 3));
    assert_true(feed_rt(r, st, 1000, "System.Runtime", "threadpool-queue-length", 2));
    free(st);
    fx_free(&f);
}

/* EventMeter: the instrument's time series (tags) and histogram percentiles as the dotnet
 * session names them; the series furthest beyond the threshold decides. */
static void eventmeter_series(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: EventMeter\n"
                                               "      Settings:\n"
                                               "        MeterName: Shop\n"
                                               "        InstrumentName: latency\n"
                                               "        HistogramPercentile: 95\n"
                                               "        GreaterThan: 300\n"
                                               "        SlidingWindowDuration: 00:00:02\n"));
    assert_string_equal(vg_trigger_rt_metric(&r->trigger)->provider, "Shop");
    void *st = state_new(r);
    struct vg_rt_values vs = {0};
    vg_rt_values_set(&vs, "Shop", "latency@p50", 900); /* another percentile: ignored */
    vg_rt_values_set(&vs, "Shop", "latency@p95", 100);
    vg_rt_values_set(&vs, "Shop", "latency{route=/a}@p95", 350); /* a tagged series beyond */
    vg_rt_values_set(&vs, "Shop", "latency-other@p95", 999);     /* another instrument */
    vg_rt_values_set(&vs, "Other", "latency@p95", 999);          /* another meter */
    struct vg_sample smp0 = {.t_ms = 0, .rt = &vs};
    assert_false(vg_trigger_observe(&r->trigger, st, &smp0));
    smp0.t_ms = 1000;
    assert_false(vg_trigger_observe(&r->trigger, st, &smp0));
    smp0.t_ms = 2000;
    assert_true(vg_trigger_observe(&r->trigger, st, &smp0));
    vg_rt_values_set(&vs, "Shop", "latency{route=/a}@p95", 250);
    smp0.t_ms = 3000;
    assert_false(vg_trigger_observe(&r->trigger, st, &smp0));
    vg_rt_values_free(&vs);
    free(st);
    fx_free(&f);

    /* no percentile: the plain series (a counter's rate), never a histogram's percentiles */
    r = fx_rule(&f, RULE("      Type: EventMeter\n"
                         "      Settings:\n"
                         "        MeterName: Shop\n"
                         "        InstrumentName: orders\n"
                         "        LessThan: 5\n"
                         "        SlidingWindowDuration: 00:00:01\n"));
    st = state_new(r);
    vg_rt_values_set(&vs, "Shop", "orders@p50", 1);
    struct vg_sample smp1 = {.t_ms = 0, .rt = &vs};
    assert_false(vg_trigger_observe(&r->trigger, st, &smp1));
    smp1.t_ms = 1000;
    assert_false(vg_trigger_observe(&r->trigger, st, &smp1));
    vg_rt_values_set(&vs, "shop", "ORDERS", 2);
    vg_rt_values_set(&vs, "Shop", "orders{region=eu}", 9);
    smp1.t_ms = 2000;
    assert_false(vg_trigger_observe(&r->trigger, st, &smp1));
    smp1.t_ms = 3000;
    assert_true(vg_trigger_observe(&r->trigger, st, &smp1)); /* the lowest series: 2 < 5 */
    vg_rt_values_free(&vs);
    free(st);
    fx_free(&f);
}

/* The split of a time series' sample name: tag values may hold '{', '}', '@' and "@pNN". */
static void series_split(void **unused)
{
    static const struct {
        const char *name;
        size_t instrument_len;
        const char *tags; /* NULL: none */
        int percentile;
    } cases[] = {
        {"latency", 7, NULL, -1},
        {"latency@p95", 7, NULL, 95},
        {"latency{route=/a}", 7, "route=/a", -1},
        {"latency{route=/a,code=200}@p5", 7, "route=/a,code=200", 5},
        {"latency{v=x@p50}", 7, "v=x@p50", -1}, /* in a tag value: not a percentile */
        {"latency{v=}@p5}", 7, "v=}@p5", -1},   /* the same, ending in a brace */
        {"latency{v=1}@p1000", 7, NULL, -1},    /* four digits: not a percentile */
        {"latency{v=1", 7, NULL, -1},           /* no closing brace: no tags */
        {"latency@px", 7, NULL, -1},
        {"latency@", 7, NULL, -1}, /* ends at the '@' (found by fuzz_rt_series) */
        {"{}", 0, "", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vg_rt_series sr;
        vg_rt_series_split(cases[i].name, &sr);
        assert_int_equal(sr.instrument_len, cases[i].instrument_len);
        assert_int_equal(sr.percentile, cases[i].percentile);
        if (!cases[i].tags) {
            assert_null(sr.tags);
            continue;
        }
        assert_non_null(sr.tags);
        assert_int_equal(sr.tags_len, strlen(cases[i].tags));
        assert_memory_equal(sr.tags, cases[i].tags, sr.tags_len);
    }
    (void)unused;
}

static bool feed_req(const struct vg_rule *r, void *st, uint64_t t, const char *const *paths,
                     const int *status, size_t n)
{
    struct vg_rt_values vs = {0};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(vg_rt_values_add_request(&vs, false, -1, 0, paths[i]), 0);
        assert_int_equal(
            vg_rt_values_add_request(&vs, true, status[i], (uint64_t)status[i] * 10, paths[i]), 0);
    }
    struct vg_sample s = {.t_ms = t, .rt = &vs};
    bool fired = vg_trigger_observe(&r->trigger, st, &s);
    vg_rt_values_free(&vs);
    return fired;
}

/* The AspNet* triggers over the request records of the samples: path globs (exclusions first),
 * status ranges, durations, the sliding window. */
static void aspnet_requests(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: AspNetResponseStatus\n"
                                               "      Settings:\n"
                                               "        StatusCodes: [\"500-599\", \"429\"]\n"
                                               "        ResponseCount: 3\n"
                                               "        IncludePaths: [\"/api/**/orders/*\"]\n"
                                               "        ExcludePaths: [\"/api/internal/**/*\"]\n"
                                               "        SlidingWindowDuration: 00:00:10\n"));
    assert_string_equal(vg_trigger_rt_metric(&r->trigger)->provider,
                        "Microsoft-Diagnostics-DiagnosticSource");
    void *st = state_new(r);
    const char *p1[] = {"/API/orders/1", "/api/v2/eu/orders/7", "/api/orders", "/health"};
    const int s1[] = {500, 503, 500, 500}; /* two match: /api/orders has no item */
    assert_false(feed_req(r, st, 1000, p1, s1, 4));
    const char *p2[] = {"/api/internal/x/orders/1", "/api/orders/2", "/api/orders/3"};
    const int s2[] = {500, 200, 404}; /* excluded, wrong status, wrong status */
    assert_false(feed_req(r, st, 2000, p2, s2, 3));
    /* 11 s later the first two left the window */
    const char *p3[] = {"/api/orders/9"};
    const int s3[] = {429};
    assert_false(feed_req(r, st, 12500, p3, s3, 1));
    assert_false(feed_req(r, st, 13000, p3, s3, 1));
    assert_true(feed_req(r, st, 14000, p3, s3, 1));  /* three 429s within the window */
    assert_false(feed_req(r, st, 15000, p3, s3, 1)); /* counting again from zero */
    free(st);
    fx_free(&f);

    r = fx_rule(&f, RULE("      Type: AspNetRequestDuration\n"
                         "      Settings:\n"
                         "        RequestCount: 2\n"
                         "        RequestDuration: 00:00:03\n"));
    st = state_new(r);
    const char *p4[] = {"/a", "/b"};
    const int s4[] = {200, 300}; /* durations 2 s and 3 s: one at least 3 s */
    assert_false(feed_req(r, st, 1000, p4, s4, 2));
    assert_true(feed_req(r, st, 2000, p4, s4, 2));
    free(st);
    fx_free(&f);

    r = fx_rule(&f, RULE("      Type: AspNetRequestCount\n"
                         "      Settings:\n"
                         "        RequestCount: 4\n"
                         "        ExcludePaths: [\"/health\"]\n"));
    st = state_new(r);
    const char *p5[] = {"/a", "/health", "/b"};
    const int s5[] = {200, 200, 200};
    assert_false(feed_req(r, st, 1000, p5, s5, 3)); /* starts counted: 2 */
    assert_true(feed_req(r, st, 2000, p5, s5, 3));
    free(st);
    fx_free(&f);
}

/* EventCount on a .NET counter: the running sum of its increments, only on .NET processes. */
static void eventcount_dotnet(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: EventCount\n"
                                               "      Settings:\n"
                                               "        Counter: exception-count\n"
                                               "        Count: 10\n"
                                               "        SlidingWindowDuration: 00:00:30\n"));
    assert_true(r->needs_runtime);
    assert_string_equal(vg_trigger_runtime(&r->trigger), "dotnet");
    assert_int_equal(r->trigger.metrics, 0);
    const struct vg_rt_metric_ref *ref = vg_trigger_rt_metric(&r->trigger);
    assert_string_equal(ref->provider, "System.Runtime");
    assert_string_equal(ref->name, "exception-count");
    void *st = state_new(r);
    struct vg_rt_values vs = {0};
    double inc[] = {4, 0, 3, 8}; /* running sums 4, 4, 7, 15: 11 more than the first */
    for (int i = 0; i < 4; i++) {
        vg_rt_values_set(&vs, "System.Runtime", "exception-count", inc[i]);
        vg_rt_values_add_total(&vs, "System.Runtime", "exception-count", inc[i]);
        struct vg_sample smp = {.t_ms = 1000 * (uint64_t)i, .rt = &vs};
        assert_int_equal(vg_trigger_observe(&r->trigger, st, &smp), i == 3);
    }
    vg_rt_values_free(&vs);
    free(st);
    fx_free(&f);

    r = fx_rule(&f, RULE("      Type: EventCount\n"
                         "      Settings:\n"
                         "        Counter: MyCompany-Orders/orders-failed\n"
                         "        Count: 1\n"));
    assert_string_equal(vg_trigger_rt_metric(&r->trigger)->provider, "MyCompany-Orders");
    fx_free(&f);
    /* a /proc counter stays a /proc counter */
    r = fx_rule(&f, RULE("      Type: EventCount\n"
                         "      Settings:\n"
                         "        Counter: majflt\n"
                         "        Count: 1\n"));
    assert_false(r->needs_runtime);
    assert_null(vg_trigger_runtime(&r->trigger));
    fx_free(&f);
}

/* jvm_* metrics (the JVM adapter's samples) work in the generic triggers, and make the rule a
 * JVM rule: the engine then applies it to JVMs only and opens their sessions. */
static void jvm_metrics_in_generic_triggers(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, RULE("      Type: MemoryGrowth\n"
                                               "      Settings:\n"
                                               "        Metric: JvmOldGen\n"
                                               "        Delta: 100MB\n"));
    assert_true(r->needs_runtime);
    assert_string_equal(r->runtime, "jvm");
    assert_true(r->metrics & VG_METRIC_BIT(VG_M_JVM_OLD_USED));
    void *st = state_new(r);
    int fires = 0;
    for (int i = 0; i <= 25; i++) {
        assert_false(feed(r, st, (uint64_t)i * 1000, VG_M_RSS, i * 10 * MB)); /* not its metric */
        fires += feed(r, st, (uint64_t)i * 1000 + 500, VG_M_JVM_OLD_USED, i * 10 * MB);
    }
    assert_int_equal(fires, 2);
    free(st);
    fx_free(&f);

    r = fx_rule(&f, RULE("      Type: EventCount\n"
                         "      Settings:\n"
                         "        Counter: jvm_gc_full_collections_total\n"
                         "        Count: 3\n"
                         "        SlidingWindowDuration: 00:00:10\n"));
    assert_string_equal(r->runtime, "jvm");
    st = state_new(r);
    fires = 0;
    for (int i = 0; i < 8; i++)
        fires += feed(r, st, (uint64_t)i * 1000, VG_M_JVM_GC_FULL_COUNT, i);
    assert_int_equal(fires, 2); /* at 3 and 6 */
    free(st);
    fx_free(&f);

    r = fx_rule(&f, RULE("      Type: Metric\n"
                         "      Settings:\n"
                         "        Name: jvm_threads_live\n"
                         "        GreaterThan: 100\n"
                         "        SlidingWindowDuration: 0\n"));
    assert_string_equal(r->runtime, "jvm");
    st = state_new(r);
    assert_false(feed(r, st, 0, VG_M_JVM_THREADS_LIVE, 50));
    assert_true(feed(r, st, 1000, VG_M_JVM_THREADS_LIVE, 150));
    free(st);
    fx_free(&f);

    /* A /proc metric leaves the rule for every process. */
    r = fx_rule(&f, RULE("      Type: Metric\n"
                         "      Settings:\n"
                         "        Name: process_threads\n"
                         "        GreaterThan: 100\n"));
    assert_false(r->needs_runtime);
    assert_null(r->runtime);
    fx_free(&f);
}

/* The engine copies a session's samples into the sample, and drops the ones it lacks. */
static void runtime_values_into_samples(void **unused)
{
    struct vg_rt_values rt = {0};
    struct vg_sample s = smp(0, VG_M_RSS, 1);
    s.valid |= VG_METRIC_BIT(VG_M_JVM_THREADS_LIVE); /* stale from an earlier sample */
    assert_int_equal(vg_rt_values_set(&rt, "jvm", "jvm_heap_used_bytes", 123), 0);
    assert_int_equal(vg_rt_values_set(&rt, "dotnet", "jvm_old_used_bytes", 7), 0);
    vg_sample_set_runtime(&s, &rt);
    assert_true(vg_sample_has(&s, VG_M_RSS));
    assert_true(vg_sample_has(&s, VG_M_JVM_HEAP_USED));
    assert_true(s.v[VG_M_JVM_HEAP_USED] == 123);
    assert_false(vg_sample_has(&s, VG_M_JVM_OLD_USED)); /* another provider's */
    assert_false(vg_sample_has(&s, VG_M_JVM_THREADS_LIVE));
    vg_sample_set_runtime(&s, NULL);
    assert_false(vg_sample_has(&s, VG_M_JVM_HEAP_USED));
    assert_true(vg_sample_has(&s, VG_M_RSS));
    vg_rt_values_free(&rt);
}

const struct CMUnitTest vg_trigger_tests[] = {
    cmocka_unit_test(cpu_fires_only_after_full_window),
    cmocka_unit_test(cpu_gap_resets_window),
    cmocka_unit_test(cpu_less_than_and_defaults),
    cmocka_unit_test(cpu_prefers_runtime_counter),
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
    cmocka_unit_test(eventcounter_window),
    cmocka_unit_test(eventmeter_series),
    cmocka_unit_test(series_split),
    cmocka_unit_test(aspnet_requests),
    cmocka_unit_test(eventcount_dotnet),
    cmocka_unit_test(jvm_metrics_in_generic_triggers),
    cmocka_unit_test(runtime_values_into_samples),
};
const size_t vg_trigger_tests_n = sizeof(vg_trigger_tests) / sizeof(vg_trigger_tests[0]);
