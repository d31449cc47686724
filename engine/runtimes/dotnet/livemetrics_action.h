/* The .NET adapter's CollectLiveMetrics runner: see livemetrics_action.c. */
#ifndef VG_DOTNET_LIVEMETRICS_ACTION_H
#define VG_DOTNET_LIVEMETRICS_ACTION_H

#include "engine/runtimes/runtime.h"

extern const struct vg_rt_action vg__dotnet_collect_live_metrics;

#endif
