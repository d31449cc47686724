/* vigil check: validate a configuration and summarize its rules. */
#include "config/defaults.h"
#include "config/config.h"
#include "config/error.h"
#include "config/util.h"
#include "engine/cli/cli.h"
#include "engine/runtimes/runtime.h"
#include "rules/ruleset.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vg_dirlist_add(struct vg_dirlist *l, const char *dir)
{
    const char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
    if (!v)
        return VG_ENOMEM;
    v[l->n++] = dir;
    l->v = v;
    return 0;
}

void vg_dirlist_free(struct vg_dirlist *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void print_diags(struct vg_diags *d)
{
    vg_diags_sort(d);
    for (size_t i = 0; i < d->n; i++) {
        char *line = vg_diag_format(&d->v[i]);
        fprintf(stderr, "%s\n", line ? line : "(out of memory)");
        free(line);
    }
    if (d->n < d->errors + d->warnings)
        fprintf(stderr, "... and %zu more\n", d->errors + d->warnings - d->n);
}

int vg_cli_load(const struct vg_dirlist *dirs, unsigned flags, struct vg_config **cfg,
                struct vg_ruleset **rules)
{
    static const char *const def[] = {VG_DEFAULT_CONFIG_DIR};
    struct vg_diags d;
    vg_diags_init(&d);
    *cfg = NULL;
    *rules = NULL;
    int rc = vg_config_load_ex(dirs->n ? dirs->v : def, dirs->n ? dirs->n : 1,
                               flags | VG_CONFIG_KEEP_ON_ERROR, &d, cfg);
    if (*cfg) {
        /* rules are compiled even when the settings had errors: every problem in one pass */
        int rrc = vg_ruleset_compile(*cfg, &d, rules);
        if (rc == 0)
            rc = rrc;
        if (rc) {
            vg_ruleset_destroy(*rules);
            *rules = NULL;
            vg_config_destroy(*cfg);
            *cfg = NULL;
        }
    }
    print_diags(&d);
    if (rc == VG_ECONFIG)
        fprintf(stderr, "configuration has %zu error%s\n", d.errors, d.errors == 1 ? "" : "s");
    else if (rc)
        fprintf(stderr, "vigil: %s\n", vg_strerror(rc));
    vg_diags_free(&d);
    return rc;
}

static void print_rule(const struct vg_rule *r)
{
    printf("rule %s: %s", r->name, r->trigger.type->name);
    if (r->n_filters)
        printf(" on processes matching %zu filter%s", r->n_filters, r->n_filters == 1 ? "" : "s");
    else
        printf(" on every process");
    printf(" -> ");
    for (size_t i = 0; i < r->n_actions; i++)
        printf("%s%s%s%s", i ? ", " : "", r->actions[i].type->name,
               r->actions[i].egress ? " to " : "",
               r->actions[i].egress ? r->actions[i].egress : "");
    if (!r->n_actions)
        printf("(no actions)");
    printf("; at most %lld run%s", (long long)r->limits.action_count,
           r->limits.action_count == 1 ? "" : "s");
    if (r->limits.action_count_window_ms) {
        char w[32];
        vg_format_timespan(r->limits.action_count_window_ms, w, sizeof(w));
        printf(" per %s", w);
    }
    if (r->limits.cooldown_ms) {
        char w[32];
        vg_format_timespan(r->limits.cooldown_ms, w, sizeof(w));
        printf(", cooldown %s", w);
    }
    if (r->needs_runtime) {
        const struct vg_runtime_type *rt = vg_runtime_find(r->runtime);
        const struct vg_trigger_type *tt = r->trigger.type;
        if (rt && rt->session_open && (!tt || !tt->runtime || tt->observe))
            printf(" [%s processes only]", rt->display);
        else
            printf(" [needs a runtime adapter: not supported yet at run time]");
    }
    printf("\n");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vigil check [--config-dir DIR]... [--show]\n"
               "  Validates every *.yaml, *.yml and *.json file of each directory "
               "(default " VG_DEFAULT_CONFIG_DIR ").\n"
               "  Exit 0 when valid (one summary line per rule), 1 with every error, 2 on "
               "usage errors.\n"
               "  --show   print the merged configuration (templates resolved, secrets "
               "redacted)\n");
}

int vg_cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config-dir", required_argument, NULL, 'c'},
        {"show", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct vg_dirlist dirs = {0};
    bool show = false;
    int c, status = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:sh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            if (vg_dirlist_add(&dirs, optarg)) {
                status = 1;
                goto out;
            }
            break;
        case 's':
            show = true;
            break;
        case 'h':
            usage(stdout);
            goto out;
        default:
            usage(stderr);
            status = 2;
            goto out;
        }
    }
    /* `vigil check DIR` is accepted as a shorthand for --config-dir DIR. */
    for (int i = optind; i < argc; i++)
        if (vg_dirlist_add(&dirs, argv[i])) {
            status = 1;
            goto out;
        }
    struct vg_config *cfg;
    struct vg_ruleset *rules;
    int rc = vg_cli_load(&dirs, VG_CONFIG_SECRETS_OPTIONAL, &cfg, &rules);
    if (rc) {
        status = 1;
        goto out;
    }
    if (show) {
        vg_config_show(cfg, stdout);
    } else {
        for (size_t i = 0; i < rules->n_rules; i++)
            print_rule(&rules->rules[i]);
        printf("configuration OK: %zu rule%s, %zu egress provider%s, %zu file%s\n",
               cfg->settings.n_rules, cfg->settings.n_rules == 1 ? "" : "s", cfg->settings.n_egress,
               cfg->settings.n_egress == 1 ? "" : "s", cfg->n_files, cfg->n_files == 1 ? "" : "s");
    }
    vg_ruleset_destroy(rules);
    vg_config_destroy(cfg);
out:
    vg_dirlist_free(&dirs);
    return status;
}
