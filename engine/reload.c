/* Live reload: watch the configuration directories, debounce, build a whole new generation and
 * swap it in; on any error the running generation stays and the errors are kept for the API.
 * Watching the directory (not the files) catches editors that write by rename and Kubernetes'
 * atomic ..data symlink swap, which replaces no watched file. */
#include "config/defaults.h"
#include "engine/engine_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DEBOUNCE_MS 300
/* How often each directory's identity is checked: a directory deleted and recreated, or replaced
 * by a symlink, is a new inode that the old inotify watch no longer sees. */
#define RECHECK_MS 2000

/* One watched directory. The handle is heap-allocated so it can be replaced while the old one
 * closes (freed in its close callback, libuv's rule). */
struct watch {
    struct vg_reloader *r;
    const char *path; /* borrowed from the daemon's options */
    uv_fs_event_t *h; /* NULL while the directory is missing */
    dev_t dev;
    ino_t ino;
    bool dead; /* the directory went away under the watch: a new one may reuse its inode */
};

struct vg_reloader {
    struct vg_daemon *d;
    struct watch *w;
    size_t n_watch;
    uv_timer_t debounce;
    uv_timer_t recheck;
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

static void on_closed(uv_handle_t *h);

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct watch *w = h->data;
    struct vg_reloader *r = w->r;
    if (status < 0) {
        vg_log(VG_LOG_WARN, "reload", "watch error on %s: %s", w->path, uv_strerror(status));
        return;
    }
    vg_log(VG_LOG_DEBUG, "reload", "change: %s/%s", w->path, filename ? filename : "?");
    /* the directory itself deleted (inotify names it by its own name): its watch is dead, and a
     * directory created in its place may get the same inode number, which the recheck alone
     * would take for the old one */
    const char *base = strrchr(w->path, '/');
    base = base ? base + 1 : w->path;
    struct stat sb;
    if ((events & UV_RENAME) && filename && strcmp(filename, base) == 0 &&
        (stat(w->path, &sb) != 0 || sb.st_dev != w->dev || sb.st_ino != w->ino))
        w->dead = true;
    /* restart the timer: a burst of events (ConfigMap swap, editor save) reloads once */
    uv_timer_start(&r->debounce, on_debounce, DEBOUNCE_MS, 0);
}

static void watch_close(struct watch *w)
{
    if (!w->h)
        return;
    w->h->data = w->r; /* close callbacks count on the reloader */
    uv_close((uv_handle_t *)w->h, on_closed);
    w->h = NULL;
}

/* (Re)arms the watch on the directory as it is now. Returns 0 or a libuv error. */
static int watch_arm(struct watch *w)
{
    struct vg_reloader *r = w->r;
    struct stat sb;
    watch_close(w);
    if (stat(w->path, &sb) != 0)
        return uv_translate_sys_error(errno);
    w->dev = sb.st_dev;
    w->ino = sb.st_ino;
    w->dead = false;
    w->h = malloc(sizeof(*w->h));
    if (!w->h)
        return UV_ENOMEM;
    uv_fs_event_init(r->d->loop, w->h);
    w->h->data = w;
    r->open_handles++;
    int rc = uv_fs_event_start(w->h, on_fs_event, w->path, 0);
    if (rc)
        watch_close(w);
    return rc;
}

static void on_recheck(uv_timer_t *t)
{
    struct vg_reloader *r = t->data;
    for (size_t i = 0; i < r->n_watch; i++) {
        struct watch *w = &r->w[i];
        struct stat sb;
        bool present = stat(w->path, &sb) == 0 && S_ISDIR(sb.st_mode);
        if (!present) {
            if (w->h)
                vg_log(VG_LOG_WARN, "reload",
                       "configuration directory %s is gone; the running configuration stays "
                       "and the directory is watched for again",
                       w->path);
            watch_close(w);
            continue;
        }
        if (w->h && !w->dead && sb.st_dev == w->dev && sb.st_ino == w->ino)
            continue;
        vg_log(VG_LOG_INFO, "reload", "configuration directory %s was %s: watching it anew",
               w->path, w->h && !w->dead ? "replaced" : "created");
        int rc = watch_arm(w);
        if (rc)
            vg_log(VG_LOG_WARN, "reload", "cannot watch %s: %s", w->path, uv_strerror(rc));
        uv_timer_start(&r->debounce, on_debounce, DEBOUNCE_MS, 0);
    }
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
    r->w = calloc(n, sizeof(*r->w));
    if (!r->w) {
        free(r);
        return VG_ENOMEM;
    }
    uv_timer_init(d->loop, &r->debounce);
    uv_timer_init(d->loop, &r->recheck);
    r->debounce.data = r->recheck.data = r;
    r->open_handles = 2;
    int first_err = 0;
    r->n_watch = n;
    for (size_t i = 0; i < n; i++) {
        r->w[i].r = r;
        r->w[i].path = dirs[i];
        int rc = watch_arm(&r->w[i]);
        if (rc) {
            vg_log(VG_LOG_WARN, "reload", "cannot watch %s: %s", dirs[i], uv_strerror(rc));
            if (!first_err)
                first_err = VG_EIO;
        }
    }
    uv_timer_start(&r->recheck, on_recheck, RECHECK_MS, RECHECK_MS);
    *out = r;
    return first_err;
}

static void on_closed(uv_handle_t *h)
{
    struct vg_reloader *r = h->data;
    if (h->type == UV_FS_EVENT)
        free(h);
    if (--r->open_handles == 0) {
        free(r->w);
        free(r);
    }
}

void vg__reloader_stop(struct vg_reloader *r)
{
    if (!r)
        return;
    uv_close((uv_handle_t *)&r->debounce, on_closed);
    uv_close((uv_handle_t *)&r->recheck, on_closed);
    for (size_t i = 0; i < r->n_watch; i++)
        watch_close(&r->w[i]);
}
