/* The Node.js adapter. Today: detection (the node executable). The inspector protocol comes with
 * engine/runtimes/node/. */
#include "engine/runtimes/runtime.h"

#include <stddef.h>

static const char *const exe_names[] = {"node", "nodejs", NULL};

const struct vg_runtime_type vg_runtime_node = {
    .name = "node",
    .display = "Node",
    .exe_names = exe_names,
};
