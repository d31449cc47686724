/* Live reload: watch the configuration directories, debounce, build a whole new generation and
 * swap it in; on any error the running generation stays and the errors are kept for the API.
 * Watching the directory (not the files) catches editors that write by rename and Kubernetes'
 * atomic ..data symlink swap, which replaces no watched file. */
#include "config/defaults.h"
#include "engine/engine_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"

#include <stdlib.h>
#include <string.h>

#define DEBOUNCE_MS 300

struct vg_reloader {
    struct vg_daemon *d;
    uv_fs_event_t *watch;
    size_t n_watch;
    uv_timer_t debounce;
    unsigned open_handles;
};

void vg__reload_now(struct vg_daemon *d, const char *why)
{
    if (d->stopping)
        return;
    vg_log(VG_LOG_INFO, "reload", "reloading configuration (%s)", why);
    struct vg_gen *g = NULL;
    char *errors = NULL;
    int rc = vg__gen_build(d, &g, &errors);
    if (rc) {
        d->counters.reloads_failed++;
        free(d->reload_error);
        d->reload_error = errors ? errors : vg_strdup(vg_strerror(rc));
        d->reload_error_ms = vg_wall_ms();
        vg_log(VG_LOG_ERROR, "reload",
               "new configuration rejected; the previous one keeps "
               "running");
        return;
    }
    free(d->reload_error);
    d->reload_error = NULL;
    d->counters.reloads_ok++;
    vg__daemon_apply_gen(d, g);
    vg_log(VG_LOG_INFO, "reload", "configuration reloaded: %zu rule%s", g->rules->n_rules,
           g->rules->n_rules == 1 ? "" : "s");
}

static void on_debounce(uv_timer_t *t)
{
    struct vg_reloader *r = t->data;
    vg__reload_now(r->d, "configuration directory changed");
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct vg_reloader *r = h->data;
    if (status < 0) {
        vg_log(VG_LOG_WARN, "reload", "watch error: %s", uv_strerror(status));
        return;
    }
    vg_log(VG_LOG_DEBUG, "reload", "change: %s", filename ? filename : "?");
    /* restart the timer: a burst of events (ConfigMap swap, editor save) reloads once */
    uv_timer_start(&r->debounce, on_debounce, DEBOUNCE_MS, 0);
}

int vg__reloader_start(struct vg_daemon *d, struct vg_reloader **out)
{
    static const char *const def[] = {VG_DEFAULT_CONFIG_DIR};
    const char *const *dirs = d->opts->n_config_dirs ? d->opts->config_dirs : def;
    size_t n = d->opts->n_config_dirs ? d->opts->n_config_dirs : 1;
    struct vg_reloader *r = calloc(1, sizeof(*r));
    if (!r)
        return VG_ENOMEM;
    r->d = d;
    r->watch = calloc(n, sizeof(*r->watch));
    if (!r->watch) {
        free(r);
        return VG_ENOMEM;
    }
    uv_timer_init(d->loop, &r->debounce);
    r->debounce.data = r;
    r->open_handles = 1;
    int first_err = 0;
    for (size_t i = 0; i < n; i++) {
        uv_fs_event_init(d->loop, &r->watch[i]);
        r->watch[i].data = r;
        r->open_handles++;
        r->n_watch++;
        int rc = uv_fs_event_start(&r->watch[i], on_fs_event, dirs[i], 0);
        if (rc) {
            vg_log(VG_LOG_WARN, "reload", "cannot watch %s: %s", dirs[i], uv_strerror(rc));
            if (!first_err)
                first_err = VG_EIO;
        }
    }
    *out = r;
    return first_err;
}

static void on_closed(uv_handle_t *h)
{
    struct vg_reloader *r = h->data;
    if (--r->open_handles == 0) {
        free(r->watch);
        free(r);
    }
}

void vg__reloader_stop(struct vg_reloader *r)
{
    if (!r)
        return;
    uv_close((uv_handle_t *)&r->debounce, on_closed);
    for (size_t i = 0; i < r->n_watch; i++)
        uv_close((uv_handle_t *)&r->watch[i], on_closed);
}
