/* CollectLogs' records in dotnet-monitor's output shapes (its StreamingLogger fed by the
 * EventLogsPipeline of Microsoft.Diagnostics.Monitoring.EventPipe): one log record, read from a
 * Microsoft-Extensions-Logging MessageJson event, as
 *
 *   PlainText (SimpleConsoleFormatter's layout plus the event name):
 *     2026-01-02 03:04:05Z info: Category[42][EventName]
 *           => Batch:0, {OriginalFormat}:batch {Batch} => Worker:w1
 *           work item 7 done in    7 ms
 *           System.InvalidOperationException: boom ...      (when there is one)
 *   NewlineDelimitedJson: {"Timestamp","LogLevel","EventId","EventName","Category","Message",
 *     "Exception" (when there is one),"State":{"Message",<arguments>,"{OriginalFormat}"},
 *     "Scopes":[{<scope arguments>}, ...] (when there are some)} and '\n';
 *   JsonSequence: the same JSON after a 0x1E record separator (RFC 7464).
 *
 * As dotnet-monitor does, the message is the record's "{OriginalFormat}" formatted again with its
 * arguments (which the runtime sends as strings: a hole's alignment applies, its format string
 * does not, a missing or null argument is "(null)"); a record without "{OriginalFormat}" takes
 * the message of the FormattedMessage event before it. Scopes are listed outermost first. JSON
 * strings are escaped minimally (quote, backslash, control characters): the values are
 * dotnet-monitor's, the bytes may differ where its writer escapes more (non-ASCII, '<', '+'). */
#ifndef VG_DOTNET_LOGS_FORMAT_H
#define VG_DOTNET_LOGS_FORMAT_H

#include "config/util.h"

#include <jansson.h>
#include <stdint.h>

struct vg_dotnet_log_record {
    int64_t unix_ns;             /* the event's time */
    int level;                   /* Microsoft.Extensions.Logging.LogLevel: 0 Trace .. 5 Critical */
    int event_id;                /* EventId.Id */
    const char *event_name;      /* "" when none */
    const char *category;        /* the logger's name */
    const char *exception_json;  /* the event's ExceptionJson: "" or "{}" when none */
    const char *arguments_json;  /* the event's ArgumentsJson */
    const char *last_formatted;  /* the message of the FormattedMessage event before it */
    const json_t *const *scopes; /* the scopes' arguments (JSON objects), outermost first */
    size_t n_scopes;
};

/* The largest record written (and message formatted): a format whose holes repeat a large
 * argument could otherwise make one of hundreds of MB from a 64 KiB event. */
#define VG_DOTNET_LOG_RECORD_MAX (8u << 20)

/* Appends one record to out in format (enum vg_artifact_format of rules/action.h). Returns 0,
 * VG_EINVAL when dotnet-monitor would drop the record too (no arguments, unreadable JSON, a level
 * outside Trace..Critical) or when it would pass VG_DOTNET_LOG_RECORD_MAX, or VG_ENOMEM. */
int vg_dotnet_log_format(struct vg_buf *out, int format, const struct vg_dotnet_log_record *r);

/* A format string with its holes filled as dotnet-monitor's LogValuesFormatter does, appended to
 * out; values are looked up by hole name in args (a JSON object; NULL: every value "(null)").
 * Returns 0, VG_EINVAL for an alignment .NET refuses (a million or more) or a message past
 * VG_DOTNET_LOG_RECORD_MAX, or VG_ENOMEM. */
int vg_dotnet_log_message(struct vg_buf *out, const char *format, const json_t *args);

#endif
