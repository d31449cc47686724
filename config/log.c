#include "config/log.h"
#include "config/error.h"
#include "config/redact.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int vg_log_level = VG_LOG_INFO;
static enum vg_log_format log_format = VG_LOG_TEXT;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void vg_log_set_format(enum vg_log_format fmt)
{
    log_format = fmt;
}

const char *vg_log_level_name(int level)
{
    if (level < 0 || level > VG_LOG_TRACE)
        return "info";
    return level_names[level];
}

int vg_log_parse_level(const char *s, int *level)
{
    for (int i = 0; i <= VG_LOG_TRACE; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *level = i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *level = VG_LOG_WARN;
        return 0;
    }
    return VG_EINVAL;
}

static void json_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

static void text_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            fputs("\\n", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
}

void vg__log(int level, const char *component, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    vg_redact(msg);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000));

    pthread_mutex_lock(&log_lock);
    if (log_format == VG_LOG_JSON) {
        fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"component\":\"", when,
                vg_log_level_name(level));
        json_escape(stderr, component);
        fputs("\",\"message\":\"", stderr);
        json_escape(stderr, msg);
        fputs("\"}\n", stderr);
    } else {
        /* one event, one line: a process name or a peer's text may hold control characters */
        fprintf(stderr, "%s %-5s [%s] ", when, vg_log_level_name(level), component);
        text_escape(stderr, msg);
        fputc('\n', stderr);
    }
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}
