/* The .NET adapter's runtime-sample session (runtime.h: session_open/sample/close), over one
 * shared EventPipe session per process: see session.c. */
#ifndef VG_DOTNET_SESSION_H
#define VG_DOTNET_SESSION_H

#include "config/util.h"
#include "engine/runtimes/runtime.h"

/* EventCounterIntervalSec of the shared session when needs->interval_ms says nothing (the daemon
 * passes GlobalCounter.IntervalSeconds, whose default this is, as dotnet-monitor's). */
#define VG_DOTNET_COUNTER_INTERVAL_S 5

/* The interval of provider in ms: its needs->intervals entry, else needs->interval_ms (provider
 * NULL: that one), else VG_DOTNET_COUNTER_INTERVAL_S. The runtime gets it in seconds written
 * "%g" (a fraction with a '.', as dotnet-monitor writes it: vigil never sets a locale). */
uint64_t vg__dotnet_interval_ms(const struct vg_rt_needs *needs, const char *provider);
/* The intervals of vigil run's GlobalCounter into out's interval_ms and intervals (borrowed: valid
 * until the configuration changes; none before the adapter started, or in CLI callers).
 * dotnet.c; loop thread. */
void vg__dotnet_counter_intervals(struct vg_rt_needs *out);

/* GlobalCounter's MaxTimeSeries and MaxHistograms defaults (dotnet-monitor's). */
#define VG_DOTNET_MAX_TIME_SERIES 1000
#define VG_DOTNET_MAX_HISTOGRAMS 20
/* Appends a metrics session's ";RefreshInterval=..;MaxTimeSeries=..;MaxHistograms=.." (the limits
 * of vigil run's GlobalCounter, or their defaults) to b. dotnet.c; loop thread. */
void vg__dotnet_meter_args(struct vg_buf *b, uint64_t refresh_ms);

/* Starts the session's thread (never blocks): System.Runtime counters, plus every provider in
 * needs->metrics. 0 or VG_E*. */
int vg__dotnet_session_open(uv_loop_t *loop, const struct vg_proc *p, void *data,
                            const struct vg_rt_needs *needs, struct vg_rt_session **out);
/* Appends the latest value of every counter seen (provider = the EventSource, name = the
 * counter's name, e.g. System.Runtime / cpu-usage). */
void vg__dotnet_session_sample(struct vg_rt_session *s, struct vg_rt_values *out);
/* Why the session provides no values although it runs (runtime.h session_error): none came for
 * the staleness delay since it started, and why when the app's runtimeconfig.json says (its
 * EventSources are off); logged once. Loop thread. */
bool vg__dotnet_session_error(struct vg_rt_session *s, char *buf, size_t n);
/* Stops the session (StopTracing) on its thread; s is not used after this. */
void vg__dotnet_session_close(struct vg_rt_session *s);

#endif
