/* Start-up checks shared by `vigil check` and `vigil run` (see preflight.h). */
#include "engine/preflight.h"

#include "config/error.h"
#include "config/util.h"
#include "egress/egress.h"
#include "engine/http/jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_STATE_DIR "/var/lib/vigil"

static const struct vg_node *storage_node(const struct vg_config *cfg, const char *key)
{
    return vg_node_get(vg_node_get(vg_tree_root(cfg->tree), "Storage"), key);
}

static void check_dir(const struct vg_config *cfg, const char *key, const char *dir,
                      struct vg_diags *d, size_t *errors)
{
    char why[300];
    if (!dir || vg_dir_creatable(dir, why, sizeof(why)) == 0)
        return;
    const struct vg_node *at = storage_node(cfg, key);
    char *path = vg_path_join("Storage", key);
    vg_diag_err(d, at ? &at->pos : NULL, path, "%s cannot be created: %s", dir, why);
    free(path);
    (*errors)++;
}

size_t vg_preflight(const struct vg_config *cfg, const char *state_dir, struct vg_diags *d)
{
    const struct vg_settings *s = &cfg->settings;
    size_t errors = 0;
    for (size_t i = 0; i < s->n_egress; i++) {
        const struct vg_egress_settings *e = &s->egress[i];
        char err[512];
        if (e->secrets_pending || e->errors)
            continue; /* secrets not mounted here, or errors already reported */
        if (vg_egress_validate(e, err, sizeof(err)) == 0)
            continue;
        static const char *const kinds[] = {"FileSystem", "S3Storage", "AzureBlobStorage"};
        char *path = vg_asprintf("Egress.%s.%s", kinds[e->kind], e->name);
        vg_diag_err(d, &e->pos, path, "%s", err);
        free(path);
        errors++;
    }
    const struct vg_monitor_api_key *k = s->server.api_jwt;
    if (k) {
        struct vg_jwt_key *key = NULL;
        char err[256];
        if (vg_jwt_key_parse(k->public_key, &key, err, sizeof(err)) != 0) {
            const struct vg_node *at =
                vg_node_get(vg_node_get(vg_node_get(vg_tree_root(cfg->tree), "Authentication"),
                                        "MonitorApiKey"),
                            "PublicKey");
            vg_diag_err(d, at ? &at->pos : NULL, "Authentication.MonitorApiKey.PublicKey", "%s",
                        err);
            errors++;
        }
        vg_jwt_key_free(key);
    }
    const char *state = state_dir ? state_dir : s->storage.state_dir;
    check_dir(cfg, "StateDir", state ? state : DEFAULT_STATE_DIR, d, &errors);
    check_dir(cfg,
              s->storage.spool_dir == s->storage.dump_temp_folder ? "DumpTempFolder" : "SpoolDir",
              s->storage.spool_dir, d, &errors);
    return errors;
}
