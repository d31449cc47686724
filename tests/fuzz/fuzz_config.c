/* libFuzzer target: the configuration loader (YAML and JSON readers, merge, diagnostics), then
 * the same bytes as environment variables (one NAME=VALUE a line, DotnetMonitor_ prefixed and
 * plain) merged over the document, and the normalization after the last merge (index-keyed maps
 * become lists). */
#include "config/source.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const sections[] = {"CollectionRules", "Egress",  "Urls",
                                       "DiagnosticPort",  "Metrics", NULL};

/* The input's lines as a NULL-terminated envp (at most 64 variables); free(*buf) and the array. */
static const char **env_lines(const uint8_t *data, size_t size, char **buf)
{
    *buf = malloc(size + 1);
    const char **envp = calloc(65, sizeof(*envp));
    if (!*buf || !envp) {
        free(*buf);
        free(envp);
        return NULL;
    }
    memcpy(*buf, data, size);
    (*buf)[size] = '\0';
    size_t n = 0;
    for (char *p = *buf, *nl; p && n < 64; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        if (strchr(p, '='))
            envp[n++] = p;
    }
    return envp;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = NULL;
    const char **envp = env_lines(data, size, &buf);
    for (int json = 0; json < 2; json++) {
        struct vg_tree *t = vg_tree_create();
        struct vg_diags d;
        vg_diags_init(&d);
        if (t) /* the variables merge whether or not the document loaded */
            vg_source_load_buffer(t, json ? "fuzz.json" : "fuzz.yaml", (const char *)data, size,
                                  json, &d);
        if (t && envp) {
            struct vg_node *doc = NULL;
            size_t count = 0;
            enum vg_env_kind kind = json ? VG_ENV_PLAIN : VG_ENV_PREFIXED;
            if (vg_source_env(t, envp, kind, sections, &d, &doc, &count) == 0 && doc)
                vg_tree_merge_doc(t, doc);
            vg_tree_normalize(t, &d);
        }
        for (size_t i = 0; i < d.n; i++)
            free(vg_diag_format(&d.v[i]));
        vg_diags_free(&d);
        vg_tree_destroy(t);
    }
    free(envp);
    free(buf);
    return 0;
}
