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
    for (struct vg_proc *p = vg_proc_table_next(api->d->procs, NULL); p;
         p = vg_proc_table_next(api->d->procs, p)) {
        char u[40];
        vg__proc_uid(p, u);
        json_array_append_new(arr, json_pack("{s:i, s:s, s:o, s:b}", "pid", vg__proc_pid(p), "uid",
                                             u, "name", vg__json_str(p->name), "isDefault",
                                             vg__proc_is_default(api, p)));
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
        json_pack("{s:i, s:i, s:s, s:o, s:o, s:s, s:s, s:o, s:s}", "pid", vg__proc_pid(p),
                  "namespacePid", p->ns_pid, "uid", u, "name", vg__json_str(p->name), "commandLine",
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
    /* what the runtime says of itself (.NET ProcessInfo), in dotnet-monitor's names */
    struct vg_rt_facts f;
    vg_runtime_facts(p, &f);
    if (f.entry_assembly)
        json_object_set_new(o, "managedEntryPointAssemblyName", vg__json_str(f.entry_assembly));
    if (f.command_line && f.command_line[0])
        json_object_set_new(o, "commandLine", vg__json_str(f.command_line));
    if (f.os && f.os[0])
        json_object_set_new(o, "operatingSystem", vg__json_str(f.os));
    if (f.arch && f.arch[0])
        json_object_set_new(o, "processArchitecture", vg__json_str(f.arch));
    if (f.runtime_version)
        json_object_set_new(o, "runtimeVersion", vg__json_str(f.runtime_version));
    if (f.rid && f.rid[0])
        json_object_set_new(o, "runtimeIdentifier", vg__json_str(f.rid));
    if (f.port)
        json_object_set_new(o, "diagnosticPort", json_string(f.port));
    vg_http_res_json(res, 200, o);
}
