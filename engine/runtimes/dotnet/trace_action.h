/* The .NET adapter's CollectTrace runner: see trace_action.c. */
#ifndef VG_DOTNET_TRACE_ACTION_H
#define VG_DOTNET_TRACE_ACTION_H

#include "engine/runtimes/runtime.h"

extern const struct vg_rt_action vg__dotnet_collect_trace;

#endif
