/* Small shared helpers: growable buffers, string copies, clocks, unit parsing. */
#ifndef VG_UTIL_H
#define VG_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define VG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

struct vg_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
};

void vg_buf_init(struct vg_buf *b);
void vg_buf_free(struct vg_buf *b);
void vg_buf_reset(struct vg_buf *b);
int vg_buf_append(struct vg_buf *b, const void *data, size_t n);
int vg_buf_puts(struct vg_buf *b, const char *s);
int vg_buf_printf(struct vg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vg_buf_vprintf(struct vg_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Gives the buffer's string to the caller (NULL-safe: an empty buffer yields ""). */
char *vg_buf_steal(struct vg_buf *b);

/* Makes room for one more element in a growable array (*v of *cap elements, n in use): doubles
 * the capacity, starting at `initial`. Returns 0 or VG_ENOMEM (the array is left as it was). */
int vg_grow(void **v, size_t *cap, size_t n, size_t elem_size, size_t initial);

/* NULL on allocation failure (or when s is NULL). */
char *vg_strdup(const char *s);
char *vg_strndup(const char *s, size_t n);
char *vg_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds from CLOCK_MONOTONIC / CLOCK_REALTIME. */
uint64_t vg_mono_ms(void);
uint64_t vg_wall_ms(void);

/* Durations: TimeSpan "[d.]hh:mm:ss[.fffffff]" or "30s" "5m" "1h" "1d" "250ms" or a plain
 * number of seconds. Returns 0 or VG_EINVAL / VG_ERANGE. */
int vg_parse_duration_ms(const char *s, uint64_t *out_ms);
/* Sizes: "100MB" (10^6), "1GiB" (2^30), "512k", plain bytes. Returns 0 or VG_EINVAL / VG_ERANGE. */
int vg_parse_size(const char *s, uint64_t *out_bytes);
/* Formats ms as a TimeSpan "d.hh:mm:ss" / "hh:mm:ss" into buf. */
void vg_format_timespan(uint64_t ms, char *buf, size_t n);

/* Base64url (RFC 4648 section 5; '+' and '/' also accepted, padding optional), as .NET's
 * Base64UrlEncoder reads it. Appends the bytes to out; VG_EINVAL on any other character. */
int vg_base64url_decode(const char *s, struct vg_buf *out);

/* Can this process create (or use) directory `path`: it is a writable directory, or the nearest
 * existing ancestor is one. Creates nothing. Returns 0, or -errno with a reason in why. */
int vg_dir_creatable(const char *path, char *why, size_t n);

/* Levenshtein distance, case-insensitive, capped (returns cap+1 when larger). */
unsigned vg_edit_distance(const char *a, const char *b, unsigned cap);

#endif
