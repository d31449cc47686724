/* Logging: vg_log(level, component, fmt, ...). The level is checked before formatting.
 * Never pass secrets (keys, SAS tokens, signatures) to the logger. */
#ifndef VG_LOG_H
#define VG_LOG_H

#include <stdarg.h>

enum vg_log_level {
    VG_LOG_ERROR = 0,
    VG_LOG_WARN = 1,
    VG_LOG_INFO = 2,
    VG_LOG_DEBUG = 3,
    VG_LOG_TRACE = 4,
};

enum vg_log_format { VG_LOG_TEXT = 0, VG_LOG_JSON = 1 };

extern int vg_log_level;

#define vg_log(level, component, ...)                                                              \
    do {                                                                                           \
        if ((int)(level) <= vg_log_level)                                                          \
            vg__log((level), (component), __VA_ARGS__);                                            \
    } while (0)

void vg__log(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vg_log_set_format(enum vg_log_format fmt);
/* Parses "error|warn|info|debug|trace"; returns 0 or VG_EINVAL. */
int vg_log_parse_level(const char *s, int *level);
const char *vg_log_level_name(int level);

#endif
