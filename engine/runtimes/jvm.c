/* The JVM adapter. Today: detection (the java launcher or libjvm.so). The perf-data counters and
 * the attach protocol come with engine/runtimes/jvm/. */
#include "engine/runtimes/runtime.h"

#include <stddef.h>

static const char *const exe_names[] = {"java", NULL};
static const char *const map_markers[] = {"/libjvm.so", NULL};

const struct vg_runtime_type vg_runtime_jvm = {
    .name = "jvm",
    .display = "JVM",
    .exe_names = exe_names,
    .map_markers = map_markers,
};
