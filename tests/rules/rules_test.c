#include "rules_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void fx_load(struct fx *f, const char *yaml)
{
    char path[128];
    FILE *fp;
    memset(f, 0, sizeof(*f));
    vg_diags_init(&f->d);
    strcpy(f->dir, "/tmp/vg-rules-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(path, sizeof(path), "%s/config.yaml", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(yaml, fp);
    fclose(fp);
    const char *dirs[] = {f->dir};
    f->rc_config = vg_config_load(dirs, 1, &f->d, &f->cfg);
    f->rc_rules = f->cfg ? vg_ruleset_compile(f->cfg, &f->d, &f->rs) : -1;
    unlink(path);
    rmdir(f->dir);
}

void fx_free(struct fx *f)
{
    vg_ruleset_destroy(f->rs);
    vg_config_destroy(f->cfg);
    vg_diags_free(&f->d);
}

void fx_expect_diag(struct fx *f, const char *want)
{
    char full[1024];
    snprintf(full, sizeof(full), "%s/%s", f->dir, want);
    for (size_t i = 0; i < f->d.n; i++) {
        char *s = vg_diag_format(&f->d.v[i]);
        int eq = strcmp(s, full) == 0;
        free(s);
        if (eq)
            return;
    }
    print_error("missing diagnostic:\n  %s\nhave:\n", full);
    for (size_t i = 0; i < f->d.n; i++) {
        char *s = vg_diag_format(&f->d.v[i]);
        print_error("  %s\n", s);
        free(s);
    }
    fail();
}

const struct vg_rule *fx_rule(struct fx *f, const char *yaml)
{
    fx_load(f, yaml);
    if (f->rc_config || f->rc_rules) {
        for (size_t i = 0; i < f->d.n; i++) {
            char *s = vg_diag_format(&f->d.v[i]);
            print_error("%s\n", s);
            free(s);
        }
    }
    assert_int_equal(f->rc_config, 0);
    assert_int_equal(f->rc_rules, 0);
    assert_true(f->rs->n_rules >= 1);
    return &f->rs->rules[0];
}

struct vg_sample smp(uint64_t t_ms, int id, double v)
{
    struct vg_sample s;
    memset(&s, 0, sizeof(s));
    s.t_ms = t_ms;
    s.valid = VG_METRIC_BIT(id);
    s.v[id] = v;
    return s;
}

void *state_new(const struct vg_rule *r)
{
    void *st = malloc(vg_trigger_state_size(&r->trigger));
    assert_non_null(st);
    vg_trigger_reset(&r->trigger, st);
    return st;
}
