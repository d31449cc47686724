/* libFuzzer target for the /proc parsers: stat lines (comm with spaces and parentheses,
 * truncation) and /proc/PID/cgroup text. */
#include "engine/host/cgroup.h"
#include "engine/host/proc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_proc_stat st;
    vg_procfs_parse_stat((const char *)data, size, &st);

    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct vg_proc_cgroup cg;
    vg_cgroup_parse_proc(text, &cg);
    free(text);
    return 0;
}
