#include "config/codec.h"
#include "config/error.h"

#include <string.h>

static const char HEX_LOWER[] = "0123456789abcdef";
static const char HEX_UPPER[] = "0123456789ABCDEF";

int vg_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

void vg_hex_encode(const void *in, size_t n, char *out)
{
    const unsigned char *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = HEX_LOWER[p[i] >> 4];
        out[2 * i + 1] = HEX_LOWER[p[i] & 15];
    }
    out[2 * n] = '\0';
}

int vg_hex_decode(const char *hex, void *out, size_t n)
{
    unsigned char *o = out;
    for (size_t i = 0; i < n; i++) {
        /* a NUL is not a digit: a short string stops here without reading past it */
        int hi = vg_hex_value((unsigned char)hex[2 * i]);
        int lo = hi < 0 ? -1 : vg_hex_value((unsigned char)hex[2 * i + 1]);
        if (lo < 0)
            return VG_EINVAL;
        o[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

int vg_url_encode_n(const char *s, size_t n, bool keep_slash, struct vg_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if (unreserved(c) || (keep_slash && c == '/')) {
            rc = vg_buf_append(out, &s[i], 1);
        } else {
            char esc[3] = {'%', HEX_UPPER[c >> 4], HEX_UPPER[c & 15]};
            rc = vg_buf_append(out, esc, 3);
        }
        if (rc)
            return rc;
    }
    return out->data ? 0 : vg_buf_puts(out, "");
}

int vg_url_encode(const char *s, bool keep_slash, struct vg_buf *out)
{
    if (!s)
        return VG_EINVAL;
    return vg_url_encode_n(s, strlen(s), keep_slash, out);
}

int vg_url_decode_n(const char *s, size_t n, bool plus_space, struct vg_buf *out)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int hi = c == '%' && i + 2 < n ? vg_hex_value((unsigned char)s[i + 1]) : -1;
        int lo = hi >= 0 ? vg_hex_value((unsigned char)s[i + 2]) : -1;
        if (lo >= 0) {
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (plus_space && c == '+') {
            c = ' ';
        }
        int rc = vg_buf_append(out, &c, 1);
        if (rc)
            return rc;
    }
    return out->data ? 0 : vg_buf_puts(out, "");
}
