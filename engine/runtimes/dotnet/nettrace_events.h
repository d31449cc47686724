/* What vigil reads out of EventPipe events (the parser is nettrace.h): EventCounters
 * (System.Runtime, Microsoft.AspNetCore.Hosting, any EventSource), System.Diagnostics.Metrics
 * instruments, Microsoft-Extensions-Logging records and the ASP.NET Core request activities that
 * DiagnosticSourceEventSource forwards (dotnet-monitor's AspNet* triggers read the same events).
 * Everything else in a trace is left undecoded.
 *
 * The decoders copy what they return (strings are cut to the sizes below, never overrun), so the
 * results outlive the event. Numbers that the runtime sends as strings (meters) are parsed with the
 * invariant format the runtime uses. */
#ifndef VG_NETTRACE_EVENTS_H
#define VG_NETTRACE_EVENTS_H

#include "engine/runtimes/dotnet/nettrace.h"

/* What an event type carries; vg_ep_classify's result, meant for meta->tag. */
enum vg_ep_kind {
    VG_EP_NONE = 0,
    VG_EP_COUNTER, /* <EventSource>/EventCounters */
    VG_EP_METRIC,  /* System.Diagnostics.Metrics: published values, instruments, errors */
    VG_EP_LOG,     /* Microsoft-Extensions-Logging: messages and scopes */
    VG_EP_REQUEST, /* Microsoft-Diagnostics-DiagnosticSource/Activity1Start, Activity1Stop */
};
enum vg_ep_kind vg_ep_classify(const struct vg_nettrace_meta *m);

/* ---- EventCounters ---- */

struct vg_ep_counter {
    const char *provider; /* borrowed from the event's metadata: valid while the parser lives */
    char name[128];       /* "cpu-usage" */
    char display_name[128];
    char units[32];      /* "%", "MB", "B" ... ("" if none) */
    bool increment;      /* CounterType "Sum": value is the increase over the interval */
    double value;        /* Mean, or Increment */
    double interval_sec; /* the interval the value covers */
};
/* 0, VG_EINVAL when the event is not an EventCounters event, VG_EPARSE when its payload lacks the
 * fields (Name and Mean or Increment). */
int vg_ep_counter_decode(const struct vg_nettrace_event *ev, struct vg_ep_counter *out);

/* ---- System.Diagnostics.Metrics (MetricsEventSource) ---- */

enum vg_ep_metric_kind {
    VG_EP_METRIC_OTHER = 0,        /* Version, Message, CollectionStart ...: nothing to read */
    VG_EP_METRIC_COUNTER,          /* CounterRateValuePublished */
    VG_EP_METRIC_UPDOWN,           /* UpDownCounterRateValuePublished */
    VG_EP_METRIC_GAUGE,            /* GaugeValuePublished */
    VG_EP_METRIC_HISTOGRAM,        /* HistogramValuePublished */
    VG_EP_METRIC_INSTRUMENT,       /* BeginInstrumentReporting, InstrumentPublished */
    VG_EP_METRIC_TIMESERIES_LIMIT, /* TimeSeriesLimitReached */
    VG_EP_METRIC_HISTOGRAM_LIMIT,  /* HistogramLimitReached */
    VG_EP_METRIC_ERROR,            /* Error, ObservableInstrumentCallbackError */
    VG_EP_METRIC_SESSION_CONFLICT, /* MultipleSessions*Error: another session owns the source */
};

#define VG_EP_MAX_QUANTILES 8

struct vg_ep_metric {
    enum vg_ep_metric_kind kind;
    char session[64];
    char meter[128];
    char meter_version[32];
    char instrument[128];
    char instrument_type[32]; /* VG_EP_METRIC_INSTRUMENT: "Counter`1", "Histogram`1" ... */
    char unit[32];
    char tags[512]; /* "k=v,k2=v2" as the runtime formats them */
    bool has_rate;  /* counters: the increase over the interval (empty on a first observation) */
    double rate;
    bool has_value; /* counters: the running total; up-down: the current value; gauge: last */
    double value;
    unsigned nquantiles; /* histograms: "0.5=1;0.95=2;0.99=3" */
    double quantile[VG_EP_MAX_QUANTILES];
    double quantile_value[VG_EP_MAX_QUANTILES];
    bool has_count; /* histograms (.NET 8+): measurements and their sum over the interval */
    int64_t count;
    double sum;
    char error[256]; /* VG_EP_METRIC_ERROR and _SESSION_CONFLICT: the runtime's message */
};
/* 0, VG_EINVAL when the event is not from System.Diagnostics.Metrics, VG_EPARSE when a value
 * event lacks its instrument fields. Unknown events of the provider decode as _OTHER. */
int vg_ep_metric_decode(const struct vg_nettrace_event *ev, struct vg_ep_metric *out);

/* ---- Microsoft-Extensions-Logging (EventSourceLogger) ---- */

enum vg_ep_log_kind {
    VG_EP_LOG_OTHER = 0,   /* Message (non-JSON), ActivityStart/Stop: not decoded */
    VG_EP_LOG_FORMATTED,   /* FormattedMessage */
    VG_EP_LOG_JSON,        /* MessageJson: arguments and exception as JSON */
    VG_EP_LOG_SCOPE_START, /* ActivityJsonStart: a scope begins, its arguments as JSON */
    VG_EP_LOG_SCOPE_STOP,  /* ActivityJsonStop */
};

/* Strings point into the caller's scratch buffer; each is "" when absent. */
struct vg_ep_log {
    enum vg_ep_log_kind kind;
    int level; /* Microsoft.Extensions.Logging.LogLevel: 0 Trace .. 5 Critical, 6 None */
    int factory_id;
    int event_id;
    int scope_id; /* scopes: the ID pairing start and stop */
    const char *logger;
    const char *event_name;
    const char *message;
    const char *exception_json;
    const char *arguments_json;
    const char *trace_id;
    const char *span_id;
    bool truncated; /* the scratch buffer was too small for some string */
};
/* 0, VG_EINVAL when the event is not from Microsoft-Extensions-Logging. */
int vg_ep_log_decode(const struct vg_nettrace_event *ev, struct vg_ep_log *out, char *scratch,
                     size_t cap);

/* ---- ASP.NET Core requests (Microsoft.AspNetCore.Hosting.HttpRequestIn via DiagnosticSource) ----
 */

struct vg_ep_request {
    bool stop;             /* Activity1Stop: the request finished */
    char activity_id[128]; /* pairs start and stop */
    char path[1024];
    bool path_truncated;
    int status_code;        /* stop only; -1 if absent */
    int64_t duration_ticks; /* stop only, in 100 ns ticks; -1 if absent */
};
/* 0, VG_EINVAL when the event is not a hosting request activity (another DiagnosticSource event),
 * VG_EPARSE when its payload is malformed. */
int vg_ep_request_decode(const struct vg_nettrace_event *ev, struct vg_ep_request *out);

#endif
