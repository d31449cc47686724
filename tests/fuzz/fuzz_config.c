/* libFuzzer target: the configuration loader (YAML and JSON readers, merge, diagnostics). */
#include "config/source.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int json = 0; json < 2; json++) {
        struct vg_tree *t = vg_tree_create();
        struct vg_diags d;
        vg_diags_init(&d);
        if (t) {
            vg_source_load_buffer(t, json ? "fuzz.json" : "fuzz.yaml", (const char *)data, size,
                                  json, &d);
            for (size_t i = 0; i < d.n; i++)
                free(vg_diag_format(&d.v[i]));
        }
        vg_diags_free(&d);
        vg_tree_destroy(t);
    }
    return 0;
}
