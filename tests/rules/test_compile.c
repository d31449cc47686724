/* Rule compilation from YAML: exact diagnostics (file:line:col + key path + message) for each
 * error class, defaults, fingerprints, filters and output expansion. */
#include "rules_test.h"

#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#define EGRESS                                                                                     \
    "Egress:\n"                                                                                    \
    "  FileSystem:\n"                                                                              \
    "    artifacts:\n"                                                                             \
    "      DirectoryPath: /tmp/vg-artifacts\n"

static void trigger_setting_errors(void **unused)
{
    struct fx f;
    fx_load(&f, "CollectionRules:\n"                          /* 1 */
                "  HighCpu:\n"                                /* 2 */
                "    Trigger:\n"                              /* 3 */
                "      Type: CPUUsage\n"                      /* 4 */
                "      Settings:\n"                           /* 5 */
                "        GreaterThan: eighty\n"               /* 6 */
                "        SlidingWindowDuraton: 10s\n"         /* 7 */
                "  Range:\n"                                  /* 8 */
                "    Trigger:\n"                              /* 9 */
                "      Type: CPUUsage\n"                      /* 10 */
                "      Settings:\n"                           /* 11 */
                "        GreaterThan: 150\n"                  /* 12 */
                "        SlidingWindowDuration: 2.00:00:00\n" /* 13 */
                "  Spelled:\n"                                /* 14 */
                "    Trigger:\n"                              /* 15 */
                "      Typ: CPUUsage\n");                     /* 16 */
    assert_int_equal(f.rc_config, 0);
    assert_int_equal(f.rc_rules, VG_ECONFIG);
    assert_null(f.rs);
    fx_expect_diag(&f, "config.yaml:6:22: error: CollectionRules.HighCpu.Trigger.Settings."
                       "GreaterThan: expected a number 0-100, got \"eighty\"");
    /* unknown keys are warnings (dotnet-monitor ignores them) */
    fx_expect_diag(&f, "config.yaml:7:9: warning: CollectionRules.HighCpu.Trigger.Settings."
                       "SlidingWindowDuraton: unknown setting, ignored; did you mean "
                       "\"SlidingWindowDuration\"?");
    fx_expect_diag(&f, "config.yaml:12:22: error: CollectionRules.Range.Trigger.Settings."
                       "GreaterThan: expected a number 0-100, got \"150\" (out of range)");
    fx_expect_diag(&f, "config.yaml:13:32: error: CollectionRules.Range.Trigger.Settings."
                       "SlidingWindowDuration: expected a duration between 00:00:01 and "
                       "1.00:00:00, got \"2.00:00:00\"");
    fx_expect_diag(&f, "config.yaml:16:7: warning: CollectionRules.Spelled.Trigger.Typ: unknown "
                       "setting, ignored; did you mean \"Type\"?");
    fx_expect_diag(&f, "config.yaml:16:7: error: CollectionRules.Spelled.Trigger.Type: required "
                       "setting is missing; expected a trigger type such as CPUUsage");
    assert_int_equal(f.d.errors, 4);
    assert_int_equal(f.d.warnings, 2);
    fx_free(&f);
}

static void types_egress_references_duplicates(void **unused)
{
    struct fx f;
    fx_load(&f, EGRESS                     /* 1-4 */
            "CollectionRules:\n"           /* 5 */
            "  R:\n"                       /* 6 */
            "    Trigger:\n"               /* 7 */
            "      Type: CPUUsag\n"        /* 8 */
            "    Actions:\n"               /* 9 */
            "      - Name: dump\n"         /* 10 */
            "        Type: CollectDump\n"  /* 11 */
            "        Settings:\n"          /* 12 */
            "          Egress: artifact\n" /* 13 */
            "      - Name: run\n"          /* 14 */
            "        Type: Execute\n"      /* 15 */
            "        Settings:\n"          /* 16 */
            "          Path: /bin/echo\n"  /* 17 */
            "          Arguments: \"$(Actions.dump.ExitCode) $(Actions.later.ExitCode) "
            "$(Actions.nope.EgressPath) $(Actions.run.ExitCode)\"\n" /* 18 */
            "      - Name: dump\n"                                   /* 19 */
            "        Type: CollectDum\n"                             /* 20 */
            "      - Name: later\n"                                  /* 21 */
            "        Type: Execute\n"                                /* 22 */
            "        Settings:\n"                                    /* 23 */
            "          Path: /bin/true\n");                          /* 24 */
    assert_int_equal(f.rc_config, 0);
    assert_int_equal(f.rc_rules, VG_ECONFIG);
    fx_expect_diag(&f, "config.yaml:8:13: error: CollectionRules.R.Trigger.Type: unknown trigger "
                       "type \"CPUUsag\"; did you mean \"CPUUsage\"?");
    fx_expect_diag(&f, "config.yaml:13:19: error: CollectionRules.R.Actions[0].Settings.Egress: "
                       "unknown egress provider \"artifact\"; did you mean \"artifacts\"?");
    fx_expect_diag(&f, "config.yaml:18:22: error: CollectionRules.R.Actions[1].Settings."
                       "Arguments: $(Actions.dump.ExitCode): action \"dump\" (CollectDump) has no "
                       "output \"ExitCode\" (it has: EgressPath)");
    fx_expect_diag(&f, "config.yaml:18:22: error: CollectionRules.R.Actions[1].Settings."
                       "Arguments: $(Actions.later.ExitCode) refers to action \"later\", which "
                       "runs after this one");
    fx_expect_diag(&f, "config.yaml:18:22: error: CollectionRules.R.Actions[1].Settings."
                       "Arguments: $(Actions.nope.EgressPath) refers to an action that does not "
                       "exist");
    fx_expect_diag(&f, "config.yaml:18:22: error: CollectionRules.R.Actions[1].Settings."
                       "Arguments: $(Actions.run.ExitCode) refers to the action itself");
    fx_expect_diag(&f, "config.yaml:19:15: error: CollectionRules.R.Actions[2].Name: duplicate "
                       "action name \"dump\" (also used by Actions[0])");
    fx_expect_diag(&f, "config.yaml:20:15: error: CollectionRules.R.Actions[2].Type: unknown "
                       "action type \"CollectDum\"; did you mean \"CollectDump\"?");
    assert_int_equal(f.d.errors, 8);
    fx_free(&f);
}

static void action_setting_errors(void **unused)
{
    struct fx f;
    fx_load(&f, "CollectionRules:\n"                                               /* 1 */
                "  R:\n"                                                           /* 2 */
                "    Trigger:\n"                                                   /* 3 */
                "      Type: MemoryGrowth\n"                                       /* 4 */
                "      Settings:\n"                                                /* 5 */
                "        Baseline: LastFired\n"                                    /* 6 */
                "    Actions:\n"                                                   /* 7 */
                "      - Type: Execute\n"                                          /* 8 */
                "      - Type: CollectDump\n"                                      /* 9 */
                "        Settings:\n"                                              /* 10 */
                "          Type: Huge\n"                                           /* 11 */
                "      - Type: CollectTrace\n"                                     /* 12 */
                "        Settings:\n"                                              /* 13 */
                "          Profile: Cpu\n"                                         /* 14 */
                "          Providers: [{Name: Microsoft-Windows-DotNETRuntime}]\n" /* 15 */
                "          Egress: nowhere\n"                                      /* 16 */
                "      - Type: LoadProfiler\n"                                     /* 17 */
                "        Settings:\n"                                              /* 18 */
                "          Path: /opt/p.so\n"                                      /* 19 */
                "          Clsid: not-a-guid\n"                                    /* 20 */
                "      - Type: Execute\n"                                          /* 21 */
                "        Settings:\n"                                              /* 22 */
                "          Path: /bin/true\n"                                      /* 23 */
                "          IgnoreExitCode: maybe\n"                                /* 24 */
                "        WaitForCompletion: false\n"                               /* 25 */
                "        Extra: 1\n"                                               /* 26 */
                "    Limits:\n"                                                    /* 27 */
                "      ActionCount: 0\n"                                           /* 28 */
                "      RuleDuration: forever\n");                                  /* 29 */
    assert_int_equal(f.rc_config, 0);
    assert_int_equal(f.rc_rules, VG_ECONFIG);
    fx_expect_diag(&f, "config.yaml:6:9: error: CollectionRules.R.Trigger.Settings.Delta: "
                       "required setting is missing; expected a size such as 100MB");
    fx_expect_diag(&f, "config.yaml:6:19: error: CollectionRules.R.Trigger.Settings.Baseline: "
                       "expected one of Start, Minimum, LastFire, got \"LastFired\"; did you mean "
                       "\"LastFire\"?");
    fx_expect_diag(&f, "config.yaml:8:9: error: CollectionRules.R.Actions[0].Settings.Path: "
                       "required setting is missing; expected the path of an executable");
    fx_expect_diag(&f, "config.yaml:11:11: error: CollectionRules.R.Actions[1].Settings.Egress: "
                       "required setting is missing; expected the name of an egress provider");
    fx_expect_diag(&f, "config.yaml:11:17: error: CollectionRules.R.Actions[1].Settings.Type: "
                       "expected one of WithHeap, Full, Mini, Triage, got \"Huge\"");
    fx_expect_diag(&f, "config.yaml:14:11: error: CollectionRules.R.Actions[2].Settings: set "
                       "either Profile or Providers, not both");
    fx_expect_diag(&f, "config.yaml:20:18: error: CollectionRules.R.Actions[3].Settings.Clsid: "
                       "expected a GUID such as 55b9554d-6115-45a2-be1e-c80f7fa35369, got "
                       "\"not-a-guid\"");
    fx_expect_diag(&f, "config.yaml:24:27: error: CollectionRules.R.Actions[4].Settings."
                       "IgnoreExitCode: expected true or false, got \"maybe\"");
    fx_expect_diag(&f, "config.yaml:26:9: warning: CollectionRules.R.Actions[4].Extra: unknown "
                       "setting, ignored");
    fx_expect_diag(&f, "config.yaml:28:20: error: CollectionRules.R.Limits.ActionCount: expected "
                       "an integer 1-100000, got \"0\" (out of range)");
    fx_expect_diag(&f, "config.yaml:29:21: error: CollectionRules.R.Limits.RuleDuration: expected "
                       "a duration such as \"00:01:30\", \"1.00:00:00\", \"30s\", \"5m\", \"1h\" "
                       "or \"1d\", got \"forever\"");
    assert_int_equal(f.d.errors, 10);
    fx_free(&f);
}

static void more_validation_errors(void **unused)
{
    struct fx f;
    fx_load(&f, "CollectionRules:\n"                                         /* 1 */
                "  A:\n"                                                     /* 2 */
                "    Trigger:\n"                                             /* 3 */
                "      Type: EventCount\n"                                   /* 4 */
                "      Settings:\n"                                          /* 5 */
                "        Counter: process_threads\n"                         /* 6 */
                "        Count: 5\n"                                         /* 7 */
                "  B:\n"                                                     /* 8 */
                "    Trigger:\n"                                             /* 9 */
                "      Type: Metric\n"                                       /* 10 */
                "      Settings:\n"                                          /* 11 */
                "        Name: process_thread\n"                             /* 12 */
                "        GreaterThan: 1\n"                                   /* 13 */
                "  C:\n"                                                     /* 14 */
                "    Trigger:\n"                                             /* 15 */
                "      Type: AspNetResponseStatus\n"                         /* 16 */
                "      Settings:\n"                                          /* 17 */
                "        StatusCodes: [\"500-599\", \"600\"]\n"              /* 18 */
                "        ResponseCount: 3\n"                                 /* 19 */
                "  D:\n"                                                     /* 20 */
                "    Trigger:\n"                                             /* 21 */
                "      Type: CPUUsage\n"                                     /* 22 */
                "      Settings:\n"                                          /* 23 */
                "        GreaterThan: 90\n"                                  /* 24 */
                "        LessThan: 10\n"                                     /* 25 */
                "    Actions:\n"                                             /* 26 */
                "      - Type: CollectLogs\n"                                /* 27 */
                "        Settings:\n"                                        /* 28 */
                "          Egress: x\n"                                      /* 29 */
                "          FilterSpecs:\n"                                   /* 30 */
                "            Microsoft: Loud\n"                              /* 31 */
                "      - Type: CollectTrace\n"                               /* 32 */
                "        Settings:\n"                                        /* 33 */
                "          Egress: x\n"                                      /* 34 */
                "          Profile: Cpu\n"                                   /* 35 */
                "          StoppingEvent: {ProviderName: a, EventName: b}\n" /* 36 */
                "      - Type: CollectDump\n"                                /* 37 */
                "        Settings:\n"                                        /* 38 */
                "          Egress: x\n"                                      /* 39 */
                "      - Type: Execute\n"                                    /* 40 */
                "        Settings:\n"                                        /* 41 */
                "          Path: \"$(Actions.oops)\"\n");                    /* 42 */
    assert_int_equal(f.rc_config, 0);
    assert_int_equal(f.rc_rules, VG_ECONFIG);
    fx_expect_diag(&f, "config.yaml:6:18: error: CollectionRules.A.Trigger.Settings.Counter: "
                       "\"process_threads\" is a gauge, not a counter; use the Metric trigger for "
                       "gauges");
    fx_expect_diag(&f, "config.yaml:12:15: error: CollectionRules.B.Trigger.Settings.Name: unknown "
                       "metric \"process_thread\"; did you mean \"process_threads\"? (see "
                       "docs/metrics.md)");
    fx_expect_diag(&f, "config.yaml:18:34: error: CollectionRules.C.Trigger.Settings."
                       "StatusCodes[1]: expected a status code 100-599 or a range such as "
                       "500-599, got \"600\"");
    fx_expect_diag(&f, "config.yaml:24:9: error: CollectionRules.D.Trigger.Settings: GreaterThan "
                       "(90) must be lower than LessThan (10): no value can satisfy both");
    fx_expect_diag(&f, "config.yaml:31:24: error: CollectionRules.D.Actions[0].Settings."
                       "FilterSpecs.Microsoft: expected a log level (Trace, Debug, Information, "
                       "Warning, Error, Critical or None), got \"Loud\"");
    fx_expect_diag(&f, "config.yaml:36:26: error: CollectionRules.D.Actions[1].Settings."
                       "StoppingEvent: StoppingEvent can only be used with Providers");
    fx_expect_diag(&f, "config.yaml:39:19: error: CollectionRules.D.Actions[2].Settings.Egress: "
                       "unknown egress provider \"x\" (no egress providers are configured)");
    fx_expect_diag(&f, "config.yaml:42:17: error: CollectionRules.D.Actions[3].Settings.Path: "
                       "malformed action output reference; expected $(Actions.NAME.OUTPUT)");
    assert_int_equal(f.d.errors, 8);
    fx_free(&f);
}

static void lower_bounds(void **unused)
{
    struct fx f;
    fx_load(&f, "CollectionRules:\n"               /* 1 */
                "  A:\n"                           /* 2 */
                "    Trigger:\n"                   /* 3 */
                "      Type: MemoryGrowth\n"       /* 4 */
                "      Settings:\n"                /* 5 */
                "        Delta: 0\n"               /* 6 */
                "  B:\n"                           /* 7 */
                "    Trigger:\n"                   /* 8 */
                "      Type: EventCount\n"         /* 9 */
                "      Settings:\n"                /* 10 */
                "        Counter: majflt\n"        /* 11 */
                "        Count: 0\n"               /* 12 */
                "  C:\n"                           /* 13 */
                "    Trigger:\n"                   /* 14 */
                "      Type: AspNetRequestCount\n" /* 15 */
                "      Settings:\n"                /* 16 */
                "        RequestCount: -3\n");     /* 17 */
    assert_int_equal(f.rc_rules, VG_ECONFIG);
    fx_expect_diag(&f, "config.yaml:6:16: error: CollectionRules.A.Trigger.Settings.Delta: "
                       "expected a size of at least 1 byte, got \"0\" (out of range)");
    fx_expect_diag(&f, "config.yaml:12:16: error: CollectionRules.B.Trigger.Settings.Count: "
                       "expected a positive integer, got \"0\" (out of range)");
    fx_expect_diag(&f, "config.yaml:17:23: error: CollectionRules.C.Trigger.Settings."
                       "RequestCount: expected a positive integer, got \"-3\" (out of range)");
    assert_int_equal(f.d.errors, 3);
    fx_free(&f);
}

static void defaults_errors(void **unused)
{
    struct fx f;
    fx_load(&f, EGRESS                      /* 1-4 */
            "CollectionRuleDefaults:\n"     /* 5 */
            "  Actions:\n"                  /* 6 */
            "    Egress: artefacts\n"       /* 7 */
            "  Limits:\n"                   /* 8 */
            "    ActionCont: 3\n"           /* 9 */
            "CollectionRules:\n"            /* 10 */
            "  R:\n"                        /* 11 */
            "    Trigger:\n"                /* 12 */
            "      Type: Startup\n"         /* 13 */
            "    Actions:\n"                /* 14 */
            "      - Type: CollectDump\n"); /* 15 */
    assert_int_equal(f.rc_rules, VG_ECONFIG);
    fx_expect_diag(&f, "config.yaml:9:5: warning: CollectionRuleDefaults.Limits.ActionCont: "
                       "unknown setting, ignored; did you mean \"ActionCount\"?");
    /* A default egress is reported where it was written, under the path of the action using it. */
    fx_expect_diag(&f, "config.yaml:7:13: error: CollectionRules.R.Actions[0].Settings.Egress: "
                       "unknown egress provider \"artefacts\"; did you mean \"artifacts\"?");
    assert_int_equal(f.d.errors, 1);
    fx_free(&f);
}

/* A rule with an error is refused alone (the daemon's mode): the loader's errors (a bad filter,
 * a missing template, a duplicate) and the compiler's (a bad setting) each take down only the
 * rule they belong to, whose diagnostics are kept for /collectionrules and the log. */
static void refuse_alone(void **unused)
{
    static const char *const yaml = EGRESS                                       /* 1-4 */
        "CollectionRules:\n"                                                     /* 5 */
        "  Good:\n"                                                              /* 6 */
        "    Trigger: {Type: Startup}\n"                                         /* 7 */
        "    Actions: [{Type: CollectDump, Settings: {Egress: artifacts}}]\n"    /* 8 */
        "  BadSetting:\n"                                                        /* 9 */
        "    Trigger: {Type: CPUUsage, Settings: {GreaterThan: eighty}}\n"       /* 10 */
        "  BadFilter:\n"                                                         /* 11 */
        "    Filters: [{Key: Nope, Value: x}]\n"                                 /* 12 */
        "    Trigger: {Type: Startup}\n"                                         /* 13 */
        "  NoTemplate:\n"                                                        /* 14 */
        "    Trigger: Missing\n"                                                 /* 15 */
        "  AlsoGood:\n"                                                          /* 16 */
        "    Trigger: {Type: CPUUsage, Settings: {GreaterThan: 50, Typo: 1}}\n"; /* 17 */
    char dir[] = "/tmp/vg-rules-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/config.yaml", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(yaml, fp);
    fclose(fp);
    const char *dirs[] = {dir};
    struct vg_config_options o = {.dirs = dirs, .n_dirs = 1, .flags = VG_CONFIG_KEEP_ON_ERROR};
    struct vg_diags d;
    vg_diags_init(&d);
    struct vg_config *cfg;
    assert_int_equal(vg_config_load_opts(&o, &d, &cfg), VG_ECONFIG);
    assert_non_null(cfg);
    struct vg_ruleset *rs;
    assert_int_equal(vg_ruleset_compile_ex(cfg, &d, VG_RULESET_REFUSE_ALONE, &rs), 0);
    assert_int_equal(rs->n_rules, 2);
    assert_string_equal(rs->rules[0].name, "Good");
    assert_string_equal(rs->rules[1].name, "AlsoGood");
    assert_int_equal(rs->n_refused, 3);
    assert_string_equal(rs->refused[0].name, "BadSetting");
    assert_non_null(strstr(rs->refused[0].diagnostics,
                           "config.yaml:10:55: error: CollectionRules.BadSetting.Trigger.Settings."
                           "GreaterThan: expected a number 0-100, got \"eighty\""));
    assert_string_equal(rs->refused[1].name, "BadFilter");
    assert_non_null(strstr(rs->refused[1].diagnostics, "unknown filter key \"Nope\""));
    assert_string_equal(rs->refused[2].name, "NoTemplate");
    assert_non_null(strstr(rs->refused[2].diagnostics,
                           "config.yaml:15:14: error: CollectionRules.NoTemplate.Trigger: no "
                           "template \"Missing\" in Templates.CollectionRuleTriggers"));
    /* a warning stays with its rule, which still runs */
    assert_int_equal(vg_diags_rule_errors(&d, "AlsoGood"), 0);
    /* without the flag any error fails the whole set (vigil check) */
    struct vg_ruleset *all = NULL;
    assert_int_equal(vg_ruleset_compile(cfg, &d, &all), VG_ECONFIG);
    assert_null(all);
    vg_ruleset_destroy(rs);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    unlink(path);
    rmdir(dir);
}

static void defaults_apply(void **unused)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, EGRESS "CollectionRuleDefaults:\n"
                                                 "  Actions:\n"
                                                 "    Egress: artifacts\n"
                                                 "  Limits:\n"
                                                 "    ActionCount: 2\n"
                                                 "  Triggers:\n"
                                                 "    SlidingWindowDuration: 30s\n"
                                                 "CollectionRules:\n"
                                                 "  A:\n"
                                                 "    Trigger:\n"
                                                 "      Type: CPUUsage\n"
                                                 "    Actions:\n"
                                                 "      - Type: CollectDump\n"
                                                 "      - Name: run\n"
                                                 "        Type: Execute\n"
                                                 "        WaitForCompletion: false\n"
                                                 "        Settings:\n"
                                                 "          Path: /bin/true\n"
                                                 "          Timeout: 10s\n"
                                                 "    Limits:\n"
                                                 "      Cooldown: 5m\n");
    assert_int_equal(r->n_actions, 2);
    assert_string_equal(r->actions[0].type->name, "CollectDump");
    assert_string_equal(r->actions[0].egress, "artifacts");
    assert_non_null(r->actions[0].egress_settings);
    assert_int_equal(r->actions[0].egress_settings->kind, VG_EGRESS_FILESYSTEM);
    assert_false(r->actions[0].wait_for_completion); /* dotnet-monitor's default */
    const struct vg_act_collect_dump *dump = r->actions[0].settings;
    assert_int_equal(dump->type, VG_ACT_DUMP_WITH_HEAP);
    assert_null(r->actions[0].name);
    assert_string_equal(r->actions[1].name, "run");
    assert_false(r->actions[1].wait_for_completion);
    assert_null(r->actions[1].egress);
    const struct vg_act_execute *ex = r->actions[1].settings;
    assert_string_equal(ex->path, "/bin/true");
    assert_int_equal(ex->timeout_ms, 10000);
    assert_false(ex->ignore_exit_code);
    assert_int_equal(r->limits.action_count, 2);
    assert_int_equal(r->limits.cooldown_ms, 300000);
    assert_int_equal(r->limits.action_count_window_ms, 0);
    assert_int_equal(r->limits.rule_duration_ms, 0);
    assert_false(r->needs_runtime);
    assert_true(f.rs->metrics & VG_METRIC_BIT(VG_M_CPU_PERCENT));
    assert_ptr_equal(vg_ruleset_find(f.rs, "a"), r);
    assert_null(vg_ruleset_find(f.rs, "b"));
    /* The trigger's window came from CollectionRuleDefaults.Triggers. */
    void *st = state_new(r);
    for (uint64_t t = 0; t < 30000; t += 1000) {
        struct vg_sample s = smp(t, VG_M_CPU_PERCENT, 60);
        assert_false(vg_trigger_observe(&r->trigger, st, &s));
    }
    struct vg_sample s = smp(30000, VG_M_CPU_PERCENT, 60);
    assert_true(vg_trigger_observe(&r->trigger, st, &s));
    free(st);
    fx_free(&f);
}

static uint64_t fingerprint_of(const char *yaml)
{
    struct fx f;
    const struct vg_rule *r = fx_rule(&f, yaml);
    uint64_t fp = r->fingerprint;
    fx_free(&f);
    return fp;
}

static void fingerprints(void **unused)
{
    uint64_t a = fingerprint_of("CollectionRules:\n"
                                "  R1:\n"
                                "    Trigger:\n"
                                "      Type: CPUUsage\n"
                                "      Settings:\n"
                                "        GreaterThan: 80\n"
                                "    Actions:\n"
                                "      - Type: Execute\n"
                                "        Settings:\n"
                                "          Path: /bin/true\n"
                                "          Arguments: -x\n");
    /* Other name, key order and case, equivalent spellings of the same values. */
    uint64_t same = fingerprint_of("CollectionRules:\n"
                                   "  Other:\n"
                                   "    actions:\n"
                                   "      - settings:\n"
                                   "          arguments: -x\n"
                                   "          path: /bin/true\n"
                                   "        type: execute\n"
                                   "    trigger:\n"
                                   "      settings:\n"
                                   "        slidingWindowDuration: 00:01:00\n"
                                   "        greaterthan: 80.0\n"
                                   "      type: cpuusage\n");
    uint64_t other_value = fingerprint_of("CollectionRules:\n"
                                          "  R1:\n"
                                          "    Trigger:\n"
                                          "      Type: CPUUsage\n"
                                          "      Settings:\n"
                                          "        GreaterThan: 81\n"
                                          "    Actions:\n"
                                          "      - Type: Execute\n"
                                          "        Settings:\n"
                                          "          Path: /bin/true\n"
                                          "          Arguments: -x\n");
    uint64_t other_limits = fingerprint_of("CollectionRules:\n"
                                           "  R1:\n"
                                           "    Trigger:\n"
                                           "      Type: CPUUsage\n"
                                           "      Settings:\n"
                                           "        GreaterThan: 80\n"
                                           "    Actions:\n"
                                           "      - Type: Execute\n"
                                           "        Settings:\n"
                                           "          Path: /bin/true\n"
                                           "          Arguments: -x\n"
                                           "    Limits:\n"
                                           "      ActionCount: 6\n");
    assert_true(a != 0);
    assert_true(a == same);
    assert_true(a != other_value);
    assert_true(a != other_limits);
}

static void filters_match(void **unused)
{
    struct fx f;
    fx_rule(&f, "CollectionRules:\n"
                "  Named:\n"
                "    Filters:\n"
                "      - Key: ProcessName\n"
                "        Value: dotnet\n"
                "      - CommandLine: MyApp.dll\n"
                "        MatchType: Contains\n"
                "    Trigger:\n"
                "      Type: Startup\n"
                "  ByPid:\n"
                "    Filters:\n"
                "      - ProcessId: 42\n"
                "    Trigger:\n"
                "      Type: Startup\n"
                "  ByUser:\n"
                "    Filters:\n"
                "      - User: 1000\n"
                "    Trigger:\n"
                "      Type: Startup\n"
                "  Any:\n"
                "    Trigger:\n"
                "      Type: Startup\n");
    const struct vg_rule *named = vg_ruleset_find(f.rs, "Named");
    const struct vg_rule *by_pid = vg_ruleset_find(f.rs, "ByPid");
    const struct vg_rule *by_user = vg_ruleset_find(f.rs, "ByUser");
    const struct vg_rule *any = vg_ruleset_find(f.rs, "Any");
    struct vg_proc_info p = {.pid = 42,
                             .nspid = 1,
                             .uid = 1000,
                             .name = "DOTNET",
                             .cmdline = "dotnet /srv/myapp.dll --port 80",
                             .cgroup = "/system.slice/app.service"};
    assert_true(vg_rule_matches(named, &p));
    assert_true(vg_rule_matches(by_pid, &p));
    assert_true(vg_rule_matches(by_user, &p));
    assert_true(vg_rule_matches(any, &p));
    p.name = "dotnet2"; /* Exact */
    assert_false(vg_rule_matches(named, &p));
    p.name = "dotnet";
    p.cmdline = "dotnet /srv/other.dll";
    assert_false(vg_rule_matches(named, &p));
    p.cmdline = NULL;
    assert_false(vg_rule_matches(named, &p));
    p.pid = 4242; /* matches through the namespace pid */
    p.nspid = 42;
    assert_true(vg_rule_matches(by_pid, &p));
    p.nspid = 7;
    assert_false(vg_rule_matches(by_pid, &p));
    p.uid = 0;
    assert_false(vg_rule_matches(by_user, &p));
    fx_free(&f);
}

static const char *lookup(void *ud, const char *action, const char *output)
{
    if (strcmp(action, "dump") == 0 && strcmp(output, "EgressPath") == 0)
        return "/out/core.1";
    return NULL;
}

static void expand_outputs(void **unused)
{
    char *s = NULL;
    assert_int_equal(vg_rule_expand("cp $(Actions.dump.EgressPath) /x; ls", lookup, NULL, &s), 0);
    assert_string_equal(s, "cp /out/core.1 /x; ls");
    free(s);
    assert_int_equal(vg_rule_expand("plain", lookup, NULL, &s), 0);
    assert_string_equal(s, "plain");
    free(s);
    assert_int_equal(vg_rule_expand("$(Actions.x.Value)", lookup, NULL, &s), VG_ENOTFOUND);
    assert_null(s);
}

static void registry(void **unused)
{
    for (size_t i = 0; i < vg_trigger_types_count; i++)
        assert_ptr_equal(vg_trigger_type_find(vg_trigger_types[i]->name), vg_trigger_types[i]);
    for (size_t i = 0; i < vg_action_types_count; i++)
        assert_ptr_equal(vg_action_type_find(vg_action_types[i]->name), vg_action_types[i]);
    assert_non_null(vg_trigger_type_find("memorygrowth"));
    assert_null(vg_trigger_type_find("Nope"));
    assert_true(vg_action_has_output(vg_action_type_find("GetEnvironmentVariable"), "value"));
    assert_false(vg_action_has_output(vg_action_type_find("LoadProfiler"), "Value"));
}

const struct CMUnitTest vg_compile_tests[] = {
    cmocka_unit_test(trigger_setting_errors), cmocka_unit_test(types_egress_references_duplicates),
    cmocka_unit_test(action_setting_errors),  cmocka_unit_test(more_validation_errors),
    cmocka_unit_test(lower_bounds),           cmocka_unit_test(defaults_errors),
    cmocka_unit_test(refuse_alone),           cmocka_unit_test(defaults_apply),
    cmocka_unit_test(fingerprints),           cmocka_unit_test(filters_match),
    cmocka_unit_test(expand_outputs),         cmocka_unit_test(registry),
};
const size_t vg_compile_tests_n = sizeof(vg_compile_tests) / sizeof(vg_compile_tests[0]);
