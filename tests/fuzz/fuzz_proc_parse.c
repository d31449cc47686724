/* libFuzzer target for the /proc toolkit (engine/host/procfs.c) and the cgroup line parser: stat
 * lines (comm with spaces and parentheses, truncation), status files (escaped names, id and
 * signal-mask lines), maps and smaps text, "Key: value" lookups, and /proc/PID/cgroup text. The
 * first byte picks nothing: every parser sees every input. */
#include "engine/host/cgroup.h"
#include "engine/host/procfs.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_proc_stat st;
    vg_procfs_parse_stat((const char *)data, size, &st);
    struct vg_proc_status ps;
    vg_procfs_parse_status((const char *)data, size, &ps);
    for (int smaps = 0; smaps < 2; smaps++) {
        struct vg_maps m = {0};
        vg_procfs_parse_maps((const char *)data, size, smaps, &m);
        vg_maps_free(&m);
    }

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    uint64_t v;
    vg_procfs_field_u64(text, "Pss", &v);
    vg_procfs_field_u64(text, "oom_kill ", &v);
    vg_procfs_field_hex(text, "SigCgt", &v);
    struct vg_proc_cgroup cg;
    vg_cgroup_parse_proc(text, &cg);
    free(text);
    return 0;
}
