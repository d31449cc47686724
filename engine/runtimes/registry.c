/* The runtime registry: every adapter in one static table, detection across all of them with a
 * single read of a process's maps, and action lookup with the native fallback. */
#include "engine/runtimes/runtime.h"

#include "config/util.h"
#include "engine/host/proc.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

extern const struct vg_runtime_type vg_runtime_dotnet;
extern const struct vg_runtime_type vg_runtime_jvm;
extern const struct vg_runtime_type vg_runtime_node;

/* Detection order: managed runtimes first, native (every process) last. */
const struct vg_runtime_type *const vg_runtime_types[] = {
    &vg_runtime_dotnet, &vg_runtime_jvm, &vg_runtime_node, &vg_runtime_native, NULL,
};

#define N_TYPES (VG_ARRAY_SIZE(vg_runtime_types) - 1)

const struct vg_runtime_type *vg_runtime_find(const char *name)
{
    for (size_t i = 0; name && i < N_TYPES; i++)
        if (strcasecmp(vg_runtime_types[i]->name, name) == 0)
            return vg_runtime_types[i];
    return NULL;
}

static const struct vg_rt_action *own_action(const struct vg_runtime_type *rt, const char *type)
{
    for (size_t i = 0; rt && rt->actions && rt->actions[i]; i++)
        if (strcasecmp(rt->actions[i]->type, type) == 0)
            return rt->actions[i];
    return NULL;
}

const struct vg_rt_action *vg_runtime_action(const struct vg_runtime_type *rt, const char *type)
{
    const struct vg_rt_action *a = own_action(rt, type);
    return a ? a : own_action(&vg_runtime_native, type);
}

bool vg_runtime_action_known(const char *type)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (own_action(vg_runtime_types[i], type))
            return true;
    return false;
}

/* ---- lifecycle ---- */

int vg_runtimes_start(const struct vg_rt_host *host, const struct vg_settings *s, char *err,
                      size_t errlen)
{
    for (size_t i = 0; i < N_TYPES; i++) {
        const struct vg_runtime_type *rt = vg_runtime_types[i];
        int rc = rt->start ? rt->start(host, s, err, errlen) : 0;
        if (rc) {
            while (i-- > 0)
                if (vg_runtime_types[i]->stop)
                    vg_runtime_types[i]->stop();
            return rc;
        }
    }
    return 0;
}

void vg_runtimes_configure(const struct vg_settings *s)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (vg_runtime_types[i]->configure)
            vg_runtime_types[i]->configure(s);
}

void vg_runtimes_stop(void)
{
    for (size_t i = 0; i < N_TYPES; i++)
        if (vg_runtime_types[i]->stop)
            vg_runtime_types[i]->stop();
}

void vg_runtime_facts(const struct vg_proc *p, struct vg_rt_facts *out)
{
    memset(out, 0, sizeof(*out));
    if (p->runtime && p->runtime->facts && p->runtime_data)
        p->runtime->facts(p->runtime_data, out);
}

/* ---- detection ---- */

static bool exe_marked(const struct vg_runtime_type *rt, const char *exe)
{
    if (!exe || !rt->exe_names)
        return false;
    const char *base = strrchr(exe, '/');
    base = base ? base + 1 : exe;
    for (size_t i = 0; rt->exe_names[i]; i++)
        if (strcmp(base, rt->exe_names[i]) == 0)
            return true;
    return false;
}

/* Streams proc_root/PID/maps once, looking for every adapter's markers; sets marked[i]. */
static void scan_maps(const struct vg_proc *p, bool marked[N_TYPES])
{
    enum { OVERLAP = 64 };
    char buf[8192];
    char rel[32];
    snprintf(rel, sizeof(rel), "%d/maps", p->pid);
    int fd = openat(vg_proc_table_root_fd(p->table), rel, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size_t keep = 0;
    bool any = false;
    for (;;) {
        ssize_t n = read(fd, buf + keep, sizeof(buf) - keep);
        if (n <= 0)
            break;
        size_t len = keep + (size_t)n;
        for (size_t t = 0; t < N_TYPES; t++) {
            const char *const *m = vg_runtime_types[t]->map_markers;
            for (size_t k = 0; m && m[k] && !marked[t]; k++)
                if (memmem(buf, len, m[k], strlen(m[k])))
                    marked[t] = any = true;
        }
        if (any)
            break; /* the first runtime library found decides */
        /* keep a tail so a name split across two reads is still seen */
        keep = len < OVERLAP ? len : OVERLAP;
        memmove(buf, buf + len - keep, keep);
    }
    close(fd);
}

bool vg_runtime_detect(struct vg_proc *p, bool young, void *arg)
{
    if (p->runtime)
        vg_runtime_forget(p, arg); /* asked again: the previous answer was not final */
    bool marked[N_TYPES] = {false};
    bool any = false;
    for (size_t t = 0; t < N_TYPES; t++)
        any |= marked[t] = exe_marked(vg_runtime_types[t], p->exe) ||
                           (vg_runtime_types[t]->claims && vg_runtime_types[t]->claims(p));
    if (!any && !young)
        scan_maps(p, marked);
    bool settled = true;
    for (size_t t = 0; t < N_TYPES; t++) {
        const struct vg_runtime_type *rt = vg_runtime_types[t];
        void *data = NULL;
        enum vg_rt_detect d;
        if (young && !marked[t] && rt != &vg_runtime_native)
            d = VG_RT_LATER; /* look properly once it had time to load its runtime */
        else if (rt->detect)
            d = rt->detect(p, marked[t], &data);
        else
            d = marked[t] ? VG_RT_YES : VG_RT_NO;
        if (d == VG_RT_YES) {
            p->runtime = rt;
            p->runtime_data = data;
            /* a native answer stays open: a runtime may map its library a moment later (the
             * table asks again a few times) */
            return settled && rt != &vg_runtime_native;
        }
        if (d == VG_RT_LATER)
            settled = false;
    }
    return settled;
}

void vg_runtime_forget(struct vg_proc *p, void *arg)
{
    (void)arg;
    if (p->runtime && p->runtime->forget)
        p->runtime->forget(p->runtime_data);
    p->runtime = NULL;
    p->runtime_data = NULL;
}

const struct vg_proc_detector vg_runtime_detector = {vg_runtime_detect, vg_runtime_forget, NULL};
