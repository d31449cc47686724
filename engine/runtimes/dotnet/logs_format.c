/* CollectLogs' output shapes: see logs_format.h. The rules are dotnet-monitor's StreamingLogger
 * (the writer) and the EventLogsPipeline's MessageJson handler with its LogValuesFormatter,
 * FormattedLogValues and LogObject (the record it writes). */
#include "engine/runtimes/dotnet/logs_format.h"

#include "config/error.h"
#include "rules/action.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NULL_VALUE "(null)"
#define PAD "      "        /* "info: ": every line after the first is aligned under the category */
#define ALIGN_LIMIT 1000000 /* .NET's composite format width limit */

/* Appends that remember the first failure, so a record is built with no check per call. */
struct out {
    struct vg_buf *b;
    int rc;
    size_t max; /* the buffer's length may not pass this */
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->rc || !n)
        return;
    if (o->b->len + n > o->max) /* holes repeating a large argument: no record that size */
        o->rc = VG_EINVAL;
    else if (vg_buf_append(o->b, s, n))
        o->rc = VG_ENOMEM;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_jstr(struct out *o, const char *s)
{
    puts_(o, "\"");
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c != '"' && c != '\\' && c >= 0x20)
            continue;
        put(o, run, (size_t)(s - run));
        char esc[8];
        switch (c) {
        case '"':
            puts_(o, "\\\"");
            break;
        case '\\':
            puts_(o, "\\\\");
            break;
        case '\n':
            puts_(o, "\\n");
            break;
        case '\r':
            puts_(o, "\\r");
            break;
        case '\t':
            puts_(o, "\\t");
            break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            puts_(o, esc);
        }
        run = s + 1;
    }
    put(o, run, (size_t)(s - run));
    puts_(o, "\"");
}

static void put_jkey(struct out *o, const char *k)
{
    put_jstr(o, k);
    puts_(o, ":");
}

/* ---- LogValuesFormatter ---- */

/* Its FindBraceIndex: '{' picks the last of a run, '}' the first; an even run is escaped. */
static size_t find_brace(const char *f, char brace, size_t start, size_t end)
{
    size_t idx = end, count = 0;
    for (size_t i = start; i < end; i++) {
        if (count > 0 && f[i] != brace) {
            if (count % 2 == 0) {
                count = 0;
                idx = end;
            } else {
                break;
            }
        } else if (f[i] == brace) {
            if (brace == '{' || count == 0)
                idx = i;
            count++;
        }
    }
    return idx;
}

/* Literal text as string.Format reads it: "{{" is '{' and "}}" is '}'. */
static void literal(struct out *o, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if ((s[i] == '{' || s[i] == '}') && i + 1 < n && s[i + 1] == s[i]) {
            put(o, s + run, i + 1 - run);
            i++;
            run = i + 1;
        }
    }
    put(o, s + run, n - run);
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* A hole's value as dotnet-monitor has it after FormatArgument: the argument's string, or
 * "(null)". The runtime sends strings only; anything else is shown as its JSON. */
static const char *arg_value(const json_t *args, const char *name, char **owned)
{
    const json_t *v = args ? json_object_get(args, name) : NULL;
    *owned = NULL;
    if (!v || json_is_null(v))
        return NULL_VALUE;
    if (json_is_string(v))
        return json_string_value(v);
    *owned = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    return *owned ? *owned : NULL_VALUE;
}

/* Calls fn for each hole of format in order (its name and the alignment after ',', 0: none),
 * writing the literal text between them to o when asked. */
typedef void (*hole_fn)(void *ctx, struct out *o, const char *name, long align);

static void walk(struct out *o, const char *f, bool literals, hole_fn fn, void *ctx)
{
    size_t end = strlen(f), scan = 0;
    while (scan < end && !o->rc) {
        size_t open = find_brace(f, '{', scan, end);
        size_t close = find_brace(f, '}', open, end);
        if (close == end) {
            if (literals)
                literal(o, f + scan, end - scan);
            break;
        }
        size_t delim = open;
        while (delim < close && f[delim] != ',' && f[delim] != ':')
            delim++;
        if (literals)
            literal(o, f + scan, open - scan);
        long align = 0;
        if (f[delim] == ',') {
            char *e;
            align = strtol(f + delim + 1, &e, 10);
            /* string.Format refuses a width of a million or more (FormatException: dotnet-monitor
             * drops the record); it also bounds what a record can cost here */
            if (align <= -ALIGN_LIMIT || align >= ALIGN_LIMIT) {
                o->rc = VG_EINVAL;
                return;
            }
        }
        char *name = strndup(f + open + 1, delim - open - 1);
        if (!name) {
            o->rc = VG_ENOMEM;
            return;
        }
        fn(ctx, o, name, align);
        free(name);
        scan = close + 1;
    }
}

static void fill_hole(void *ctx, struct out *o, const char *name, long align)
{
    char *owned;
    const char *v = arg_value(ctx, name, &owned);
    size_t n = utf8_chars(v), width = (size_t)(align < 0 ? -align : align);
    if (align > 0)
        for (size_t i = n; i < width; i++)
            puts_(o, " ");
    puts_(o, v);
    if (align < 0)
        for (size_t i = n; i < width; i++)
            puts_(o, " ");
    free(owned);
}

int vg_dotnet_log_message(struct vg_buf *out, const char *format, const json_t *args)
{
    struct out o = {out, 0, out->len + VG_DOTNET_LOG_RECORD_MAX};
    walk(&o, format, true, fill_hole, (void *)args);
    return o.rc;
}

/* State's arguments of a formatted record: one per hole, in hole order (repeats included). */
static void state_hole(void *ctx, struct out *o, const char *name, long align)
{
    (void)align;
    char *owned;
    const char *v = arg_value(ctx, name, &owned);
    puts_(o, ",");
    put_jkey(o, name);
    put_jstr(o, v);
    free(owned);
}

static void count_hole(void *ctx, struct out *o, const char *name, long align)
{
    (void)o, (void)name, (void)align;
    (*(size_t *)ctx)++;
}

/* ---- LogObject: a scope's or an unformatted record's arguments ---- */

/* Strings, integers, booleans and nulls; objects and arrays are left out, as LogObject does. */
static bool logobject_value(const json_t *v)
{
    return json_is_string(v) || json_is_number(v) || json_is_boolean(v) || json_is_null(v);
}

/* A JSON number as text; false when v is not one. */
static bool put_number(struct out *o, const json_t *v)
{
    char num[40];
    if (json_is_integer(v))
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
    else
        return false;
    puts_(o, num);
    return true;
}

static void put_jscalar(struct out *o, const json_t *v)
{
    if (json_is_string(v))
        put_jstr(o, json_string_value(v));
    else if (!put_number(o, v))
        puts_(o, json_is_true(v) ? "true" : json_is_false(v) ? "false" : "null");
}

static void put_tscalar(struct out *o, const json_t *v)
{
    if (json_is_string(v))
        puts_(o, json_string_value(v));
    else if (!put_number(o, v) && json_is_boolean(v))
        puts_(o, json_is_true(v) ? "True" : "False");
}

static void put_jlogobject(struct out *o, const json_t *obj, bool comma)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (!logobject_value(v))
            continue;
        if (comma)
            puts_(o, ",");
        comma = true;
        put_jkey(o, k);
        put_jscalar(o, v);
    }
}

/* ---- the record ---- */

static const char *const level_names[] = {"Trace", "Debug",    "Information", "Warning",
                                          "Error", "Critical", "None"};
static const char *const level_short[] = {"trce", "dbug", "info", "warn", "fail", "crit"};

static void timestamp(char *buf, size_t cap, int64_t unix_ns)
{
    int64_t s = unix_ns / 1000000000 - (unix_ns % 1000000000 < 0);
    time_t t = (time_t)s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%d %H:%M:%SZ", &tm); /* .NET's "u" format */
}

int vg_dotnet_log_format(struct vg_buf *out, int format, const struct vg_dotnet_log_record *r)
{
    if (!r->arguments_json || !*r->arguments_json || r->level < 0 || r->level > 6 ||
        (format == VG_FMT_PLAIN_TEXT && r->level > 5))
        return VG_EINVAL;
    size_t start = out->len;
    json_t *args = json_loads(r->arguments_json, 0, NULL), *exc = NULL;
    struct vg_buf msg;
    vg_buf_init(&msg);
    int rc = VG_EINVAL;
    if (!json_is_object(args))
        goto out;
    const char *exception = NULL;
    if (r->exception_json && *r->exception_json && strcmp(r->exception_json, "{}") != 0) {
        exc = json_loads(r->exception_json, 0, NULL);
        exception = json_string_value(json_object_get(exc, "VerboseMessage"));
        if (!exception)
            goto out;
    }
    /* with "{OriginalFormat}": FormattedLogValues; without: LogObject and the last message */
    const json_t *fmt_v = json_object_get(args, "{OriginalFormat}");
    const char *fmt = json_string_value(fmt_v);
    if (fmt_v && !fmt)
        goto out;
    size_t holes = 0;
    struct out o = {&msg, 0, VG_DOTNET_LOG_RECORD_MAX};
    if (fmt) {
        walk(&o, fmt, false, count_hole, &holes);
        o.rc = holes ? vg_dotnet_log_message(&msg, fmt, args) : 0;
        if (!holes) /* no arguments: the format itself, escapes and all */
            puts_(&o, fmt);
    } else {
        puts_(&o, r->last_formatted ? r->last_formatted : "");
    }
    if ((rc = o.rc) != 0)
        goto out;
    const char *message = msg.data ? msg.data : "";

    char ts[40];
    timestamp(ts, sizeof ts, r->unix_ns);
    o = (struct out){out, 0, start + VG_DOTNET_LOG_RECORD_MAX};
    if (format == VG_FMT_PLAIN_TEXT) {
        char head[64];
        snprintf(head, sizeof head, " %s: ", level_short[r->level]);
        puts_(&o, ts);
        puts_(&o, head);
        puts_(&o, r->category ? r->category : "");
        snprintf(head, sizeof head, "[%d]", r->event_id);
        puts_(&o, head);
        if (r->event_name && *r->event_name) {
            puts_(&o, "[");
            puts_(&o, r->event_name);
            puts_(&o, "]");
        }
        puts_(&o, "\n");
        if (r->n_scopes) {
            puts_(&o, PAD);
            for (size_t i = 0; i < r->n_scopes; i++) {
                puts_(&o, i ? " => " : "=> ");
                const char *k;
                const json_t *v;
                bool first = true;
                json_object_foreach((json_t *)r->scopes[i], k, v)
                {
                    if (!logobject_value(v))
                        continue;
                    puts_(&o, first ? "" : ", ");
                    first = false;
                    puts_(&o, k);
                    puts_(&o, ":");
                    put_tscalar(&o, v);
                }
            }
            puts_(&o, "\n");
        }
        puts_(&o, PAD);
        puts_(&o, message);
        puts_(&o, "\n");
        if (exception) {
            puts_(&o, PAD);
            for (const char *p = exception; *p; p++) {
                put(&o, p, 1);
                if (*p == '\n')
                    puts_(&o, PAD);
            }
            puts_(&o, "\n");
        }
    } else {
        char num[32];
        if (format == VG_FMT_JSON_SEQUENCE)
            puts_(&o, "\x1e");
        puts_(&o, "{");
        put_jkey(&o, "Timestamp");
        put_jstr(&o, ts);
        puts_(&o, ",");
        put_jkey(&o, "LogLevel");
        put_jstr(&o, level_names[r->level]);
        snprintf(num, sizeof num, ",\"EventId\":%d,", r->event_id);
        puts_(&o, num);
        put_jkey(&o, "EventName");
        put_jstr(&o, r->event_name ? r->event_name : "");
        puts_(&o, ",");
        put_jkey(&o, "Category");
        put_jstr(&o, r->category ? r->category : "");
        puts_(&o, ",");
        put_jkey(&o, "Message");
        put_jstr(&o, message);
        if (exception) {
            puts_(&o, ",");
            put_jkey(&o, "Exception");
            put_jstr(&o, exception);
        }
        puts_(&o, ",");
        put_jkey(&o, "State");
        puts_(&o, "{");
        put_jkey(&o, "Message");
        put_jstr(&o, message);
        if (fmt) {
            if (holes)
                walk(&o, fmt, false, state_hole, args);
            puts_(&o, ",");
            put_jkey(&o, "{OriginalFormat}");
            put_jstr(&o, fmt);
        } else {
            put_jlogobject(&o, args, true);
        }
        puts_(&o, "}");
        if (r->n_scopes) {
            puts_(&o, ",");
            put_jkey(&o, "Scopes");
            puts_(&o, "[");
            for (size_t i = 0; i < r->n_scopes; i++) {
                puts_(&o, i ? ",{" : "{");
                put_jlogobject(&o, r->scopes[i], false);
                puts_(&o, "}");
            }
            puts_(&o, "]");
        }
        puts_(&o, "}\n");
    }
    rc = o.rc;
out:
    if (rc) { /* nothing of a dropped record stays */
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    vg_buf_free(&msg);
    json_decref(exc);
    json_decref(args);
    return rc;
}
