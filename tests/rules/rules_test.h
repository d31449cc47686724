/* Shared fixtures for the rules/ unit tests: configs built from YAML text in a temp dir. */
#ifndef VG_RULES_TEST_H
#define VG_RULES_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config/config.h"
#include "config/error.h"
#include "rules/ruleset.h"

struct fx {
    char dir[64];
    struct vg_diags d;
    struct vg_config *cfg;
    struct vg_ruleset *rs;
    int rc_config, rc_rules;
};

/* Loads `yaml` as DIR/config.yaml and compiles it. */
void fx_load(struct fx *f, const char *yaml);
void fx_free(struct fx *f);
/* Asserts that a diagnostic formats exactly as DIR/`want`. */
void fx_expect_diag(struct fx *f, const char *want);
/* Loads a config that must compile; returns its first rule. */
const struct vg_rule *fx_rule(struct fx *f, const char *yaml);

/* A sample with one metric set. */
struct vg_sample smp(uint64_t t_ms, int id, double v);

/* Per-process trigger state for rule r (malloc'ed and reset). */
void *state_new(const struct vg_rule *r);

#define MB (1000.0 * 1000.0)

extern const struct CMUnitTest vg_trigger_tests[];
extern const size_t vg_trigger_tests_n;
extern const struct CMUnitTest vg_limits_tests[];
extern const size_t vg_limits_tests_n;
extern const struct CMUnitTest vg_compile_tests[];
extern const size_t vg_compile_tests_n;

#endif
