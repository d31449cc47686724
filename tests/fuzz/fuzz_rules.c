/* libFuzzer target: rule compilation (config loader -> vg_ruleset_compile) and every compiled
 * trigger driven by a sample stream derived from the same input. */
#include "config/config.h"
#include "rules/ruleset.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];
static char file[96];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_diags d;
    struct vg_config *cfg = NULL;
    struct vg_ruleset *rs = NULL;
    FILE *f;
    if (!dir[0]) {
        strcpy(dir, "/tmp/vg-fuzz-rules-XXXXXX");
        if (!mkdtemp(dir))
            abort();
        snprintf(file, sizeof(file), "%s/fuzz.yaml", dir);
    }
    if (!(f = fopen(file, "w")))
        abort();
    fwrite(data, 1, size, f);
    fclose(f);
    vg_diags_init(&d);
    const char *dirs[] = {dir};
    if (vg_config_load(dirs, 1, &d, &cfg) == 0 && vg_ruleset_compile(cfg, &d, &rs) == 0) {
        for (size_t i = 0; i < rs->n_rules; i++) {
            const struct vg_rule *r = &rs->rules[i];
            void *st = malloc(vg_trigger_state_size(&r->trigger));
            struct vg_trigger_persist p;
            struct vg_sample s;
            if (!st)
                abort();
            vg_trigger_reset(&r->trigger, st);
            memset(&s, 0, sizeof(s));
            for (size_t k = 0; k < size; k++) {
                int id = data[k] % VG_METRIC_COUNT;
                s.t_ms += (uint64_t)(data[k] & 0x0f) * 250;
                s.valid = VG_METRIC_BIT(id) | r->metrics;
                s.v[id] = (double)data[k] * 1e6;
                vg_trigger_observe(&r->trigger, st, &s);
            }
            vg_trigger_save(&r->trigger, st, &p);
            vg_trigger_restore(&r->trigger, st, &p);
            free(st);
        }
    }
    for (size_t i = 0; i < d.n; i++)
        free(vg_diag_format(&d.v[i]));
    vg_ruleset_destroy(rs);
    vg_config_destroy(cfg);
    vg_diags_free(&d);
    unlink(file);
    return 0;
}
