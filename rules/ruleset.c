/* Compiles CollectionRules into an immutable vg_ruleset (issue 2's rule validation). */
#include "rules/ruleset.h"
#include "rules/rules_int.h"
#include "config/error.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define REF_PREFIX "$(Actions."

struct limits_in {
    int64_t action_count;
    uint64_t window_ms, duration_ms, cooldown_ms;
};

static const struct vg_field limits_fields[] = {
    {VG__FLD("ActionCount", VG_FIELD_INT, struct limits_in, action_count), VG__NOSET, .min = 1,
     .max = 100000, .help = "an integer 1-100000"},
    {VG__FLD("ActionCountSlidingWindowDuration", VG_FIELD_DURATION, struct limits_in, window_ms),
     VG__NOSET, .min = VG__SEC, .max = VG__DAY, .help = "a duration from 00:00:01 to 1.00:00:00"},
    {VG__FLD("RuleDuration", VG_FIELD_DURATION, struct limits_in, duration_ms), VG__NOSET,
     .min = VG__SEC, .max = 365 * VG__DAY, .help = "a duration from 00:00:01 to 365.00:00:00"},
    {VG__FLD("Cooldown", VG_FIELD_DURATION, struct limits_in, cooldown_ms), VG__NOSET,
     .min = VG__SEC, .max = 365 * VG__DAY, .help = "a duration from 00:00:01 to 365.00:00:00"},
};

struct trigger_env {
    const char *type;
    const struct vg_node *settings;
};
static const struct vg_field trigger_env_fields[] = {
    {VG__FLD("Type", VG_FIELD_STRING, struct trigger_env, type), VG__NOSET, .required = true,
     .help = "a trigger type such as CPUUsage"},
    {VG__FLD("Settings", VG_FIELD_NODE, struct trigger_env, settings), VG__NOSET,
     .help = "the trigger's settings"},
};

struct action_env {
    const char *name, *type;
    const struct vg_node *settings;
    bool wait;
};
static const struct vg_field action_env_fields[] = {
    {VG__FLD("Name", VG_FIELD_STRING, struct action_env, name), VG__NOSET,
     .help = "an action name"},
    {VG__FLD("Type", VG_FIELD_STRING, struct action_env, type), VG__NOSET, .required = true,
     .help = "an action type such as CollectDump"},
    {VG__FLD("Settings", VG_FIELD_NODE, struct action_env, settings), VG__NOSET,
     .help = "the action's settings"},
    {VG__FLD("WaitForCompletion", VG_FIELD_BOOL, struct action_env, wait), VG__NOSET,
     .help = "true or false"},
};

/* Per-rule compile context. */
struct rc {
    const struct vg_config *cfg;
    struct vg_diags *d;
    struct vg_rule *rule;
    const struct vg_rule_settings *rs;
    size_t errors;
    /* action names in declaration order (NULL for unnamed), for reference checks */
    const char **names;
    size_t n_names;
    size_t cur; /* index of the action being checked */
    const struct vg_action_type **types;
};

static void free_rule(struct vg_rule *r)
{
    vg_trigger_free(&r->trigger);
    for (size_t i = 0; i < r->n_actions; i++) {
        free(r->actions[i].settings);
        free(r->actions[i].path);
        free(r->actions[i].waits_for);
    }
    free(r->actions);
}

void vg_ruleset_destroy(struct vg_ruleset *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n_rules; i++)
        free_rule(&rs->rules[i]);
    free(rs->rules);
    free(rs);
}

const struct vg_rule *vg_ruleset_find(const struct vg_ruleset *rs, const char *name)
{
    for (size_t i = 0; rs && name && i < rs->n_rules; i++)
        if (strcasecmp(rs->rules[i].name, name) == 0)
            return &rs->rules[i];
    return NULL;
}

bool vg_rule_once(const struct vg_rule *r)
{
    return r->trigger.type && (r->trigger.type->flags & VG_TRIGGER_ONCE);
}

/* "; did you mean \"x\"?" or "" */
static void dym_suffix(char *buf, size_t n, const char *word, const char *const *cands)
{
    const char *s = vg_did_you_mean(word, cands);
    if (s)
        snprintf(buf, n, "; did you mean \"%s\"?", s);
    else
        buf[0] = 0;
}

/* --- trigger --- */

/* Settings as written, or an empty map at `where` so "required setting is missing" errors
 * still carry a position. */
static const struct vg_node *settings_or_empty(struct rc *c, const struct vg_node *settings,
                                               const struct vg_node *where)
{
    if (settings && !vg_node_is_null(settings))
        return settings;
    return vg_tree_new_node(c->cfg->tree, VG_NODE_MAP, &where->pos);
}

static int compile_trigger(struct rc *c)
{
    const struct vg_node *t = c->rs->trigger, *settings;
    const struct vg_trigger_type *type;
    struct trigger_env env = {0};
    char *path = vg_path_join(c->rs->path, "Trigger"), *tpath = NULL, *spath = NULL;
    size_t errs;
    int r = 0;
    if (!path || !(tpath = vg_path_join(path, "Type")) ||
        !(spath = vg_path_join(path, "Settings"))) {
        r = VG_ENOMEM;
        goto out;
    }
    if (!t) /* config already reported the missing or malformed Trigger */
        goto out;
    errs = vg_fields_apply(c->cfg->tree, trigger_env_fields, VG_ARRAY_SIZE(trigger_env_fields), t,
                           NULL, path, &env, c->d);
    c->errors += errs;
    if (errs || !env.type)
        goto out;
    type = vg_trigger_type_find(env.type);
    if (!type) {
        const struct vg_node *type_n = vg_node_get(t, "Type");
        const char *cands[64];
        char dym[128];
        size_t k = 0;
        for (; k < vg_trigger_types_count && k < VG_ARRAY_SIZE(cands) - 1; k++)
            cands[k] = vg_trigger_types[k]->name;
        cands[k] = NULL;
        dym_suffix(dym, sizeof(dym), env.type, cands);
        vg_diag_err(c->d, &type_n->pos, tpath, "unknown trigger type \"%s\"%s", env.type, dym);
        c->errors++;
        goto out;
    }
    if (!(settings = settings_or_empty(c, env.settings, t))) {
        r = VG_ENOMEM;
        goto out;
    }
    struct vg_trigger_ctx cx = {
        .tree = c->cfg->tree,
        .diags = c->d,
        .settings = settings,
        .defaults = vg_node_get(c->cfg->settings.defaults, "Triggers"),
        .pos = &settings->pos,
        .path = spath,
    };
    r = vg_trigger_compile(type, &cx, &c->rule->trigger);
    if (r == VG_ECONFIG) {
        c->errors++;
        r = 0;
    }
    if (r == 0 && c->rule->trigger.type) {
        c->rule->metrics |= c->rule->trigger.metrics;
        c->rule->runtime = vg_trigger_runtime(&c->rule->trigger);
        if (c->rule->runtime)
            c->rule->needs_runtime = true;
    }
out:
    free(spath);
    free(tpath);
    free(path);
    return r;
}

/* --- $(Actions.NAME.OUTPUT) references --- */

static int check_ref(struct rc *c, const struct vg_node *n, const char *path, const char *name,
                     const char *output)
{
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < c->n_names; i++)
        if (c->names[i] && strcasecmp(c->names[i], name) == 0) {
            found = i;
            break;
        }
    if (found == SIZE_MAX) {
        const char **cands = calloc(c->cur + 1, sizeof(*cands));
        size_t k = 0;
        char dym[160];
        if (!cands)
            return VG_ENOMEM;
        for (size_t i = 0; i < c->cur; i++)
            if (c->names[i])
                cands[k++] = c->names[i];
        dym_suffix(dym, sizeof(dym), name, cands);
        free(cands);
        vg_diag_err(c->d, &n->pos, path,
                    "$(Actions.%s.%s) refers to an action that does not exist%s", name, output,
                    dym);
        c->errors++;
    } else if (found == c->cur) {
        vg_diag_err(c->d, &n->pos, path, "$(Actions.%s.%s) refers to the action itself", name,
                    output);
        c->errors++;
    } else if (found > c->cur) {
        vg_diag_err(c->d, &n->pos, path,
                    "$(Actions.%s.%s) refers to action \"%s\", which runs after this one", name,
                    output, c->names[found]);
        c->errors++;
    } else if (c->types[found] && !vg_action_has_output(c->types[found], output)) {
        const struct vg_action_type *ty = c->types[found];
        struct vg_buf b;
        vg_buf_init(&b);
        for (size_t i = 0; ty->outputs[i]; i++)
            vg_buf_printf(&b, "%s%s", i ? ", " : "", ty->outputs[i]);
        if (b.len)
            vg_diag_err(c->d, &n->pos, path,
                        "$(Actions.%s.%s): action \"%s\" (%s) has no output \"%s\" (it has: %s)",
                        name, output, c->names[found], ty->name, output, b.data);
        else
            vg_diag_err(c->d, &n->pos, path, "$(Actions.%s.%s): action \"%s\" (%s) has no outputs",
                        name, output, c->names[found], ty->name);
        vg_buf_free(&b);
        c->errors++;
    } else {
        /* a valid reference: the engine starts this action once that one finished */
        struct vg_rule_action *a = &c->rule->actions[c->cur];
        for (size_t i = 0; i < a->n_waits_for; i++)
            if (a->waits_for[i] == found)
                return 0;
        size_t *w = realloc(a->waits_for, (a->n_waits_for + 1) * sizeof(*w));
        if (!w)
            return VG_ENOMEM;
        w[a->n_waits_for++] = found;
        a->waits_for = w;
    }
    return 0;
}

static int scan_refs(void *ud, const struct vg_node *n, const char *path)
{
    struct rc *c = ud;
    const char *s = n->str;
    while (s && (s = strstr(s, REF_PREFIX)) != NULL) {
        const char *name = s + strlen(REF_PREFIX);
        const char *close = strchr(name, ')');
        const char *dot = close ? memchr(name, '.', (size_t)(close - name)) : NULL;
        if (!close || !dot || dot == name || dot + 1 == close) {
            vg_diag_err(c->d, &n->pos, path,
                        "malformed action output reference; expected $(Actions.NAME.OUTPUT)");
            c->errors++;
            return 0;
        }
        char *nm = vg_strndup(name, (size_t)(dot - name));
        char *out = vg_strndup(dot + 1, (size_t)(close - dot - 1));
        int r = (nm && out) ? check_ref(c, n, path, nm, out) : VG_ENOMEM;
        free(nm);
        free(out);
        if (r)
            return r;
        s = close + 1;
    }
    return 0;
}

/* --- actions --- */

static int check_egress(struct rc *c, struct vg_rule_action *a, const struct vg_node *settings,
                        const struct vg_node *defaults, const char *spath)
{
    const struct vg_settings *st = &c->cfg->settings;
    const struct vg_node *where = vg_node_get(settings, "Egress");
    char *path;
    if (!where)
        where = vg_node_get(defaults, "Egress");
    a->egress_settings = vg_config_egress(c->cfg, a->egress);
    if (a->egress_settings)
        return 0;
    if (!(path = vg_path_join(spath, "Egress")))
        return VG_ENOMEM;
    if (st->n_egress == 0) {
        vg_diag_err(c->d, where ? &where->pos : &c->rs->pos, path,
                    "unknown egress provider \"%s\" (no egress providers are configured)",
                    a->egress);
    } else {
        const char **cands = calloc(st->n_egress + 1, sizeof(*cands));
        char dym[160];
        if (!cands) {
            free(path);
            return VG_ENOMEM;
        }
        for (size_t i = 0; i < st->n_egress; i++)
            cands[i] = st->egress[i].name;
        dym_suffix(dym, sizeof(dym), a->egress, cands);
        free(cands);
        vg_diag_err(c->d, where ? &where->pos : &c->rs->pos, path,
                    "unknown egress provider \"%s\"%s", a->egress, dym);
    }
    c->errors++;
    free(path);
    return 0;
}

static int compile_action(struct rc *c, size_t i, const struct vg_node *an)
{
    struct vg_rule_action *a = &c->rule->actions[i];
    const struct vg_node *settings;
    const struct vg_node *defaults = vg_node_get(c->cfg->settings.defaults, "Actions");
    struct action_env env = {.wait = true};
    char *tpath = NULL, *spath = NULL, *base;
    size_t errs;
    int r = 0;
    a->wait_for_completion = true;
    base = vg_path_join(c->rs->path, "Actions");
    a->path = base ? vg_path_index(base, i) : NULL;
    free(base);
    if (!a->path || !(tpath = vg_path_join(a->path, "Type")) ||
        !(spath = vg_path_join(a->path, "Settings"))) {
        r = VG_ENOMEM;
        goto out;
    }
    if (!an || an->kind != VG_NODE_MAP) /* config reported it */
        goto out;
    a->name = c->names[i];
    errs = vg_fields_apply(c->cfg->tree, action_env_fields, VG_ARRAY_SIZE(action_env_fields), an,
                           NULL, a->path, &env, c->d);
    c->errors += errs;
    a->wait_for_completion = env.wait;
    if (!env.type)
        goto out;
    a->type = vg_action_type_find(env.type);
    if (!a->type) {
        const struct vg_node *type_n = vg_node_get(an, "Type");
        const char *cands[32];
        char dym[128];
        size_t k = 0;
        for (; k < vg_action_types_count && k < VG_ARRAY_SIZE(cands) - 1; k++)
            cands[k] = vg_action_types[k]->name;
        cands[k] = NULL;
        dym_suffix(dym, sizeof(dym), env.type, cands);
        vg_diag_err(c->d, &type_n->pos, tpath, "unknown action type \"%s\"%s", env.type, dym);
        c->errors++;
        goto out;
    }
    c->types[i] = a->type;
    if (!(settings = settings_or_empty(c, env.settings, an)) ||
        !(a->settings = calloc(1, a->type->settings_size))) {
        r = VG_ENOMEM;
        goto out;
    }
    a->settings_node = settings;
    if (a->type->init)
        a->type->init(a->settings);
    errs = vg_fields_apply(c->cfg->tree, a->type->fields, a->type->n_fields, settings, defaults,
                           spath, a->settings, c->d);
    if (errs == 0 && a->type->check) {
        struct vg_action_ctx cx = {.tree = c->cfg->tree,
                                   .diags = c->d,
                                   .settings = settings,
                                   .pos = &settings->pos,
                                   .path = spath};
        errs = a->type->check(a->settings, &cx);
    }
    c->errors += errs;
    if (errs == 0 && a->type->egress_offset != VG_NO_SET) {
        a->egress = *(const char **)((char *)a->settings + a->type->egress_offset);
        a->artifact_name = *(const char **)((char *)a->settings + a->type->artifact_offset);
        if (a->egress && (r = check_egress(c, a, settings, defaults, spath)) != 0)
            goto out;
    }
    c->cur = i;
    r = vg__walk_scalars(settings, spath, scan_refs, c);
out:
    free(spath);
    free(tpath);
    return r;
}

static int compile_actions(struct rc *c)
{
    const struct vg_node *seq = c->rs->actions;
    char *path = NULL;
    int r = 0;
    if (!seq || vg_node_is_null(seq))
        return 0;
    if (!(path = vg_path_join(c->rs->path, "Actions")))
        return VG_ENOMEM;
    if (seq->kind != VG_NODE_SEQ) {
        vg_diag_err(c->d, &seq->pos, path, "expected a list of actions, got a %s",
                    vg_node_kind_name(seq->kind));
        c->errors++;
        goto out;
    }
    c->rule->actions = calloc(seq->n ? seq->n : 1, sizeof(*c->rule->actions));
    c->names = calloc(seq->n ? seq->n : 1, sizeof(*c->names));
    c->types = calloc(seq->n ? seq->n : 1, sizeof(*c->types));
    if (!c->rule->actions || !c->names || !c->types) {
        r = VG_ENOMEM;
        goto out;
    }
    c->rule->n_actions = seq->n;
    c->n_names = seq->n;
    /* Names first: references and duplicates need the whole list. */
    for (size_t i = 0; i < seq->n; i++) {
        const struct vg_node *nn = vg_node_get(seq->items[i], "Name");
        const char *nm = vg_node_str(nn);
        if (!nn || vg_node_is_null(nn))
            continue;
        char *base = vg_path_index(path, i), *np = base ? vg_path_join(base, "Name") : NULL;
        free(base);
        if (!np) {
            r = VG_ENOMEM;
            goto out;
        }
        if (!nm) {
            /* not a string: the action's own field table reports it */
        } else if (!*nm) {
            vg_diag_err(c->d, &nn->pos, np, "expected an action name, got an empty string");
            c->errors++;
        } else {
            for (size_t j = 0; j < i; j++)
                if (c->names[j] && strcasecmp(c->names[j], nm) == 0) {
                    vg_diag_err(c->d, &nn->pos, np,
                                "duplicate action name \"%s\" (also used by Actions[%zu])", nm, j);
                    c->errors++;
                    break;
                }
            c->names[i] = nm;
        }
        free(np);
    }
    for (size_t i = 0; i < seq->n && r == 0; i++)
        r = compile_action(c, i, seq->items[i]);
out:
    free(c->names);
    free(c->types);
    c->names = NULL;
    c->types = NULL;
    free(path);
    return r;
}

/* --- limits --- */

static int compile_limits(struct rc *c)
{
    struct limits_in in = {.action_count = 5};
    const struct vg_node *lim = c->rs->limits;
    char *path = vg_path_join(c->rs->path, "Limits");
    if (!path)
        return VG_ENOMEM;
    if (lim && vg_node_is_null(lim))
        lim = NULL;
    c->errors += vg_fields_apply(c->cfg->tree, limits_fields, VG_ARRAY_SIZE(limits_fields), lim,
                                 vg_node_get(c->cfg->settings.defaults, "Limits"), path, &in, c->d);
    c->rule->limits = (struct vg_rule_limits){.action_count = in.action_count,
                                              .action_count_window_ms = in.window_ms,
                                              .rule_duration_ms = in.duration_ms,
                                              .cooldown_ms = in.cooldown_ms};
    free(path);
    return 0;
}

/* --- fingerprint --- */

static int fingerprint(struct vg_rule *r)
{
    struct vg_buf b;
    int e = 0;
    vg_buf_init(&b);
    e = vg_buf_printf(&b, "T%s;", r->trigger.type->name);
    if (!e && r->trigger.type->n_fields)
        e = vg__fields_serialize(&b, r->trigger.type->fields, r->trigger.type->n_fields,
                                 r->trigger.cfg);
    for (size_t i = 0; !e && i < r->n_filters; i++)
        e = vg_buf_printf(&b, "F%d,%d,%zu:%s;", (int)r->filters[i].key, (int)r->filters[i].match,
                          strlen(r->filters[i].value ? r->filters[i].value : ""),
                          r->filters[i].value ? r->filters[i].value : "");
    for (size_t i = 0; !e && i < r->n_actions; i++) {
        const struct vg_rule_action *a = &r->actions[i];
        e = vg_buf_printf(&b, "A%zu:%s;%s;%d;", strlen(a->name ? a->name : ""),
                          a->name ? a->name : "", a->type->name, a->wait_for_completion);
        if (!e)
            e = vg__fields_serialize(&b, a->type->fields, a->type->n_fields, a->settings);
    }
    if (!e)
        e = vg_buf_printf(&b, "L%lld,%llu,%llu,%llu", (long long)r->limits.action_count,
                          (unsigned long long)r->limits.action_count_window_ms,
                          (unsigned long long)r->limits.rule_duration_ms,
                          (unsigned long long)r->limits.cooldown_ms);
    if (!e)
        r->fingerprint = vg__fnv1a(VG__FNV_INIT, b.data, b.len);
    vg_buf_free(&b);
    return e;
}

/* CollectionRuleDefaults sections only hold the keys dotnet-monitor documents (plus Cooldown);
 * config checks the section names, and a misspelled default would otherwise be silently
 * ignored. Values are checked where rules use them. */
static int check_defaults(const struct vg_config *cfg, struct vg_diags *d, size_t *errors)
{
    static const char *const triggers[] = {"SlidingWindowDuration", "RequestCount", "ResponseCount",
                                           NULL};
    static const char *const actions[] = {"Egress", NULL};
    static const char *const limits[] = {"ActionCount", "ActionCountSlidingWindowDuration",
                                         "RuleDuration", "Cooldown", NULL};
    static const struct {
        const char *name;
        const char *const *keys;
    } sections[] = {{"Triggers", triggers}, {"Actions", actions}, {"Limits", limits}};
    for (size_t s = 0; s < VG_ARRAY_SIZE(sections); s++) {
        const struct vg_node *m = vg_node_get(cfg->settings.defaults, sections[s].name);
        if (!m || m->kind != VG_NODE_MAP)
            continue;
        for (size_t i = 0; i < m->n; i++) {
            const char *key = m->pairs[i].key;
            bool known = false;
            for (size_t k = 0; sections[s].keys[k]; k++)
                known = known || strcasecmp(key, sections[s].keys[k]) == 0;
            if (known)
                continue;
            char *path = vg_asprintf("CollectionRuleDefaults.%s.%s", sections[s].name, key);
            char dym[128];
            if (!path)
                return VG_ENOMEM;
            dym_suffix(dym, sizeof(dym), key, sections[s].keys);
            vg_diag_err(d, &m->pairs[i].key_pos, path, "unknown setting%s", dym);
            free(path);
            (*errors)++;
        }
    }
    return 0;
}

int vg_ruleset_compile(const struct vg_config *cfg, struct vg_diags *d, struct vg_ruleset **out)
{
    const struct vg_settings *st = &cfg->settings;
    struct vg_ruleset *rs = calloc(1, sizeof(*rs));
    size_t errors = 0;
    int r = 0;
    *out = NULL;
    if (!rs || !(rs->rules = calloc(st->n_rules ? st->n_rules : 1, sizeof(*rs->rules)))) {
        r = VG_ENOMEM;
        goto out;
    }
    rs->n_rules = st->n_rules;
    if ((r = check_defaults(cfg, d, &errors)) != 0)
        goto out;
    for (size_t i = 0; i < st->n_rules && r == 0; i++) {
        struct vg_rule *rule = &rs->rules[i];
        struct rc c = {.cfg = cfg, .d = d, .rule = rule, .rs = &st->rules[i]};
        rule->name = c.rs->name;
        rule->path = c.rs->path;
        rule->pos = c.rs->pos;
        rule->filters = c.rs->filters;
        rule->n_filters = c.rs->n_filters;
        if ((r = compile_trigger(&c)) == 0 && (r = compile_actions(&c)) == 0)
            r = compile_limits(&c);
        if (r == 0 && !rule->trigger.type && c.errors == 0)
            c.errors++; /* no usable Trigger: the config loader already said why */
        if (r == 0 && c.errors == 0)
            r = fingerprint(rule);
        errors += c.errors;
        rs->metrics |= rule->metrics;
    }
    if (r == 0 && errors)
        r = VG_ECONFIG;
out:
    if (r) {
        vg_ruleset_destroy(rs);
        return r;
    }
    *out = rs;
    return 0;
}

/* --- filters --- */

static bool str_match(const char *have, const char *want, enum vg_filter_match m)
{
    if (!have || !want)
        return false;
    return m == VG_MATCH_CONTAINS ? strcasestr(have, want) != NULL : strcasecmp(have, want) == 0;
}

static bool filter_matches(const struct vg_filter_settings *f, const struct vg_proc_info *p)
{
    switch (f->key) {
    case VG_FILTER_PROCESS_ID: {
        char *end;
        errno = 0;
        long v = f->value ? strtol(f->value, &end, 10) : 0;
        if (!f->value || errno || end == f->value || *end)
            return false;
        return v == p->pid || (p->nspid > 0 && v == p->nspid);
    }
    case VG_FILTER_PROCESS_NAME:
        return str_match(p->name, f->value, f->match);
    case VG_FILTER_COMMAND_LINE:
        return str_match(p->cmdline, f->value, f->match);
    case VG_FILTER_MANAGED_ENTRY_POINT:
        return str_match(p->managed_entry_point, f->value, f->match);
    case VG_FILTER_RUNTIME_ID:
        return str_match(p->runtime_id, f->value, f->match);
    case VG_FILTER_USER: {
        /* A number compares with the uid; anything else with the user name. */
        char *end;
        errno = 0;
        unsigned long v = f->value ? strtoul(f->value, &end, 10) : 0;
        if (f->value && *f->value && isdigit((unsigned char)*f->value) && !errno && !*end)
            return v == p->uid;
        return str_match(p->user, f->value, f->match);
    }
    case VG_FILTER_CGROUP:
        return str_match(p->cgroup, f->value, f->match);
    }
    return false;
}

bool vg_rule_matches(const struct vg_rule *r, const struct vg_proc_info *p)
{
    for (size_t i = 0; i < r->n_filters; i++)
        if (!filter_matches(&r->filters[i], p))
            return false;
    return true;
}

/* --- run-time expansion --- */

int vg_rule_expand(const char *s, vg_output_lookup_fn lookup, void *ud, char **out)
{
    struct vg_buf b;
    int r = 0;
    *out = NULL;
    vg_buf_init(&b);
    while (r == 0 && *s) {
        const char *ref = strstr(s, REF_PREFIX);
        if (!ref) {
            r = vg_buf_puts(&b, s);
            break;
        }
        if ((r = vg_buf_append(&b, s, (size_t)(ref - s))) != 0)
            break;
        const char *name = ref + strlen(REF_PREFIX);
        const char *close = strchr(name, ')');
        const char *dot = close ? memchr(name, '.', (size_t)(close - name)) : NULL;
        if (!dot) {
            r = VG_ENOTFOUND;
            break;
        }
        char *nm = vg_strndup(name, (size_t)(dot - name));
        char *op = vg_strndup(dot + 1, (size_t)(close - dot - 1));
        const char *val = nm && op ? lookup(ud, nm, op) : NULL;
        r = !nm || !op ? VG_ENOMEM : !val ? VG_ENOTFOUND : vg_buf_puts(&b, val);
        free(nm);
        free(op);
        s = close + 1;
    }
    if (r) {
        vg_buf_free(&b);
        return r;
    }
    *out = vg_buf_steal(&b);
    return *out ? 0 : VG_ENOMEM;
}
