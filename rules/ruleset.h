/* Compiled collection rules: validated settings turned into an immutable rule set. A reload
 * compiles a whole new set; the engine swaps it in only when compilation succeeded and keeps
 * per-process state of rules whose fingerprint did not change. */
#ifndef VG_RULESET_H
#define VG_RULESET_H

#include "config/config.h"
#include "rules/action.h"
#include "rules/limits.h"
#include "rules/proc_info.h"
#include "rules/trigger.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vg_rule_action {
    const char *name; /* NULL when unnamed (then not referable) */
    const struct vg_action_type *type;
    void *settings;     /* type's typed settings struct (rules/action.h), owned by the set */
    const char *egress; /* resolved egress name; NULL for types without Egress */
    const struct vg_egress_settings *egress_settings; /* borrowed from the config */
    bool wait_for_completion;                         /* default true */
    const char *artifact_name; /* ArtifactName of an egress type (may hold tokens), or NULL */
    const struct vg_node *settings_node; /* raw Settings (for $(Actions.X.Y) expansion) */
    size_t *waits_for; /* earlier actions whose outputs this one references ($(Actions.X.Y)) */
    size_t n_waits_for;
    char *path; /* "CollectionRules.NAME.Actions[i]" */
};

struct vg_rule {
    const char *name; /* borrowed from the config */
    const char *path; /* "CollectionRules.NAME" */
    struct vg_pos pos;
    uint64_t fingerprint; /* FNV-1a over the canonical resolved definition (not the name) */
    const struct vg_filter_settings *filters;
    size_t n_filters;
    struct vg_trigger trigger;
    uint64_t metrics; /* VG_METRIC_BIT mask the sampler must collect for this rule */
    struct vg_rule_action *actions;
    size_t n_actions;
    struct vg_rule_limits limits;
    bool needs_runtime;  /* the trigger reads a runtime's own samples: */
    const char *runtime; /* which (the trigger type's, or its metric's); NULL for any process */
};

struct vg_ruleset {
    struct vg_rule *rules;
    size_t n_rules;
    uint64_t metrics; /* union of every rule's mask */
};

/* Compiles cfg->settings.rules. Every problem goes to `d` (file:line:col + key path).
 * Returns 0 (*out set), VG_ECONFIG (*out NULL) or VG_ENOMEM. The set borrows strings and nodes
 * from cfg, which must outlive it. */
int vg_ruleset_compile(const struct vg_config *cfg, struct vg_diags *d, struct vg_ruleset **out);
void vg_ruleset_destroy(struct vg_ruleset *rs); /* NULL-safe */

/* Case-insensitive lookup by rule name; NULL when absent. */
const struct vg_rule *vg_ruleset_find(const struct vg_ruleset *rs, const char *name);

/* All filters must match (a rule without filters matches every process). String filters are
 * case-insensitive, Exact or Contains; ProcessId compares numerically with pid or nspid. */
bool vg_rule_matches(const struct vg_rule *r, const struct vg_proc_info *p);

/* true when the rule finishes after its first run (Startup trigger); pass to vg_limits_init. */
bool vg_rule_once(const struct vg_rule *r);

/* Run-time expansion of $(Actions.NAME.OUTPUT) in a setting string. `lookup` returns the
 * output's value or NULL. Returns 0 (*out malloc'ed), VG_ENOTFOUND (a reference could not be
 * resolved) or VG_ENOMEM. */
typedef const char *(*vg_output_lookup_fn)(void *ud, const char *action, const char *output);
int vg_rule_expand(const char *s, vg_output_lookup_fn lookup, void *ud, char **out);

#endif
