/* Hex and URL (percent) encoding: the one codec every module uses (signers, API keys, state). */
#ifndef VG_CODEC_H
#define VG_CODEC_H

#include "config/util.h"

#include <stdbool.h>
#include <stddef.h>

/* The value of one hex digit (either case), or -1. */
int vg_hex_value(int c);
/* Writes 2n lowercase hex digits and a NUL to out (2n+1 bytes). */
void vg_hex_encode(const void *in, size_t n, char *out);
/* Decodes exactly 2n hex digits of hex (either case) into n bytes: 0, or VG_EINVAL when hex is
 * shorter or holds a non-digit (out is then unspecified). */
int vg_hex_decode(const char *hex, void *out, size_t n);

/* Appends s to out with everything but RFC 3986 unreserved bytes (A-Z a-z 0-9 - . _ ~)
 * percent-encoded as %XX (uppercase hex), '/' kept when keep_slash: with it a path, without it a
 * single path segment or a query value. out is never left NULL. 0, VG_EINVAL (s NULL) or
 * VG_ENOMEM. */
int vg_url_encode(const char *s, bool keep_slash, struct vg_buf *out);
/* The same over n bytes of s (which may hold NULs). */
int vg_url_encode_n(const char *s, size_t n, bool keep_slash, struct vg_buf *out);
/* Appends the decoding of n bytes of s: %XX escapes (a '%' not followed by two hex digits stays
 * literal), and '+' as a space when plus_space (form and query encoding). 0 or VG_ENOMEM. */
int vg_url_decode_n(const char *s, size_t n, bool plus_space, struct vg_buf *out);

#endif
