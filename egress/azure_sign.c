/* Azure Storage Shared Key (Blob service). The string to sign follows the "Authorize with
 * Shared Key" page for versions 2009-09-19 and later; where the page and the SDKs/Azurite
 * disagree (whitespace folding inside x-ms-* values) we follow the SDKs, which is what the
 * service is verified against every day. */
#include "egress/azure_sign.h"

#include "config/codec.h"
#include "config/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- base64 / dates --------------------------------------------------------------------- */

int vg_base64_encode(const void *data, size_t len, struct vg_buf *out)
{
    if (!out || (!data && len))
        return VG_EINVAL;
    if (len > (SIZE_MAX / 4) * 3 - 3 || len > INT32_MAX / 2)
        return VG_ERANGE;
    size_t need = 4 * ((len + 2) / 3);
    unsigned char *tmp = malloc(need + 1);
    if (!tmp)
        return VG_ENOMEM;
    int n = EVP_EncodeBlock(tmp, data, (int)len);
    int rc = n < 0 ? VG_EIO : vg_buf_append(out, tmp, (size_t)n);
    free(tmp);
    return rc;
}

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int vg_base64_decode(const char *b64, struct vg_buf *out)
{
    if (!b64 || !out)
        return VG_EINVAL;
    size_t len = strlen(b64);
    if (len % 4 || len > INT32_MAX)
        return VG_EINVAL;
    /* EVP_DecodeBlock skips whitespace and accepts '=' anywhere it ends: validate first. */
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        if (b64[i] == '=') {
            if (i < len - 2)
                return VG_EINVAL;
            pad++;
        } else if (!b64_char(b64[i]) || pad) {
            return VG_EINVAL;
        }
    }
    if (len == 0)
        return out->data ? 0 : vg_buf_puts(out, "");
    unsigned char *tmp = malloc(len / 4 * 3 + 1);
    if (!tmp)
        return VG_ENOMEM;
    int n = EVP_DecodeBlock(tmp, (const unsigned char *)b64, (int)len);
    int rc = n < 0 || (size_t)n < pad ? VG_EINVAL : vg_buf_append(out, tmp, (size_t)n - pad);
    OPENSSL_cleanse(tmp, len / 4 * 3 + 1);
    free(tmp);
    return rc;
}

void vg_rfc1123_date(time_t t, char out[32])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
        out[0] = '\0';
        return;
    }
    /* Built by hand: strftime's %a/%b follow LC_TIME, HTTP dates must not. */
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
    size_t n = strnlen(tmp, 31);
    memcpy(out, tmp, n);
    out[n] = '\0';
}

/* ---- canonicalization -------------------------------------------------------------------- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends the value of every header called name (case-insensitive), comma-joined, trimmed.
 * Returns 1 when found, 0 when absent, <0 on error. */
static int header_value(const struct vg_azure_sign_request *req, const char *name,
                        struct vg_buf *out)
{
    int found = 0;
    for (size_t i = 0; i < req->n_headers; i++) {
        const struct vg_http_header *h = &req->headers[i];
        if (!h->name || !h->value || strcasecmp(h->name, name) != 0)
            continue;
        const char *v = h->value;
        size_t n = strlen(v);
        while (n && is_ws(*v))
            v++, n--;
        while (n && is_ws(v[n - 1]))
            n--;
        int rc = found ? vg_buf_puts(out, ",") : 0;
        if (!rc)
            rc = vg_buf_append(out, v, n);
        if (rc)
            return rc;
        found = 1;
    }
    return found;
}

struct kv {
    char *name;
    char *value;
};

static void kv_free(struct kv *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
}

static int kv_cmp(const void *a, const void *b)
{
    const struct kv *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static void lowercase(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* URL-decodes s[0..n): %XX and '+' as space, as the service (and Azurite) parse queries. */
static char *url_decode(const char *s, size_t n)
{
    struct vg_buf b;
    vg_buf_init(&b);
    if (vg_url_decode_n(s, n, true, &b)) {
        vg_buf_free(&b);
        return NULL;
    }
    return vg_buf_steal(&b);
}

/* "\nname:v1,v2" per lowercased name, names sorted, multiple values sorted and comma-joined. */
static int canonical_query(const char *query, struct vg_buf *out)
{
    size_t cap = 1, n = 0;
    for (const char *p = query; *p; p++)
        cap += *p == '&';
    struct kv *v = calloc(cap, sizeof(*v));
    if (!v)
        return VG_ENOMEM;
    int rc = 0;
    const char *p = query;
    while (*p && !rc) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len) {
            const char *eq = memchr(p, '=', len);
            size_t klen = eq ? (size_t)(eq - p) : len;
            v[n].name = url_decode(p, klen);
            v[n].value = eq ? url_decode(eq + 1, len - klen - 1) : url_decode("", 0);
            if (!v[n].name || !v[n].value)
                rc = VG_ENOMEM;
            else
                lowercase(v[n].name);
            n++;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    if (!rc)
        qsort(v, n, sizeof(*v), kv_cmp);
    for (size_t i = 0; i < n && !rc; i++) {
        if (i && strcmp(v[i].name, v[i - 1].name) == 0)
            rc = vg_buf_printf(out, ",%s", v[i].value);
        else
            rc = vg_buf_printf(out, "\n%s:%s", v[i].name, v[i].value);
    }
    kv_free(v, n);
    return rc;
}

/* x-ms-* headers, lowercased, sorted, "name:value\n" each; duplicates comma-joined. */
static int canonical_headers(const struct vg_azure_sign_request *req, struct vg_buf *out)
{
    struct kv *v = calloc(req->n_headers ? req->n_headers : 1, sizeof(*v));
    if (!v)
        return VG_ENOMEM;
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < req->n_headers && !rc; i++) {
        const struct vg_http_header *h = &req->headers[i];
        if (!h->name || !h->value) {
            rc = VG_EINVAL;
            break;
        }
        if (strncasecmp(h->name, "x-ms-", 5) != 0)
            continue;
        const char *val = h->value;
        size_t vl = strlen(val);
        while (vl && is_ws(*val))
            val++, vl--;
        while (vl && is_ws(val[vl - 1]))
            vl--;
        if (memchr(val, '\n', vl) || memchr(val, '\r', vl)) {
            rc = VG_EINVAL; /* would forge extra canonical lines */
            break;
        }
        v[n].name = vg_strdup(h->name);
        v[n].value = vg_strndup(val, vl);
        if (!v[n].name || !v[n].value)
            rc = VG_ENOMEM;
        else
            lowercase(v[n].name);
        n++;
    }
    if (!rc) {
        /* Stable by name: ties keep request order, which is how they go on the wire. */
        for (size_t i = 1; i < n; i++) {
            struct kv t = v[i];
            size_t j = i;
            while (j > 0 && strcmp(v[j - 1].name, t.name) > 0) {
                v[j] = v[j - 1];
                j--;
            }
            v[j] = t;
        }
    }
    for (size_t i = 0; i < n && !rc; i++) {
        bool dup_next = i + 1 < n && strcmp(v[i].name, v[i + 1].name) == 0;
        if (i && strcmp(v[i].name, v[i - 1].name) == 0)
            rc = vg_buf_printf(out, ",%s%s", v[i].value, dup_next ? "" : "\n");
        else
            rc = vg_buf_printf(out, "%s:%s%s", v[i].name, v[i].value, dup_next ? "" : "\n");
    }
    kv_free(v, n);
    return rc;
}

static const char *const STANDARD_HEADERS[] = {
    "Content-Encoding",
    "Content-Language",
    "Content-Length",
    "Content-MD5",
    "Content-Type",
    "Date",
    "If-Modified-Since",
    "If-Match",
    "If-None-Match",
    "If-Unmodified-Since",
    "Range",
};

int vg_azure_shared_key_sign(const struct vg_azure_sign_request *req, const char *account_key_b64,
                             char **out_auth, char **out_string_to_sign)
{
    struct vg_buf sts, key, val, b64;
    unsigned char mac[32];
    unsigned int maclen = 0;
    int rc = 0;

    vg_buf_init(&sts);
    vg_buf_init(&key);
    vg_buf_init(&val);
    vg_buf_init(&b64);
    if (out_auth)
        *out_auth = NULL;
    if (out_string_to_sign)
        *out_string_to_sign = NULL;
    if (!req || !out_auth || !account_key_b64 || !req->method || !*req->method || !req->account ||
        !*req->account || strpbrk(req->account, "/: \r\n") || (req->n_headers && !req->headers)) {
        rc = VG_EINVAL;
        goto out;
    }
    const char *path = req->path && *req->path ? req->path : "/";
    if (path[0] != '/') {
        rc = VG_EINVAL;
        goto out;
    }
    if (req->path_style) {
        size_t al = strlen(req->account);
        if (strncmp(path + 1, req->account, al) != 0 || (path[al + 1] && path[al + 1] != '/')) {
            rc = VG_EINVAL;
            goto out;
        }
    }
    if ((rc = vg_base64_decode(account_key_b64, &key)))
        goto out;
    if (key.len == 0) {
        rc = VG_EINVAL;
        goto out;
    }

    rc = vg_buf_printf(&sts, "%s\n", req->method);
    for (size_t i = 0; !rc && i < VG_ARRAY_SIZE(STANDARD_HEADERS); i++) {
        vg_buf_reset(&val);
        int found = header_value(req, STANDARD_HEADERS[i], &val);
        if (found < 0) {
            rc = found;
            break;
        }
        /* Since 2015-02-21 a zero Content-Length is signed as empty. */
        if (found && !(i == 2 && strcmp(val.data, "0") == 0))
            rc = vg_buf_append(&sts, val.data, val.len);
        if (!rc)
            rc = vg_buf_puts(&sts, "\n");
    }
    if (!rc)
        rc = canonical_headers(req, &sts);
    if (!rc)
        rc = vg_buf_printf(&sts, "/%s%s", req->account, path);
    if (!rc && req->query)
        rc = canonical_query(req->query, &sts);
    if (rc)
        goto out;

    if (key.len > INT32_MAX ||
        !HMAC(EVP_sha256(), key.data, (int)key.len, (const unsigned char *)sts.data, sts.len, mac,
              &maclen) ||
        maclen != 32) {
        rc = VG_EIO;
        goto out;
    }
    if ((rc = vg_base64_encode(mac, maclen, &b64)))
        goto out;
    *out_auth = vg_asprintf("SharedKey %s:%s", req->account, b64.data);
    if (!*out_auth) {
        rc = VG_ENOMEM;
        goto out;
    }
    if (out_string_to_sign) {
        *out_string_to_sign = vg_buf_steal(&sts);
        if (!*out_string_to_sign) {
            free(*out_auth);
            *out_auth = NULL;
            rc = VG_ENOMEM;
        }
    }
out:
    OPENSSL_cleanse(mac, sizeof(mac));
    if (key.data)
        OPENSSL_cleanse(key.data, key.len);
    vg_buf_free(&key);
    vg_buf_free(&sts);
    vg_buf_free(&val);
    vg_buf_free(&b64);
    return rc;
}
