/* HotSpot's perf-data file (hsperfdata_<user>/<nspid> in the JVM's temp dir): the counters that
 * jstat and `jcmd PID PerfCounter.print` show, read without attaching and without running any
 * code in the JVM. The JVM maps the file shared and updates it in place; a snapshot is one pread
 * of it, parsed into name/value entries.
 *
 * Format (perfMemory.hpp, v2.0): a 32-byte prologue (magic CA FE C0 C0, byte order, version,
 * accessible flag, used bytes, overflow, modification time stamp, first entry offset, entry
 * count), then entries of [length, name offset, vector length, type, flags, units, variability,
 * data offset] followed by the NUL-terminated name and the data (a 64-bit 'J' scalar, or a 'B'
 * byte vector holding a string). Every offset and length is checked against the buffer: a file
 * is untrusted input (any process of the JVM's user can write it).
 *
 * Thread-safe (no globals); never calls libuv. */
#ifndef VG_JVM_PERFDATA_H
#define VG_JVM_PERFDATA_H

#include "engine/runtimes/jvm/target.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Files larger than this are refused (HotSpot's default PerfDataMemorySize is 64 KiB). */
#define VG_PERFDATA_MAX_BYTES (16u << 20)

enum vg_perfdata_units {
    VG_PD_UNITS_NONE = 1,
    VG_PD_UNITS_BYTES = 2,
    VG_PD_UNITS_TICKS = 3, /* divide by sun.os.hrt.frequency for seconds */
    VG_PD_UNITS_EVENTS = 4,
    VG_PD_UNITS_STRING = 5,
    VG_PD_UNITS_HERTZ = 6,
};

enum vg_perfdata_variability {
    VG_PD_CONSTANT = 1,
    VG_PD_MONOTONIC = 2,
    VG_PD_VARIABLE = 3,
};

struct vg_perfdata_entry {
    const char *name;    /* e.g. "sun.gc.collector.1.invocations" */
    bool is_string;      /* 'B' vector of units STRING; otherwise a 'J' scalar */
    bool supported;      /* flags bit 0: a documented, supported counter */
    uint8_t units;       /* enum vg_perfdata_units */
    uint8_t variability; /* enum vg_perfdata_variability */
    int64_t value;       /* when !is_string */
    const char *str;     /* when is_string: the bytes up to the first NUL, NUL-terminated */
};

/* One parsed snapshot; owns all its strings. Entries are sorted by name. */
struct vg_perfdata {
    uint8_t major, minor;
    bool accessible; /* the JVM finished initializing the region */
    uint32_t used;   /* bytes in use, from the prologue */
    uint32_t overflow;
    int64_t mod_time_stamp;
    size_t n;
    struct vg_perfdata_entry *entries;
    char *arena; /* internal */
};

/* Parses a snapshot of the region (len bytes from the start of the file). The prologue's fields
 * appear as the entries sun.perfdata.{majorVersion,minorVersion,overflow,size,timestamp,used}, as
 * in `jcmd PerfCounter.print` (size is len). Entries whose type is
 * neither a 'J' scalar nor a 'B' string are skipped, as HotSpot defines no others. Parsing stops
 * at a zero entry length or the end of `used`. Errors: VG_EPARSE (bad magic, version other than
 * 2, an entry outside the buffer or misaligned, a name without its NUL), VG_EAGAIN (the JVM has
 * not made the region accessible yet), VG_ENOMEM. */
int vg_perfdata_parse(const void *buf, size_t len, struct vg_perfdata **out);
void vg_perfdata_destroy(struct vg_perfdata *pd);

/* Lookup by exact name; NULL when absent. */
const struct vg_perfdata_entry *vg_perfdata_find(const struct vg_perfdata *pd, const char *name);
/* A scalar's value: 0, or VG_ENOTFOUND (absent, or a string). */
int vg_perfdata_long(const struct vg_perfdata *pd, const char *name, int64_t *out);
/* ticks / sun.os.hrt.frequency; NaN-free: 0 when the frequency is missing or not positive. */
double vg_perfdata_ticks_to_seconds(const struct vg_perfdata *pd, int64_t ticks);

/* An open perf-data file of one JVM, kept open across samples. */
struct vg_perfdata_file;

/* Finds and opens the file the JVM has mapped: /proc/PID/maps names it in the JVM's own view
 * (its mount namespace, named by its namespace pid); it is opened through /proc/PID/map_files
 * (the mapping itself, needs privileges) or else through the JVM's root. The file must be a
 * regular file owned by the JVM's effective user. Errors: VG_ENOTFOUND (no perf data: started
 * with -XX:-UsePerfData or -XX:+PerfDisableSharedMem, or not a HotSpot JVM), VG_ESRCH,
 * VG_EACCES, VG_EPERM. err (optional) gets a message naming the pid and path. */
int vg_perfdata_open(const struct vg_jvm_target *t, struct vg_perfdata_file **out, char *err,
                     size_t errlen);
/* Reads and parses the current values. Errors as vg_perfdata_parse, or -errno from pread. */
int vg_perfdata_sample(struct vg_perfdata_file *f, struct vg_perfdata **out);
/* The path opened, in the JVM's view (e.g. "/tmp/hsperfdata_app/1"). */
const char *vg_perfdata_file_path(const struct vg_perfdata_file *f);
void vg_perfdata_close(struct vg_perfdata_file *f);

#endif
