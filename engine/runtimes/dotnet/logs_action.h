/* The .NET adapter's CollectLogs runner: see logs_action.c. */
#ifndef VG_DOTNET_LOGS_ACTION_H
#define VG_DOTNET_LOGS_ACTION_H

#include "engine/runtimes/runtime.h"

extern const struct vg_rt_action vg__dotnet_collect_logs;

#endif
