/* /processes and /process: the processes vigil sees, in dotnet-monitor's shapes. */
#include "engine/api_int.h"

#include "config/error.h"
#include "config/log.h"
#include "config/util.h"

#include <string.h>

/* ---------- /processes, /process ---------- */

VG__HANDLER(processes)
{
    struct vg_api *api = ud;
    json_t *arr = json_array();
    size_t n = vg_proc_table_count(api->d->procs);
    for (struct vg_proc *p = vg_proc_table_next(api->d->procs, NULL); p;
         p = vg_proc_table_next(api->d->procs, p)) {
        char u[40];
        vg__proc_uid(p, u);
        json_array_append_new(arr, json_pack("{s:i, s:s, s:o, s:b}", "pid", p->pid, "uid", u,
                                             "name", vg__json_str(p->name), "isDefault", n == 1));
    }
    vg_http_res_json(res, 200, arr);
}

VG__HANDLER(process)
{
    struct vg_api *api = ud;
    struct vg_proc *p = vg__api_select_process(api, req, res);
    if (!p)
        return;
    char u[40];
    vg__proc_uid(p, u);
    json_t *o =
        json_pack("{s:i, s:i, s:s, s:o, s:o, s:s, s:s, s:o, s:s}", "pid", p->pid, "namespacePid",
                  p->ns_pid, "uid", u, "name", vg__json_str(p->name), "commandLine",
                  vg__json_str(p->cmdline ? p->cmdline : ""), "operatingSystem", "linux",
                  "processArchitecture",
#if defined(__x86_64__)
                  "x64",
#elif defined(__aarch64__)
                  "arm64",
#else
                  "unknown",
#endif
                  "exe", vg__json_str(p->exe), "runtime", p->runtime ? p->runtime->name : "native");
    vg_http_res_json(res, 200, o);
}
